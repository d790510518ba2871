"""The functions patched code calls. They forward to the active session, or cost one check when none is.

Only the main thread of the process that started the session is tracked: other threads and forked
children (DataLoader workers) see plain loops.
"""

from __future__ import annotations

import os
import sys
import threading
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


def for_loop(iterable, info):
    s = _session
    if s is None or s.deep or _get_ident() != _thread:  # deep: a loop inside a block, untracked
        return iterable
    return s.for_loop(iterable, info, _getframe(1))


def while_enter(info):
    s = _session
    if s is not None and _get_ident() == _thread:
        s.while_enter(info, _getframe(1))


def while_tick(info):
    s = _session
    if s is not None and _get_ident() == _thread:
        s.while_tick(info, _getframe(1))


def while_exit(info):
    s = _session
    if s is not None and _get_ident() == _thread:
        s.while_exit(info, _getframe(1))


# What the patcher embeds in code: the runtime functions patched loops call.
HOOKS = SimpleNamespace(
    for_loop=for_loop, while_enter=while_enter, while_tick=while_tick, while_exit=while_exit
)

os.register_at_fork(after_in_child=deactivate)
