"""Pickle instances of classes defined in the script (and in a helper module) and load them back."""

import copy
import hashlib
import pickle

import helpers_mod


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        return f"Point({self.x}, {self.y})"


class Path:
    __slots__ = ("points", "name")

    def __init__(self, name):
        self.name = name
        self.points = []
        for i in range(3):
            self.points.append(Point(i, i * i))

    def __getstate__(self):
        return {"name": self.name, "points": self.points}

    def __setstate__(self, state):
        for key, value in state.items():
            setattr(self, key, value)


def scale(p, k):
    return Point(p.x * k, p.y * k)


path = Path("p")
for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
    data = pickle.dumps(path, protocol=protocol)
    back = pickle.loads(data)
    print(protocol, back.name, back.points, back.points == path.points, hashlib.sha256(data).hexdigest()[:16])

print(pickle.loads(pickle.dumps(scale))(Point(1, 2), 3))
acc = helpers_mod.Accumulator().add_all([1, None, 2])
print(pickle.loads(pickle.dumps(acc)) == acc, pickle.loads(pickle.dumps(acc)))
deep = copy.deepcopy({"path": path, "acc": acc})
print(deep["path"].points, deep["acc"])
print(type(pickle.loads(pickle.dumps(Point(0, 0)))).__module__)
print(pickle.dumps(Point, protocol=4), pickle.dumps(scale, protocol=2))
