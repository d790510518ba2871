"""The loop stack: which hooked loops are running, which one is the main loop, and the current epoch.

A loop entered with nothing on the stack is a *top* loop; it becomes the *main* loop (its iterations are
epochs) as soon as another hooked loop runs inside one of its iterations. Loops entered directly inside a
main-loop iteration, in the same frame or in functions it calls, are *blocks*. Deeper loops cost one call
per execution and are not tracked. Subclasses (recorder, replayer) react to epoch and block boundaries.
"""

from __future__ import annotations

from time import perf_counter

from ..instrument.patch import LoopInfo


class Activation:
    """One execution of a tracked loop."""

    __slots__ = (
        "info", "frame", "role", "whileloop", "index", "iterating", "main", "base", "step", "seq", "steps", "started"
    )

    def __init__(self, info: LoopInfo, frame, role, whileloop=False):
        self.info, self.frame, self.role, self.whileloop = info, frame, role, whileloop
        self.index, self.iterating, self.main, self.base = -1, False, False, 0
        self.step, self.seq, self.steps, self.started = None, 0, 0, 0.0


def _is_active(frame, current):
    while current is not None:
        if current is frame:
            return True
        current = current.f_back
    return False


class Session:
    """Base class: maintains the stack and calls the ``on_*`` methods subclasses override."""

    def __init__(self):
        self.stack: list[Activation] = []
        self.next_epoch = 0
        self.epoch: int | None = None
        self.block_seq = 0
        self.top_runs: dict[str, int] = {}  # loop id -> how many times it ran as a top loop

    # ---- what subclasses override -------------------------------------------------------------
    def on_top_enter(self, act):
        """A top loop is about to run its first iteration."""

    def on_main(self, act):
        """A top loop was just confirmed as a main loop (during its iteration ``act.index``)."""

    def on_epoch_start(self, act):
        pass

    def on_epoch_end(self, act, last):
        pass

    def on_top_iterations(self, act, it):
        """Yield the elements the top loop's body runs on (the replayer may skip and jump)."""
        try:
            x = next(it)
        except StopIteration:
            return
        while True:
            self._begin_iteration(act)
            yield x
            try:
                x = next(it)
            except StopIteration:
                return
            self._end_iteration(act, last=False)

    def on_block_enter(self, act, can_skip) -> bool:
        """Return True to skip the block (run zero iterations)."""
        return False

    def on_block_exit(self, act, skipped):
        pass

    def on_top_exit(self, act):
        pass

    # ---- context for flortrace.log --------------------------------------------------------------
    def position(self):
        """(epoch, step, loop id) of the innermost tracked loop."""
        if not self.stack:
            return self.epoch, None, None
        act = self.stack[-1]
        step = act.step if act.role == "block" else (act.index if not act.main else None)
        return self.epoch, step, act.info.id

    # ---- for loops ---------------------------------------------------------------------------
    def for_loop(self, iterable, info, frame):
        if self.stack and self.stack[-1].whileloop:
            self._drop_stale(frame)
        depth = len(self.stack)
        if depth == 0:
            return self._top(iterable, Activation(info, frame, "top"))
        if depth == 1 and self.stack[0].iterating:
            return self._block(iterable, self._new_block(info, frame, False))
        return iterable

    def _count_top(self, act):
        act.seq = self.top_runs.get(act.info.id, 0)
        self.top_runs[act.info.id] = act.seq + 1

    def _top(self, iterable, act):
        self._count_top(act)
        self.stack.append(act)
        self.on_top_enter(act)
        try:
            yield from self.on_top_iterations(act, iter(iterable))
        finally:
            self._finish_top(act)

    def _block(self, iterable, act):
        skip = self.on_block_enter(act, True)
        steps = 0
        try:
            if not skip:
                for x in iterable:
                    act.step = steps
                    steps += 1
                    yield x
        finally:
            act.steps = steps
            self._pop(act)
            self.on_block_exit(act, skip)

    def _new_block(self, info, frame, whileloop):
        top = self.stack[0]
        if not top.main:
            top.main = True
            top.base = self.next_epoch - top.index
            self.epoch = top.base + top.index
            self.block_seq = 0
            self.on_main(top)
        act = Activation(info, frame, "block", whileloop)
        act.seq = self.block_seq
        self.block_seq += 1
        self.stack.append(act)
        return act

    # ---- iterations of top loops ---------------------------------------------------------------
    def _begin_iteration(self, act):
        act.index += 1
        act.iterating = True
        act.started = perf_counter()
        if act.main:
            self.epoch = act.base + act.index
            self.block_seq = 0
            self.on_epoch_start(act)

    def _end_iteration(self, act, last):
        act.iterating = False
        del self.stack[1:]
        if act.main:
            self.on_epoch_end(act, last)
            self.next_epoch = self.epoch + 1
            self.epoch = None

    def _finish_top(self, act):
        if act.iterating and self.stack and self.stack[0] is act:
            self._end_iteration(act, last=True)
        self._pop(act)
        self.on_top_exit(act)

    def _pop(self, act):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is act:
                del self.stack[i:]
                return

    def _drop_stale(self, frame):
        """Forget while loops left by an exception (their frames are no longer running)."""
        while self.stack and self.stack[-1].whileloop and not _is_active(self.stack[-1].frame, frame):
            stale = self.stack[-1]
            if stale.role == "top":
                self._finish_top(stale)
            else:
                self._pop(stale)
                self.on_block_exit(stale, False)

    # ---- while loops ---------------------------------------------------------------------------
    def while_enter(self, info, frame):
        if self.stack and self.stack[-1].whileloop:
            self._drop_stale(frame)
        depth = len(self.stack)
        if depth == 0:
            act = Activation(info, frame, "top", whileloop=True)
            self._count_top(act)
            self.stack.append(act)
            self.on_top_enter(act)
        elif depth == 1 and self.stack[0].iterating:
            act = self._new_block(info, frame, True)
            self.on_block_enter(act, False)
            act.step = -1

    def _find(self, info):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].info is info:
                return i
        return None

    def while_tick(self, info):
        i = self._find(info)
        if i is None:
            return
        act = self.stack[i]
        if act.role == "top":
            if act.iterating:
                self._end_iteration(act, last=False)
            self._begin_iteration(act)
        else:
            del self.stack[i + 1 :]
            act.step += 1
            act.steps = act.step + 1

    def while_exit(self, info):
        i = self._find(info)
        if i is None:
            return
        act = self.stack[i]
        if act.role == "top":
            self._finish_top(act)
        else:
            self._pop(act)
            self.on_block_exit(act, False)
