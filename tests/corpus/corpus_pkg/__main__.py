"""Run as `python -m corpus_pkg`."""

import sys

from corpus_pkg import train

print("package main", __name__, __package__, __spec__.name)
print("args", sys.argv[1:])
for epochs in (1, 2):
    print(epochs, train.fit([3, 1, 4, 1, 5, 9, 2, 6], epochs))
