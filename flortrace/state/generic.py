"""Containers and plain Python objects, captured element by element so that restore can work in place.

Restoring a list, dict, set or deque replaces its contents but keeps the container; an element is restored
in place when the live element at the same index or key is of the same kind (a list of tensors keeps its
tensors). Objects get their `__dict__` and `__slots__` restored the same way; attributes that did not exist
at capture time are deleted. A container subclass's Python methods (`__iter__`, `items`, `__len__`) are user
code and never called: contents are read and written through the built-in types' own methods. A class with
its own `__getstate__`/`__setstate__` pair goes through that pair, which says what its state is (Lightning's
Strategy leaves its optimizer wrappers out and rebuilds them from the optimizers). Instances of classes with
C-level state, enums and frozen dataclasses are pickled (`Pickled`) and come back as new objects.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import itertools
import struct
import types
import weakref
from dataclasses import dataclass

from flortrace.state.base import SCALARS, Captured, Pickled, TypeRef, Unsupported, Value, builtin, members

_HEAPTYPE = 1 << 9
_PTR = struct.calcsize("P")
_OBJECT_GETSTATE = getattr(object, "__getstate__", None)
_MISSING = object()


def _all_scalars(items) -> bool:
    """Only scalars, or tuples of scalars (a dataset of pairs): the items can be copied as they are."""
    kinds = set(map(type, items))
    if kinds <= SCALARS:
        return True
    if not kinds <= SCALARS | {tuple}:
        return False
    tuples = items if kinds == {tuple} else [x for x in items if type(x) is tuple]
    return set(map(type, itertools.chain.from_iterable(tuples))) <= SCALARS  # all at C speed


def _capture_items(items, ctx) -> list[Captured]:
    return [ctx.child(x, (i,)) for i, x in enumerate(items)]


def _rebuild_items(recs, plain: bool, live, ctx) -> list:
    """New contents for a sequence: restored in place into `live[i]` where it exists."""
    if plain:
        return list(recs)
    return [ctx.restore(live[i], r) if i < len(live) else ctx.materialize(r) for i, r in enumerate(recs)]


def _capture_attrs(obj, ctx) -> dict | None:
    d = getattr(obj, "__dict__", None)
    if d is None:
        return None
    return {k: ctx.child(v, f".{k}") for k, v in list(d.items())}


def _restore_attrs(obj, attrs: dict | None, ctx) -> None:
    """Make `obj.__dict__` hold exactly the captured attributes, restoring values in place."""
    if attrs is None:
        return
    d = obj.__dict__
    for k in [k for k in d if k not in attrs]:
        del d[k]
    for k, rec in attrs.items():
        cur = d.get(k, _MISSING)
        new = ctx.materialize(rec) if cur is _MISSING else ctx.restore(cur, rec)
        if new is not cur:
            d[k] = new


def _new_instance(type_ref: TypeRef, base: type):
    cls = type_ref.resolve()
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise Unsupported(f"{type_ref} is no longer a {base.__name__} subclass")
    return cls.__new__(cls)


@dataclass
class ListState(Captured):
    """A list (or list subclass): its items, or a plain copy when all items are scalars."""

    key: int
    type: TypeRef
    items: list
    plain: bool
    attrs: dict | None

    def restore(self, obj, ctx):
        if not (isinstance(obj, list) and self.type.matches(obj)):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        list.__setitem__(obj, slice(None), _rebuild_items(self.items, self.plain, members(obj), ctx))
        _restore_attrs(obj, self.attrs, ctx)
        return obj

    def materialize(self, ctx):
        builtin = self.type.module == "builtins" and self.type.qualname == "list"
        obj = ctx.remember(self.key, [] if builtin else _new_instance(self.type, list))
        list.extend(obj, _rebuild_items(self.items, self.plain, (), ctx))
        _restore_attrs(obj, self.attrs, ctx)
        return obj


@dataclass
class TupleState(Captured):
    """A tuple holding mutable objects, or a tuple subclass (namedtuple, torch.Size...)."""

    key: int
    type: TypeRef
    items: list
    plain: bool

    def restore(self, obj, ctx):
        live = members(obj) if isinstance(obj, tuple) else ()
        if not (isinstance(obj, tuple) and self.type.matches(obj) and len(live) == len(self.items)):
            return self.materialize(ctx)
        items = _rebuild_items(self.items, self.plain, live, ctx)
        if all(a is b for a, b in zip(items, live, strict=True)):
            return ctx.remember(self.key, obj)
        return ctx.remember(self.key, self._build(items))

    def materialize(self, ctx):
        return ctx.remember(self.key, self._build(_rebuild_items(self.items, self.plain, (), ctx)))

    def _build(self, items: list) -> tuple:
        if self.type.module == "builtins" and self.type.qualname == "tuple":
            return tuple(items)
        cls = self.type.resolve()
        return cls._make(items) if hasattr(cls, "_make") else cls(items)


@dataclass
class DictState(Captured):
    """A dict (OrderedDict, defaultdict, Counter, subclasses): (key, value) records, or a plain copy."""

    key: int
    type: TypeRef
    items: list | dict  # [(key record, value record)], or a dict copy when plain
    plain: bool
    default_factory: Captured | None
    attrs: dict | None

    def restore(self, obj, ctx):
        if not (isinstance(obj, dict) and self.type.matches(obj)):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        self._fill(obj, dict(members(obj)), ctx)
        return obj

    def materialize(self, ctx):
        builtin = self.type.module == "builtins" and self.type.qualname == "dict"
        obj = ctx.remember(self.key, {} if builtin else _new_instance(self.type, dict))
        self._fill(obj, {}, ctx)
        return obj

    def _fill(self, obj: dict, live: dict, ctx) -> None:
        if self.plain:
            new = self.items
        else:
            new = {}
            for krec, vrec in self.items:
                k = ctx.materialize(krec)
                new[k] = ctx.restore(live[k], vrec) if k in live else ctx.materialize(vrec)
        if self.default_factory is not None:
            obj.default_factory = ctx.restore(obj.default_factory, self.default_factory)
        builtin(type(obj), "clear")(obj)
        builtin(type(obj), "update")(obj, new)
        _restore_attrs(obj, self.attrs, ctx)


@dataclass
class SetState(Captured):
    """A set or frozenset (or subclass) holding anything that is not a plain value."""

    key: int
    type: TypeRef
    items: list
    plain: bool
    attrs: dict | None

    def restore(self, obj, ctx):
        if not (isinstance(obj, set) and self.type.matches(obj)):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        items = _rebuild_items(self.items, self.plain, (), ctx)
        set.clear(obj)
        set.update(obj, items)
        _restore_attrs(obj, self.attrs, ctx)
        return obj

    def materialize(self, ctx):
        cls = self.type.resolve()
        if issubclass(cls, frozenset):
            return ctx.remember(self.key, cls(_rebuild_items(self.items, self.plain, (), ctx)))
        obj = ctx.remember(self.key, cls.__new__(cls))
        set.update(obj, _rebuild_items(self.items, self.plain, (), ctx))
        _restore_attrs(obj, self.attrs, ctx)
        return obj


@dataclass
class DequeState(Captured):
    """A collections.deque with its maxlen."""

    key: int
    type: TypeRef
    items: list
    plain: bool
    maxlen: int | None
    attrs: dict | None

    def restore(self, obj, ctx):
        if not (isinstance(obj, collections.deque) and self.type.matches(obj) and obj.maxlen == self.maxlen):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        items = _rebuild_items(self.items, self.plain, members(obj), ctx)
        collections.deque.clear(obj)
        collections.deque.extend(obj, items)
        _restore_attrs(obj, self.attrs, ctx)
        return obj

    def materialize(self, ctx):
        obj = ctx.remember(self.key, _new_instance(self.type, collections.deque))
        collections.deque.__init__(obj, _rebuild_items(self.items, self.plain, (), ctx), self.maxlen)
        _restore_attrs(obj, self.attrs, ctx)
        return obj


@dataclass
class ObjectState(Captured):
    """A plain Python object: its `__dict__` and `__slots__` values."""

    key: int
    type: TypeRef
    attrs: dict | None
    slots: dict

    def restore(self, obj, ctx):
        if not self.type.matches(obj):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        self._fill(obj, ctx)
        return obj

    def materialize(self, ctx):
        obj = ctx.remember(self.key, _new_instance(self.type, object))
        self._fill(obj, ctx)
        return obj

    def _fill(self, obj, ctx) -> None:
        _restore_attrs(obj, self.attrs, ctx)
        for name in slot_names(type(obj)):
            cur = getattr(obj, name, _MISSING)
            if name not in self.slots:
                if cur is not _MISSING:
                    object.__delattr__(obj, name)
                continue
            rec = self.slots[name]
            new = ctx.materialize(rec) if cur is _MISSING else ctx.restore(cur, rec)
            if new is not cur:
                object.__setattr__(obj, name, new)


@dataclass
class StatefulState(Captured):
    """An object whose class defines `__getstate__` and `__setstate__`: the state it reports."""

    key: int
    type: TypeRef
    state: Captured

    def restore(self, obj, ctx):
        if not self.type.matches(obj):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        obj.__setstate__(ctx.restore(obj.__getstate__(), self.state))
        return obj

    def materialize(self, ctx):
        obj = ctx.remember(self.key, _new_instance(self.type, object))
        obj.__setstate__(ctx.materialize(self.state))
        return obj


class _Gone:
    """What a dead weak reference pointed to."""


def _dead_ref() -> weakref.ref:
    return weakref.ref(_Gone())  # the instance dies at once


@dataclass
class WeakRefState(Captured):
    """A weak reference (a list of the data loaders being iterated, say): its referent is captured like any
    object, so a referent the capture also holds elsewhere comes back as that same object; one nothing else
    holds comes back dead, as it would be. A dead reference stays dead."""

    referent: Captured | None

    def restore(self, obj, ctx):
        live = obj() if type(obj) is weakref.ref else None
        if self.referent is None or live is None:
            return self.materialize(ctx)
        target = ctx.restore(live, self.referent)
        return obj if target is live else weakref.ref(target)

    def materialize(self, ctx):
        if self.referent is None:
            return _dead_ref()
        key = getattr(self.referent, "key", None)
        try:
            if key in ctx.memo:
                target = ctx.memo[key]
            elif key in ctx.bound:  # a name holds it (the epoch's data loader): restored into that object
                target = ctx.restore(ctx.bound[key], self.referent)
            else:
                target = ctx.materialize(self.referent)
            return weakref.ref(target)
        except (Unsupported, TypeError):  # held by nothing that can be built (a data loader), or a value
            return _dead_ref()


def capture_weakref(obj, ctx) -> WeakRefState:
    referent = obj()
    return WeakRefState(None if referent is None else ctx.child(referent, "()"))


@functools.lru_cache(maxsize=1024)
def slot_names(cls: type) -> tuple[str, ...]:
    """Attribute names of all `__slots__` along the MRO (mangled where Python mangles them)."""
    names = []
    for c in cls.__mro__:
        slots = c.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{c.__name__.lstrip('_')}{name}"
            names.append(name)
    return tuple(names)


@functools.lru_cache(maxsize=1024)
def is_plain_class(cls: type) -> bool:
    """True when instances keep all their state in `__dict__`/`__slots__` (no C-level fields)."""
    for c in cls.__mro__:
        if c is not object and c is not types.SimpleNamespace and not c.__flags__ & _HEAPTYPE:
            return False
    c = cls
    while c is not object and c is not types.SimpleNamespace:
        base = c.__base__
        slots = c.__dict__.get("__slots__", ())
        n = 1 if isinstance(slots, str) else len(tuple(slots))
        if c.__basicsize__ - base.__basicsize__ > _PTR * (n + 2):
            return False
        c = base
    return True


def has_custom_state(cls: type) -> bool:
    """True when the class defines both `__getstate__` and `__setstate__` itself."""
    get = getattr(cls, "__getstate__", None)
    return get is not None and get is not _OBJECT_GETSTATE and getattr(cls, "__setstate__", None) is not None


def _attrs_if_subclass(obj, base: type, ctx) -> dict | None:
    return None if type(obj) is base else _capture_attrs(obj, ctx)


def capture(obj, ctx) -> Captured:
    """Capture a container or a Python object (not a value, not a torch/numpy/random object)."""
    if isinstance(obj, dict):
        return _capture_dict(obj, ctx)
    if isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
        key, elements = ctx.new_key(obj), members(obj)
        plain = _all_scalars(elements)
        items = elements if plain else _capture_items(elements, ctx)
        if isinstance(obj, list):
            return ListState(key, TypeRef.of(obj), items, plain, _attrs_if_subclass(obj, list, ctx))
        if isinstance(obj, tuple):
            return TupleState(key, TypeRef.of(obj), items, plain)
        if isinstance(obj, (set, frozenset)):
            attrs = None if type(obj) in (set, frozenset) else _capture_attrs(obj, ctx)
            return SetState(key, TypeRef.of(obj), items, plain, attrs)
        attrs = _attrs_if_subclass(obj, collections.deque, ctx)
        return DequeState(key, TypeRef.of(obj), items, plain, obj.maxlen, attrs)
    cls = type(obj)
    frozen = dataclasses.is_dataclass(obj) and cls.__dataclass_params__.frozen
    if isinstance(obj, enum.Enum) or frozen:
        return Pickled.of(obj, ctx.new_key(obj), ctx.where())
    if has_custom_state(cls):  # the class says what its state is (Lightning's Strategy rebuilds wrappers)
        key = ctx.new_key(obj)
        return StatefulState(key, TypeRef.of(obj), ctx.child(obj.__getstate__(), ".__getstate__()"))
    names = slot_names(cls)
    if is_plain_class(cls) and (hasattr(obj, "__dict__") or names):
        return _capture_object(obj, ctx, names)
    return Pickled.of(obj, ctx.new_key(obj), ctx.where())


def _capture_object(obj, ctx, names) -> ObjectState:
    key = ctx.new_key(obj)
    slots = {}
    for name in names:
        value = getattr(obj, name, _MISSING)
        if value is not _MISSING:
            slots[name] = ctx.child(value, f".{name}")
    return ObjectState(key, TypeRef.of(obj), _capture_attrs(obj, ctx), slots)


def _capture_dict(obj: dict, ctx) -> DictState:
    key = ctx.new_key(obj)
    pairs = members(obj)
    plain = all(type(k) in SCALARS and type(v) in SCALARS for k, v in pairs)
    if plain:
        items = dict(pairs)
    else:
        items = []
        for k, v in pairs:
            if type(k) in SCALARS:
                items.append((Value(k), ctx.child(v, (k,))))
            else:
                items.append((ctx.child(k, "[<key>]"), ctx.child(v, "[...]")))
    factory = getattr(obj, "default_factory", None) if isinstance(obj, collections.defaultdict) else None
    factory_rec = ctx.child(factory, ".default_factory") if factory is not None else None
    return DictState(key, TypeRef.of(obj), items, plain, factory_rec, _attrs_if_subclass(obj, dict, ctx))
