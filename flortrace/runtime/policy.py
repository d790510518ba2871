"""When to snapshot: keep the training-thread stall under ``overhead`` times the compute time.

Flor guessed a disk speed; here the stall (capture on the training thread) is measured every time and the
estimate for the next epoch is the last measured one. An epoch either gets a full snapshot (a memo for each
of its blocks plus the checkpoint at its end) or none; the last epoch always gets its checkpoint.
"""

from __future__ import annotations


class Policy:
    def __init__(self, overhead: float):
        self.overhead = overhead
        self.compute = 0.0  # training time so far, stall excluded
        self.stall = 0.0  # training-thread time spent capturing so far
        self.estimate: float | None = None  # stall of the last full snapshot

    def add_compute(self, seconds):
        self.compute += max(seconds, 0.0)

    def add_stall(self, seconds, full):
        self.stall += seconds
        if full:
            self.estimate = seconds if self.estimate is None else 0.5 * (self.estimate + seconds)

    def decide(self, epoch_seconds, writer_busy):
        """Decide at the start of an epoch; ``epoch_seconds`` is the last epoch's compute time (or None),
        ``writer_busy()`` asked only when the budget allows a snapshot. Returns (take, reason)."""
        if self.estimate is None:
            return (
                (False, "writer still busy")
                if writer_busy()
                else (True, "first snapshot: measuring its cost")
            )
        allowed = self.overhead * (self.compute + (epoch_seconds or 0.0))
        left = allowed - self.stall
        if self.estimate > left:
            return False, f"over budget (est. {self.estimate:.3g}s > {left:.3g}s left)"
        if writer_busy():
            return False, "writer still busy with the previous snapshot"
        return True, f"fits the budget (est. {self.estimate:.3g}s <= {left:.3g}s left)"
