"""A script in a subfolder: sys.path[0] is its own folder, so it imports its sibling."""

import os
import sys

import nested_helper

print("path0 is my folder", sys.path[0] == os.path.dirname(__file__))
print("argv0", sys.argv[0])
print(nested_helper.collatz_lengths(8))
