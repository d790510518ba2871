# argv: 4 extra
"""The `if __name__ == "__main__":` idiom with a main() that reads sys.argv and loops."""

import sys


def fib(n):
    a, b = 0, 1
    seq = []
    for _ in range(n):
        seq.append(a)
        a, b = b, a + b
    return seq


def main(argv):
    n = int(argv[1]) if len(argv) > 1 else 5
    for k in range(1, n + 1):
        print(k, fib(k))
    return len(argv)


if __name__ == "__main__":
    print("__name__ is", __name__)
    print("main returned", main(sys.argv))
else:
    print("imported, not run")
