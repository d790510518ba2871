"""When to snapshot: keep what flortrace costs training under ``overhead`` times its compute time.

Every cost is measured as it happens and charged: the training-thread time of each capture and hand-over
(stall), the CPU time the writer process spends on each job (weighted by the share of the machine it takes
from training: all of it on 2 cores, little on 16; its waits for the disk cost training nothing), and
flortrace's other training-thread time (bookkeeping, the fidelity digest of every epoch end).

One-off costs (start-up, the state taken when the first main loop begins, the dynamic discovery of the
first epochs, the first job, which also warms the shared memory) are paid once: spread evenly over the
epochs of the main loop when its length is known, and never more than half of an epoch's allowance, so they
do not starve the first epochs of a short run (a run too short to pay them all ends over budget by what is
left: sunk costs that no decision could save).

Decisions, in the order they get the budget:

- A memo of a block (taken at the block's exit) follows Flor's rule: worth it when its measured cost M is
  small against the block's compute time C (M <= overhead * C), never when M >= C (restoring it would cost
  about as much as running the block), and only while the budget has room. The first execution of a block
  is memoized to measure M, unless the block runs under ``MIN_BLOCK`` seconds.
- The checkpoint at an epoch end is always taken at the last epoch. Otherwise it is taken every ``spacing``
  epochs, where ``spacing`` is the fewest epochs whose allowance pays for one checkpoint on top of what
  memos and bookkeeping use; it is set from the first measured costs and kept until the cost ratio moves by
  more than ``RESPACE`` times, so the same script on the same machine takes the same number of checkpoints
  whatever the load.
- A snapshot whose estimated cost is at most ``CHEAP`` of an epoch's allowance is always taken, unless the
  run is already more than one epoch's allowance over its budget.
- Nothing is captured while the writer is behind (it would still be busy when the epoch ends).

Estimates are medians of the last measured costs of the same snapshot (same block, or the checkpoint), so a
stall caused by a burst of load does not change the decisions that follow.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import deque

CHEAP = 0.25  # of an epoch's allowance: a snapshot this cheap is always taken
MIN_BLOCK = 1e-3  # seconds: a block faster than this runs faster than its memo restores
RESPACE = 2.0  # the checkpoint spacing is recomputed when the cost ratio moves by this factor
HISTORY = 5  # measured costs kept per snapshot for its estimate
DEBT_SHARE = 0.5  # of an epoch's allowance: the most one-off costs take from it


class Policy:
    def __init__(self, overhead: float, cores: int | None = None):
        self.overhead = overhead
        self.share = 1.0 / max((cores or os.cpu_count() or 1) - 1, 1)
        self.compute = 0.0  # the script's own time in finished epochs
        self.spent = 0.0  # everything charged so far
        self.debt = 0.0  # one-off costs not charged yet
        self._parts: int | None = None  # epochs left to charge the debt over (None: unknown)
        self.epochs = 0
        self._epoch_compute: deque = deque(maxlen=HISTORY)
        self._costs: dict[tuple, deque] = {}  # (kind, loop id) -> last measured costs
        self._waiting: list[tuple[list, bool]] = []  # jobs whose writer time has not come: (items, first)
        self._writer_seen = 0.0  # writer CPU seconds accounted for
        self._bookkeeping: deque = deque(maxlen=HISTORY)  # per epoch: training-thread time but snapshots
        self._epoch_own = 0.0  # this epoch's so far
        self._first = True  # the next job is the first: measuring, paid once
        self.spacing: int | None = None
        self._spaced_at: float | None = None  # the cost ratio the spacing was computed from
        self.since_checkpoint = 0

    # ---- what the recorder reports -------------------------------------------------------------
    def add_fixed(self, seconds: float) -> None:
        """A one-off cost (start-up, the state taken when the main loop begins), paid over the epochs."""
        self.debt += max(seconds, 0.0)

    def spread_over(self, epochs: int) -> None:
        """The main loop has ``epochs`` epochs left: the one-off costs are paid in that many parts."""
        self._parts = max(int(epochs), 1)

    def add_own(self, seconds: float, one_off: bool = False) -> None:
        """Training-thread time flortrace spent on anything but snapshots (``one_off``: discovery)."""
        seconds = max(seconds, 0.0)
        if one_off:
            self.debt += seconds
        else:
            self.spent += seconds
            self._epoch_own += seconds

    def submitted(self, items: list[tuple[str, str | None, float]]) -> None:
        """A job was handed to the writer: (kind, loop id, stall) of each snapshot in it. Its stall is
        charged now, its writer time when the writer has done it (``writer_time``)."""
        stalls = sum(stall for _, _, stall in items)
        if self._first:
            self.debt += stalls
        else:
            self.spent += stalls
        self._waiting.append((list(items), self._first))
        self._first = False

    def dropped(self, stall: float) -> None:
        """Captures were made for nothing (the writer refused the job): their stall is still spent."""
        self.spent += stall

    def writer_time(self, cpu_seconds: float, busy: bool) -> None:
        """The writer has used ``cpu_seconds`` of CPU in all; ``busy``: a job is still in flight. The time
        of finished jobs is charged and shared among their snapshots in proportion to their stalls."""
        delta = max(cpu_seconds - self._writer_seen, 0.0)
        done = self._waiting[:-1] if busy else self._waiting
        if not done:
            return
        self._writer_seen = cpu_seconds
        weighted = delta * self.share
        items = [item for job_items, _ in done for item in job_items]
        stalls = sum(stall for _, _, stall in items) or 1.0
        for kind, loop_id, stall in items:
            self._measured((kind, loop_id if kind == "memo" else None), stall + weighted * stall / stalls)
        if any(first for _, first in done):
            self.debt += weighted
        else:
            self.spent += weighted
        self._waiting = self._waiting[len(done) :]

    def epoch_done(self, compute: float) -> None:
        """An epoch ended, with ``compute`` seconds of the script's own time; a part of the debt is paid."""
        compute = max(compute, 0.0)
        self.compute += compute
        self._epoch_compute.append(compute)
        if self.debt:
            part = self.debt / self._parts if self._parts else self.debt
            part = min(part, DEBT_SHARE * self.overhead * compute)
            if self._parts:
                self._parts = max(self._parts - 1, 1)
            self.debt -= part
            self.spent += part
        self._bookkeeping.append(self._epoch_own)
        self._epoch_own = 0.0
        self.epochs += 1
        self.since_checkpoint += 1

    # ---- decisions -------------------------------------------------------------------------------
    def memo(self, loop_id: str, seconds: float, writer_behind) -> tuple[bool, str]:
        """Whether to memoize the block ``loop_id`` that just ran ``seconds``; (take, reason)."""
        if not self.overhead:
            return False, "no snapshots (--overhead 0)"
        cost = self.estimate("memo", loop_id)
        if cost is None:
            if seconds < MIN_BLOCK:
                return False, f"block too fast to be worth a memo ({_ms(seconds)})"
            return self._unless_behind(writer_behind, "first memo of this block: measuring its cost")
        if cost >= seconds:
            return False, f"restoring would cost about as much as running it ({_ms(cost)} vs {_ms(seconds)})"
        allowance = self.allowance()
        if cost <= CHEAP * allowance and self.balance() > -allowance:
            return self._unless_behind(
                writer_behind, f"cheap ({_ms(cost)}, {_pct(cost, seconds)} of the block)"
            )
        if cost > self.overhead * seconds:
            return False, f"costs {_pct(cost, seconds)} of the block, over the {self.overhead:.0%} budget"
        if cost > self.balance() + allowance:
            return False, f"over budget (est. {_ms(cost)}, {_ms(self.balance() + allowance)} left)"
        return self._unless_behind(writer_behind, f"fits ({_ms(cost)}, {_pct(cost, seconds)} of the block)")

    def checkpoint(self, last: bool, writer_behind) -> tuple[bool, str]:
        """Whether to checkpoint the epoch that is ending (``last``: the main loop's last); (take, reason).
        Called after ``epoch_done`` for that epoch."""
        if not self.overhead:
            return False, "no snapshots (--overhead 0)"
        if last:
            return True, "last epoch of the main loop: always checkpointed"
        cost = self.estimate("checkpoint", None)
        if cost is None:
            return self._unless_behind(writer_behind, "first checkpoint: measuring its cost")
        allowance = self.allowance()
        if cost <= CHEAP * allowance and self.balance() > -allowance:
            return self._unless_behind(
                writer_behind, f"cheap ({_ms(cost)}, {_pct(cost, allowance)} of an epoch's budget)"
            )
        spacing = self._spacing(cost, allowance)
        if spacing is None:
            return False, "memos and bookkeeping use the whole budget"
        if self.since_checkpoint < spacing:
            return False, f"one checkpoint every {spacing} epochs (est. {_ms(cost)})"
        if cost > self.balance() + allowance:
            return False, f"over budget (est. {_ms(cost)}, {_ms(max(self.balance(), 0.0))} left)"
        return self._unless_behind(writer_behind, f"every {spacing} epochs (est. {_ms(cost)})")

    def checkpointed(self) -> None:
        self.since_checkpoint = 0

    # ---- estimates -------------------------------------------------------------------------------
    def estimate(self, kind: str, loop_id: str | None) -> float | None:
        """The median of the last measured costs of this snapshot (stall and weighted writer time)."""
        costs = self._costs.get((kind, loop_id))
        return statistics.median(costs) if costs else None

    def allowance(self) -> float:
        """What one epoch may spend: ``overhead`` times the median compute time of the last epochs."""
        epoch = statistics.median(self._epoch_compute) if self._epoch_compute else 0.0
        return self.overhead * epoch

    def balance(self) -> float:
        """Budget left: ``overhead`` times compute so far, less what was spent."""
        return self.overhead * self.compute - self.spent

    def _spacing(self, cost: float, allowance: float) -> int | None:
        """Epochs between checkpoints: the fewest whose allowance, less what bookkeeping and the memos of
        every block cost, pays for one; None when nothing is left."""
        memos = sum(statistics.median(c) for (kind, _), c in self._costs.items() if kind == "memo")
        free = allowance - (statistics.median(self._bookkeeping) if self._bookkeeping else 0.0) - memos
        if free <= 0:
            return None
        ratio = cost / free
        if self.spacing is None or not (1 / RESPACE <= ratio / self._spaced_at <= RESPACE):
            self.spacing, self._spaced_at = max(1, math.ceil(ratio)), ratio
        return self.spacing

    def _measured(self, key: tuple, cost: float) -> None:
        self._costs.setdefault(key, deque(maxlen=HISTORY)).append(cost)

    @staticmethod
    def _unless_behind(writer_behind, reason: str) -> tuple[bool, str]:
        if writer_behind():
            return False, "writer still busy with the previous snapshot"
        return True, reason


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole > 0 else "all"
