# exit: 1
"""Importing a sibling module with a syntax error, from inside a loop."""

for name in ["helpers_mod", "helpers_broken_syntax"]:
    print("importing", name, flush=True)
    __import__(name)
