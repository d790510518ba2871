"""Emit the instruction sequences patched code runs, one place for every CPython version.

The call convention differs per version (3.10 CALL_FUNCTION; 3.11 PUSH_NULL + PRECALL + CALL;
3.12 PUSH_NULL + CALL; 3.13 callable, then NULL, then CALL), and so do jumps (3.10 absolute, 3.11+
relative with the direction in the name) and the re-raise at the end of a handler, so the patcher never
builds instructions itself. Hooks are embedded as constants: no names are added to the user's namespaces.

``lineno``: an int, None to take the line of the instruction before, or NO_LINE for none at all (code
that line events and tracebacks must not see, placed after the function's code: bytecode 0.17 merges a
3.10 instruction with no line and the instructions after it into one range, so in-line code never has
NO_LINE).
"""

from __future__ import annotations

import sys

from bytecode import Instr, Label

_V = sys.version_info[:2]
NO_LINE = object()


def _instr(name, arg=None, lineno=None):
    kwargs = {} if lineno is None else {"lineno": None if lineno is NO_LINE else lineno}
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


def call_if(flag_of, flag, fn, arg, lineno=None):
    """``if flag_of.flag: fn(arg)``, the result dropped: a hook that costs an attribute test while it is off
    (a while loop's tick, per iteration). ``flag`` must be a bool (3.13 jumps on bools only)."""
    skip = Label()
    attr = (False, flag) if _V >= (3, 12) else flag
    jump = "POP_JUMP_FORWARD_IF_FALSE" if _V == (3, 11) else "POP_JUMP_IF_FALSE"
    test = [
        _instr("LOAD_CONST", flag_of, lineno),
        _instr("LOAD_ATTR", attr, lineno),
        _instr(jump, skip, lineno),
    ]
    return test + call_discard(fn, arg, lineno) + [skip]


def jump_to(label, interruptible=False):
    """An unconditional jump back to ``label`` (from code placed after it), with no line of its own."""
    if _V == (3, 10):
        return _instr("JUMP_ABSOLUTE", label, NO_LINE)
    return _instr("JUMP_BACKWARD" if interruptible else "JUMP_BACKWARD_NO_INTERRUPT", label, NO_LINE)


def interrupts(instr):
    """Whether the jump ``instr`` checks for signals (a backward jump on 3.11+; 3.10 checks elsewhere)."""
    return instr.name == "JUMP_BACKWARD"


def point_forward(instr):
    """Rename the jump ``instr`` so that it may target code placed after it (3.11 names directions)."""
    if _V == (3, 10):
        return
    if instr.name in ("JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"):
        instr.name = "JUMP_FORWARD"
    elif "_BACKWARD_" in instr.name:  # 3.11 POP_JUMP_BACKWARD_IF_*
        instr.name = instr.name.replace("_BACKWARD_", "_FORWARD_")


def setup_handler(label, lineno):
    """3.10: push a block whose handler is ``label`` (3.11+ use exception-table entries instead)."""
    return _instr("SETUP_FINALLY", label, lineno)


def pop_handler(lineno):
    """3.10: pop the block pushed by ``setup_handler``."""
    return _instr("POP_BLOCK", lineno=lineno)


def reraise():
    """End a handler: re-raise the exception it caught where it was raised (line numbers kept)."""
    return _instr("RERAISE", 1, NO_LINE)
