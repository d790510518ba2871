"""Run as `python -m corpus_pkg.fails`: an exception escapes a loop in a module run with -m."""

from .util import normalize

for values in ([1, 2], [0, 0], [3]):
    print(normalize(values))
