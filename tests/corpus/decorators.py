"""Decorators whose wrappers loop, decorated generators, class decorators, lru_cache and singledispatch."""

import functools


def repeat(times):
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            results = []
            for _ in range(times):
                results.append(fn(*args))
            return results

        return wrapper

    return deco


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        print("  call", fn.__name__, args)
        return fn(*args, **kwargs)

    return wrapper


def add_totals(cls):
    for name in list(vars(cls)):
        if name.startswith("n_"):
            setattr(cls, "total_" + name[2:], sum(getattr(cls, name)))
    return cls


@repeat(3)
def square_sum(n):
    acc = 0
    for i in range(n):
        acc += i * i
    return acc


@logged
def windows(seq, size):
    for i in range(len(seq) - size + 1):
        yield seq[i : i + size]


@add_totals
class Stats:
    n_a = [1, 2, 3]
    n_b = [10, 20]


@functools.lru_cache(maxsize=None)
def partitions(n, largest):
    if n == 0:
        return 1
    count = 0
    for part in range(min(n, largest), 0, -1):
        count += partitions(n - part, part)
    return count


@functools.singledispatch
def flatten(x):
    return [x]


@flatten.register
def _(x: list):
    out = []
    for item in x:
        out.extend(flatten(item))
    return out


print(square_sum(4), square_sum.__name__, square_sum.__wrapped__.__name__)
for w in windows("abcde", 3):
    print(w)
print(Stats.total_a, Stats.total_b)
print(partitions(12, 12), partitions.cache_info().hits > 0)
print(flatten([1, [2, [3, 4]], 5]))
