"""Emit the instruction sequences that call a hook, one place for every CPython version.

The call convention differs per version (3.10 CALL_FUNCTION; 3.11 PUSH_NULL + PRECALL + CALL;
3.12 PUSH_NULL + CALL; 3.13 callable, then NULL, then CALL), so the patcher never builds calls itself.
Hooks are embedded as constants: no names are added to the user's namespaces.
"""

from __future__ import annotations

import sys

from bytecode import Instr

_V = sys.version_info[:2]


def _instr(name, arg=None, lineno=None):
    kwargs = {} if lineno is None else {"lineno": lineno}
    if arg is None:
        return Instr(name, **kwargs)
    return Instr(name, arg, **kwargs)


def _call(nargs, lineno):
    if _V == (3, 10):
        return [_instr("CALL_FUNCTION", nargs, lineno)]
    if _V == (3, 11):
        return [_instr("PRECALL", nargs, lineno), _instr("CALL", nargs, lineno)]
    return [_instr("CALL", nargs, lineno)]


def _swap(lineno):
    return _instr("ROT_TWO", lineno=lineno) if _V == (3, 10) else _instr("SWAP", 2, lineno)


def wrap_top(fn, extra, lineno=None):
    """Replace the value on top of the stack by ``fn(value, extra)``."""
    if _V == (3, 10):
        head = [_instr("LOAD_CONST", fn, lineno), _swap(lineno)]
    elif _V in ((3, 11), (3, 12)):
        head = [
            _instr("PUSH_NULL", lineno=lineno),
            _swap(lineno),
            _instr("LOAD_CONST", fn, lineno),
            _swap(lineno),
        ]
    else:
        head = [
            _instr("LOAD_CONST", fn, lineno),
            _swap(lineno),
            _instr("PUSH_NULL", lineno=lineno),
            _swap(lineno),
        ]
    return head + [_instr("LOAD_CONST", extra, lineno)] + _call(2, lineno)


def call_discard(fn, arg, lineno=None):
    """Call ``fn(arg)`` and drop the result; the stack is left as it was."""
    if _V == (3, 10):
        head = [_instr("LOAD_CONST", fn, lineno)]
    elif _V in ((3, 11), (3, 12)):
        head = [_instr("PUSH_NULL", lineno=lineno), _instr("LOAD_CONST", fn, lineno)]
    else:
        head = [_instr("LOAD_CONST", fn, lineno), _instr("PUSH_NULL", lineno=lineno)]
    return head + [_instr("LOAD_CONST", arg, lineno)] + _call(1, lineno) + [_instr("POP_TOP", lineno=lineno)]
