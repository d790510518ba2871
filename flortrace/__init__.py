"""flortrace: hindsight logging for model training.

Record a training script with ``python -m flortrace train.py``; later add ``flortrace.log(...)`` lines and
run ``python -m flortrace replay train.py`` to get their values for every epoch without retraining.
"""

from __future__ import annotations

import sys
import time as _time

from .runtime import hooks as _hooks

_imported = _time.perf_counter()  # record charges its start-up from here on to the overhead budget

__version__ = "0.1.0"
__all__ = ["log", "breakpoint", "dataframe", "__version__"]


def log(name, value):
    """Log ``value`` under ``name`` with the current epoch and step; returns ``value``.

    Outside flortrace this only returns ``value``; under it, a failure to log is said once, never raised
    into the training.
    """
    session = _hooks._session
    if session is not None:
        try:
            session.log(str(name), value, sys._getframe(1).f_lineno)
        except Exception as exc:
            _log_failed(name, exc)
    return value


_log_failures = []


def _log_failed(name, exc):
    _log_failures.append(exc)
    if len(_log_failures) == 1:
        shown = name if isinstance(name, str) else type(name).__name__
        print(
            f"flortrace: warning: flortrace.log({shown!r}, ...) failed, the value is not logged: {exc!r} "
            "(said once)",
            file=sys.stderr,
        )


def breakpoint():  # noqa: A001 - mirrors the builtin on purpose
    """Stop in the replay console here during replay; does nothing otherwise."""
    session = _hooks._session
    if session is not None and hasattr(session, "breakpoint"):
        session.breakpoint(sys._getframe(1))


def _hindsight(file, line, column=0):
    """The isolation a line added since the recording runs in during replay (see runtime/hindsight.py)."""
    session = _hooks._session
    if session is not None and hasattr(session, "hindsight"):
        return session.hindsight(file, line, column)
    from .runtime.hindsight import NOTHING

    return NOTHING


def dataframe(*names, run=None, store=None):
    """A pandas DataFrame of logged values: one row per (run, epoch, step), one column per name."""
    from .export.frame import dataframe as _dataframe

    return _dataframe(*names, run=run, store=store)
