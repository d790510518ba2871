"""The fidelity check: replay must reproduce the recorded run, or stop and say why.

At every epoch end the recording keeps a digest (state/digest.py) of the epoch's loop-carried state and of the
RNG states, and one of everything the main loop's frame reaches when the loop starts. Replay computes the same
digests where it re-executes or restores an epoch and compares: the first difference is a *divergence*. It
names the epoch, the object path, both values and the likely cause, and stops the replay (exit 3) unless
``--force`` asked to go on. Values that look like wall-clock readings (``t0``, ``elapsed``, datetimes) differ
on every run: they are reported, never a divergence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..state import digest as digests
from . import changeset

EXIT = 3  # the exit code of a replay that diverged
_TIMING = re.compile(
    r"(^|_)(t\d*|tic|toc|ti?me?s?|start(ed)?|end(ed)?|begin|now|elapsed|dt|duration|took|timer|secs?|seconds|"
    r"ms|eta|speed|throughput|fps|ips|tps|mem|memory|rss|clock|stamp|timestamp|wall|date|today)(_|\d|$)",
    re.IGNORECASE,
)


class Diverged(BaseException):
    """Raised through the user's script to stop a replay that no longer reproduces the recording (a
    BaseException, so that the script's ``except Exception`` cannot swallow it)."""

    def __init__(self, divergence):
        super().__init__(divergence.headline())
        self.divergence = divergence


@dataclass
class Divergence:
    where: str  # "at the end of epoch 3", "after restoring the checkpoint of epoch 5", ...
    epoch: int | None
    diffs: list  # [(path, recorded leaf, replayed leaf)]
    causes: list = field(default_factory=list)
    printed: tuple | None = None  # (recorded line, replayed line) of the first output that differs
    labels: tuple = ("recorded", "replayed")

    def headline(self):
        return f"replay diverged from the recording {self.where}"

    def lines(self):
        out = [self.headline() + ":"]
        for path, recorded, replayed in self.diffs[:5]:
            out.append(
                f"  {path}: {self.labels[0]} {digests.describe(recorded)}, "
                f"{self.labels[1]} {digests.describe(replayed)}"
            )
        if len(self.diffs) > 5:
            out.append(f"  ... and {len(self.diffs) - 5} more path(s)")
        if self.printed is not None:
            out.append(
                f"  epoch {self.epoch} printed {self.printed[1]!r}, the recording printed {self.printed[0]!r}"
            )
        for cause in self.causes or [NONDETERMINISM]:
            out.append(f"  likely cause: {cause}")
        return out


ROUNDING = (
    "floats differ only in their last bits: the order of floating-point operations differs between runs "
    "(iterating over a set of objects, threads); --tolerance {:.0e} accepts it"
)
NONDETERMINISM = (
    "the script does not compute the same thing twice (unseeded randomness, threads, nondeterministic "
    "GPU kernels; --tolerance accepts float noise)"
)


def rounding(diffs):
    """The relative tolerance that would accept ``diffs`` when they are all float noise, else None."""
    worst = 1e-12  # tensors whose first values agree to the digits a digest keeps
    for _, a, b in diffs:
        x, y = digests.number(a), digests.number(b)
        if x is None or y is None or (x == y and not a.startswith("t")):
            return None
        worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
    return worst if worst <= 1e-9 else None


def take(frame, items):
    """The digest of ``items`` ((scope, name) pairs) as ``frame`` sees them, plus the RNG states."""
    found = changeset.resolve_items(frame, items)
    out = digests.digest({changeset.label(scope, name): obj for (scope, name), obj in found.items()})
    out.update(digests.rng_digest())
    return out


def volatile(path, recorded, replayed):
    """Whether a difference is in a value that changes on every run by nature: a clock reading (a number
    named like ``t0``, ``elapsed``, ``epoch_time``, or a Unix time), a datetime, a memory measurement."""
    name = [p for p in re.split(r"[.\[\]'#]", path) if p][-1]
    if _TIMING.search(name) and _number(recorded) and _number(replayed):
        return True
    return _clock(recorded) and _clock(replayed)


def split(diffs):
    """(real differences, volatile ones)."""
    real = [d for d in diffs if not volatile(*d)]
    return real, [d for d in diffs if d not in real]


def _number(leaf):
    try:
        float(leaf)
    except ValueError:
        return False
    return True


def _clock(leaf):
    if leaf.startswith(digests.CLOCK):
        return True
    try:
        return 1e9 <= float(leaf) <= 1e10  # seconds since 1970: time.time()
    except ValueError:
        return False


class Layouts:
    """Record side: digests share their list of paths while it does not change (it rarely does)."""

    def __init__(self):
        self.ids = {}

    def encode(self, items, leaves):
        """Return (layout id, new layout row or None, values in layout order)."""
        key = (tuple(items), tuple(leaves))
        row = None
        if key not in self.ids:
            self.ids[key] = len(self.ids)
            row = (self.ids[key], [list(i) for i in items], list(leaves))
        return self.ids[key], row, list(leaves.values())


def first_difference(recorded, replayed):
    """The first line of ``replayed`` output that differs from ``recorded``, as (recorded, replayed)."""
    a, b = recorded.splitlines(), replayed.splitlines()
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else ""
        y = b[i] if i < len(b) else ""
        if x != y:
            return x[:200], y[:200]
    return None
