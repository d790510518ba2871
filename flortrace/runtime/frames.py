"""Read and rebind the variables of a running frame on every supported Python.

Module and class frames keep their names in a dict. Function frames keep them in fast slots: 3.13's
`frame.f_locals` is a write-through proxy (PEP 667); before that, the dict copy is written back with
`PyFrame_LocalsToFast`, the way debuggers do. Before 3.13 reading `frame.f_locals` also fills the frame's
own locals dict, which then holds every local (`del x` no longer frees x): flortrace empties it again
after reading when nothing else holds it. A dict the script took with `locals()` is left as the read made
it (refreshed, as a debugger's read would).
"""

from __future__ import annotations

import ctypes
import inspect
import sys

_MISSING = object()
_WRITE_THROUGH = sys.version_info >= (3, 13)


def is_function_frame(frame):
    return bool(frame.f_code.co_flags & inspect.CO_NEWLOCALS)


def locals_of(frame):
    """The local variables of ``frame``: the namespace itself for a module or class frame, else a copy."""
    if not is_function_frame(frame):
        return frame.f_locals
    if _WRITE_THROUGH:
        return dict(frame.f_locals)
    space = frame.f_locals
    out = dict(space)
    if sys.getrefcount(space) <= _ONLY_OURS:
        space.clear()
    return out


# References to a frame's locals dict when only the frame holds it: the frame's, the name it is bound to
# here, getrefcount's argument (counted right where the name is bound: a call adds references that differ
# between versions).
_ONLY_OURS = 3


def lookup(frame, name, default=_MISSING, local=None):
    """Return (scope, value): scope is 'local' or 'global'; value is ``default`` when unbound. ``local``: the
    frame's locals as ``locals_of`` gave them, when the caller looks up many names."""
    f_locals = locals_of(frame) if local is None else local
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
        if sys.getrefcount(f_locals) <= _ONLY_OURS:
            f_locals.clear()


MISSING = _MISSING
