"""Loops over every kind of iterable, including ones a wrapper could break by reading ahead or sizing."""

import collections
import itertools
import os

names, scores = ["ann", "bob", "cy"], [3, 1, 2]
for name, score in zip(names, scores):
    print("zip", name, score)
for pos, name in enumerate(names, start=1):
    print("enumerate", pos, name)

table = {"x": 1, "y": 2, "z": 3}
for key in table:
    print("key", key)
for key, value in table.items():
    print("item", key, value)
print("values", [v for v in table.values()])
for key in reversed(table):
    print("reversed dict", key)

for i in itertools.count(10, 5):
    if i > 25:
        break
print("count stopped at", i)

for i in range(10**18):
    if i == 3:
        break
print("huge range stopped at", i)

squares = (n * n for n in range(6))
for s in squares:
    if s > 4:
        break
print("generator resumes after break:", list(squares))

it = iter(range(10))
pairs = []
for a in it:
    pairs.append((a, next(it)))
print("next() inside the loop over the same iterator:", pairs)

grow = [1]
for x in grow:
    if x < 5:
        grow.append(x + 1)
print("list grown during iteration:", grow)

try:
    d = {1: 1}
    for k in d:
        d[k + 1] = 0
except RuntimeError as exc:
    print("dict changed:", exc)

queue = collections.deque([3])
while queue:
    n = queue.popleft()
    if n > 0:
        queue.extend([n - 1, n - 2])
print("deque drained")

chunks = iter(["a", "b", "", "c"])
for chunk in iter(lambda: next(chunks), ""):
    print("sentinel iteration", chunk)

path = os.path.join(os.path.dirname(__file__), "data", "lines.txt")
with open(path) as f:
    for lineno, line in enumerate(f, 1):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        word, num = line.split()
        print("line", lineno, word, int(num))

with open(path) as f:
    header = None
    for line in f:
        header = line.strip()
        break
    rest = f.readline().strip()
print("file iterator resumes:", header, "|", rest)

for ch in "hé":
    print("char", ch)
for b in b"AB":
    print("byte", b)
print("set", sorted(x for x in {3, 1, 2}))
for a, b in itertools.product("ab", range(2)):
    print("product", a, b)
for key, group in itertools.groupby("aabbbc"):
    print("groupby", key, len(list(group)))
for x in itertools.chain([1], (2, 3), range(4, 5)):
    print("chain", x)
for x in map(str.upper, filter(None, ["", "p", "q"])):
    print("map/filter", x)
for x in sorted({"b": 2, "a": 1}.items(), key=lambda kv: kv[1], reverse=True):
    print("sorted", x)
for i in range(10, 0, -3):
    print("stepped range", i)
for x in memoryview(b"xyz")[1:]:
    print("memoryview", x)
