# argv: plain => 1
# argv: generator => 1
# argv: iterator => 1
# argv: header => 1
"""An uncaught exception inside a loop inside a function: the traceback must be exactly Python's."""

import sys


def rows():
    for i in range(5):
        if i == 3:
            raise ValueError(f"corrupt row {i}")
        yield i


class Source:
    def __init__(self):
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.n += 1
        if self.n > 2:
            raise IndexError("source exhausted badly")
        return self.n


def load(kind):
    if kind == "header":
        raise FileNotFoundError("no such dataset")
    return rows() if kind == "generator" else Source()


def train(kind):
    total = 0
    for epoch in range(3):
        if kind == "plain":
            for step in range(4):
                total += 10 // (6 - epoch * step)
        else:
            for item in load(kind):
                total += item
        print("epoch", epoch, "total", total, flush=True)
    return total


train(sys.argv[1])
