"""Loops at module level: every kind of loop target, leaked loop variables, and the module's globals."""


class Box:
    pass


box = Box()
slots = {}
total = 0
for i in range(5):
    total += i
print("for", total, "leaked i", i)

n = 0
while n < 4:
    n += 1
print("while", n)

for a, (b, c) in [(1, (2, 3)), (4, (5, 6))]:
    print("nested target", a, b, c)
for first, *rest in ["abc", "de"]:
    print("starred", first, rest)
for box.attr in (7, 8):
    pass
print("attribute target", box.attr)
for slots["k"] in "xyz":
    pass
print("subscript target", slots)

try:
    for never in []:
        pass
    print(never)
except NameError as exc:
    print("unbound after empty loop:", exc)

for k in range(3):
    del k
print("deleted k", "k" in globals())

grid = []
for row in range(3):
    line = []
    for col in range(4):
        line.append(row * col)
    grid.append(line)
print(grid)

print(sorted(globals()))
