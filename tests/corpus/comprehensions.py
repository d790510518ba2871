"""Comprehensions and generator expressions inside loops, with walrus targets and errors raised inside."""

rows = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
for r in range(3):
    col = [row[r] for row in rows]
    evens = {v for v in col if v % 2 == 0}
    index = {v: i for i, v in enumerate(col)}
    total = sum(v * v for v in col)
    print(r, col, sorted(evens), index, total)

flat = [x for row in rows for x in row if x % 2]
print("flat", flat)
print("nested", [[x * y for x in range(3)] for y in range(3)])


def running_totals(values):
    acc = 0
    out = [acc := acc + v for v in values]
    return out, acc


print("walrus", running_totals([1, 2, 3, 4]))

for scale in (1, 2):
    fns = [lambda v, k=k: v * k * scale for k in range(3)]
    print("lambdas from comprehension", [f(10) for f in fns])

for threshold in (2, 5):
    gen = (v for v in range(10) if v > threshold)
    print("first over", threshold, next(gen), "then", list(gen))

for denominators in ([1, 2], [1, 0]):
    try:
        print([10 // d for d in denominators])
    except ZeroDivisionError as exc:
        print("comprehension raised:", exc)

try:
    [x for x in 3]
except TypeError as exc:
    print("not iterable in comprehension:", exc)

matrix = {(i, j): i * j for i in range(3) for j in range(3) if i <= j}
print(sorted(matrix.items()))
print(max(len(w) for w in "a bb ccc".split()), all(c.isalpha() for c in "abc"))
print(dict(zip("ab", (x for x in range(5)))))


class Holder:
    base = 10
    values = [i * 2 for i in range(base, base + 3)]


print(Holder.values)
