"""doctest.testmod on the __main__ module: it finds functions by module and line, and runs loop examples."""

import doctest
import sys


def cumulative(values):
    """Running totals.

    >>> cumulative([1, 2, 3])
    [1, 3, 6]
    >>> for v in cumulative(range(3)):
    ...     print(v)
    0
    1
    3
    """
    out, acc = [], 0
    for v in values:
        acc += v
        out.append(acc)
    return out


class Grid:
    """A grid.

    >>> Grid(2).cells()
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """

    def __init__(self, n):
        self.n = n

    def cells(self):
        """All cells.

        >>> len(Grid(3).cells())
        9
        """
        out = []
        for r in range(self.n):
            for c in range(self.n):
                out.append((r, c))
        return out


def broken():
    """A failing example, so the failure report (with line numbers) is compared too.

    >>> broken()
    2
    """
    for x in range(1):
        return x


if __name__ == "__main__":
    print(doctest.testmod(verbose=False))
    finder = doctest.DocTestFinder()
    for test in sorted(finder.find(sys.modules["__main__"]), key=lambda t: t.name):
        print(test.name, test.lineno, len(test.examples))
