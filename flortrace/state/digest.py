"""Digests: a cheap, process-independent summary of state, compared between a recording and its replay.

A fingerprint (fingerprint.py) answers "did this object change in this process?" and may use identities and
version counters; a digest answers "is this the same state as in the recorded run?", so it depends on
content only. It is a flat ``{path: leaf}`` map (``model.0.weight``, ``opt.param_groups[0]['lr']``) so a
difference can be named. Leaves of scalars are their repr, so a report can show both values. A tensor or
array leaf is the exact 64-bit sum of its bits (viewed as 4-, 2- or 1-byte integers: any changed bit changes
it, and the sum is the same on every device and thread count), a checksum of a strided sample of about a
thousand elements (where order matters: values that only trade places elsewhere go unseen), and its first
value. Walking never calls the user's code where it can be avoided (``__dict__`` and the C-level methods of
container subclasses are read directly).
"""

from __future__ import annotations

import collections
import functools
import pickle
import random
import sys
import zlib

from flortrace.state import generic, kinds, torchstate
from flortrace.state.base import SCALARS, is_value

VERSION = 2  # digests of another version are not comparable: the replay then skips the state checks
MAX_DEPTH = 10
MAX_LEAVES = 256  # a container with more children than this gets one leaf for all of them
SAMPLE = 1024  # elements in the strided sample of a tensor or array
REPR_LIMIT = 48  # scalar leaves up to this length are kept as text
UNKNOWN = "?"  # a leaf that cannot be digested; compared as equal to anything
CLOCK = "clock:"  # the leaf of a datetime: a reading of the clock, different on every run


def digest(items: dict) -> dict[str, str]:
    """Digest ``{label: obj}`` into ``{path: leaf}``; paths start with the label. Never raises."""
    walker = _Digester()
    for label, obj in items.items():
        walker.seen = {}  # aliases are named within an item, not across items (a loop variable aliasing a
        walker.walk(obj, label, 0)  # list element is restored as an equal copy)
    return walker.out


def rng_digest() -> dict[str, str]:
    """Leaves for the process-wide generators: Python's, numpy's global one, torch's CPU and CUDA ones."""
    out = {"random RNG": _crc_pickle(random.getstate())}
    np = sys.modules.get("numpy")
    if np is not None:
        out["numpy RNG"] = _crc_pickle(np.random.get_state(legacy=False))
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch RNG"] = f"c{zlib.crc32(torch.get_rng_state().numpy()):08x}"
        if torch.cuda.is_initialized():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                out[f"cuda:{i} RNG"] = f"c{zlib.crc32(s.numpy()):08x}"
    return out


def differences(recorded: dict, replayed: dict, tolerance: float = 0.0) -> list[tuple[str, str, str]]:
    """[(path, recorded leaf, replayed leaf)] in the recorded order, then paths only the replay has."""
    out = []
    for path, leaf in recorded.items():
        other = replayed.get(path)
        if other is None:
            out.append((path, leaf, "missing"))
        elif not same_leaf(leaf, other, tolerance):
            out.append((path, leaf, other))
    out.extend((path, "missing", leaf) for path, leaf in replayed.items() if path not in recorded)
    return out


def same_leaf(a: str, b: str, tolerance: float = 0.0) -> bool:
    if a == b or UNKNOWN in (a, b):
        return True
    if not tolerance:
        return False
    x, y = number(a), number(b)
    return x is not None and y is not None and abs(x - y) <= tolerance * max(abs(x), abs(y), 1.0)


def describe(leaf: str) -> str:
    """A leaf as a person reads it: a value, or the first element of a tensor."""
    if leaf.startswith("t") and "|" in leaf:
        head, _, first = leaf.partition("|")
        return f"{head[1:].split(':')[0]} starting {first}"
    if leaf.startswith("c") and len(leaf) == 9:
        return f"checksum {leaf[1:]}"
    return leaf


def number(leaf: str) -> float | None:
    """The number a leaf shows (a scalar, or a tensor's first value), or None."""
    text = leaf.partition("|")[2] if leaf.startswith("t") else leaf
    try:
        return float(text)
    except ValueError:
        return None


def _crc(data) -> str:
    return f"c{zlib.crc32(data):08x}"


def _crc_pickle(obj) -> str:
    try:
        return _crc(pickle.dumps(obj, protocol=4))
    except Exception:
        return UNKNOWN


def _scalar(obj) -> str:
    text = repr(obj)
    return text if len(text) <= REPR_LIMIT else _crc(text.encode("utf-8", "surrogatepass"))


@functools.lru_cache(maxsize=1)
def _torch_values() -> frozenset:
    """torch's immutable value types: a device, a dtype, a layout, a memory format."""
    torch = sys.modules["torch"]
    return frozenset({torch.device, torch.dtype, torch.layout, torch.memory_format})


_NOT_STATE: dict[type, bool] = {}  # type -> whether its objects are code or system resources
_IGNORED: dict[type, bool] = {}  # type -> whether its objects are I/O companions (loggers, progress bars)


class _Digester:
    def __init__(self):
        self.out: dict[str, str] = {}
        self.seen: dict[int, str] = {}
        self.alive: list = []  # objects met, kept alive so their ids stay unique during the walk

    def leaf(self, path, value):
        self.out[path] = value

    def walk(self, obj, path, depth):
        cls = type(obj)
        if cls in SCALARS:
            return self.leaf(path, _scalar(obj))
        if "torch" in sys.modules and cls in _torch_values():
            return self.leaf(path, str(obj))  # immutable: which object holds the value does not matter
        first = self.seen.get(id(obj))
        if first is not None:
            return self.leaf(path, "=" + first)
        if is_value(obj):
            return self.leaf(path, _scalar(obj))
        skip = _NOT_STATE.get(cls)
        if skip is None:  # decided once per type: what kinds.py looks at is the type
            skip = _NOT_STATE[cls] = kinds.is_code(obj) or kinds.resource_reason(obj) is not None
        if skip:
            return None  # not state (see kinds.py): replay rebuilds it
        self.seen[id(obj)] = path
        self.alive.append(obj)
        if depth >= MAX_DEPTH:
            return self.leaf(path, _crc_pickle(obj))
        try:
            self._dispatch(obj, cls, path, depth + 1)
        except Exception:
            self.leaf(path, UNKNOWN)

    def _dispatch(self, obj, cls, path, depth):
        if "torch" in sys.modules and self._torch(obj, path, depth):
            return
        ignored = _IGNORED.get(cls)
        if ignored is None:
            ignored = _IGNORED[cls] = kinds.is_ignored(obj)
        if ignored:
            return
        np = sys.modules.get("numpy")
        if np is not None and self._numpy(np, obj, path):
            return
        if cls.__module__ == "datetime":
            return self.leaf(path, CLOCK + _scalar(obj))
        if isinstance(obj, random.Random):
            return self.leaf(
                path, _crc_pickle(obj.getstate()) if not isinstance(obj, random.SystemRandom) else ""
            )
        if isinstance(obj, dict):
            self.items(((k, v) for k, v in dict.items(obj)), len(obj), path, depth)
            return self.attrs(obj, path, depth)
        if isinstance(obj, (list, tuple)):
            items = list.copy(obj) if isinstance(obj, list) else tuple.__getitem__(obj, slice(None))
            self.sequence(items, path, depth)
            return self.attrs(obj, path, depth)
        if isinstance(obj, (set, frozenset)):
            members = set.copy(obj) if isinstance(obj, set) else frozenset.copy(obj)
            leaves = sorted("\n".join(f"{p}={v}" for p, v in digest({"": x}).items()) for x in members)
            self.leaf(path, _crc("\n".join(leaves).encode()))
            return self.attrs(obj, path, depth)
        if isinstance(obj, collections.deque):
            self.sequence(list(collections.deque.__iter__(obj)), path, depth)
            return self.attrs(obj, path, depth)
        if generic.is_plain_class(cls) or generic.has_custom_state(cls):
            d = getattr(obj, "__dict__", None)
            if d is not None:
                self.items(((k, v) for k, v in dict.items(d)), len(d), path, depth, attr=True)
            for name in generic.slot_names(cls):
                try:
                    value = object.__getattribute__(obj, name)
                except AttributeError:
                    continue
                self.walk(value, f"{path}.{name}", depth)
            return None
        return self.leaf(path, _crc_pickle(obj))

    def attrs(self, obj, path, depth):
        """Instance attributes of a container subclass."""
        d = getattr(obj, "__dict__", None)
        if d:
            self.items(((k, v) for k, v in dict.items(d)), len(d), path, depth, attr=True)

    def sequence(self, items, path, depth):
        if not items:
            return self.leaf(path, "[]")
        if set(map(type, items)) <= SCALARS:
            return self.leaf(path, _scalar(items) if len(items) <= 8 else _crc_pickle(items))
        if len(items) > MAX_LEAVES:
            return self.leaf(path, self.combined(enumerate(items), depth))
        for i, x in enumerate(items):
            self.walk(x, f"{path}[{i}]", depth)

    def items(self, pairs, n, path, depth, attr=False):
        pairs = list(pairs)
        if not pairs:
            if not attr:
                self.leaf(path, "{}")
            return
        if not attr and all(type(k) in SCALARS and type(v) in SCALARS for k, v in pairs):
            return self.leaf(path, _crc_pickle(sorted(map(repr, pairs))))
        if n > MAX_LEAVES:
            return self.leaf(path + (".__dict__" if attr else ""), self.combined(pairs, depth))
        for k, v in pairs:
            if attr:
                self.walk(v, f"{path}.{k}", depth)
            else:
                self.walk(v, f"{path}[{k!r}]" if type(k) in SCALARS else f"{path}[{_scalar(k)}]", depth)

    def combined(self, pairs, depth):
        """One leaf for many children: a checksum of their own digests."""
        sub = _Digester()
        sub.seen, sub.alive = self.seen, self.alive
        for k, v in pairs:
            sub.walk(v, repr(k), depth)
        return _crc("\n".join(f"{p}={leaf}" for p, leaf in sorted(sub.out.items())).encode())

    # ---- torch and numpy ------------------------------------------------------------------------
    def _torch(self, obj, path, depth) -> bool:
        torch = sys.modules["torch"]
        if isinstance(obj, torch.Tensor):
            self.leaf(path, tensor_leaf(obj))
            grad = obj.grad if obj.is_leaf else None
            if grad is not None:
                self.leaf(path + ".grad", tensor_leaf(grad))
            return True
        if isinstance(obj, torch.nn.Module):
            for name, value in obj.state_dict(keep_vars=True).items():
                self.walk(value, f"{path}.{name}", depth)
            flags = [sub.training for _, sub in obj.named_modules()]
            self.leaf(path + "#training", _scalar(flags[0]) if len(set(flags)) == 1 else _crc(bytes(flags)))
            for name, sub in obj.named_modules():
                for k, v in torchstate._public_attrs(sub).items():
                    if torchstate._is_plain_data(v):
                        self.walk(v, f"{path}.{name}.{k}" if name else f"{path}.{k}", depth)
            return True
        if isinstance(obj, torch.optim.Optimizer):
            sd = obj.state_dict()
            self.walk(sd.get("state", {}), path + ".state", depth)
            for i, group in enumerate(sd.get("param_groups", [])):
                for k, v in group.items():
                    self.walk(v, f"{path}.param_groups[{i}][{k!r}]", depth)
            return True
        if isinstance(obj, (*torchstate._scheduler_types(), *torchstate._scaler_types())):
            self.walk(obj.state_dict(), path, depth)
            return True
        if isinstance(obj, torch.Generator):
            self.leaf(path, _crc(obj.get_state().numpy()))
            return True
        if torchstate.is_data_object(obj):
            for names, rng in torchstate.rng_paths(obj):
                self.walk(rng, path + "." + ".".join(names), depth)
            return True
        return False

    def _numpy(self, np, obj, path) -> bool:
        if isinstance(obj, np.ndarray):
            self.leaf(path, array_leaf(obj) if not obj.dtype.hasobject else _crc_pickle(obj))
            return True
        if isinstance(obj, (np.generic, np.dtype)):
            self.leaf(path, _scalar(obj))
            return True
        from flortrace.state import numpystate

        kind = numpystate._rng_kind(obj)
        if kind is not None:
            self.leaf(path, _crc_pickle(numpystate._get_state(obj, kind)))
            return True
        return False


def _bits_leaf(kind: str, shape, total: int, sample: bytes, first) -> str:
    dims = "x".join(map(str, shape)) or "scalar"
    return f"t{kind}[{dims}]:{total & (2**64 - 1):016x}{zlib.crc32(sample):08x}|{first}"


def _int_view(nbytes: int) -> str:
    return "int32" if nbytes % 4 == 0 else "int16" if nbytes % 2 == 0 else "int8"


def tensor_leaf(t) -> str:
    """The leaf of a tensor: exact sum of its bits, a sample checksum and its first value."""
    torch = sys.modules["torch"]
    t = t.detach()
    device = t.device.type
    if t.layout is not torch.strided or t.is_quantized or device == "meta":
        return UNKNOWN
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if not t.is_contiguous():
        t = t.contiguous()
    kind = torchstate._dtype_name(t)
    if not t.numel():
        return _bits_leaf(kind, t.shape, 0, b"", "-")
    flat = t.reshape(-1)
    if device == "cpu":
        np = sys.modules["numpy"]
        if kind in torchstate._NUMPY_DTYPES:  # its values read from numpy: a torch .item() costs more
            values = flat.numpy()
            first, raw = _first(values[0].item()), values.view(np.uint8)
        else:
            first, raw = _first(flat[0].item()), flat.view(torch.uint8).numpy()
        view = raw.view(getattr(np, _int_view(raw.size)))
        total = int(view.sum(dtype=np.int64))
        step = max(1, view.size // SAMPLE)
        return _bits_leaf(kind, t.shape, total, view[::step].tobytes(), first)
    first = _first(flat[0].item())
    raw = flat.view(torch.uint8)
    view = raw.view(getattr(torch, _int_view(raw.numel())))
    total = int(view.sum(dtype=torch.int64).item())
    step = max(1, view.numel() // SAMPLE)
    return _bits_leaf(kind, t.shape, total, view[::step].cpu().numpy().tobytes(), first)


def array_leaf(a) -> str:
    """The leaf of a numpy array, computed as for a tensor."""
    np = sys.modules["numpy"]
    a = np.ascontiguousarray(a)
    if a.size == 0:
        return _bits_leaf(str(a.dtype), a.shape, 0, b"", "-")
    raw = a.reshape(-1).view(np.uint8)
    view = raw.view(getattr(np, _int_view(raw.size)))
    step = max(1, view.size // SAMPLE)
    return _bits_leaf(
        str(a.dtype),
        a.shape,
        int(view.sum(dtype=np.int64)),
        view[::step].tobytes(),
        _first(a.reshape(-1)[0].item()),
    )


def _first(value) -> str:
    if isinstance(value, float):
        return f"{value:.8g}"
    return _scalar(value)
