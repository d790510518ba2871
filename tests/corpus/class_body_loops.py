"""Loops directly in class bodies: attributes built by loops, and the class namespace afterwards."""


class Vocab:
    letters = "abcde"
    index = {}
    for pos, ch in enumerate(letters):
        index[ch] = pos
    squares = [n * n for n in range(5)]
    while len(squares) < 7:
        squares.append(0)
    del pos, ch


class Flags:
    for name in ("alpha", "beta"):
        locals()[name.upper()] = len(name)
    name = "last"


class Outer:
    class Inner:
        sizes = []
        for k in range(3):
            sizes.append(2**k)

    total = sum(Inner.sizes)


print(Vocab.index, Vocab.squares)
print(sorted(vars(Vocab)))
print(Flags.name, sorted(k for k in vars(Flags) if not k.startswith("__")))
print(Outer.Inner.sizes, Outer.total, Outer.Inner.k, Outer.Inner.__qualname__)
