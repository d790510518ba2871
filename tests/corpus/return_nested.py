"""return from inside nested loops, through with-blocks and finally clauses, and from generator loops."""

import contextlib


@contextlib.contextmanager
def section(name, log):
    log.append("enter " + name)
    try:
        yield
    finally:
        log.append("exit " + name)


def find_pair(values, target):
    for i, a in enumerate(values):
        for j in range(i + 1, len(values)):
            if a + values[j] == target:
                return i, j
    return None


def deep_return(n):
    log = []
    with section("outer", log):
        for a in range(n):
            with section(f"a{a}", log):
                k = 0
                while True:
                    k += 1
                    try:
                        if a == 1 and k == 2:
                            return log, (a, k)
                    finally:
                        log.append(f"finally {a}.{k}")
                    if k > 2:
                        break
    return log, None


def returns_from_generator(values):
    for v in values:
        if v < 0:
            return
        for _ in range(v):
            yield v


def return_overrides():
    for i in range(3):
        try:
            return "from try", i
        finally:
            if i == 0:
                pass
    return "unreachable"


def sum_until(rows, limit):
    total = 0
    for row in rows:
        for cell in row:
            total += cell
            if total > limit:
                return total, row, cell
    return total, None, None


print(find_pair([1, 4, 6, 9], 10), find_pair([1, 2], 10))
log, where = deep_return(3)
print(where)
for line in log:
    print(" ", line)
print(list(returns_from_generator([2, 1, -1, 5])))
print(return_overrides())
print(sum_until([[1, 2], [3, 4], [5, 6]], 8))
