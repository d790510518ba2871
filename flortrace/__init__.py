"""flortrace: hindsight logging for model training.

Record a training script with ``python -m flortrace train.py``; later add ``flortrace.log(...)`` lines and
run ``python -m flortrace replay train.py`` to get their values for every epoch without retraining.
"""

from __future__ import annotations

import operator
import sys
import time as _time
from collections.abc import Mapping

from .runtime import hooks as _hooks
from .runtime import world as _world
from .version import __version__

_imported = _time.perf_counter()  # record charges its start-up from here on to the overhead budget

__all__ = ["log", "replaying", "breakpoint", "dataframe", "__version__"]

_MISSING = object()


def log(name, value=_MISSING, step=None):
    """Log ``value`` under ``name`` with the current epoch and step; returns ``value``.

    ``log({"loss": l, "acc": a})`` logs each item and returns the dict; as with ``wandb.log``, a second
    argument is then the step. ``step=N`` puts the value at x-axis position N in exports (like
    ``add_scalar``'s ``global_step``) instead of the step counted in its loop. Outside flortrace this only
    returns its argument; under it, a failure to log is said once, never raised into the training.
    """
    if type(name) is not str and isinstance(name, Mapping):
        if value is not _MISSING:
            step = value
        lineno = sys._getframe(1).f_lineno
        for key, item in name.items():
            _log(key, item, step, lineno)
        return name
    if value is _MISSING:
        raise TypeError("flortrace.log(name, value): value is missing (or pass a dict of values)")
    _log(name, value, step, sys._getframe(1).f_lineno)
    return value


def _log(name, value, step, lineno):
    session = _hooks._session
    if session is not None:
        try:
            if step is None:
                session.log(str(name), value, lineno)
            else:
                session.log(str(name), value, lineno, step=operator.index(step))
        except Exception as exc:
            _log_failed(name, exc)


def replaying():
    """True while the script runs under ``flortrace replay`` or ``flortrace console`` (also in processes it
    forks), False when it is recorded or runs on its own: a script may skip work that only matters live."""
    return _world.active()


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


def dataframe(*names, run=None, runs=None, store=None):
    """A pandas DataFrame of logged values: one row per (run, epoch, step), one column per name;
    ``runs="all"`` (or ``last:N``, ``3,5,7``, ``2:6``) adds a column per script argument."""
    from .export.frame import dataframe as _dataframe

    return _dataframe(*names, run=run, runs=runs, store=store)
