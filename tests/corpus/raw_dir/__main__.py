"""A directory run as `python ./raw_dir` or `python -P raw_dir`: sys.path[0] and __file__ unnormalized."""

import sys

print("file", __file__)
print("path0", sys.path[0])
print("first two", [p.replace(sys.base_prefix, "<base>") for p in sys.path[:2]])
