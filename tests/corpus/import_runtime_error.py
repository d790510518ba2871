# exit: 1
"""Importing a sibling module whose module-level loop raises; once caught, once uncaught."""

try:
    import helpers_raises  # noqa: F401
except ZeroDivisionError as exc:
    print("caught at import:", exc, flush=True)
import helpers_raises  # noqa: F401,E402
