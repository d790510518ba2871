"""When to snapshot: keep what flortrace costs training under ``overhead`` times its compute time.

Flor guessed a disk speed; here every cost is measured as it happens: the training-thread stall (capture)
of each snapshot; flortrace's other time on the training thread during epochs (discovering changesets,
writing catalog rows); and the CPU time the writer process spends on snapshots, counted for the share of
the machine it takes from training (all of it on a 2-core machine, little on a big one). The writer's
waits for the disk (fsync) take no CPU from training, so they do not count. flortrace's start-up
(imports, instrumenting) is charged too, in equal parts over the epochs of the main loop when its length
is known (so early epochs still get memos), else at once. The first
snapshot is taken to measure what one costs; the estimate for the next is a running mean of measured ones.
An epoch either gets a full snapshot (a memo for each of its blocks plus the checkpoint at its end) or
none; the last epoch always gets its checkpoint.
"""

from __future__ import annotations

import os


class Policy:
    def __init__(self, overhead: float, cores: int | None = None):
        self.overhead = overhead
        self.compute = 0.0  # training time so far, stall excluded
        self.stall = 0.0  # training-thread time spent capturing so far
        self.writer = 0.0  # writer-process CPU seconds so far, weighted by the share of the machine it takes
        self.own = 0.0  # flortrace's other training-thread time so far (bookkeeping, start-up charged)
        self.fixed = 0.0  # start-up not charged yet
        self._parts = 0  # epochs left to charge it over (0: at once)
        self.estimate: float | None = None  # cost of one full snapshot (stall + weighted writer time)
        self.share = 1.0 / max((cores or os.cpu_count() or 1) - 1, 1)
        self._snapshots = 0

    def add_compute(self, seconds):
        self.compute += max(seconds, 0.0)

    def add_own(self, seconds):
        """Training-thread time flortrace spent on anything but capturing snapshots."""
        self.own += max(seconds, 0.0)

    def add_fixed(self, seconds):
        """A one-off cost (start-up), charged by ``epoch_done``."""
        self.fixed += max(seconds, 0.0)

    def spread_over(self, epochs):
        """The main loop has ``epochs`` epochs left: charge the one-off costs in that many parts."""
        self._parts = max(int(epochs), 0)

    def epoch_done(self):
        part = self.fixed / self._parts if self._parts else self.fixed
        self.own += part
        self.fixed -= part
        self._parts = max(self._parts - 1, 0)

    def add_stall(self, seconds):
        """One full snapshot's training-thread stall was measured."""
        self.stall += seconds
        self._snapshots += 1
        self._update()

    def writer_time(self, seconds):
        """The writer process has used ``seconds`` of CPU in total so far."""
        self.writer = seconds * self.share
        self._update()

    def _update(self):
        if self._snapshots:
            self.estimate = (self.stall + self.writer) / self._snapshots

    def decide(self, epoch_seconds, writer_busy):
        """Decide at the start of an epoch; ``epoch_seconds`` is the last epoch's compute time (or None),
        ``writer_busy()`` asked only when the budget allows a snapshot. Returns (take, reason)."""
        if not self.overhead:
            return False, "no snapshots (--overhead 0)"
        allowed = self.overhead * (self.compute + (epoch_seconds or 0.0))
        left = allowed - self.stall - self.writer - self.own
        if self.estimate is None:
            if writer_busy():
                return False, "writer still busy"
            return True, "first snapshot: measuring its cost"
        if self.estimate > left:
            return False, f"over budget (est. {self.estimate:.3g}s > {left:.3g}s left)"
        if writer_busy():
            return False, "writer still busy with the previous snapshot"
        return True, f"fits the budget (est. {self.estimate:.3g}s <= {left:.3g}s left)"
