"""Turn a logged value into something the catalog stores exactly: numbers stay numbers."""

from __future__ import annotations

import math
import time

SMALL = 64  # arrays up to this many elements are stored as lists
REPR_LIMIT = 2000


def typed(value):
    """Return (vtype, json-able value)."""
    if value is None or isinstance(value, (bool, int, str)):
        return type(value).__name__, value
    if isinstance(value, float):
        return "float", value if math.isfinite(value) else repr(value)
    numel = getattr(value, "numel", None) or getattr(value, "size", None)
    tolist = getattr(value, "tolist", None)
    if tolist is not None and not isinstance(value, (list, tuple, dict)):
        try:
            n = numel() if callable(numel) else numel
            if n is not None and n <= SMALL:
                if hasattr(value, "detach"):
                    value = value.detach().cpu()
                out = value.tolist()
                if isinstance(out, (bool, int, float)):
                    return typed(out)
                return "list", out
        except Exception:
            pass
    if (
        isinstance(value, (list, tuple))
        and len(value) <= SMALL
        and all(
            isinstance(v, (bool, int, str, type(None))) or (isinstance(v, float) and math.isfinite(v))
            for v in value
        )
    ):
        return "list", list(value)
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not reach the training loop
        text = f"<{type(value).__name__} object: repr() failed with {exc!r}>"
    return "repr", text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


def log_row(name, value, epoch, step, loop_id, lineno, origin, given_step=None):
    """A catalog log row for ``value`` logged under ``name`` at that position.

    ``given_step`` is a step the caller passed (``flortrace.log(..., step=N)``): the row keeps its epoch,
    takes that step, and has no loop id, which tells exporters to put it at N as it is."""
    if given_step is not None:
        step, loop_id = given_step, None
    vtype, val = typed(value)
    return dict(
        name=name,
        value=val,
        vtype=vtype,
        epoch=epoch,
        step=step,
        loop_id=loop_id,
        lineno=lineno,
        origin=origin,
        ts=time.time(),
    )
