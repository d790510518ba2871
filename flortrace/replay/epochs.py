"""Epoch specs, one grammar for every verb and the console: ``7``, ``2:5`` (half-open), ``::10``, ``-1`` (the
last), ``-2:``, ``0,3,9`` and mixes, each item optionally prefixed by the name of a main loop
(``finetune:0:3``, ``sample:-1``).

Epochs are numbered per main loop, from 0. A script may have several main loops (a pre-training loop and a
fine-tuning one, a loop that samples after training): items without a name select epochs of the training
loop (the one whose iterations stepped an optimizer, else the longest), the others are named after the
function that holds them (the script's name for a module-level loop; ``#2`` for a second run of the same
loop). Internally every epoch of a run has one global number (``base + index``); ``Loops`` translates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..exceptions import SpecError


@dataclass(frozen=True)
class Loop:
    name: str
    base: int  # global number of its first epoch
    count: int
    training: bool = False

    def local(self, epoch):
        return epoch - self.base


def loop_names(mains):
    """Names for main runs given as (loop id, run) in order: the holding function's name, or the script's
    stem for a module-level loop; a name met again gets ``#2``, ``#3``..."""
    names, seen = [], {}
    for loop_id, _ in mains:
        file, _, rest = loop_id.rpartition(":")
        qualname = rest.rpartition("#")[0]
        name = qualname.rpartition(".")[2] if qualname and qualname != "<module>" else _stem(file)
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return names


def _stem(file):
    return os.path.splitext(os.path.basename(file))[0] or "main"


class Loops:
    """The main loops of a run, for naming and selecting epochs."""

    def __init__(self, loops):
        self.loops = list(loops)
        trained = [loop for loop in self.loops if loop.training]
        self.default = trained[0] if trained else max(self.loops, key=lambda loop: loop.count, default=None)

    def named(self, name):
        for loop in self.loops:
            if loop.name == name:
                return loop
        names = ", ".join(loop.name for loop in self.loops) or "none"
        raise SpecError(f"no main loop named {name!r} (this run's main loops: {names})")

    def of(self, epoch):
        """The loop a global epoch belongs to (None: outside every main loop)."""
        for loop in self.loops:
            if loop.base <= epoch < loop.base + loop.count:
                return loop
        return None

    def show(self, epoch):
        """A global epoch as people count it: ``3``, or ``finetune:3`` outside the training loop."""
        loop = self.of(epoch)
        if loop is None:
            return str(epoch)
        return str(loop.local(epoch)) if loop is self.default else f"{loop.name}:{loop.local(epoch)}"

    def select(self, spec):
        """Sorted global epochs that ``spec`` selects; SpecError for bad specs and empty selections."""
        if self.default is None:
            raise SpecError("the run has no epochs")
        chosen = set()
        for part in spec.split(","):
            part = part.strip()
            loop, rest = self.default, part
            head, sep, tail = part.partition(":")
            if sep and head and not _is_int(head):
                loop, rest = self.named(head), tail
            elif not sep and part and not _is_int(part):
                loop, rest = self.named(part), ":"
            chosen.update(loop.base + e for e in parse(rest, loop.count, spec))
        if not chosen:
            raise SpecError(f"epoch spec {spec!r} selects no epoch")
        return sorted(chosen)


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def parse(part, count, spec=None):
    """Epochs among ``range(count)`` that one item (a number or a slice) or a comma-separated list selects."""
    spec = part if spec is None else spec
    chosen = set()
    for item in part.split(","):
        item = item.strip()
        if not item:
            raise SpecError(f"empty item in epoch spec {spec!r}")
        if ":" in item:
            pieces = item.split(":")
            if len(pieces) > 3:
                raise SpecError(f"bad slice {item!r} in epoch spec")
            try:
                bounds = [int(p) if p.strip() else None for p in pieces]
            except ValueError:
                raise SpecError(f"bad slice {item!r}: use numbers like 2:5 or ::10") from None
            if len(bounds) == 3 and bounds[2] == 0:
                raise SpecError("slice step cannot be zero")
            chosen.update(range(count)[slice(*bounds)])
        else:
            try:
                n = int(item)
            except ValueError:
                raise SpecError(
                    f"bad epoch {item!r}: use a number, a slice like 2:5, a list like 0,3,9, or a loop's "
                    "name before them (finetune:0:3)"
                ) from None
            if not -count <= n < count:
                raise SpecError(f"epoch {n} out of range: the loop has {count} epoch(s) (0..{count - 1})")
            chosen.add(n % count)
    return sorted(chosen)
