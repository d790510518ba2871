"""The pieces every capture is made of.

A capture is a tree of small records (subclasses of `Captured`) holding plain Python data and numpy arrays,
never live user objects: it must unpickle in the writer process and in a replay process that has not yet
defined the script's classes. Types are kept by name (`TypeRef`) and resolved only when a new object has to
be built. Records that stand for a mutable object carry a `key`; a later occurrence of the same object in the
same capture is a `Ref` to that key, so shared references and cycles come back shared.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pickle
import sys
import types
from dataclasses import dataclass, field

SCALARS = frozenset({int, float, bool, str, bytes, complex, type(None), range, type(Ellipsis)})


def is_value(obj, depth: int = 0) -> bool:
    """True for immutable builtin values: scalars, and tuples/frozensets of them."""
    cls = type(obj)
    if cls in SCALARS:
        return True
    if (cls is tuple or cls is frozenset) and depth < 8:
        return all(is_value(x, depth + 1) for x in obj)
    return False


@functools.lru_cache(maxsize=1024)
def builtin(cls: type, name: str):
    """``cls``'s method ``name`` as the nearest class in its MRO written in C defines it (an OrderedDict's
    own ``clear``, not dict's, which would leave its order behind)."""
    for c in cls.__mro__:
        method = c.__dict__.get(name)
        if method is not None and not isinstance(method, types.FunctionType):
            return method
    raise TypeError(f"{type_name(cls)} has no built-in {name}")


def members(obj) -> list:
    """The elements of a list, tuple, set, frozenset or deque, or a dict's (key, value) pairs, read through
    the built-in type's own methods: a subclass's Python ``__iter__`` or ``items`` is user code, which
    fingerprints and snapshots never run."""
    cls = type(obj)
    if cls is list or cls is tuple:
        return list(obj)
    if cls is dict:
        return list(obj.items())
    return list(builtin(cls, "items" if isinstance(obj, dict) else "__iter__")(obj))


def length(obj) -> int:
    """``len(obj)`` of a built-in container, without a subclass's Python ``__len__``."""
    return builtin(type(obj), "__len__")(obj)


class Unsupported(Exception):
    """An object cannot be captured or restored; the message says which and why."""


class Captured:
    """Base class of all capture records."""

    def restore(self, obj, ctx: RestoreContext):
        """Restore into `obj` in place when possible; return the object to bind (obj itself or a new one)."""
        return self.materialize(ctx)

    def materialize(self, ctx: RestoreContext):
        """Build a new object from this record."""
        raise Unsupported(f"cannot build a new object from {type(self).__name__}")


def type_name(obj_or_type) -> str:
    """`module.Qualname` of a type (or of an object's type), without `builtins.`."""
    cls = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
    module = getattr(cls, "__module__", None)
    if module in (None, "builtins"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def resolve_name(module: str, qualname: str | None):
    """The object named `module.qualname`, importing the module if needed; raises LookupError."""
    if "<locals>" in (qualname or ""):
        raise LookupError(f"{module}.{qualname} is local to a function")
    try:
        obj = sys.modules.get(module) or importlib.import_module(module)
        for part in (qualname or "").split(".") if qualname else ():
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise LookupError(f"{module}.{qualname} not found: {exc}") from None
    return obj


_TYPE_REFS: dict = {}  # type -> its TypeRef


@dataclass(frozen=True)
class TypeRef:
    """A class by name."""

    module: str
    qualname: str

    @classmethod
    def of(cls, obj) -> TypeRef:
        t = type(obj)
        ref = _TYPE_REFS.get(t)
        if ref is None or (ref.module, ref.qualname) != (t.__module__, t.__qualname__):
            ref = _TYPE_REFS[t] = cls(t.__module__, t.__qualname__)  # one per type: pickled once too
        return ref

    def matches(self, obj) -> bool:
        t = type(obj)
        return t.__qualname__ == self.qualname and t.__module__ == self.module

    def resolve(self) -> type:
        try:
            return resolve_name(self.module, self.qualname)
        except LookupError as exc:
            raise Unsupported(f"cannot rebuild {self}: {exc}") from None

    def __str__(self) -> str:
        return self.qualname if self.module == "builtins" else f"{self.module}.{self.qualname}"


@dataclass
class Value(Captured):
    """An immutable value kept as it is (numbers, strings, bytes, None, tuples of those)."""

    value: object

    def restore(self, obj, ctx):
        return self.value

    def materialize(self, ctx):
        return self.value


@dataclass
class Ref(Captured):
    """A second occurrence of an object captured earlier in the same capture."""

    key: int

    def restore(self, obj, ctx):
        return ctx.lookup(self.key, obj)

    def materialize(self, ctx):
        return ctx.lookup(self.key)


@dataclass
class Code(Captured):
    """Not state (a function, class, module, logger...): kept by name, left alone on restore.

    `module` is None when the object cannot be found again by name (a lambda, a bound method, a logger).
    """

    what: str
    module: str | None = None
    qualname: str | None = None

    def restore(self, obj, ctx):
        return self.materialize(ctx) if obj is None else obj

    def materialize(self, ctx):
        if self.module is None:
            raise Unsupported(f"cannot rebuild {self.what}: it is not state and has no importable name")
        try:
            return resolve_name(self.module, self.qualname)
        except LookupError as exc:
            raise Unsupported(f"cannot rebuild {self.what}: {exc}") from None


@dataclass
class Pickled(Captured):
    """An object with no finer adapter, kept as pickle bytes (cloudpickle when plain pickle fails)."""

    key: int
    type: TypeRef
    data: bytes

    @classmethod
    def of(cls, obj, key: int, where: str = "") -> Pickled:
        try:
            data = pickle.dumps(obj, protocol=5)
        except Exception:
            try:
                import cloudpickle  # only when plain pickle fails (it imports logging: ~5 ms a run)

                data = cloudpickle.dumps(obj, protocol=5)
            except Exception as exc:
                raise Unsupported(f"cannot capture {type_name(obj)}{where}: {exc}") from None
        return cls(key, TypeRef.of(obj), data)

    def restore(self, obj, ctx):
        new = pickle.loads(self.data)
        if type(obj) is type(new) and _assign_contents(obj, new):
            ctx.remember(self.key, obj)
            return obj
        ctx.remember(self.key, new)
        return new

    def materialize(self, ctx):
        return ctx.remember(self.key, pickle.loads(self.data))


def _assign_contents(obj, new) -> bool:
    """Copy the contents of `new` into `obj` for the few mutable builtins that allow it."""
    if isinstance(obj, bytearray) or type(obj).__module__ == "array":
        obj[:] = new
        return True
    np = sys.modules.get("numpy")
    if np is not None and type(obj) is np.ndarray and obj.flags.writeable:
        if obj.shape == new.shape and obj.dtype == new.dtype:
            obj[...] = new
            return True
    return False


@dataclass
class RestoreContext:
    """State of one restore: objects restored or built so far, by capture key. ``records`` (the captures
    of one `capture_all`, restored in any order) lets a reference to an object not restored yet build it."""

    memo: dict[int, object] = field(default_factory=dict)
    records: list = field(default_factory=list)
    bound: dict[int, object] = field(default_factory=dict)  # capture key -> the live object a name holds
    _index: dict | None = None
    _refs: set | None = None

    def remember(self, key: int | None, obj):
        if key is not None:
            self.memo[key] = obj
        return obj

    def lookup(self, key: int, live=None):
        """The object restored for ``key``; one not restored yet is restored now, into ``live`` (the object
        found where the reference is) when there is one."""
        try:
            return self.memo[key]
        except KeyError:
            pass
        rec = self._record(key)
        if rec is None:
            raise Unsupported("a reference cycle runs through an immutable container")
        return rec.materialize(self) if live is None else rec.restore(live, self)

    def _record(self, key):
        self._walk()
        return self._index.get(key)

    def referenced(self, key) -> bool:
        """Whether a record holds a reference to the object captured under ``key`` (it sits inside
        another captured object: a loop variable bound to a row of a list, say)."""
        self._walk()
        return key in self._refs

    def _walk(self):
        if self._index is not None:
            return
        self._index, self._refs = {}, set()
        todo = list(self.records)
        while todo:
            x = todo.pop()
            if isinstance(x, Captured) and dataclasses.is_dataclass(x):
                k = getattr(x, "key", None)
                if isinstance(x, Ref):
                    self._refs.add(k)
                elif isinstance(k, int):
                    self._index.setdefault(k, x)
                todo.extend(getattr(x, f.name) for f in dataclasses.fields(x))
            elif isinstance(x, (list, tuple)):
                todo.extend(x)
            elif isinstance(x, dict):
                todo.extend(x.values())

    def restore(self, obj, rec: Captured):
        return rec.restore(obj, self)

    def materialize(self, rec: Captured):
        return rec.materialize(self)
