"""Cheap fingerprints: equal fingerprints mean "unchanged" with high probability.

The runtime fingerprints candidate objects before and after the first epochs to learn which ones a loop
mutates, aliases included (an optimizer step changes the model's parameters, so the model's fingerprint).
Tensors cost O(1): identity, data pointer, in-place version counter, shape, and 8 sampled elements (writes
through `.data` do not bump the version counter). numpy arrays are checksummed. Containers and objects are
walked to a bounded depth; big containers are sampled (their length always counts). Mutable things are
fingerprinted together with their identity, so rebinding to an equal copy also reads as a change.
Anything that cannot be fingerprinted gets a value that differs on every call, i.e. "changed".
"""

from __future__ import annotations

import collections
import itertools
import pickle
import random
import sys
import types
import zlib

from flortrace.state import generic, kinds, numpystate, torchstate
from flortrace.state.base import SCALARS, is_value, length, members

MAX_DEPTH = 8
MAX_ITEMS = 4096
_SAMPLE = 256
_changes = itertools.count()


def changed() -> tuple:
    """A fingerprint equal to no other."""
    return ("changed", next(_changes))


def fingerprint(obj) -> object:
    """A hashable fingerprint of `obj`; never raises."""
    try:
        return _Fingerprinter().of(obj)
    except Exception:
        return changed()


def _sampled(items: list) -> list:
    n = len(items)
    if n <= MAX_ITEMS:
        return items
    return items[:: n // _SAMPLE] + items[-1:]


class _Fingerprinter:
    def __init__(self):
        self.seen: set[int] = set()
        self.depth = 0

    def items(self, mapping) -> tuple:
        """Fingerprint a mapping's items, without the mapping's identity (for temporary dicts)."""
        return tuple((self.of(k), self.of(v)) for k, v in _sampled(members(mapping)))

    def of(self, obj) -> object:
        cls = type(obj)
        if cls in SCALARS or is_value(obj):
            return (cls, obj)
        oid = id(obj)
        if oid in self.seen:
            return ("ref", oid)
        self.seen.add(oid)
        if self.depth >= MAX_DEPTH:
            return changed()
        self.depth += 1
        try:
            return self._walk(obj, cls, oid)
        finally:
            self.depth -= 1

    def _walk(self, obj, cls, oid):
        if (cls is list or cls is tuple) and len(obj) <= MAX_ITEMS and set(map(type, obj)) <= SCALARS:
            # a row of numbers or strings: one checksum of its pickle, far cheaper than a walk
            return (cls, oid, len(obj), zlib.crc32(pickle.dumps(obj, protocol=5)))
        if kinds.is_code(obj):
            return ("id", oid)
        if "torch" in sys.modules:
            fp = torchstate.fingerprint(obj, self)
            if fp is not None:
                return fp
        if kinds.is_ignored(obj) or kinds.resource_reason(obj) is not None:
            return ("id", oid)
        if "numpy" in sys.modules:
            fp = numpystate.fingerprint(obj)
            if fp is not None:
                return fp
        if isinstance(obj, random.Random):
            return ("random", oid, obj.getstate() if not isinstance(obj, random.SystemRandom) else None)
        if isinstance(obj, dict):
            return (cls, oid, length(obj), self.items(obj), self._attrs(obj))
        if isinstance(obj, (set, frozenset)):
            elements = frozenset(self.of(x) for x in _sampled(members(obj)))
            return (cls, oid, length(obj), elements, self._attrs(obj))
        if isinstance(obj, (list, tuple, collections.deque)):
            elements = tuple(self.of(x) for x in _sampled(members(obj)))
            return (cls, oid, length(obj), elements, self._attrs(obj))
        names = generic.slot_names(cls)
        if generic.is_plain_class(cls) or generic.has_custom_state(cls):
            if hasattr(obj, "__dict__") or names:
                slots = tuple((n, self.of(getattr(obj, n))) for n in names if hasattr(obj, n))
                return (cls, oid, self.items(vars(obj)) if hasattr(obj, "__dict__") else (), slots)
        return self._opaque(obj, cls, oid)

    def _attrs(self, obj) -> tuple:
        """Instance attributes of a container subclass."""
        return self.items(vars(obj)) if hasattr(obj, "__dict__") else ()

    def _opaque(self, obj, cls, oid):
        """Objects with C-level state: their hash when it is value-based (and not the user's Python
        ``__hash__``), else a checksum of their pickle."""
        if cls.__hash__ not in (None, object.__hash__) and not isinstance(cls.__hash__, types.FunctionType):
            try:
                return (cls, oid, hash(obj))
            except TypeError:
                pass
        try:
            return (cls, oid, zlib.crc32(pickle.dumps(obj, protocol=5)))
        except Exception:
            return changed()
