"""Generators with loops, their consumers, and when generators are closed."""

import itertools


def numbers(n):
    try:
        for i in range(n):
            yield i
    finally:
        print("  numbers closed at", i)


def evens(limit):
    n = 0
    while True:
        if n >= limit:
            return "done"
        yield n
        n += 2


def delegate():
    result = yield from evens(6)
    print("  delegate got", result)
    for x in "ab":
        yield x


def averager():
    total, count = 0.0, 0
    avg = None
    while True:
        value = yield avg
        if value is None:
            break
        total += value
        count += 1
        avg = total / count
    return avg


def resilient():
    for i in range(5):
        try:
            yield i
        except ValueError as exc:
            print("  resilient caught", exc)
            yield -i


def infinite_batches(data, size):
    epoch = 0
    while True:
        for i in range(0, len(data), size):
            yield epoch, data[i : i + size]
        epoch += 1


print("break out of a generator loop")
for x in numbers(10):
    if x == 2:
        break
print("after break")

print("consume fully", list(numbers(2)))
print("evens", list(evens(7)))
print("delegate", list(delegate()))

avg = averager()
next(avg)
for v in [2, 4, 9]:
    print("running average", avg.send(v))
try:
    avg.send(None)
except StopIteration as stop:
    print("final average", stop.value)

gen = resilient()
for v in gen:
    print("resilient yielded", v)
    if v == 2:
        print("throw returned", gen.throw(ValueError("bad batch")))

batches = infinite_batches(list(range(7)), 3)
for epoch in range(3):
    for step in range(2):
        print("epoch", epoch, "step", step, next(batches))

half = numbers(5)
print("zip", list(zip(half, "ab")))
print("resume after zip", next(half))
half.close()
print("closed explicitly")

it = iter(range(10))
print("any", any(v > 3 for v in it), "then", next(it))
print("islice", list(itertools.islice(numbers(100), 3)))
print("sum of genexp", sum(v * v for v in evens(10)))
print("nested genexp", list(list(c for c in w) for w in ["ab", "c"]))
