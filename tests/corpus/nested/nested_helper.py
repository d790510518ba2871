"""Sibling of nested/inner_script.py."""


def collatz_lengths(n):
    out = []
    for start in range(1, n + 1):
        x, steps = start, 0
        while x != 1:
            x = x // 2 if x % 2 == 0 else 3 * x + 1
            steps += 1
        out.append(steps)
    return out
