"""Random number generator state: `random.Random` objects and the process-wide generators.

`capture_rng` takes Python's `random` module state, numpy's global RandomState (when numpy is imported),
torch's CPU generator and every CUDA device's generator (when torch is imported and CUDA initialized).
"""

from __future__ import annotations

import importlib
import random
import sys
from dataclasses import dataclass

from flortrace.state.base import Captured, Code, TypeRef, type_name


@dataclass
class PyRandomState(Captured):
    """A random.Random (or subclass) instance: its getstate() tuple."""

    key: int
    type: TypeRef
    state: tuple

    def restore(self, obj, ctx):
        if not self.type.matches(obj):
            return self.materialize(ctx)
        obj.setstate(self.state)
        return ctx.remember(self.key, obj)

    def materialize(self, ctx):
        obj = self.type.resolve()()
        obj.setstate(self.state)
        return ctx.remember(self.key, obj)


def capture_random(obj: random.Random, ctx) -> Captured:
    if isinstance(obj, random.SystemRandom):  # reads the OS; nothing to keep
        return Code(type_name(obj), "random", "SystemRandom")
    return PyRandomState(ctx.new_key(obj), TypeRef.of(obj), obj.getstate())


@dataclass
class RngState(Captured):
    """The process-wide generators; see `capture_rng`."""

    python: tuple
    numpy: dict | None
    torch: object  # numpy uint8 array, or None
    cuda: list | None  # numpy uint8 arrays, one per device


def capture_rng() -> RngState:
    """The state of `random`, numpy's global generator, torch's CPU generator and CUDA generators."""
    np = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    numpy_state = np.random.get_state(legacy=False) if np is not None else None
    torch_state = cuda = None
    if torch is not None:
        torch_state = torch.get_rng_state().numpy()
        if torch.cuda.is_initialized():
            cuda = [s.numpy() for s in torch.cuda.get_rng_state_all()]
    return RngState(random.getstate(), numpy_state, torch_state, cuda)


def restore_rng(captured: RngState) -> None:
    """Put the process-wide generators back as `capture_rng` found them."""
    random.setstate(captured.python)
    if captured.numpy is not None:
        importlib.import_module("numpy").random.set_state(captured.numpy)
    if captured.torch is None:
        return
    torch = importlib.import_module("torch")
    torch.set_rng_state(torch.from_numpy(captured.torch.copy()))
    if captured.cuda and torch.cuda.is_available():
        states = [torch.from_numpy(s.copy()) for s in captured.cuda[: torch.cuda.device_count()]]
        torch.cuda.set_rng_state_all(states)
