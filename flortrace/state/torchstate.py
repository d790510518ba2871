"""torch adapters: tensors, modules, optimizers, LR schedulers, grad scalers, generators and data objects.

Only used once the script has imported torch; this module never imports it itself. Tensors become private
numpy copies plus dtype/device/requires_grad metadata (dtypes numpy lacks, such as bfloat16 and float8, are
stored as raw integer bits of the same width). CUDA tensors are copied device->host without blocking, and
one synchronize per device ends the capture (`finish_copies`).

Modules are restored with `load_state_dict(strict=True)` plus each submodule's `training` flag, parameter
gradients and requires_grad, non-persistent buffers and public attributes holding plain data; optimizers,
schedulers and grad scalers with their own `load_state_dict`, so the optimizer keeps holding the model's
parameters. None of these can be built from their state alone, so materializing one raises `Unsupported`.
"""

from __future__ import annotations

import functools
import random
import sys
import warnings
import zlib
from collections import OrderedDict
from dataclasses import dataclass

from flortrace.state import numpystate
from flortrace.state.base import Captured, Code, TypeRef, Unsupported, is_value, type_name

_NUMPY_DTYPES = frozenset(
    "bool uint8 int8 int16 int32 int64 uint16 uint32 uint64"
    " float16 float32 float64 complex64 complex128".split()
)
_BITS = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}


def _torch():
    return sys.modules["torch"]


_DTYPE_NAMES: dict = {}  # torch.dtype -> its name ("float32"): str() of a dtype costs a microsecond


def _dtype_name(t) -> str:
    dtype = t.dtype
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


@dataclass
class TensorState(Captured):
    """A tensor's data as numpy (raw bits when `dtype` has no numpy equivalent), metadata and gradient."""

    key: int | None
    data: object  # numpy.ndarray, set once a device->host copy is complete
    dtype: str
    device: str
    requires_grad: bool
    parameter: bool
    grad: TensorState | None

    def host(self, copy: bool):
        """A CPU tensor with the captured values; it shares the capture's memory unless `copy`."""
        torch = _torch()
        arr = self.data.copy() if copy else self.data
        if arr.flags.writeable:
            t = torch.from_numpy(arr)
        else:
            with warnings.catch_warnings():  # read-only memory; such tensors are only copied from
                warnings.simplefilter("ignore", UserWarning)
                t = torch.from_numpy(arr)
        return t if self.dtype in _NUMPY_DTYPES else t.view(getattr(torch, self.dtype))

    def restore(self, obj, ctx):
        torch = _torch()
        if not (
            isinstance(obj, torch.Tensor)
            and obj.layout == torch.strided
            and tuple(obj.shape) == self.data.shape
            and _dtype_name(obj) == self.dtype
        ):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        with torch.inference_mode() if obj.is_inference() else torch.no_grad():
            obj.copy_(self.host(copy=False))
        self.restore_leaf(obj, ctx)
        return obj

    def restore_leaf(self, t, ctx) -> None:
        """Restore what lives beside the data of a leaf tensor: requires_grad and the gradient."""
        if not t.is_leaf:
            return
        if t.requires_grad != self.requires_grad and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_(self.requires_grad)
        restore_grad(t, self.grad, ctx)

    def materialize(self, ctx, device: str | None = None):
        torch = _torch()
        device = device or self.device
        t = self.host(copy=device == "cpu")
        if device != "cpu":
            try:
                t = t.to(device)
            except (RuntimeError, AssertionError) as exc:
                raise Unsupported(f"cannot rebuild a tensor on {device}: {exc}") from None
        if self.parameter:
            t = torch.nn.Parameter(t, requires_grad=self.requires_grad)
        elif self.requires_grad:
            t.requires_grad_(True)
        ctx.remember(self.key, t)
        if self.grad is not None:
            t.grad = self.grad.materialize(ctx, device=str(t.device))
        return t


def restore_grad(t, rec: TensorState | None, ctx) -> None:
    """Make `t.grad` hold the captured gradient (in place when shapes agree), or None."""
    if rec is None:
        t.grad = None
        return
    grad = t.grad
    if grad is not None and tuple(grad.shape) == rec.data.shape and _dtype_name(grad) == rec.dtype:
        with _torch().no_grad():
            grad.copy_(rec.host(copy=False))
    else:
        t.grad = rec.materialize(ctx, device=str(t.device))


def capture_tensor(t, ctx, key: int | None) -> TensorState:
    torch = _torch()
    device = t.device
    kind = device.type
    if t.layout is not torch.strided or t.is_quantized or kind == "meta":
        raise Unsupported(f"cannot capture a {t.layout} {t.dtype} tensor on {t.device}{ctx.where()}")
    data = t.detach()
    if data.is_conj():
        data = data.resolve_conj()
    if data.is_neg():
        data = data.resolve_neg()
    dtype = _dtype_name(t)
    if dtype not in _NUMPY_DTYPES:
        data = data.view(getattr(torch, _BITS[data.element_size()]))
    cls = type(t)
    param = cls is torch.nn.Parameter or (cls is not torch.Tensor and isinstance(t, torch.nn.Parameter))
    rec = TensorState(key, None, dtype, "cpu" if kind == "cpu" else str(device), t.requires_grad, param, None)
    if kind == "cpu":
        rec.data = ctx.copy_array(data.numpy())
    elif kind == "cuda":
        ctx.pending.append((rec, device, data.to("cpu", non_blocking=True)))
    else:
        rec.data = data.cpu().numpy()
    if t.is_leaf:
        grad = t.grad
        if grad is not None:
            rec.grad = capture_tensor(grad, ctx, None)
    return rec


def finish_copies(pending: list, ctx) -> None:
    """Wait for the device->host copies started by a capture and hand their data to the records (copied
    on into the capture's shared memory when it has some, so the pinned buffers go back to torch)."""
    if not pending:
        return
    torch = _torch()
    for device in {device for _, device, _ in pending}:
        torch.cuda.synchronize(device)
    for rec, _, host in pending:
        rec.data = host.numpy() if ctx.alloc is None else ctx.copy_array(host.numpy())
    pending.clear()


@dataclass
class ModuleState(Captured):
    """An nn.Module: state_dict entries, training flags, non-persistent buffers and public attributes."""

    key: int
    type: TypeRef
    state: dict  # state_dict name -> record
    metadata: Captured | None
    training: dict  # submodule name -> bool
    buffers: dict  # "submodule.buffer" -> record, for non-persistent buffers
    attrs: dict  # submodule name -> {attribute: record}

    def restore(self, obj, ctx):
        torch = _torch()
        if not isinstance(obj, torch.nn.Module):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        state = OrderedDict()
        for name, rec in self.state.items():
            if isinstance(rec, TensorState):  # load_state_dict copies: no private copy needed
                state[name] = ctx.remember(rec.key, rec.host(copy=False))
            else:
                state[name] = ctx.materialize(rec)
        if self.metadata is not None:
            state._metadata = ctx.materialize(self.metadata)
        try:
            obj.load_state_dict(state, strict=True)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise Unsupported(f"cannot restore {type_name(obj)}: {exc}") from None
        live = obj.state_dict(keep_vars=True)
        for name, rec in self.state.items():
            if isinstance(rec, TensorState):
                ctx.remember(rec.key, live[name])
                rec.restore_leaf(live[name], ctx)
        modules = dict(obj.named_modules())
        for name, sub in modules.items():
            if name in self.training:
                sub.training = self.training[name]
        for path, rec in self.buffers.items():
            owner, _, buffer = path.rpartition(".")
            sub = modules.get(owner)
            if sub is not None:
                sub._buffers[buffer] = ctx.restore(sub._buffers.get(buffer), rec)
        for name, attrs in self.attrs.items():
            if name in modules:
                _restore_public_attrs(modules[name], attrs, ctx)
        return obj

    def materialize(self, ctx):
        raise Unsupported(f"cannot build a {self.type} module from its state, only restore into one")


def _public_attrs(module) -> dict:
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training"}


def _is_plain_data(value, depth: int = 0) -> bool:
    """Values, tensors, arrays and builtin containers of them: the module attributes worth capturing.

    Other attributes (configs, process groups, reducers, loggers...) are left alone: they are set up by the
    script, rarely change while training, and often cannot be captured at all.
    """
    if is_value(value):
        return True
    torch = _torch()
    if isinstance(value, (torch.Tensor, torch.dtype, torch.device)):
        return True
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, (np.ndarray, np.generic)):
        return True
    if depth < 3 and type(value) in (list, tuple, set, dict):
        if type(value) is dict:
            return all(is_value(k) and _is_plain_data(v, depth + 1) for k, v in value.items())
        return all(_is_plain_data(v, depth + 1) for v in value)
    return False


def _restore_public_attrs(module, attrs: dict, ctx) -> None:
    d = module.__dict__
    for k in [k for k in _public_attrs(module) if k not in attrs]:
        del d[k]
    for k, rec in attrs.items():
        d[k] = ctx.restore(d.get(k), rec)


def _capture_module(m, ctx) -> ModuleState:
    key = ctx.new_key(m)
    sd = m.state_dict(keep_vars=True)
    state = {name: ctx.child(v, f".{name}") for name, v in sd.items()}
    metadata = getattr(sd, "_metadata", None)
    buffers, attrs, training = {}, {}, {}
    for name, sub in m.named_modules():
        training[name] = sub.training
        prefix = f"{name}." if name else ""
        for b in sub._non_persistent_buffers_set:
            if sub._buffers.get(b) is not None:
                buffers[prefix + b] = ctx.child(sub._buffers[b], f".{prefix}{b}")
        public = _public_attrs(sub)
        if public:
            attrs[name] = {
                k: ctx.child(v, f".{prefix}{k}") if _is_plain_data(v) else Code(type_name(v))
                for k, v in public.items()
            }
    meta = ctx.child(dict(metadata), "._metadata") if metadata is not None else None
    return ModuleState(key, TypeRef.of(m), state, meta, training, buffers, attrs)


@dataclass
class LoadableState(Captured):
    """An optimizer, LR scheduler or grad scaler: its state_dict, restored with its load_state_dict."""

    key: int
    type: TypeRef
    state: Captured

    def restore(self, obj, ctx):
        if not self.type.matches(obj):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        state = ctx.materialize(self.state)
        if state or not _is_scaler(obj):  # a disabled GradScaler has an empty state and refuses to load it
            try:
                obj.load_state_dict(state)
            except (RuntimeError, ValueError, KeyError) as exc:
                raise Unsupported(f"cannot restore {self.type}: {exc}") from None
        if isinstance(obj, _torch().optim.Optimizer) and state.get("state"):
            # An optimizer with state has stepped; say so to LR schedulers, which warn on their first
            # step() when the optimizer "never" did (its step() may have been skipped with a memo).
            obj._opt_called = True
        return obj

    def materialize(self, ctx):
        raise Unsupported(f"cannot build a {self.type} from its state; only restore into an existing one")


@dataclass
class GeneratorState(Captured):
    """A torch.Generator: device and get_state() bytes."""

    key: int
    device: str
    state: object  # numpy uint8 array

    def restore(self, obj, ctx):
        torch = _torch()
        if not (isinstance(obj, torch.Generator) and str(obj.device) == self.device):
            return self.materialize(ctx)
        obj.set_state(torch.from_numpy(self.state.copy()))
        return ctx.remember(self.key, obj)

    def materialize(self, ctx):
        torch = _torch()
        try:
            g = torch.Generator(device=self.device)
        except RuntimeError as exc:
            raise Unsupported(f"cannot rebuild a generator on {self.device}: {exc}") from None
        g.set_state(torch.from_numpy(self.state.copy()))
        return ctx.remember(self.key, g)


@dataclass
class TorchValue(Captured):
    """A torch.dtype or torch.device, by name."""

    kind: str
    text: str

    def restore(self, obj, ctx):
        return self.materialize(ctx)

    def materialize(self, ctx):
        torch = _torch()
        if self.kind == "dtype":
            return getattr(torch, self.text.removeprefix("torch."))
        return torch.device(self.text)


@dataclass
class RngHolderState(Captured):
    """A DataLoader, Dataset or Sampler: only the random generators it holds, by attribute path."""

    key: int
    type: TypeRef
    rngs: dict  # tuple of attribute names -> record

    def restore(self, obj, ctx):
        if not self.type.matches(obj):
            return self.materialize(ctx)
        ctx.remember(self.key, obj)
        for path, rec in self.rngs.items():
            parent = obj
            for name in path[:-1]:
                parent = getattr(parent, name, None)
            if parent is None:
                continue
            cur = getattr(parent, path[-1], None)
            new = ctx.restore(cur, rec)
            if new is not cur:
                setattr(parent, path[-1], new)
        return obj

    def materialize(self, ctx):
        raise Unsupported(f"cannot build a {self.type}; only restore its generators into an existing one")


@functools.cache
def _scheduler_types() -> tuple:
    sched = _torch().optim.lr_scheduler
    return tuple(t for t in (getattr(sched, "LRScheduler", None), sched.ReduceLROnPlateau) if t is not None)


@functools.cache
def _scaler_types() -> tuple:
    torch = _torch()
    amp = getattr(torch, "amp", None)
    return tuple(t for t in (getattr(amp, "GradScaler", None), torch.cuda.amp.GradScaler) if t is not None)


def _is_scaler(obj) -> bool:
    return isinstance(obj, _scaler_types())


def is_data_object(obj) -> bool:
    """DataLoaders, Datasets and Samplers: state only through the generators they hold."""
    data = _torch().utils.data
    return isinstance(obj, (data.DataLoader, data.Dataset, data.Sampler))


def _is_rng(obj) -> bool:
    return isinstance(obj, (_torch().Generator, random.Random)) or numpystate.is_rng(obj)


def rng_paths(obj) -> list[tuple[tuple[str, ...], object]]:
    """(attribute path, generator) for the generators a data object holds, through nested data objects."""
    found = []
    seen = {id(obj)}

    def walk(o, path):
        for name, value in list(getattr(o, "__dict__", {}).items()):
            if value is None:
                continue
            if _is_rng(value):
                found.append((path + (name,), value))
            elif len(path) < 3 and id(value) not in seen and is_data_object(value):
                seen.add(id(value))
                walk(value, path + (name,))

    walk(obj, ())
    return found


def route(obj):
    """How objects of ``obj``'s type are captured (``fn(obj, ctx)``), or None when it is no torch type."""
    torch = _torch()
    if isinstance(obj, torch.Tensor):
        return lambda t, ctx: capture_tensor(t, ctx, ctx.new_key(t))
    if isinstance(obj, torch.nn.Module):
        return _capture_module
    if isinstance(obj, (torch.optim.Optimizer, *_scheduler_types(), *_scaler_types())):
        return _capture_loadable
    if isinstance(obj, torch.Generator):
        return lambda g, ctx: GeneratorState(ctx.new_key(g), str(g.device), g.get_state().numpy().copy())
    if isinstance(obj, (torch.dtype, torch.device)):
        return lambda v, ctx: TorchValue("dtype" if isinstance(v, torch.dtype) else "device", str(v))
    if is_data_object(obj):
        return _capture_data_object
    return None


def _capture_loadable(obj, ctx) -> LoadableState:
    key = ctx.new_key(obj)
    return LoadableState(key, TypeRef.of(obj), ctx.child(obj.state_dict(), ".state_dict()"))


def _capture_data_object(obj, ctx) -> Captured:
    paths = rng_paths(obj)
    if not paths:
        return Code(type_name(obj))
    key = ctx.new_key(obj)
    rngs = {path: ctx.child(rng, "." + ".".join(path)) for path, rng in paths}
    return RngHolderState(key, TypeRef.of(obj), rngs)


def _sample(t) -> bytes:
    """Up to 8 evenly spaced elements, as bytes: catches writes through `.data`, which skip `_version`."""
    n = t.numel()
    if n == 0:
        return b""
    flat = t.detach()
    flat = flat.view(-1) if flat.is_contiguous() else flat.reshape(-1)
    sample = flat[:: max(1, (n - 1) // 7)][:8].resolve_conj().resolve_neg()
    if _dtype_name(sample) not in _NUMPY_DTYPES:
        sample = sample.view(getattr(_torch(), _BITS[sample.element_size()]))
    return sample.cpu().numpy().tobytes()


def tensor_fingerprint(t) -> tuple:
    version = -1 if t.is_inference() else t._version
    parts = (id(t), t.data_ptr(), version, tuple(t.shape), t.stride(), t.dtype, t.device, t.requires_grad)
    grad = t.grad if t.is_leaf else None
    if grad is not None:
        parts += (grad.data_ptr(), -1 if grad.is_inference() else grad._version, _sample(grad))
    return parts + (_sample(t),)


def fingerprint(obj, fp) -> tuple | None:
    """A fingerprint for a torch object (`fp` fingerprints nested plain values), or None."""
    torch = _torch()
    if isinstance(obj, torch.Tensor):
        return ("tensor",) + tensor_fingerprint(obj)
    if isinstance(obj, torch.nn.Module):
        parts = []
        for name, sub in obj.named_modules():
            parts.append((name, sub.training))
            for tensors in (sub._parameters, sub._buffers):
                parts.extend((k, None if v is None else tensor_fingerprint(v)) for k, v in tensors.items())
            parts.extend(
                (k, fp.of(v) if _is_plain_data(v) else ("id", id(v))) for k, v in _public_attrs(sub).items()
            )
        return ("module", id(obj), tuple(parts))
    if isinstance(obj, torch.optim.Optimizer):
        state = tuple((id(p), fp.items(s)) for p, s in obj.state.items())
        groups = tuple(
            (tuple(id(p) for p in g["params"]), fp.items({k: v for k, v in g.items() if k != "params"}))
            for g in obj.param_groups
        )
        return ("optimizer", id(obj), state, groups)
    if isinstance(obj, _scheduler_types()):
        return ("scheduler", id(obj), fp.items({k: v for k, v in vars(obj).items() if k != "optimizer"}))
    if isinstance(obj, torch.Generator):
        return ("generator", id(obj), zlib.crc32(obj.get_state().numpy()))
    if isinstance(obj, (torch.dtype, torch.device)):
        return ("torch value", str(obj))
    if is_data_object(obj):
        return ("data", id(obj), tuple((path, fp.of(rng)) for path, rng in rng_paths(obj)))
    return None
