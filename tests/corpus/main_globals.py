"""What the __main__ module looks like: its globals, spec, loader, and its entry in sys.modules."""

import sys

print(sorted(globals()))
print("spec", __spec__, "package", __package__, "doc", __doc__[:20])
print("loader", type(__loader__).__name__)
print("cached", globals().get("__cached__"))
main = sys.modules["__main__"]
print("sys.modules['__main__'] is this module:", main.__dict__ is globals())
print("builtins", type(__builtins__).__name__)
import __main__  # noqa: E402

print("import __main__ gives this module:", vars(__main__) is globals(), __main__.__file__ == __file__)
for key in ("numpy", "torch", "pandas"):
    print(key, "imported:", key in sys.modules)
