"""Read and rebind the variables of a running frame on every supported Python.

Module and class frames keep their names in a dict. Function frames keep them in fast slots: 3.13's
`frame.f_locals` is a write-through proxy (PEP 667); before that, the dict copy is written back with
`PyFrame_LocalsToFast`, the way debuggers do.
"""

from __future__ import annotations

import ctypes
import inspect
import sys

_MISSING = object()
_WRITE_THROUGH = sys.version_info >= (3, 13)


def is_function_frame(frame):
    return bool(frame.f_code.co_flags & inspect.CO_NEWLOCALS)


def lookup(frame, name, default=_MISSING):
    """Return (scope, value): scope is 'local' or 'global'; value is ``default`` when unbound."""
    f_locals = frame.f_locals
    if name in f_locals:
        return "local", f_locals[name]
    if name in frame.f_globals:
        return "global", frame.f_globals[name]
    return "local", default


def bind(frame, values, scope="local"):
    """Rebind ``values`` (name -> object) in ``frame`` (its locals, or its module for scope 'global')."""
    if not values:
        return
    if scope == "global" or not is_function_frame(frame):
        (frame.f_globals if scope == "global" else frame.f_locals).update(values)
        return
    f_locals = frame.f_locals
    for name, value in values.items():
        f_locals[name] = value
    if not _WRITE_THROUGH:
        ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))


MISSING = _MISSING
