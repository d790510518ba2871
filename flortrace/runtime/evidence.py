"""Evidence of training, for choosing the epoch loop: optimizer steps, and whether an optimizer exists.

A loop with loops inside is not always an epoch loop: a tokenizer's loop over lines, an evaluation pass, a
loop that samples text after training all look alike. What sets the training loop apart is that its
iterations step an optimizer. torch calls a global hook after every ``Optimizer.step`` (of any subclass);
counting those calls costs one Python call per step.
"""

from __future__ import annotations

import sys


class Evidence:
    def __init__(self):
        self.steps = 0  # optimizer steps taken so far in the run
        self.trained = set()  # loop ids whose iterations stepped an optimizer
        self._handle = None

    def watch(self):
        """Start counting optimizer steps once torch is imported (cheap to call often)."""
        if self._handle is not None:
            return
        optim = sys.modules.get("torch.optim.optimizer")  # torch.optim deletes its submodules' names
        register = getattr(optim, "register_optimizer_step_post_hook", None)
        if register is not None:
            self._handle = register(self._count)

    def _count(self, *args):
        self.steps += 1

    def close(self):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def optimizer_in(self, namespace):
        """Whether an optimizer is among ``namespace``'s values or one attribute or item down (a trainer
        object holding it)."""
        torch = sys.modules.get("torch")
        if torch is None:
            return False
        kind = torch.optim.Optimizer
        for obj in namespace.values():
            if isinstance(obj, kind):
                return True
            inner = getattr(obj, "__dict__", None) if not isinstance(obj, dict) else obj
            if isinstance(inner, dict) and any(isinstance(v, kind) for v in list(inner.values())):
                return True
            if type(obj) in (list, tuple) and any(isinstance(v, kind) for v in obj[:8]):
                return True
        return False


def trainable(obj):
    """A torch module with parameters, or a tensor that requires grad: what training changes."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    if isinstance(obj, torch.Tensor):
        return obj.requires_grad
    return isinstance(obj, torch.nn.Module) and next(obj.parameters(), None) is not None
