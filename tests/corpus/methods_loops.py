"""Loops in methods of every kind: instance, class, static, property, dunder, generator methods, metaclass."""

from dataclasses import dataclass, field


class Meta(type):
    def __new__(mcs, name, bases, ns):
        for key in sorted(ns):
            if key.startswith("double_"):
                ns[key[7:]] = ns[key] * 2
        return super().__new__(mcs, name, bases, ns)


class Layer(metaclass=Meta):
    double_size = 3
    registry = []

    def __init__(self, weights):
        self.weights = []
        for w in weights:
            self.weights.append(float(w))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for base in cls.__mro__:
            Layer.registry.append((cls.__name__, base.__name__))

    @classmethod
    def zeros(cls, n):
        ws = []
        for _ in range(n):
            ws.append(0)
        return cls(ws)

    @staticmethod
    def clip(values, lo, hi):
        out = []
        for v in values:
            while v > hi:
                v -= 1
            out.append(max(lo, v))
        return out

    @property
    def norm(self):
        acc = 0.0
        for w in self.weights:
            acc += w * w
        return acc**0.5

    def __iter__(self):
        for w in self.weights:
            yield w

    def __len__(self):
        n = 0
        for _ in self.weights:
            n += 1
        return n

    def __add__(self, other):
        return type(self)([a + b for a, b in zip(self, other)])

    def step(self, grads, lr=0.1):
        for k, g in enumerate(grads):
            self.weights[k] -= lr * g
        return self


class Dense(Layer):
    pass


@dataclass
class Config:
    sizes: list = field(default_factory=lambda: [1, 2, 3])
    total: int = 0

    def __post_init__(self):
        for s in self.sizes:
            self.total += s


layer = Layer([3, 4])
print(layer.norm, len(layer), list(layer))
print(Layer.zeros(3).weights, Dense.zeros(2).weights, type(Dense.zeros(1)).__name__)
print(Layer.clip([5, -2, 9], 0, 6), Layer.size)
print((layer + Layer([1, 1])).weights)
for _ in range(3):
    layer.step([1, -1])
print([round(w, 6) for w in layer.weights])
print(Layer.registry)
print(Config(), Config([4, 5]))
