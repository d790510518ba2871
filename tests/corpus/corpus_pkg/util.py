"""Loops in a package submodule, reached through a relative import."""


def normalize(values):
    top = max(values)
    out = []
    for v in values:
        out.append(v / top)
    return out


def batches(data, size):
    i = 0
    while i < len(data):
        yield data[i : i + size]
        i += size
