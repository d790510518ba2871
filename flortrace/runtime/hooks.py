"""The functions patched code calls. They forward to the active session, or cost one check when none is.

Only the main thread of the process that started the session is tracked: other threads and forked
children (DataLoader workers) see plain loops.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from types import SimpleNamespace

_session = None
_thread = threading.get_ident()
_get_ident = threading.get_ident
_getframe = sys._getframe


def activate(session):
    global _session, _thread
    _session, _thread = session, _get_ident()


def deactivate():
    global _session
    _session = None


def current():
    return _session


@contextmanager
def breakpoints():
    """While a replay session runs, the builtin ``breakpoint()`` is ``flortrace.breakpoint()``: the session
    passes the frame to its driver (the console), or ignores it without one."""
    previous, sys.breakpointhook = sys.breakpointhook, _breakpointhook
    try:
        yield
    finally:
        sys.breakpointhook = previous


def _breakpointhook(*args, **kwargs):
    s = _session
    if s is not None and hasattr(s, "breakpoint"):
        s.breakpoint(_getframe(1))


def for_loop(iterable, info):
    s = _session
    if s is None or s.deep or _get_ident() != _thread:  # deep: a loop inside a block, untracked
        return iterable
    frame = _getframe(1)
    try:
        return s.for_loop(iterable, info, frame)
    except BaseException as exc:  # iter() of the iterable, or a user __len__, failed inside our frames
        s.abandon(info, frame)
        return _raising(exc)


def _raising(exc):
    """What to loop over so that ``exc`` is raised in the user's frame, at its `for` (FOR_ITER has the
    position of GET_ITER), by C code: its traceback then shows no frame of flortrace's, as when Python's
    own iter() fails there. An exhausted generator's throw() raises without running a frame."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OWN):
        tb = tb.tb_next
    return map(_EXHAUSTED.throw, (exc.with_traceback(tb),))


_OWN = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_EXHAUSTED = (x for x in ())
next(_EXHAUSTED, None)


def while_enter(info):
    s = _session
    if s is not None and not s.deep and _get_ident() == _thread:  # deep: it cannot become a block
        s.while_enter(info, _getframe(1))


def while_tick(info):
    s = _session
    if s is not None and not s.deep and _get_ident() == _thread:  # deep: it is not on the stack
        s.while_tick(info, _getframe(1))


def while_exit(info):
    s = _session
    if s is not None and not s.deep and _get_ident() == _thread:
        s.while_exit(info, _getframe(1))


# What the patcher embeds in code: the runtime functions patched loops call.
HOOKS = SimpleNamespace(
    for_loop=for_loop, while_enter=while_enter, while_tick=while_tick, while_exit=while_exit
)

os.register_at_fork(after_in_child=deactivate)
