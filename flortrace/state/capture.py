"""Capture, restore and materialize: the dispatch over kinds of objects.

Order of dispatch for one object: plain values; an object already met in this capture (a `Ref`); system
resources (refused); code (kept by name); torch objects; loggers and other I/O companions (kept by name);
numpy objects; `random.Random`; containers and plain objects (generic.py); past `MAX_DEPTH` levels of
nesting, or for objects with C-level state, pickle.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import sys
import types
import weakref
from collections.abc import Callable

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


def _code(obj, where="") -> Code:
    """A `Code` record, with a name only when that name finds this very object again. A function defined
    at run time that closes over variables holds state in its closure (an autograd node's backward step):
    keeping the live one on restore would be silently wrong, so it cannot be captured."""
    what = type_name(obj)
    if isinstance(obj, types.FunctionType) and obj.__closure__:
        raise Unsupported(
            f"cannot capture the closure {obj.__qualname__}{where}: it holds variables of the run"
        )
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
    """State of one capture: objects met so far (kept alive so ids stay unique), path for messages, and
    ``alloc(nbytes)``, which gives memory for large copies (shared with the writer process) or None."""

    def __init__(self, alloc=None):
        self.memo: dict[int, int] = {}
        self.alive: list = []
        self.pending: list = []  # (TensorState, device, host tensor): device->host copies in flight
        self.path: list[str] = []
        self.alloc = alloc

    def copy_array(self, a):
        """A C-contiguous copy of numpy array ``a`` that nothing else holds."""
        out = self.alloc(a.nbytes) if self.alloc is not None else None
        if out is None:
            return a.copy()
        out = out.view(a.dtype).reshape(a.shape)
        out[...] = a
        return out

    def new_key(self, obj) -> int:
        key = len(self.alive)
        self.memo[id(obj)] = key
        self.alive.append(obj)
        return key

    def attempt(self, fn, *args) -> Captured:
        """``fn(*args)``, or Unsupported with the capture as it was before: a way of capturing
        that fails part-way leaves no keys behind for the next way to trip over."""
        alive, pending = len(self.alive), len(self.pending)
        try:
            return fn(*args)
        except Unsupported:
            for met in self.alive[alive:]:
                del self.memo[id(met)]
            del self.alive[alive:], self.pending[pending:]
            raise

    def where(self) -> str:
        """Where in the object the capture is, for messages: ``.fc.weight``, ``['state'][0]``."""
        if not self.path:
            return ""
        return " at " + "".join(step if type(step) is str else f"[{step[0]!r}]" for step in self.path)

    def child(self, obj, step) -> Captured:
        """Capture ``obj``, reached by ``step``: text (``.name``), or ``(key,)`` for ``[key]``, which is
        only written out if a message needs it."""
        self.path.append(step)
        try:
            return self.capture(obj)
        finally:
            self.path.pop()

    def capture(self, obj) -> Captured:
        cls = type(obj)
        if cls in SCALARS:
            return Value(obj)
        key = self.memo.get(id(obj))
        if key is not None:
            return Ref(key)
        if (cls is tuple or cls is frozenset) and is_value(obj):
            return Value(obj)
        route = _ROUTES.get(cls) or _route(obj)
        try:
            return route(obj, self)
        except Unsupported:
            raise
        except Exception as exc:
            raise Unsupported(f"cannot capture {type_name(obj)}{self.where()}: {exc}") from exc


_ROUTES: dict[type, Callable] = {}  # type -> how its objects are captured: fn(obj, capturer)


def _route(obj) -> Callable:
    """Decide how objects of ``obj``'s type are captured, once per type (what each check looks at is the
    type; what varies between objects, the adapters look at). A type met before torch or numpy was imported
    cannot be one of theirs, so a decision never goes stale."""
    route = _decide(obj)
    _ROUTES[type(obj)] = route
    return route


def _decide(obj) -> Callable:
    reason = kinds.resource_reason(obj)
    if reason is not None:
        return functools.partial(_refuse, reason)
    if type(obj) is weakref.ref:
        return generic.capture_weakref
    if kinds.is_code(obj):
        return lambda obj, ctx: _code(obj, ctx.where())
    if "torch" in sys.modules:
        route = torchstate.route(obj)
        if route is not None:
            return route
    if kinds.is_ignored(obj):
        return lambda obj, ctx: Code(type_name(obj))
    if "numpy" in sys.modules:
        route = numpystate.route(obj)
        if route is not None:
            return route
    if isinstance(obj, random.Random):
        return rng.capture_random
    return _generic


def _refuse(reason, obj, ctx):
    raise Unsupported(f"cannot capture {type_name(obj)} ({reason}){ctx.where()}")


def _generic(obj, ctx) -> Captured:
    if len(ctx.path) > MAX_DEPTH:
        return Pickled.of(obj, ctx.new_key(obj), ctx.where())
    return generic.capture(obj, ctx)


def capture(obj, alloc=None) -> Captured:
    """A picklable snapshot of `obj` (plain data and private numpy copies); raises Unsupported."""
    capturer = Capturer(alloc)
    rec = capturer.capture(obj)
    torchstate.finish_copies(capturer.pending, capturer)
    return rec


def capture_all(objs: list, alloc=None) -> list:
    """Snapshots of several objects that share one capture, so an object two of them reach (a parameter in
    a model and in a loop variable) is captured once and restored as one. An object that cannot be captured
    gets its Unsupported exception in its place. Large copies go to memory from ``alloc`` when it gives
    some (see `Capturer`)."""
    capturer = Capturer(alloc)
    out = []
    for obj in objs:
        try:
            out.append(capturer.attempt(capturer.capture, obj))
        except Unsupported as exc:  # its half-captured parts are forgotten
            out.append(exc)
    torchstate.finish_copies(capturer.pending, capturer)
    return out


def restore(obj, captured: Captured, ctx: RestoreContext | None = None):
    """Restore `captured` into `obj` in place and return `obj`, or return a new object to bind instead.
    Records of one `capture_all` are restored with one shared `ctx`."""
    try:
        return captured.restore(obj, ctx or RestoreContext())
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(f"cannot restore into {type_name(obj)}: {exc}") from exc


def materialize(captured: Captured, ctx: RestoreContext | None = None):
    """A new object built from `captured`."""
    try:
        return captured.materialize(ctx or RestoreContext())
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(f"cannot rebuild from {type(captured).__name__}: {exc}") from exc


def unbuildable(captured) -> str | None:
    """Why `captured` cannot be built as a new object (only restored into a live one), or None. Checked
    before a restore changes anything, so a restore that cannot finish does not start."""
    todo = [captured]
    while todo:
        x = todo.pop()
        if isinstance(x, Code):
            if x.module is None:
                return f"cannot rebuild {x.what}: it has no importable name"
        elif isinstance(x, (torchstate.ModuleState, torchstate.LoadableState, torchstate.RngHolderState)):
            return f"cannot build a {x.type} from its state, only restore into one"
        elif isinstance(x, (generic.ListState, generic.TupleState, generic.SetState, generic.DequeState)):
            if not x.plain:
                todo.extend(x.items)
            todo.extend((getattr(x, "attrs", None) or {}).values())
        elif isinstance(x, generic.DictState):
            if not x.plain:
                todo.extend(v for pair in x.items for v in pair)
            todo.extend((x.attrs or {}).values())
            if x.default_factory is not None:
                todo.append(x.default_factory)
        elif isinstance(x, generic.ObjectState):
            todo.extend((x.attrs or {}).values())
            todo.extend(x.slots.values())
        elif isinstance(x, generic.StatefulState):
            todo.append(x.state)
        elif isinstance(x, torchstate.TensorState) and x.grad is not None:
            todo.append(x.grad)
    return None


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
