"""Loops in functions: sequential loops, deep nesting, and locals() inside and after loops."""


def many_loops(n):
    out = []
    for i in range(n):
        out.append(i)
    for i in range(n):
        out.append(-i)
    j = 0
    while j < n:
        out.append(j * 10)
        j += 1
    for ch in "ab":
        out.append(ch)
    for x in out[:2]:
        out.append(x)
    return out


def deep(n):
    count = 0
    for a in range(n):
        for b in range(n):
            for c in range(n):
                for d in range(n):
                    for e in range(n):
                        for f in range(n):
                            for g in range(n):
                                for h in range(n):
                                    count += a + b + c + d + e + f + g + h
    return count


def with_locals(values):
    seen = []
    for pos, v in enumerate(values):
        seen.append(sorted(locals()))
        if pos == 1:
            break
    return seen, sorted(locals())


def zero_trip():
    for x in ():
        print("never", x)
    while False:
        print("never")
    return "zero-trip loops ok"


print(many_loops(3))
print(deep(2))
print(with_locals([5, 6, 7]))
print(zero_trip())
print(sum(deep(1) for _ in range(3)))
