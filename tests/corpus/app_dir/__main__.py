"""Run as `python app_dir`: a directory with __main__.py."""

import os
import sys

import app_helper

print("name", __name__, "package", repr(__package__))
print("spec", None if __spec__ is None else __spec__.name)
print("loader", type(__loader__).__name__)
print("file", os.path.relpath(__file__))
print("argv", sys.argv)
print("path0", os.path.relpath(sys.path[0]))
print(app_helper.running_max([3, 1, 4, 1, 5, 9, 2, 6]))
