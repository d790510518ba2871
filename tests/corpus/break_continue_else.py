"""break, continue, for-else and while-else, including break/continue inside finally."""


def find(values, target):
    for pos, v in enumerate(values):
        if v == target:
            print("  found at", pos)
            break
    else:
        print("  not found")
        pos = -1
    return pos


def skip_odd(n):
    out = []
    for i in range(n):
        if i % 2:
            continue
        out.append(i)
    return out


def countdown(n):
    while n > 0:
        n -= 1
        if n == 2:
            continue
        if n == -5:
            break
    else:
        print("  while-else ran, n =", n)
    return n


def break_in_finally(values):
    out = []
    for v in values:
        try:
            if v == 3:
                raise ValueError("swallowed by break")
            out.append(v)
        finally:
            if v == 3:
                break
    return out


def continue_in_finally(values):
    out = []
    for v in values:
        try:
            if v % 2:
                raise KeyError(v)
            out.append(v)
        finally:
            continue
    return out


def nested_break():
    pairs = []
    for i in range(4):
        for j in range(4):
            if j > i:
                break
            if (i + j) % 3 == 0:
                continue
            pairs.append((i, j))
        else:
            pairs.append("inner-else")
    return pairs


print(find([4, 5, 6], 5), find([4, 5, 6], 9))
print(skip_odd(7))
print(countdown(5))
print(break_in_finally([1, 2, 3, 4]))
print(continue_in_finally([1, 2, 3, 4]))
print(nested_break())
i = 0
while True:
    i += 1
    if i < 3:
        continue
    if i > 5:
        break
print("while True ended at", i)
