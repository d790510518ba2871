"""Helper module imported by corpus scripts: its loops are instrumented through the import hook."""

SQUARES = []
for _i in range(4):
    SQUARES.append(_i * _i)
del _i


def total(values):
    acc = 0
    for v in values:
        acc += v
    return acc


def pairs(n):
    out = []
    for i in range(n):
        for j in range(i):
            out.append((j, i))
    return out


def countdown(n):
    while n > 0:
        yield n
        n -= 1


class Accumulator:
    def __init__(self):
        self.items = []

    def add_all(self, values):
        for v in values:
            if v is None:
                continue
            self.items.append(v)
        return self

    def __eq__(self, other):
        return isinstance(other, Accumulator) and self.items == other.items

    def __repr__(self):
        return f"Accumulator({self.items})"


def train_step(weights, batch):
    for k, x in enumerate(batch):
        weights[k % len(weights)] += 0.5 * x
    return weights


def first_over(values, limit):
    for v in values:
        if v > limit:
            return v
    return None


if __name__ == "__main__":
    print("helpers_mod run as main: should not happen when imported")
