"""Run as `python -m corpus_pkg.mod [args]`: prints module facts and trains."""

import os
import sys

from . import train
from .util import normalize


def main():
    print("name", __name__, "package", __package__, "spec", __spec__.name)
    print("argv0", os.path.relpath(sys.argv[0]), "args", sys.argv[1:])
    print("path0 is cwd", sys.path[0] == os.getcwd())
    print("file", os.path.relpath(__file__))
    w, history = train.fit(list(range(10)), 3)
    print("w", round(w, 6), history)
    print(normalize([1, 2, 4]))


if __name__ == "__main__":
    main()
