"""Closures, nested functions, nonlocal/global loop variables, and lambdas called in loops."""

COUNTER = 0


def make_counters(n):
    fns = []
    for i in range(n):
        fns.append(lambda: i)
    bound = []
    for i in range(n):
        bound.append(lambda i=i: i)
    return [f() for f in fns], [f() for f in bound]


def outer(values):
    total = 0

    def add_all(extra):
        nonlocal total
        for v in values + extra:
            total += v
        return total

    def inner_loop():
        for total_part in range(2):
            yield total_part + total

    add_all([1])
    return total, list(inner_loop())


def bump_global(n):
    global COUNTER
    for COUNTER in range(COUNTER, COUNTER + n):
        pass
    return COUNTER


def pipeline(data):
    steps = [lambda x: x + 1, lambda x: x * 2, lambda x: -x]
    out = []
    for x in data:
        for step in steps:
            x = step(x)
        out.append(x)
    return out


def compose(*fns):
    def run(x):
        for f in reversed(fns):
            x = f(x)
        return x

    return run


def cell_loop_var():
    seen = []
    for k in range(3):

        def show():
            return k * 10

        seen.append(show())
    return seen, k


print(make_counters(3))
print(outer([1, 2, 3]))
print(bump_global(3), bump_global(2), COUNTER)
print(pipeline([1, 2, 3]))
print(compose(lambda x: x - 1, lambda x: x * 3)(5))
print(sorted(["bb", "a", "ccc"], key=lambda s: -len(s)))
print(list(map(lambda p: p[0] * p[1], zip(range(4), range(4, 8)))))
print(list(filter(lambda v: v % 3, range(10))))
print(cell_loop_var())
