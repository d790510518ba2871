"""Replay mode: answer the hooks from a plan. Skip epochs, restore checkpoints, skip blocks with memos.

The main loop's iterable is still consumed element by element (so ``for epoch in range(n)`` binds the
right value), but the body only runs for the epochs the plan executes. After the last of them the final
checkpoint is restored so code after the loop sees the recorded end state.
"""

from __future__ import annotations

import math

from .. import state
from ..store import CorruptBlob
from . import changeset
from .logvalues import log_row
from .session import Session


class Replayer(Session):
    def __init__(self, plan, load, catalog, run_id, tolerance=0.0, notify=None, keep_unnumbered=True):
        super().__init__()
        self.keep_unnumbered = keep_unnumbered  # rows logged outside epochs (one worker of many keeps them)
        self._settings_applied = False
        self.plan, self.load, self.catalog, self.run_id = plan, load, catalog, run_id
        self.tolerance = tolerance
        self.notify = notify or (lambda msg: None)
        self.recorded = plan.recorded_logs  # (name, epoch, step, k) -> value
        self.seen = {}
        self.rows, self.divergences = [], []
        self.executed_epochs, self.skipped_blocks, self.run_blocks = [], 0, 0

    def register(self, loops):
        """Loops of the edited source; the plan already knows them."""

    # ---- the main loop ---------------------------------------------------------------------------
    def on_top_enter(self, act):
        if act.whileloop:  # a recorded `while` epoch loop runs every epoch; numbering comes from the record
            main = self.plan.main_run(act.info.id, act.seq)
            if main is not None:
                act.main, act.base, act.first = True, main.base, -1

    def may_become_main(self, act):
        return False  # main loops come from the recording (drive_top), never from what runs now

    def drive_top(self, act, iterable):
        main = self.plan.main_run(act.info.id, act.seq)
        return None if main is None else self._epochs(act, main, iter(iterable))

    def _epochs(self, act, main, it):
        act.main, act.base, act.first = True, main.base, -1
        if not self._settings_applied and self.plan.torch_settings:
            state.apply_torch_settings(self.plan.torch_settings)  # same threads and flags as the recording
            self._settings_applied = True
        position = 0  # index of the next element of `it`
        live = -1  # the iteration whose end state the frame holds (-1: the state before the loop)
        for i in self.plan.epochs_to_run(main):
            while live != i - 1:
                start = self.plan.start_for(main, i, live)
                if start <= live:
                    break  # no checkpoint helps: run on from the live state
                payload = self._load(self.plan.checkpoints[main.base + start])
                if payload is None:
                    del self.plan.checkpoints[main.base + start]  # damaged: look for an earlier one
                    continue
                position = _skip(it, position, start + 1)
                changeset.restore(payload, {"main": act.frame})
                live = start
            while live < i:
                j = live + 1
                position = _skip(it, position, j)
                try:
                    x = next(it)
                except StopIteration:
                    return
                position += 1
                act.index = j - 1
                self._begin_iteration(act)
                self.executed_epochs.append(main.base + j)
                yield x
                self._end_iteration(act, last=False)
                live = j
        final = main.count - 1
        if live < final and self.plan.has_checkpoint(main.base + final):
            payload = self._load(self.plan.checkpoints[main.base + final])
            if payload is not None:
                changeset.restore(payload, {"main": act.frame})

    def _load(self, manifest):
        """A snapshot's payload, or None (with a notice) when the store finds it damaged."""
        try:
            return self.load(manifest)
        except CorruptBlob as exc:
            self.notify(f"{exc}; replaying without that snapshot")
            return None

    # ---- blocks -------------------------------------------------------------------------------
    def on_block_enter(self, act, can_skip):
        if self.epoch is None:
            return False
        memo = self.plan.memo_for(self.epoch, act.info.id, act.seq)
        if can_skip and memo is not None and not self.plan.is_probe(act.info.id):
            payload = self._load(memo)
            if payload is not None:
                changeset.restore(payload, {"main": self.stack[0].frame, "block": act.frame})
                self.skipped_blocks += 1
                return True
        self.run_blocks += 1
        return False

    def breakpoint(self, frame):
        """``flortrace.breakpoint()`` or ``breakpoint()`` during replay: open the console at ``frame``."""
        from ..console import break_into

        break_into(self, frame)

    # ---- logs and fidelity ----------------------------------------------------------------------
    def log(self, name, value, lineno=None):
        epoch, step, loop_id = self.position()
        row = log_row(name, value, epoch, step, loop_id, lineno, "replay")
        k = self.seen.get((name, epoch, step), 0)
        self.seen[(name, epoch, step)] = k + 1
        key = (name, epoch, step, k)
        if key in self.recorded:
            old, new = self.recorded[key], row["value"]
            if not _same(old, new, self.tolerance):
                self.divergences.append(dict(epoch=epoch, step=step, name=name, recorded=old, replayed=new))
            return
        if epoch is None and not self.keep_unnumbered:
            return
        if name in self.plan.recorded_names or (epoch is not None and epoch not in self.plan.selected):
            return  # catch-up epochs run only to reach a selected one
        self.rows.append(row)

    def finish(self):
        """Replace the replayed rows of the epochs this replay ran (and those outside epochs) by its own."""
        unnumbered = [None] if self.keep_unnumbered else []
        ran = sorted(set(self.executed_epochs) & self.plan.selected)
        self.catalog.delete_logs(self.run_id, "replay", [*ran, *unnumbered])
        if self.rows:
            self.catalog.add_logs(self.run_id, self.rows)


def _skip(it, position, target):
    while position < target:
        next(it)
        position += 1
    return position


def _same(a, b, tolerance):
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance) if tolerance else False
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(_same(x, y, tolerance) for x, y in zip(a, b, strict=True))
    return False
