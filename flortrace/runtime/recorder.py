"""Record mode: time epochs and blocks, discover changesets, snapshot within the overhead budget, keep logs.

Changesets come from two sources: the static effects of each loop body (names rebound and read later) and a
dynamic check on the first epochs, which fingerprints every state-like object the main frame can reach
before and after each block and epoch, so mutation through aliases (an optimizer stepping the model) is seen.
"""

from __future__ import annotations

import sys
import time
from time import perf_counter

from ..instrument import liveness
from ..replay.epochs import loop_names
from . import changeset, evidence, fidelity, frames
from .frames import MISSING
from .frames import lookup as _lookup
from .logvalues import log_row
from .output import OutputTap
from .policy import Policy
from .session import Session

DYNAMIC_EPOCHS = 2  # epochs whose blocks are fingerprinted to discover changesets
FLUSH_ROWS = 2000  # buffered catalog rows before a write
FLUSH_SECONDS = 2.0  # ... or seconds since the last write
# A loop over many items whose first "epoch" is this short is a loop over data (lines to tokenize, say), not
# over epochs: it is demoted, and its inner loops run untracked.
MIN_EPOCH_SECONDS = 5e-3
MANY_ITERATIONS = 10_000
# A loop that ran as a top loop this often already (a function called again and again from code flortrace
# does not see, such as a comprehension or a library) is no epoch loop unless it stepped an optimizer.
REPEATS = 3


class Recorder(Session):
    def __init__(self, catalog, run_id, writer, overhead, notify=None, epoch_loop=None):
        super().__init__()
        self.catalog, self.run_id, self.writer = catalog, run_id, writer
        self.policy = Policy(overhead)
        self.snapshots = overhead > 0  # --overhead 0: timings and sources only, so nothing to discover
        self.notify = notify or (lambda msg: None)
        self.loops = {}  # loop id -> LoopInfo, every instrumented loop
        self.kinds = {}  # loop id -> (kind, parent) for loops that ran as main or block
        self.main_items = set()  # (scope, name) of the main frame that epochs change
        self.block_items = {}  # loop id -> {(where, scope, name)}
        self.reasons = {}  # loop id -> {name: reason}
        self.warned = set()
        self._warned_names = set()
        self._rows = dict(epochs=[], blocks=[], decisions=[], logs=[])
        self._rows_count = 0
        self._flushed = perf_counter()
        self._new_loops = []
        self.main_runs = []
        self.epochs_done = 0
        self.checkpoints = 0
        self._snap = False  # this epoch got a checkpoint
        self._memos = []
        self._epoch_stall = 0.0
        self._main_fp = None
        self._top_fp = {}
        self._block_fp = {}
        self._taken = []  # (epoch, kind, loop id, changeset size when captured)
        self._last_compute = None
        self._memo_skips = []  # (loop id, reason) of the blocks of this epoch not memoized
        self._own = 0.0
        self._main_runs_dirty = False
        self._rows.update(layouts=[], digests=[], outputs=[])
        self.layouts = fidelity.Layouts()
        self.digest_seconds = 0.0  # time spent digesting epoch ends (charged to the budget as bookkeeping)
        self.tap = OutputTap(self._output_key)
        self._start = None  # (loop key, payload, problems, items, digest, fingerprints) taken when the latest
        # loop that may be the first main loop began (see _take_start); no reference to its frame
        self.evidence = evidence.Evidence()
        self._steps_at_main = 0
        self.epoch_loop = epoch_loop  # FILE:LINE of the only loop that may be a main loop, or None
        self.why = {}  # main loop id -> why it is the training loop
        self.not_main = {}  # loop id -> why a loop with loops inside is not an epoch loop
        self._pending_logs = None  # (top activation, iteration, rows) logged before the loop was main
        self.files = set()  # files of the project that were instrumented
        self.sources = {}  # their sources, by the file names loops carry
        self.live = {}  # main loop id -> names an epoch may read before writing them (None: all; liveness.py)
        self._modules = []  # names of the project's modules other than __main__
        self._modules_known = 0  # len(self.files) when _modules was computed

    # ---- instrumentation callback ---------------------------------------------------------------
    def register(self, loops, path=None):
        for info in loops:
            self.loops[info.id] = info
        if path is not None:
            self.files.add(path)

    def modules(self):
        """Names of the project's modules imported so far (their globals can hold training state)."""
        if self._modules_known != len(self.files):
            found = [
                name
                for name, m in list(sys.modules.items())
                if name != "__main__" and getattr(m, "__file__", None) in self.files
            ]
            if len(found) + 1 >= len(self.files):  # every file imported by now (one is the script)
                self._modules_known = len(self.files)
            self._modules = found
        return self._modules

    def _namespace(self, frame):
        own = frame.f_globals.get("__name__") == "__main__" or frame.f_globals.get("__file__") in self.files
        return changeset.namespace(frame, self.modules(), with_globals=own)

    # ---- epochs ---------------------------------------------------------------------------------
    def _discovering(self):
        """Changesets are still being discovered (fingerprints before and after epochs and blocks)."""
        return self.snapshots and self.epochs_done < DYNAMIC_EPOCHS

    def on_top_enter(self, act):
        # A top loop may turn out to be the main loop: fingerprint what its frame reaches before its first
        # iteration (first execution only), so epoch 0 is compared against the state before it.
        self.evidence.watch()
        if act.seq == 0 and self._discovering():
            self._top_fp[act] = changeset.fingerprints(self._namespace(act.frame))
        if act.seq == 0 and self.snapshots and not self.main_runs:
            self._take_start(act)

    def on_top_exit(self, act):
        self._top_fp.pop(act, None)

    def _take_start(self, act):
        """Capture what a loop that may turn out to be the first main loop reaches as it begins, so replay
        starts epoch 0 from the recorded state even when the set-up is unseeded. When nothing changed
        since the last loop's start (an evaluation pass before training), that capture is reused."""
        t0 = perf_counter()
        found = self._namespace(act.frame)
        marks = self._top_fp.get(act)
        if marks is None:
            marks = changeset.fingerprints(found)
        if self._start is not None and self._start[5] == marks:
            self._start = (_key(act), *self._start[1:])
        else:
            payload, problems = changeset.capture({("main", *key): obj for key, obj in found.items()})
            items = sorted(k for k in found if not any(p.startswith(f"{k[1]}:") for p in problems))
            self._start = (_key(act), payload, problems, items, fidelity.take(act.frame, items), marks)
        self.policy.add_fixed(perf_counter() - t0)

    def may_become_main(self, act):
        return act.seq < REPEATS or act.info.id in self.evidence.trained or self.epoch_loop is not None

    def transparent(self, act):
        return self.epoch_loop is not None and not _is_loop(act.info, self.epoch_loop)

    def keep_main(self, act):
        """At the end of a main loop's first epoch: is it the training loop, or a loop over data?"""
        if self.epoch_loop is not None:
            self.why[act.info.id] = f"chosen with epoch_loop = {self.epoch_loop}"
            return True
        steps = self.evidence.steps - self._steps_at_main
        if steps:
            self.evidence.trained.add(act.info.id)
            self.why[act.info.id] = f"{steps} optimizer step(s) in its first epoch"
            return True
        found = self._namespace(act.frame)
        if self.evidence.steps or self.evidence.optimizer_in(found):
            self.not_main[act.info.id] = (
                "an optimizer exists but steps in no iteration of it (a data, evaluation or sampling loop)"
            )
            return False
        before = self._main_fp  # what the frame reached when the epoch began
        if before is not None and "torch" in sys.modules:
            trainable = {k: o for k, o in found.items() if evidence.trainable(o)}
            if not changeset.changed(before, changeset.fingerprints(trainable)):
                self.not_main[act.info.id] = (
                    "its first iteration changes no model parameter (a loop over data)"
                )
                return False
        if (
            act.length or 0
        ) >= MANY_ITERATIONS and perf_counter() - act.started - self._own < MIN_EPOCH_SECONDS:
            self.not_main[act.info.id] = f"{act.length} iterations of under {MIN_EPOCH_SECONDS * 1e3:.0f} ms"
            return False
        self.why[act.info.id] = "its iterations run other loops (no optimizer seen)"
        return True

    def on_demoted(self, act):
        """Its first epoch showed it is no epoch loop (a loop over lines calling a tokenizer, say): forget
        it was a main loop; its iterations and inner loops now run untracked."""
        loop_id, epoch = act.info.id, self.epoch
        self.main_runs = [m for m in self.main_runs if (m["loop_id"], m["run"]) != (loop_id, act.seq)]
        for key, (_, parent) in list(self.kinds.items()):
            if key == loop_id or parent == loop_id:
                del self.kinds[key]
                self.block_items.pop(key, None)
                self.reasons.pop(key, None)
        self._rows["blocks"] = [r for r in self._rows["blocks"] if r[0] != epoch]
        self._rows["decisions"] = [r for r in self._rows["decisions"] if r[0] != epoch]
        self._rows["outputs"] = [r for r in self._rows["outputs"] if r[0] != epoch]
        self.tap.pop(epoch)
        for row in self._rows["logs"]:
            if row["epoch"] == epoch:
                row["epoch"] = row["step"] = None
        self._memos, self._snap, self._main_fp, self._memo_skips = [], False, None, []

    def on_main(self, act):
        t0 = perf_counter()
        info = act.info
        if info.id not in self.live:
            found = liveness.exposed(self.sources.get(info.file, ""), info.qualname, info.ordinal)
            if found is not None:
                found |= set(act.frame.f_code.co_cellvars) | info.effects.read_after
            self.live[info.id] = found
        self.kinds[act.info.id] = ("main", None)
        self._new_loops.append(act.info)
        self.main_runs.append(dict(loop_id=act.info.id, run=act.seq, base=act.base))
        self._main_runs_dirty = True
        self.evidence.watch()
        self._steps_at_main = self.evidence.steps
        if len(self.main_runs) == 1:
            self.tap.install()
        pending, self._pending_logs = self._pending_logs, None
        if pending is not None and pending[0] is act and pending[1] == act.index:
            for row in pending[2]:  # logged in this iteration before it was known to be an epoch
                row["epoch"], row["step"] = self.epoch, None
        if act.length is not None and not self.epochs_done:
            self.policy.spread_over(act.length - act.index)
        self._start_epoch(act)
        self._own = perf_counter() - t0  # our own time in this epoch, not the script's

    def on_epoch_start(self, act):
        t0 = perf_counter()
        self._start_epoch(act)
        self._own = perf_counter() - t0

    def _start_epoch(self, act):
        if self.writer.failed and "writer" not in self.warned:
            self.warned.add("writer")
            self.notify(f"checkpointing stopped, training goes on: {self.writer.failed}")
        self._epoch_stall = 0.0
        self._memos, self._memo_skips, self._snap = [], [], False
        self.policy.writer_time(self.writer.stats()["cpu_seconds"], self.writer.busy)
        if self._discovering():
            first = self._top_fp.pop(act, None) if act.index == 0 else None
            self._main_fp = first or changeset.fingerprints(self._namespace(act.frame))

    def on_epoch_end(self, act, last):
        now = perf_counter()
        epoch = self.epoch
        seconds = now - act.started
        compute = max(seconds - self._epoch_stall - self._own, 0.0)  # the script's own time in the epoch
        own, self._epoch_stall = self._own, 0.0
        if self._main_fp is not None:
            after = changeset.fingerprints(self._namespace(act.frame))
            body = act.info.effects
            for key in changeset.changed(self._main_fp, after):
                if (
                    key[0] == "local"
                    and frames.is_function_frame(act.frame)
                    and key[1] not in body.read | body.read_after
                ):
                    continue  # a local of the main loop's function that is dead after each epoch
                if self._dead(act, key):
                    continue  # every epoch writes it before it reads it
                self._add_main(key, "changed during an epoch")
            self._main_fp = None
        if self._discovering():
            body = act.info.effects
            for name in body.rebound & (body.read | body.read_after):
                scope, _ = _lookup(act.frame, name)
                if not self._dead(act, (scope, name)):
                    self._add_main((scope, name), "rebound in the epoch loop")
            self._invalidate()
        self._witness(act, epoch)
        discovering = self._discovering()
        self.policy.epoch_done(compute)  # before the checkpoint decision, which weighs this epoch too
        self._checkpoint(act, epoch, last)
        self._add("epochs", (epoch, act.info.id, act.index, time.time() - seconds, seconds))
        run = self.main_runs[-1] if self.main_runs else {}
        run["steps"] = self.evidence.steps - self._steps_at_main
        run["seconds"] = run.get("seconds", 0.0) + seconds
        run["epochs"] = run.get("epochs", 0) + 1
        self._last_compute = compute
        self.epochs_done += 1
        self._flush(force=self._snap or last)
        # _epoch_stall: the checkpoint's, charged with it; the discovery's fingerprints are paid once
        self.policy.add_own(own + perf_counter() - now - self._epoch_stall, one_off=discovering)

    def summary(self):
        """How many epochs the run has, as people count them: the training loop's, then the others'."""
        training = self._training_run()
        if training is None:
            return "no epoch loop"
        mains = self.main_runs
        names = dict(zip(map(id, mains), loop_names([(m["loop_id"], m["run"]) for m in mains]), strict=True))
        others = [f"{m.get('epochs', 0)} of {names[id(m)]}" for m in self.main_runs if m is not training]
        return f"{training.get('epochs', 0)} epochs" + (f" (and {', '.join(others)})" if others else "")

    def _training_run(self):
        """The main run people count epochs of: the one that stepped optimizers most, else the longest."""
        if not self.main_runs:
            return None
        return max(self.main_runs, key=lambda m: (m.get("steps", 0), m.get("seconds", 0.0)))

    def _witness(self, act, epoch):
        """What replay must reproduce at this epoch end: the digest of the loop-carried state and RNG states
        (and, the first time, of the state when the loop began), and what the epoch printed."""
        if self._start is not None and self._start[0] == _key(act):
            self._add_digest(act.base, "start", self._start[3], self._start[4])
        if self.snapshots:  # --overhead 0 promises nothing beyond timings: no digests either
            began = perf_counter()
            items = sorted({(scope, name) for _, scope, name in self._checkpoint_items()})
            self._add_digest(epoch, "end", items, fidelity.take(act.frame, items))
            self.digest_seconds += perf_counter() - began
        for (seq, stream), segment in self.tap.pop(epoch).items():
            self._add("outputs", (epoch, seq, stream, segment.text, segment.crc, segment.nbytes))

    def _add_digest(self, epoch, point, items, leaves):
        layout, row, values = self.layouts.encode(items, leaves)
        if row is not None:
            self._add("layouts", row)
        self._add("digests", (epoch, point, layout, values))

    def _output_key(self):
        if self.epoch is None:
            return None
        if len(self.stack) > 1 and self.stack[1].role == "block":
            return (self.epoch, self.stack[1].seq)
        return (self.epoch, -1)

    def _writer_behind(self):
        """Will the writer still be busy when this epoch ends? It usually is busy right now, with the last
        epoch's snapshot, but it has a whole epoch to finish it (judged from its measured times)."""
        if not self.writer.busy:
            return False
        stats = self.writer.stats()
        if not stats["jobs"]:  # nothing measured yet: behind only if already slower than an epoch
            return self.writer.in_flight() > (self._last_compute or 0.0)
        per_job = stats["seconds"] / stats["jobs"]
        return per_job - self.writer.in_flight() > (self._last_compute or 0.0)

    def _checkpoint_size(self):
        return len(self.main_items) + sum(
            1 for keys in self.block_items.values() for k in keys if k[0] == "main"
        )

    def _invalidate(self):
        """Snapshots taken while changesets were still being discovered are unusable if they grew since."""
        keep = []
        for epoch, kind, loop_id, size in self._taken:
            now = self._checkpoint_size() if kind == "checkpoint" else len(self.block_items.get(loop_id, ()))
            if now > size:
                self._decide(epoch, kind, loop_id, "invalid", "its changeset grew after it was taken")
            else:
                keep.append((epoch, kind, loop_id, size))
        self._taken = keep if self.epochs_done < DYNAMIC_EPOCHS else []

    def _start_snapshot(self, act):
        """The start snapshot of this main loop as a writer item, once (None when there is none to send)."""
        if self._start is None or self._start[0] != _key(act):
            return None
        _, payload, problems, _, _, _ = self._start
        self._warn(problems)
        self._start = None
        return dict(kind="start", loop_id=act.info.id, seq=act.seq, payload=payload, stall=0.0, partial=False)

    def _add_main(self, key, reason):
        if key not in self.main_items:
            self.main_items.add(key)
            self.reasons.setdefault("main", {})[key[1]] = reason

    def _checkpoint_items(self):
        """The (where, scope, name) items of a checkpoint: what epochs change, and what blocks change in the
        main loop's frame."""
        items = {("main", scope, name): None for scope, name in self.main_items}
        for keys in self.block_items.values():
            items.update({k: None for k in keys if k[0] == "main"})
        return {k: None for k in items if not (self.stack and self._dead(self.stack[0], k[1:]))}

    def _dead(self, act, key):
        """Whether the main loop's frame item ``(scope, name)`` is written by every epoch before it is read
        (its value at an epoch's end is never used): not worth a checkpoint or a comparison."""
        live = self.live.get(act.info.id)
        return live is not None and key[0] in ("local", "global") and key[1] not in live

    def _checkpoint(self, act, epoch, last):
        """Decide the epoch's checkpoint, then hand it over with the epoch's memos (and the start state)."""
        if not self.snapshots:
            self._decide(epoch, "snapshot", None, "skip", "no snapshots (--overhead 0)")
            return
        start = self._start_snapshot(act)
        take, reason = self.policy.checkpoint(last, self._writer_behind)
        if self.writer.failed:
            take, reason = False, f"checkpointing stopped: {self.writer.failed}"
        snaps = ([] if start is None else [start]) + [dict(m, kind="memo") for m in self._memos]
        if take:
            t0 = perf_counter()
            payload, problems = changeset.capture(
                _resolve(self._checkpoint_items(), {"main": act.frame}), alloc=self.writer.alloc
            )
            stall = perf_counter() - t0
            self._epoch_stall += stall
            self._warn(problems)
            snap = dict(kind="checkpoint", loop_id=act.info.id, seq=None, payload=payload, stall=stall)
            snaps.append(dict(snap, partial=bool(problems), problems=problems))
            if problems:
                take, reason = (
                    False,
                    f"cannot capture {', '.join(sorted({p.partition(':')[0] for p in problems}))}",
                )
        keep = []
        for snap in snaps:
            if snap.pop("partial"):
                if snap["kind"] != "checkpoint":
                    names = ", ".join(sorted({p.partition(":")[0] for p in snap["problems"]}))
                    self._decide(epoch, snap["kind"], snap["loop_id"], "skip", f"cannot capture {names}")
            else:
                keep.append(snap)
        action = "take" if take else "skip"
        if last and keep and self.writer.busy:
            self.writer.wait()
        t0 = perf_counter()
        taken = bool(keep) and self.writer.submit_many(keep, epoch=epoch, reason=reason if take else "memo")
        handover = perf_counter() - t0
        self._epoch_stall += handover
        stalls = [s["stall"] + handover / len(keep) for s in keep]
        if taken:
            self.checkpoints += 1
            self._snap = take
            if take:
                self.policy.checkpointed()
            self.policy.submitted([(s["kind"], s["loop_id"], st) for s, st in zip(keep, stalls, strict=True)])
            size = self._checkpoint_size()
            self._taken.extend((epoch, s["kind"], s["loop_id"], s.get("size", size)) for s in keep)
        elif keep:
            self.policy.dropped(sum(stalls))
            action = "dropped"
            reason = self.writer.failed or "writer still busy with the previous snapshot"
        sent = sum(1 for s in keep if s["kind"] == "memo") if taken else 0
        self._decide(epoch, "snapshot", None, action, reason + self._memo_summary(sent))
        self._memos = []

    def _memo_summary(self, sent):
        """What became of the epoch's memos (``sent`` of them were handed over), for its decision row."""
        if not self._memos and not self._memo_skips:
            return ""
        out = f"; memos: {sent} of {len(self._memos) + len(self._memo_skips)}"
        skips = "; ".join(f"{loop_id.rpartition(':')[2]} skipped: {why}" for loop_id, why in self._memo_skips)
        return out + (f" ({skips})" if skips else "")

    # ---- blocks -------------------------------------------------------------------------------
    def _block_candidates(self, act):
        main = self.stack[0].frame if self.stack else act.frame
        where = "main" if act.frame is main else "block"
        out = {
            (where, s, n): o for (s, n), o in changeset.resolve(act.frame, act.info.effects.changed()).items()
        }
        if self._discovering():  # all the main frame reaches: a block may change it through an alias
            out.update({("main", s, n): o for (s, n), o in self._namespace(main).items()})
        return out

    def on_block_enter(self, act, can_skip):
        t0 = perf_counter()
        if act.info.id not in self.kinds:
            self.kinds[act.info.id] = ("block", self.stack[0].info.id)
            self._new_loops.append(act.info)
        if self._discovering():
            self._block_fp[act] = changeset.fingerprints(self._block_candidates(act))
        act.started = perf_counter()
        self._own += act.started - t0
        return False

    def on_block_exit(self, act, skipped):
        t0 = perf_counter()
        seconds = t0 - act.started
        info = act.info
        keys = self.block_items.setdefault(info.id, set())
        before = self._block_fp.pop(act, None)
        main = self.stack[0].frame if self.stack else act.frame
        where = "main" if act.frame is main else "block"
        if before is not None:
            for key in changeset.changed(before, changeset.fingerprints(self._block_candidates(act))):
                if key[:2] == ("block", "local") and key[2] not in info.effects.read_after:
                    continue  # a local of the block's function that nothing reads after the loop
                if key not in keys:
                    keys.add(key)
                    self.reasons.setdefault(info.id, {})[key[2]] = "changed during the block"
        if before is not None:
            fx = info.effects
            for name in fx.rebound & (fx.read_after | fx.read):
                scope, _ = _lookup(act.frame, name)
                if (where, scope, name) not in keys:
                    keys.add((where, scope, name))
                    self.reasons.setdefault(info.id, {})[name] = "rebound in the block"
        stall = 0.0
        take = False
        if self.snapshots and self.epoch is not None and not self.writer.failed:
            take, why = self.policy.memo(info.id, seconds, self._writer_behind)
            if not take:
                self._memo_skips.append((info.id, why))
        if take:
            began = perf_counter()
            payload, problems = changeset.capture(
                _resolve({k: None for k in keys}, {"main": main, "block": act.frame}), alloc=self.writer.alloc
            )
            stall = perf_counter() - began
            self._epoch_stall += stall
            self._warn(problems)
            self._memos.append(
                dict(
                    loop_id=info.id,
                    seq=act.seq,
                    payload=payload,
                    stall=stall,
                    partial=bool(problems),
                    problems=problems,
                    size=len(keys),
                )
            )
        if self.epoch is not None:
            self._add("blocks", (self.epoch, info.id, act.seq, act.steps, seconds))
        self._own += perf_counter() - t0 - stall

    # ---- logs and catalog rows ---------------------------------------------------------------------
    def log(self, name, value, lineno=None, step=None):
        row = log_row(name, value, *self.position(), lineno, "record", step)
        self._add("logs", row)
        if row["epoch"] is None and self.stack and self.stack[0].role == "top" and self.stack[0].iterating:
            top = self.stack[0]
            if self._pending_logs is None or self._pending_logs[:2] != (top, top.index):
                self._pending_logs = (top, top.index, [])
            self._pending_logs[2].append(row)

    def _decide(self, epoch, kind, loop_id, action, reason):
        self._add("decisions", (epoch, kind, loop_id, action, reason))

    def _add(self, table, row):
        self._rows[table].append(row)
        self._rows_count += 1
        if self._rows_count >= FLUSH_ROWS:
            self._flush(force=True)

    def _flush(self, force=False):
        """Write buffered rows: at snapshots, every few seconds, and at the end (tiny epochs stay cheap)."""
        if not force and perf_counter() - self._flushed < FLUSH_SECONDS:
            return
        if self._main_runs_dirty:
            self.catalog.set_run_info(self.run_id, main_runs=self.main_runs)
            self._main_runs_dirty = False
        if self._new_loops:
            self.catalog.add_loops(self.run_id, [self._loop_row(i) for i in self._new_loops])
            self._new_loops = []
        if self._rows_count:
            self.catalog.add_progress(self.run_id, **self._rows)
            self._rows = {table: [] for table in self._rows}
            self._rows_count = 0
        self._flushed = perf_counter()

    def _loop_row(self, info):
        kind, parent = self.kinds.get(info.id, ("loop", None))
        return dict(
            loop_id=info.id,
            file=info.file,
            qualname=info.qualname,
            ordinal=info.ordinal,
            lineno=info.lineno,
            kind=kind,
            parent=parent,
        )

    def _warn(self, problems):
        """Say once per name what cannot be captured (its path may differ from one capture to the next)."""
        for p in problems:
            name = p.partition(":")[0]
            if name not in self._warned_names:
                self._warned_names.add(name)
                self.warned.add(p)
                self.notify(f"cannot snapshot {p}; epochs that need it will be re-executed on replay")

    # ---- end of run ------------------------------------------------------------------------------
    def finish(self):
        """Flush everything; called once when the script ends (any way but SIGKILL)."""
        self.tap.uninstall()
        self._new_loops = list(self.loops.values())
        self._flush(force=True)
        for loop_id, reasons in self.reasons.items():
            self.catalog.set_changeset(self.run_id, loop_id, sorted(reasons.items()))
        self.evidence.close()
        training = self._training_run()
        for m in self.main_runs:
            m["why"] = self.why.get(m["loop_id"], "")
            m["training"] = m is training
        info = {"digest_seconds": self.digest_seconds, "main_runs": self.main_runs, "not_main": self.not_main}
        if self.warned:
            info["warnings"] = sorted(self.warned)
        self.catalog.set_run_info(self.run_id, **info)


def _key(act):
    """A top loop's execution by name, so nothing kept about it holds its frame alive."""
    return act.info.id, act.seq


def _is_loop(info, where):
    """Whether the loop ``info`` is the one at ``where`` (FILE:LINE, FILE relative or a path's tail)."""
    file, _, line = where.rpartition(":")
    return (
        line.isdigit() and int(line) == info.lineno and (info.file == file or info.file.endswith("/" + file))
    )


def _resolve(keys, frames_by_where):
    """{(where, scope, name): obj} for the keys still bound to state-like objects."""
    out = {}
    local = {where: frames.locals_of(frame) for where, frame in frames_by_where.items()}
    for where, scope, name in keys:
        frame = frames_by_where.get(where)
        if frame is None:
            continue
        found_scope, obj = changeset.lookup(frame, scope, name, local[where])
        if obj is not MISSING and changeset._is_state(obj):
            out[(where, found_scope, name)] = obj
    return out


def stderr_notice(quiet):
    def notify(msg):
        if not quiet:
            print(f"flortrace: {msg}", file=sys.stderr)

    return notify
