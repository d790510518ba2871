"""Recursive functions that contain loops (and loops that recurse)."""


def permutations(items):
    if len(items) <= 1:
        return [items]
    out = []
    for i, item in enumerate(items):
        for rest in permutations(items[:i] + items[i + 1 :]):
            out.append([item] + rest)
    return out


def walk(tree, depth=0):
    lines = []
    for name, child in sorted(tree.items()):
        lines.append("  " * depth + name)
        if isinstance(child, dict):
            lines.extend(walk(child, depth + 1))
    return lines


def fill(grid, r, c, seen):
    stack = [(r, c)]
    size = 0
    while stack:
        r, c = stack.pop()
        if (r, c) in seen or not (0 <= r < len(grid) and 0 <= c < len(grid[0])) or grid[r][c] != "#":
            continue
        seen.add((r, c))
        size += 1
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            stack.append((r + dr, c + dc))
    return size


def is_even(n):
    for _ in range(1):
        if n == 0:
            return True
    return is_odd(n - 1)


def is_odd(n):
    while n != 0:
        return is_even(n - 1)
    return False


def hanoi(n, src, dst, via, moves):
    if n == 0:
        return moves
    hanoi(n - 1, src, via, dst, moves)
    moves.append((src, dst))
    hanoi(n - 1, via, dst, src, moves)
    return moves


def depth_of(nested):
    best = 0
    for item in nested:
        if isinstance(item, list):
            best = max(best, depth_of(item))
    return best + 1


print(permutations([1, 2, 3]))
for line in walk({"root": {"b": {"x": 1}, "a": 1}, "etc": 2}):
    print(line)
grid = ["##..", "#..#", "..##", "#..."]
seen = set()
sizes = []
for r in range(4):
    for c in range(4):
        if grid[r][c] == "#" and (r, c) not in seen:
            sizes.append(fill(grid, r, c, seen))
print("islands", sizes)
print(is_even(10), is_odd(7), is_even(7))
print(len(hanoi(6, "a", "c", "b", [])), hanoi(2, "a", "c", "b", []))
print(depth_of([1, [2, [3, [4]], 5], [6]]))
nested = []
for _ in range(200):
    nested = [nested]
print("deep nesting", depth_of(nested))
