"""numpy adapters: arrays, scalars and random generators.

Only used once the script has imported numpy; this module never imports it at import time.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass

from flortrace.state.base import Captured, Pickled, Value


def _np():
    return sys.modules["numpy"]


@dataclass
class ArrayState(Captured):
    """A private copy of an ndarray's data."""

    key: int
    data: object  # numpy.ndarray

    def restore(self, obj, ctx):
        np = _np()
        if (
            type(obj) is np.ndarray
            and obj.shape == self.data.shape
            and obj.dtype == self.data.dtype
            and obj.flags.writeable
        ):
            obj[...] = self.data
            return ctx.remember(self.key, obj)
        return self.materialize(ctx)

    def materialize(self, ctx):
        return ctx.remember(self.key, self.data.copy())


@dataclass
class NumpyRngState(Captured):
    """A numpy Generator, RandomState or bare BitGenerator: its bit generator state."""

    key: int
    kind: str  # "Generator", "RandomState" or "BitGenerator"
    state: Captured  # capture of the state dict; its "bit_generator" entry names the algorithm

    def restore(self, obj, ctx):
        np = _np()
        if type(obj) is getattr(np.random, self.kind, None) or (
            self.kind == "BitGenerator" and isinstance(obj, np.random.BitGenerator)
        ):
            try:
                _set_state(obj, self.kind, ctx.materialize(self.state))
            except (ValueError, TypeError):
                return self.materialize(ctx)  # another algorithm: build the captured one
            return ctx.remember(self.key, obj)
        return self.materialize(ctx)

    def materialize(self, ctx):
        np = _np()
        state = ctx.materialize(self.state)
        bit_generator = getattr(np.random, state["bit_generator"])()
        if self.kind == "Generator":
            obj = np.random.Generator(bit_generator)
        elif self.kind == "RandomState":
            obj = np.random.RandomState(bit_generator)
        else:
            obj = bit_generator
        _set_state(obj, self.kind, state)
        return ctx.remember(self.key, obj)


def _rng_kind(obj) -> str | None:
    np = _np()
    if isinstance(obj, np.random.Generator):
        return "Generator"
    if isinstance(obj, np.random.RandomState):
        return "RandomState"
    if isinstance(obj, np.random.BitGenerator):
        return "BitGenerator"
    return None


def _get_state(obj, kind: str) -> dict:
    if kind == "RandomState":
        return obj.get_state(legacy=False)
    return (obj.bit_generator if kind == "Generator" else obj).state


def _set_state(obj, kind: str, state: dict) -> None:
    if kind == "RandomState":
        obj.set_state(state)
    else:
        (obj.bit_generator if kind == "Generator" else obj).state = state


def is_rng(obj) -> bool:
    return "numpy" in sys.modules and _rng_kind(obj) is not None


def route(obj):
    """How objects of ``obj``'s type are captured (``fn(obj, ctx)``), or None when it is no numpy type."""
    np = _np()
    if type(obj) is np.ndarray:
        return _capture_array
    if isinstance(obj, np.ndarray):  # subclasses (masked arrays...)
        return lambda a, ctx: Pickled.of(a, ctx.new_key(a), ctx.where())
    if isinstance(obj, (np.generic, np.dtype)):
        return lambda v, ctx: Value(v)
    kind = _rng_kind(obj)
    if kind is not None:
        return lambda g, ctx: NumpyRngState(ctx.new_key(g), kind, ctx.child(_get_state(g, kind), ".state"))
    return None


def _capture_array(a, ctx) -> Captured:
    if a.dtype.hasobject:  # object arrays are pickled
        return Pickled.of(a, ctx.new_key(a), ctx.where())
    return ArrayState(ctx.new_key(a), ctx.copy_array(a))


def _freeze(value):
    """A hashable image of a bit generator state (dicts, ints, arrays)."""
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, _np().ndarray):
        return value.tobytes()
    return value


def fingerprint(obj):
    """A fingerprint for a numpy object, or None when `obj` is not one."""
    np = _np()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return None
        flat = np.ascontiguousarray(obj).reshape(-1).view(np.uint8)
        return ("ndarray", id(obj), obj.shape, obj.dtype, zlib.crc32(flat))
    if isinstance(obj, np.generic):
        return ("numpy scalar", obj.dtype, obj.tobytes())
    kind = _rng_kind(obj)
    if kind is not None:
        return (kind, id(obj), _freeze(_get_state(obj, kind)))
    return None
