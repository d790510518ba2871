"""Capture, restore and materialize: the dispatch over kinds of objects.

Order of dispatch for one object: plain values; an object already met in this capture (a `Ref`); system
resources (refused); code (kept by name); torch objects; loggers and other I/O companions (kept by name);
numpy objects; `random.Random`; containers and plain objects (generic.py); past `MAX_DEPTH` levels of
nesting, or for objects with C-level state, pickle.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import types

from flortrace.state import generic, kinds, numpystate, rng, torchstate
from flortrace.state.base import (
    SCALARS,
    Captured,
    Code,
    Pickled,
    Ref,
    RestoreContext,
    Unsupported,
    Value,
    is_value,
    resolve_name,
    type_name,
)

MAX_DEPTH = 8


def _code(obj) -> Code:
    """A `Code` record, with a name only when that name finds this very object again."""
    what = type_name(obj)
    if isinstance(obj, types.ModuleType):
        module, qualname = obj.__name__, None
    else:
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        what = f"{what} {qualname}" if qualname else what
    if isinstance(module, str) and (qualname is None or isinstance(qualname, str)):
        try:
            if resolve_name(module, qualname) is obj:
                return Code(what, module, qualname)
        except LookupError:
            pass
    return Code(what)


class Capturer:
    """State of one capture: objects met so far (kept alive so ids stay unique), path for messages."""

    def __init__(self):
        self.memo: dict[int, int] = {}
        self.alive: list = []
        self.pending: list = []  # (TensorState, device, host tensor): device->host copies in flight
        self.path: list[str] = []

    def new_key(self, obj) -> int:
        key = len(self.alive)
        self.memo[id(obj)] = key
        self.alive.append(obj)
        return key

    def where(self) -> str:
        return f" at {''.join(self.path)}" if self.path else ""

    def child(self, obj, step: str) -> Captured:
        self.path.append(step)
        try:
            return self.capture(obj)
        finally:
            self.path.pop()

    def capture(self, obj) -> Captured:
        if type(obj) in SCALARS:
            return Value(obj)
        key = self.memo.get(id(obj))
        if key is not None:
            return Ref(key)
        if is_value(obj):
            return Value(obj)
        reason = kinds.resource_reason(obj)
        if reason is not None:
            raise Unsupported(f"cannot capture {type_name(obj)} ({reason}){self.where()}")
        if kinds.is_code(obj):
            return _code(obj)
        try:
            return self._dispatch(obj)
        except Unsupported:
            raise
        except Exception as exc:
            raise Unsupported(f"cannot capture {type_name(obj)}{self.where()}: {exc}") from exc

    def _dispatch(self, obj) -> Captured:
        if "torch" in sys.modules:
            rec = torchstate.capture(obj, self)
            if rec is not None:
                return rec
        if kinds.is_ignored(obj):
            return Code(type_name(obj))
        if "numpy" in sys.modules:
            rec = numpystate.capture(obj, self)
            if rec is not None:
                return rec
        if isinstance(obj, random.Random):
            return rng.capture_random(obj, self)
        if len(self.path) > MAX_DEPTH:
            return Pickled.of(obj, self.new_key(obj), self.where())
        return generic.capture(obj, self)


def capture(obj) -> Captured:
    """A picklable snapshot of `obj` (plain data and private numpy copies); raises Unsupported."""
    capturer = Capturer()
    rec = capturer.capture(obj)
    torchstate.finish_copies(capturer.pending)
    return rec


def restore(obj, captured: Captured):
    """Restore `captured` into `obj` in place and return `obj`, or return a new object to bind instead."""
    try:
        return captured.restore(obj, RestoreContext())
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(f"cannot restore into {type_name(obj)}: {exc}") from exc


def materialize(captured: Captured):
    """A new object built from `captured`."""
    try:
        return captured.materialize(RestoreContext())
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(f"cannot rebuild from {type(captured).__name__}: {exc}") from exc


def nbytes(captured) -> int:
    """Approximate bytes of array and pickled data in a capture."""
    total, seen, todo = 0, set(), [captured]
    np = sys.modules.get("numpy")
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, Captured) and dataclasses.is_dataclass(x):
            todo.extend(getattr(x, f.name) for f in dataclasses.fields(x))
        elif isinstance(x, (list, tuple)):
            todo.extend(x)
        elif isinstance(x, dict):
            todo.extend(x.values())
        elif isinstance(x, bytes):
            total += len(x)
        elif np is not None and isinstance(x, np.ndarray):
            total += x.nbytes
    return total
