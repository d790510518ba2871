# python: -P
# python: -I
# since: 3.11
"""r18: with -P, -I or PYTHONSAFEPATH Python puts no script folder on sys.path (sys.path[0] is the
standard library's zip), and a sibling module cannot be imported."""
import sys

print([p.replace(sys.base_prefix, "<base>") for p in sys.path[:2]], sys.flags.safe_path)
try:
    import helpers_mod  # noqa: F401
except ImportError as e:
    print("no sibling:", e)
