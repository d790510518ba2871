"""Record mode: time epochs and blocks, discover changesets, snapshot within the overhead budget, keep logs.

Changesets come from two sources: the static effects of each loop body (names rebound and read later) and a
dynamic check on the first epochs, which fingerprints every state-like object the main frame can reach
before and after each block and epoch, so mutation through aliases (an optimizer stepping the model) is seen.
"""

from __future__ import annotations

import sys
import time
from time import perf_counter

from . import changeset
from .frames import MISSING
from .frames import lookup as _lookup
from .logvalues import typed
from .policy import Policy
from .session import Session

DYNAMIC_EPOCHS = 2  # epochs whose blocks are fingerprinted to discover changesets
FLUSH_ROWS = 500


class Recorder(Session):
    def __init__(self, catalog, run_id, writer, overhead, notify=None):
        super().__init__()
        self.catalog, self.run_id, self.writer = catalog, run_id, writer
        self.policy = Policy(overhead)
        self.notify = notify or (lambda msg: None)
        self.loops = {}  # loop id -> LoopInfo, every instrumented loop
        self.kinds = {}  # loop id -> (kind, parent) for loops that ran as main or block
        self.main_items = set()  # (scope, name) of the main frame that epochs change
        self.block_items = {}  # loop id -> {(where, scope, name)}
        self.reasons = {}  # loop id -> {name: reason}
        self.logs, self.warned = [], set()
        self.main_runs = []
        self.epochs_done = 0
        self.checkpoints = 0
        self._snap = False  # this epoch is snapshotted
        self._memos = []
        self._epoch_stall = 0.0
        self._main_fp = None
        self._block_fp = {}
        self._last_compute = None

    # ---- instrumentation callback ---------------------------------------------------------------
    def register(self, loops):
        for info in loops:
            self.loops[info.id] = info

    # ---- epochs ---------------------------------------------------------------------------------
    def on_main(self, act):
        self.kinds[act.info.id] = ("main", None)
        self.main_runs.append(dict(loop_id=act.info.id, run=act.seq, base=act.base))
        self.catalog.set_run_info(self.run_id, main_runs=self.main_runs)
        self._start_epoch(act)

    def on_epoch_start(self, act):
        self._start_epoch(act)

    def _start_epoch(self, act):
        self._epoch_stall = 0.0
        self._memos = []
        take, reason = self.policy.decide(self._last_compute, self.writer.busy)
        self._snap = take
        self.catalog.add_decision(self.run_id, self.epoch, "snapshot", None, "take" if take else "skip", reason)
        if self.epochs_done < DYNAMIC_EPOCHS:
            self._main_fp = changeset.fingerprints(changeset.namespace(act.frame))

    def on_epoch_end(self, act, last):
        now = perf_counter()
        epoch = self.epoch
        seconds = now - act.started
        if self._main_fp is not None:
            after = changeset.fingerprints(changeset.namespace(act.frame))
            for key in changeset.changed(self._main_fp, after):
                self._add_main(key, "changed during an epoch")
            self._main_fp = None
        body = act.info.effects
        for name in body.rebound & (body.read | body.read_after):
            scope, _ = _lookup(act.frame, name)
            self._add_main((scope, name), "rebound in the epoch loop")
        if self._snap or last:
            self._checkpoint(act, epoch, last)
        self.catalog.add_epoch(self.run_id, epoch, act.info.id, act.index, time.time() - seconds, seconds)
        self.policy.add_compute(seconds - self._epoch_stall)
        self._last_compute = seconds - self._epoch_stall
        self.epochs_done += 1
        self._flush_logs()

    def _add_main(self, key, reason):
        if key not in self.main_items:
            self.main_items.add(key)
            self.reasons.setdefault("main", {})[key[1]] = reason

    def _checkpoint(self, act, epoch, last):
        t0 = perf_counter()
        items = {("main", scope, name): None for scope, name in self.main_items}
        for keys in self.block_items.values():
            items.update({k: None for k in keys if k[0] == "main"})
        payload, problems = changeset.capture(_resolve(items, {"main": act.frame}))
        stall = perf_counter() - t0
        self._epoch_stall += stall
        self.policy.add_stall(stall + sum(m["stall"] for m in self._memos), full=True)
        self._warn(problems)
        reason = "last epoch" if last and not self._snap else "policy"
        snaps = [dict(m, kind="memo") for m in self._memos]
        snaps.append(dict(kind="checkpoint", loop_id=act.info.id, seq=None, payload=payload, stall=stall,
                          partial=bool(problems)))
        if last and self.writer.busy:
            self.writer.wait()
        if self.writer.submit_many(snaps, epoch=epoch, reason=reason):
            self.checkpoints += 1
        else:
            self.catalog.add_decision(self.run_id, epoch, "snapshot", None, "dropped", "writer busy or failed")
        self._memos = []

    # ---- blocks -------------------------------------------------------------------------------
    def _block_candidates(self, act):
        main = self.stack[0].frame if self.stack else act.frame
        where = "main" if act.frame is main else "block"
        out = {(where, s, n): o for (s, n), o in changeset.resolve(act.frame, act.info.effects.changed()).items()}
        if where == "block" and self.epochs_done < DYNAMIC_EPOCHS:
            out.update({("main", s, n): o for (s, n), o in changeset.namespace(main).items()})
        return out

    def on_block_enter(self, act, can_skip):
        if act.info.id not in self.kinds:
            self.kinds[act.info.id] = ("block", self.stack[0].info.id)
        if self.epochs_done < DYNAMIC_EPOCHS:
            self._block_fp[act] = changeset.fingerprints(self._block_candidates(act))
        act.started = perf_counter()
        return False

    def on_block_exit(self, act, skipped):
        seconds = perf_counter() - act.started
        info = act.info
        keys = self.block_items.setdefault(info.id, set())
        before = self._block_fp.pop(act, None)
        main = self.stack[0].frame if self.stack else act.frame
        where = "main" if act.frame is main else "block"
        if before is not None:
            for key in changeset.changed(before, changeset.fingerprints(self._block_candidates(act))):
                if key not in keys:
                    keys.add(key)
                    self.reasons.setdefault(info.id, {})[key[2]] = "changed during the block"
        fx = info.effects
        for name in fx.rebound & (fx.read_after | fx.read):
            scope, _ = _lookup(act.frame, name)
            if (where, scope, name) not in keys:
                keys.add((where, scope, name))
                self.reasons.setdefault(info.id, {})[name] = "rebound in the block"
        if self._snap and self.epoch is not None:
            t0 = perf_counter()
            payload, problems = changeset.capture(_resolve({k: None for k in keys}, {"main": main, "block": act.frame}))
            stall = perf_counter() - t0
            self._epoch_stall += stall
            self._warn(problems)
            self._memos.append(dict(loop_id=info.id, seq=act.seq, payload=payload, stall=stall, partial=bool(problems)))
        if self.epoch is not None:
            self.catalog.add_block(self.run_id, self.epoch, info.id, act.seq, act.steps, seconds)

    # ---- logs -----------------------------------------------------------------------------------
    def log(self, name, value, lineno=None):
        epoch, step, loop_id = self.position()
        vtype, val = typed(value)
        self.logs.append(dict(name=name, value=val, vtype=vtype, epoch=epoch, step=step, loop_id=loop_id,
                              lineno=lineno, origin="record", ts=time.time()))
        if len(self.logs) >= FLUSH_ROWS:
            self._flush_logs()

    def _flush_logs(self):
        if self.logs:
            self.catalog.add_logs(self.run_id, self.logs)
            self.logs = []

    def _warn(self, problems):
        for p in problems:
            if p not in self.warned:
                self.warned.add(p)
                self.notify(f"cannot snapshot {p}; epochs that need it will be re-executed on replay")

    # ---- end of run ------------------------------------------------------------------------------
    def finish(self):
        """Flush everything; called once when the script ends (any way but SIGKILL)."""
        self._flush_logs()
        rows = [
            dict(loop_id=i.id, file=i.file, qualname=i.qualname, ordinal=i.ordinal, lineno=i.lineno,
                 kind=self.kinds.get(i.id, ("loop", None))[0], parent=self.kinds.get(i.id, (None, None))[1])
            for i in self.loops.values()
        ]
        self.catalog.add_loops(self.run_id, rows)
        for loop_id, reasons in self.reasons.items():
            self.catalog.set_changeset(self.run_id, loop_id, sorted(reasons.items()))
        if self.warned:
            self.catalog.set_run_info(self.run_id, warnings=sorted(self.warned))


def _resolve(keys, frames_by_where):
    """{(where, scope, name): obj} for the keys still bound to state-like objects."""
    out = {}
    for where, scope, name in keys:
        frame = frames_by_where.get(where)
        if frame is None:
            continue
        found_scope, obj = _lookup(frame, name)
        if obj is not MISSING and changeset._is_state(obj):
            out[(where, found_scope, name)] = obj
    return out


def stderr_notice(quiet):
    def notify(msg):
        if not quiet:
            print(f"flortrace: {msg}", file=sys.stderr)

    return notify
