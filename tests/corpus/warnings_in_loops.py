"""Warnings raised in loops: location-based deduplication and stacklevel pointing into the caller."""

import warnings

import helpers_mod


def deprecated_batches(n):
    for i in range(n):
        warnings.warn("deprecated_batches is deprecated", DeprecationWarning, stacklevel=2)
        yield i


def check(value):
    for limit in (10, 100):
        if value > limit:
            warnings.warn(f"value {value} over {limit}", UserWarning, stacklevel=2)


warnings.simplefilter("default")
for epoch in range(3):
    for step in deprecated_batches(2):
        check(step * 60)
    warnings.warn("once per location", RuntimeWarning)
    print("epoch", epoch, helpers_mod.total([epoch, step]))

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for b in deprecated_batches(2):
        check(500)
print([(w.category.__name__, w.lineno, str(w.message)) for w in caught])
