"""Time travel for the replay console: drive the main loop to the top of any epoch and stop there.

The replayer runs the epochs a plan selects, in order. Here a driver (the console) says where to go: the
session restores the nearest checkpoint before the target epoch, or the state it captured when the loop
started, rolls forward with blocks restored from their memos, binds the loop variable to the target's element
and hands the frame to the driver. Going back re-creates the loop's iterator from its iterable (``iter()``
again), which a one-shot iterator such as a generator cannot do. ``step S`` runs the target epoch's first
block live and stops at the top of its step S.
"""

from __future__ import annotations

import ast
import linecache
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from time import perf_counter

from . import changeset, frames
from .replayer import Replayer

_ELEMENT = "__flortrace_element__"
NOTICE_SECONDS = 1.0  # live work a jump cannot avoid is said from this long on


class TravelError(Exception):
    """A position the session cannot reach from here; the message says why."""


@dataclass
class Goto:
    """Stop at the top of ``epoch`` (or at the top of step ``step`` of its first block)."""

    epoch: int
    step: int | None = None


@dataclass
class Sweep:
    """Call ``visit(epoch, frame)`` at the top of each of ``epochs`` (those still to visit, in order), then
    stop at the top of the last one."""

    epochs: list[int]
    visit: object

    @property
    def epoch(self):
        return self.epochs[0]


class _Exhausted(Exception):
    """The main loop's iterator ended before the element asked for."""


class _Loop:
    """The main loop being driven: its iterator, how far it was consumed, and which state the frame holds."""

    def __init__(self, act, main, iterable, it):
        self.act, self.main, self.iterable, self.it = act, main, iterable, it
        self.position = 0  # elements consumed from `it`
        self.live = -1  # local epoch whose end state the frame holds (-1: the state before the loop)
        self.running = False  # an epoch body is running (the frame is between epochs `live` and `live + 1`)
        self.pending = None  # (index, element) consumed for a stop at the top of `index`, not run yet
        self.before = None  # pickled payload of the state before the first epoch (None: not captured)
        self.kept = False  # that state was captured (on leaving it for the first time)
        self.unbound = []  # state names not bound before the loop (unbound again when going back there)
        self.problems = []
        self.bind = None  # binds the loop's target to an element (None: unknown target)

    @property
    def one_shot(self):
        return isinstance(self.iterable, Iterator)


class TimeTravel(Replayer):
    """A replayer whose main loop goes where its driver asks.

    The driver provides ``stop(frame, banner)`` (an interactive stop; it may call ``goto``/``sweep``),
    ``stop_at_next_line(frame, banner)``, ``break_at(frame)`` and ``wants_live(frame)`` (True when a block
    must run instead of being restored from its memo, e.g. while the user steps through it).
    """

    def __init__(self, plan, load, catalog, run_id, notify=None):
        super().__init__(plan, load, catalog, run_id, notify=notify)
        self.loop: _Loop | None = None
        self.request: Goto | Sweep | None = None
        self.infos = {}  # loop id -> LoopInfo of the running source
        self.finished = set()  # (loop id, run) of main loops that have ended
        self.started = False
        self._step = None  # (epoch, step) to stop at in that epoch's first block
        self._asked = None  # when the driver asked for the position being travelled to
        self._cutting = False  # leaving the running epoch: its live block stops early, its memo ends it
        self._cut = []  # blocks cut short, whose memo restores the state at their end

    def register(self, loops, path=None):
        for info in loops:
            self.infos[info.id] = info

    @property
    def heading(self):
        """True while travelling to a requested position: no stops, blocks restored from memos."""
        return self.request is not None

    @property
    def destination(self):
        """The epoch a jump is on its way to (a stop on the way: a breakpoint, Ctrl-C), else None."""
        if self.request is not None:
            return self.request.epoch
        return None if self._step is None else self._step[0]

    @property
    def epoch_count(self):
        return len(self.plan.epoch_seconds)

    # ---- what the driver asks for --------------------------------------------------------------
    def goto(self, epoch, step=None):
        """Travel to the top of ``epoch`` (of its first block's step ``step``); TravelError if impossible."""
        self._check(epoch)
        if step is not None:
            self._check_step(epoch, step)
        self.request = Goto(epoch, step)
        self._announce(epoch)

    def sweep(self, epochs, visit):
        """Visit the top of each epoch (sorted) with ``visit(epoch, frame)``, then stop at the last one."""
        epochs = sorted(set(epochs))
        if not epochs:
            raise TravelError("no epochs selected")
        for e in epochs:
            self._check(e)
        self.request = Sweep(epochs, visit)
        self._announce(epochs[0])

    def breakpoint(self, frame):
        """``flortrace.breakpoint()`` / ``breakpoint()``: stop here unless travelling."""
        if self.driver is not None and not self.heading:
            self.driver.break_at(frame)

    def current_epoch(self):
        """The epoch whose top the loop stopped at, else the one running (None outside epochs)."""
        loop = self.loop
        if loop is not None and loop.pending is not None:
            return loop.main.base + loop.pending[0]
        return self.epoch

    def main_of(self, epoch):
        for m in self.plan.mains:
            if m.base <= epoch < m.base + m.count:
                return m
        return None

    def _check(self, epoch):
        m = self.main_of(epoch)
        if m is None:
            raise TravelError(f"no epoch {epoch} in run {self.run_id} (epochs 0..{self.epoch_count - 1})")
        if (m.loop_id, m.run) in self.finished:
            raise TravelError(
                f"epoch {epoch} belongs to the main loop {m.loop_id}, which has ended; "
                "restart the console to go back there"
            )
        loop = self.loop
        if loop is None or loop.main is not m:
            return
        i = epoch - m.base
        if loop.one_shot and self._rewinds(loop, i):
            raise TravelError(
                f"cannot go back to epoch {epoch}: the main loop iterates over a one-shot "
                f"{type(loop.iterable).__name__}, which cannot start again; restart the console"
            )
        if self._start(loop, i, loop.live + loop.running) is None:
            raise TravelError(
                f"cannot go back to epoch {epoch}: no checkpoint before it, and the state before "
                f"the loop could not be captured ({'; '.join(loop.problems)})"
            )

    def _check_step(self, epoch, step):
        blocks = [b for b in self.catalog.blocks(self.run_id, epoch) if b["seq"] == 0]
        if not blocks:
            raise TravelError(f"epoch {epoch} ran no block in the recording")
        steps = blocks[0]["steps"]
        if not 0 <= step < steps:
            raise TravelError(
                f"the first block of epoch {epoch} ({blocks[0]['loop_id']}) ran {steps} step(s)"
            )

    # ---- the main loop ---------------------------------------------------------------------------
    def drive_top(self, act, iterable):
        main = self.plan.main_run(act.info.id, act.seq)
        if main is None or self.driver is None:
            return super().drive_top(act, iterable)
        return self._travel(act, main, iterable)

    def _travel(self, act, main, iterable):
        act.main, act.base = True, main.base
        self._apply_settings()
        self._begin_main(act, main)
        loop = self.loop = _Loop(act, main, iterable, iter(iterable))
        loop.bind = target_binder(act.frame, act.info)
        if not self.started:
            self.started = True
            if self.request is None:
                self.request = Goto(main.base)
        try:
            yield from self._drive(loop)
        finally:
            self.loop = None
            self.finished.add((main.loop_id, main.run))

    def _drive(self, loop):
        act, main = loop.act, loop.main
        while True:
            req = self.request
            if req is not None and self.main_of(req.epoch) is not main:
                yield from self._leave(loop)  # the target is in a later main loop
                return
            if req is not None:
                epoch = req.epoch
                i = epoch - main.base
                try:
                    how = yield from self._reach(loop, i)
                except _Exhausted:
                    self.request = None
                    self.notify(f"the main loop ended before epoch {epoch}")
                    continue
                if self.request is not req:  # the driver asked for another place on the way
                    continue
                if isinstance(req, Sweep):
                    req.visit(epoch, act.frame)
                    req.epochs.pop(0)
                    if req.epochs:
                        continue
                self.request = None
                if isinstance(req, Goto) and req.step is not None:
                    self._step = (epoch, req.step)
                    yield from self._run(loop, i, self._element(loop, i))
                    if self._step is not None:
                        self._step = None
                        self.notify(f"epoch {epoch} ended before its first block reached step {req.step}")
                    continue
                self.driver.stop(act.frame, f"top of epoch {epoch} ({how})")
                if self.request is None:
                    yield from self._run(loop, i, self._element(loop, i))
                continue
            j = loop.live + 1
            try:
                if j >= main.count:
                    raise _Exhausted
                x = self._element(loop, j)
            except _Exhausted:
                last = main.base + loop.live
                self.driver.stop(
                    act.frame,
                    f"end of the main loop {main.loop_id} after epoch {last}; "
                    "`c` runs the rest of the script",
                )
                if self.request is None:
                    return
                continue
            yield from self._run(loop, j, x)

    def _run(self, loop, j, x):
        """Run epoch ``j`` (local index) on element ``x``."""
        self._keep_before(loop)
        act = loop.act
        act.index = j - 1
        self._begin_iteration(act)
        loop.running = True
        yield x
        loop.running = False
        self._end_iteration(act, last=False)
        loop.live = j

    def _reach(self, loop, i):
        """Bring the frame to the top of local epoch ``i``, yielding the epochs it replays; returns how."""
        t0, self._asked = self._asked or perf_counter(), None  # from the command on: leaving included
        req = self.request
        base, frame = loop.main.base, loop.act.frame
        while True:
            start = self._start(loop, i, loop.live)
            if start is None:
                raise TravelError(f"epoch {base + i} cannot be reached: a checkpoint it needs is damaged")
            kind, k = start
            if kind != "checkpoint":
                break
            payload = self._load(self.plan.checkpoints[base + k])
            if payload is not None:
                break
            del self.plan.checkpoints[base + k]  # damaged (the store said so): look for an earlier one
        self._seek(loop, k + 1)  # before restoring: advancing the iterator may use the RNG the restore sets
        if kind == "checkpoint":
            self._keep_before(loop)
            changeset.restore(payload, {"main": frame})
            loop.live = k
        elif kind == "before":
            changeset.restore(pickle.loads(loop.before), {"main": frame})
            if not frames.is_function_frame(frame):
                for name in loop.unbound:
                    frame.f_globals.pop(name, None)
            loop.live = -1
        ran, memos = 0, self.skipped_blocks
        while loop.live < i - 1:
            if self.request is not req:
                return None
            j = loop.live + 1
            yield from self._run(loop, j, self._element(loop, j))
            ran += 1
        x = self._element(loop, i)
        loop.pending = (i, x)
        if loop.bind is not None:
            loop.bind(x)
        parts = []
        if kind == "checkpoint":
            parts.append(f"restored the checkpoint after epoch {base + k}")
        elif kind == "before":
            parts.append("restored the state before the loop")
        if ran:
            memo = self.skipped_blocks - memos
            parts.append(
                f"replayed {_span(base + i - ran, base + i - 1)}"
                + (f" with {memo} block(s) from memos" if memo else "")
            )
        if not parts:
            return "state before the loop" if i == 0 else f"state after epoch {base + i - 1}"
        return ", ".join(parts) + f"; {perf_counter() - t0:.2f}s"

    def _start(self, loop, i, live):
        """Where the state for the top of local epoch ``i`` comes from: ('live'|'checkpoint'|'before', k)."""
        base = loop.main.base
        best = next((c for c in range(i - 1, -1, -1) if base + c in self.plan.checkpoints), None)
        if live <= i - 1 and (best is None or live >= best):
            return "live", live
        if best is not None:
            return "checkpoint", best
        if loop.before is not None:
            return "before", -1
        return None

    def _rewinds(self, loop, i):
        return loop.position > i and not (loop.pending is not None and loop.pending[0] == i)

    def _seek(self, loop, k):
        """Position the iterator so that element ``k`` comes next (restarting it when it is past ``k``)."""
        if loop.pending is not None:
            if loop.pending[0] == k:
                return
            loop.pending = None
        if loop.position > k:
            loop.it = iter(loop.iterable)
            loop.position = 0
        try:
            while loop.position < k:
                next(loop.it)
                loop.position += 1
        except StopIteration:
            raise _Exhausted from None

    def _element(self, loop, k):
        self._seek(loop, k)
        if loop.pending is not None:
            x, loop.pending = loop.pending[1], None
            return x
        try:
            x = next(loop.it)
        except StopIteration:
            raise _Exhausted from None
        loop.position += 1
        return x

    def _leave(self, loop):
        """Finish this main loop quickly: restore its last checkpoint, or run the rest of its epochs."""
        final = loop.main.count - 1
        if loop.live < final and self.plan.has_checkpoint(loop.main.base + final):
            payload = self._load(self.plan.checkpoints[loop.main.base + final])
            if payload is not None:
                self._keep_before(loop)
                changeset.restore(payload, {"main": loop.act.frame})
                return
        while loop.live < final:
            try:
                x = self._element(loop, loop.live + 1)
            except _Exhausted:
                return
            yield from self._run(loop, loop.live + 1, x)

    def _keep_before(self, loop):
        """Capture the loop-carried state as it is before the first epoch, when the frame first leaves it (so
        the top of the first epoch can be visited again)."""
        if loop.kept or loop.live != -1:
            return
        loop.kept = True
        frame = loop.act.frame
        names = {name for pairs in self.catalog.changesets(self.run_id).values() for name, _ in pairs}
        if not names:  # a run killed before it wrote its changesets: the first checkpoint knows them
            first = min((e for e in self.plan.checkpoints if loop.main.base <= e), default=None)
            payload = None if first is None else self._load(self.plan.checkpoints[first])
            if payload is not None:
                names = {name for _, _, name, _ in payload["names"]}
        found = changeset.resolve(frame, sorted(names)) if names else changeset.namespace(frame)
        loop.unbound = [n for n in sorted(names) if frames.lookup(frame, n)[1] is frames.MISSING]
        payload, loop.problems = changeset.capture({("main", *key): obj for key, obj in found.items()})
        if not loop.problems:
            loop.before = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    # ---- blocks ---------------------------------------------------------------------------------
    def on_block_enter(self, act, can_skip):
        if self.driver is not None and self.epoch is not None and not self.heading:
            if self._armed(act) or self.driver.wants_live(act.frame):
                self._match_block(act)
                self.run_blocks += 1
                return False
        return super().on_block_enter(act, can_skip)

    def _armed(self, act):
        return self._step is not None and act.seq == 0 and self._step[0] == self.epoch

    def _block(self, iterable, act):
        inner = super()._block(iterable, act)
        if self._armed(act):
            inner = self._stepping(inner, act)
        return inner if act.skipped or self.driver is None else self._cuttable(inner, act)

    def _stepping(self, inner, act):
        """Stop at the top of the armed step of a for block: pdb stops at the body's first line."""
        for step, x in enumerate(inner):
            if self._is_step(step):
                self.driver.stop_at_next_line(act.frame, self._step_banner(act, step))
            yield x

    def while_tick(self, info, frame):
        super().while_tick(info, frame)
        act = self.stack[-1] if self.stack else None
        if act is None or act.info is not info or act.role != "block" or not self._armed(act):
            return
        if self._is_step(act.step):  # the tick runs where an iteration starts: stop right here
            self.driver.stop(frame, self._step_banner(act, act.step))

    def _is_step(self, step):
        return self._step is not None and step == self._step[1]

    def _step_banner(self, act, step):
        epoch, self._step = self._step[0], None
        return f"epoch {epoch}, step {step} of {act.info.id}"

    # ---- logs and the fidelity check ------------------------------------------------------------
    def on_epoch_start(self, act):
        if act.whileloop and self.driver is not None:
            self._steer_while(act)
        super().on_epoch_start(act)
        self.seen.clear()  # an epoch may run several times in one session; count its log calls afresh
        self._cutting = False

    # ---- leaving a running epoch ------------------------------------------------------------------
    def _announce(self, epoch):
        """Before travelling to ``epoch``: leave the running epoch early, and say what will run live."""
        self._asked = perf_counter()
        self._leave_running_epoch()
        loop = self.loop
        if loop is None or self.main_of(epoch) is not loop.main:
            return
        i = epoch - loop.main.base
        start = self._start(loop, i, loop.live + loop.running)
        if start is None or start[1] + 1 > i - 1:
            return
        first, last = loop.main.base + start[1] + 1, loop.main.base + i - 1
        seconds = sum(self.plan._epoch_cost(e)[1] for e in range(first, last + 1))
        if seconds >= NOTICE_SECONDS:
            self.notify(f"reaching epoch {epoch} replays {_span(first, last)}: about {seconds:.1f}s")

    def _leave_running_epoch(self):
        """A jump asked for while an epoch runs (the driver stopped inside it) does not run the rest of that
        epoch live: its live block stops at its next step and its memo gives the state at its end, the
        blocks after it are restored from theirs. What has no memo still runs: said, with its recorded
        time."""
        loop = self.loop
        if loop is None or not loop.running or self.epoch is None:
            return
        self._cutting = True
        done = sum(self.block_counts.values())  # block executions of this epoch so far, the live one too
        current = next((a for a in reversed(self.stack) if a.role == "block"), None)
        live = 0.0
        for b in self.catalog.blocks(self.run_id, self.epoch):
            if b["seq"] >= done and (
                self.plan.is_probe(b["loop_id"])
                or self.plan.memo_for(self.epoch, b["loop_id"], b["seq"]) is None
            ):
                live += b["seconds"] or 0.0
            elif current is not None and b["seq"] == current.recorded and self._memo_of(current) is None:
                taken = current.taken() if current.taken is not None else current.step + 1
                live += (b["seconds"] or 0.0) * max(0.0, 1 - taken / max(b["steps"] or 1, 1))
        if live >= NOTICE_SECONDS:
            self.notify(
                f"leaving epoch {self.epoch} first: about {live:.1f}s of it runs live (blocks without memos)"
            )

    def _memo_of(self, act):
        if act.recorded is None or act.recorded < 0 or self.plan.is_probe(act.info.id):
            return None
        return self.plan.memo_for(self.epoch, act.info.id, act.recorded)

    def _cuttable(self, inner, act):
        """A live block that stops early when a jump leaves its epoch, if its memo can end it."""
        for x in inner:
            if self._cutting and self._memo_of(act) is not None:
                payload = self._load(self._memo_of(act))
                if payload is not None:
                    self._cut.append((act, payload))
                    return
            yield x

    def on_block_exit(self, act, skipped):
        for i, (cut, payload) in enumerate(self._cut):
            if cut is act:
                del self._cut[i]
                problem = self._restore(payload, {"main": self.stack[0].frame, "block": act.frame})
                if problem is not None:
                    self.notify(f"cannot restore the memo of {act.info.id} in epoch {self.epoch} ({problem})")
                break
        super().on_block_exit(act, skipped)

    # ---- `while` main loops ----------------------------------------------------------------------
    def _steer_while(self, act):
        """At the top of an iteration of a `while` epoch loop, go where the driver asks: a `while` loop's
        position is all in its variables, so restoring a checkpoint (or the recorded state at the loop's
        start) moves it to any epoch, backwards too; epochs in between run with blocks from memos."""
        main = self.plan.main_run(act.info.id, act.seq)
        if main is None:
            return
        if not self.started:
            self.started = True
            if self.request is None:
                self.request = Goto(main.base)
        while self.request is not None and self.main_of(self.request.epoch) is main:
            req = self.request
            t0 = perf_counter()
            i = req.epoch - main.base
            how = self._jump_while(act, main, i)
            epoch = self.epoch = main.base + act.index
            if act.index < i:
                return  # run on towards it
            if isinstance(req, Sweep):
                req.visit(epoch, act.frame)
                req.epochs.pop(0)
                if req.epochs:
                    continue
            self.request = None
            if isinstance(req, Goto) and req.step is not None:
                self._step = (epoch, req.step)
                return
            banner = f"top of epoch {epoch}" + (f" ({how}; {perf_counter() - t0:.2f}s)" if how else "")
            self.driver.stop(act.frame, banner)

    def _jump_while(self, act, main, i):
        """Move a `while` loop about to run local epoch ``act.index`` to epoch ``i`` if a snapshot allows it;
        returns what was done ("" when running on is as good)."""
        here = act.index
        best = next((c for c in range(i - 1, -1, -1) if main.base + c in self.plan.checkpoints), None)
        if here <= i and (best is None or best < here):
            return ""
        if best is not None:
            payload = self._load(self.plan.checkpoints[main.base + best])
            if payload is not None and self._restore(payload, {"main": act.frame}) is None:
                act.index = best + 1
                return f"restored the checkpoint after epoch {main.base + best}"
        start = self.plan.start
        if start is not None and (start[0], start[1]) == (main.loop_id, main.run):
            payload = self._load(start[2])
            if payload is not None and self._restore(payload, {"main": act.frame}) is None:
                act.index = 0
                return "restored the state recorded at the loop's start"
        if here > i:
            self.request = None
            self.notify(f"cannot go back to epoch {main.base + i}: no snapshot before it can be restored")
        return ""

    def on_top_exit(self, act):
        super().on_top_exit(act)
        main = self.plan.main_run(act.info.id, act.seq) if act.whileloop else None
        if main is not None:
            self.finished.add((main.loop_id, main.run))

    def on_divergence(self, divergence):
        """In the console a divergence is said, not fatal: the user is looking around."""
        for line in divergence.lines():
            self.notify(line)


def _span(first, last):
    return f"epoch {first}" if first == last else f"epochs {first}-{last}"


def target_binder(frame, info):
    """A function that binds the target of the for loop ``info`` (running in ``frame``) to an element, the way
    the loop will; None when the loop's source cannot be found."""
    filename = frame.f_code.co_filename
    try:
        tree = ast.parse("".join(linecache.getlines(filename)))
    except (SyntaxError, ValueError):
        return None
    found = [
        n for n in ast.walk(tree) if isinstance(n, ast.For) and n.lineno <= info.lineno <= n.iter.end_lineno
    ]
    if not found:
        return None
    target = max(found, key=lambda n: n.lineno).target
    names = [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    assign = ast.Module([ast.Assign(targets=[target], value=ast.Name(_ELEMENT, ast.Load()))], type_ignores=[])
    code = compile(ast.fix_missing_locations(assign), filename, "exec")
    function = frames.is_function_frame(frame)
    own = set(frame.f_code.co_varnames) | set(frame.f_code.co_cellvars) | set(frame.f_code.co_freevars)

    def bind(element):
        try:
            if not function:
                namespace = frame.f_locals
                namespace[_ELEMENT] = element
                try:
                    exec(code, frame.f_globals, namespace)
                finally:
                    namespace.pop(_ELEMENT, None)
                return
            namespace = dict(frame.f_locals, **{_ELEMENT: element})
            exec(code, frame.f_globals, namespace)
            frames.bind(frame, {n: namespace[n] for n in names if n in own})
            frames.bind(frame, {n: namespace[n] for n in names if n not in own}, "global")
        except Exception:  # an unusual target (or element): the loop binds it when the body starts
            pass

    return bind
