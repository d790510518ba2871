"""The loop stack: which hooked loops are running, which one is the main loop, and the current epoch.

A loop entered with nothing on the stack is a *top* loop; it becomes the *main* loop (its iterations are
epochs) as soon as another hooked loop runs inside one of its iterations. Loops entered directly inside a
main-loop iteration, in the same frame or in functions it calls, are *blocks*. Deeper loops cost one call
per execution and are not tracked. Subclasses (recorder, replayer) react to epoch and block boundaries.
"""

from __future__ import annotations

import sys
from _thread import interrupt_main, start_new_thread
from functools import partial
from itertools import chain, count, islice
from operator import itemgetter
from os import register_at_fork
from time import perf_counter, sleep

from ..instrument.patch import LoopInfo


class Activation:
    """One execution of a tracked loop."""

    __slots__ = (
        "info",
        "frame",
        "role",
        "whileloop",
        "index",
        "iterating",
        "main",
        "base",
        "step",
        "seq",
        "steps",
        "started",
        "taken",
        "skipped",
        "nested",
        "first",
        "length",
        "recorded",
    )

    def __init__(self, info: LoopInfo, frame, role, whileloop=False):
        self.info, self.frame, self.role, self.whileloop = info, frame, role, whileloop
        self.index, self.iterating, self.main, self.base = -1, False, False, 0
        self.step, self.seq, self.steps, self.started = None, 0, 0, 0.0
        self.taken = None  # for-loop blocks: a function telling how many items were taken so far
        self.skipped = False  # replay skipped this block
        self.nested, self.first = True, None  # top loops: track loops inside? index of the first epoch
        self.length = None  # top loops: len() of the iterable when it has one
        self.recorded = None  # replay: the recorded seq of this block execution (-2: none matches)


_first = itemgetter(0)


_SIZED_ITERATORS = {type(iter([])), type(iter(range(0))), type(iter(())), type(iter(range(1 << 64)))}
_SIZED = (list, tuple, range, dict)
PROBE = 4  # a top loop that runs no other loop in its first PROBE iterations is no epoch loop


def _next_value(counter):
    """The value an itertools.count would yield next, without advancing it."""
    return int(repr(counter)[6:-1])


class _LoopEnd:
    """Last item of a loop's chain: its __iter__ runs when the loop runs out, its __del__ when the loop is
    left early (break, return, exception drop the chain at once). Either way the callback runs once, and
    only in the process that started the loop: a child the script forked leaves the parent's run alone."""

    __slots__ = ("callback", "act", "forks")

    def __init__(self, callback, act):
        self.callback, self.act, self.forks = callback, act, _forks

    def __iter__(self):
        self._end()
        return iter(())

    def __del__(self):
        try:
            self._end()
        except KeyboardInterrupt:
            start_new_thread(_interrupt_soon, ())  # Ctrl-C in a finalizer, where Python drops it: again
        except Exception as exc:  # never let a finalizer's error pass silently, never raise from one
            print(f"flortrace: internal error at the end of a loop: {exc!r}", file=sys.stderr)

    def _end(self):
        callback, self.callback = self.callback, None
        if callback is not None and self.forks == _forks:
            callback(self.act)


_forks = 0  # how many forks separate this process from the one that started the session (see _LoopEnd)


def _count_fork():
    global _forks
    _forks += 1


register_at_fork(after_in_child=_count_fork)


def _interrupt_soon():
    """Raise KeyboardInterrupt in the main thread a moment from now: once the finalizer that caught it is
    over (any KeyboardInterrupt raised inside a finalizer is dropped), in the script's own code."""
    sleep(0.001)
    interrupt_main()


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
        self.deep = False  # see _restack
        self._ticking = set()  # LoopInfos of the while loops on the stack whose ticks are wanted
        self.include = ()  # packages instrumented besides the project's code (replay: the recording's)

    # ---- what subclasses override -------------------------------------------------------------
    def on_top_enter(self, act):
        """A top loop is about to run its first iteration."""

    def may_become_main(self, act):
        """Whether a top loop may turn into a main loop because a loop ran inside it."""
        return True

    def transparent(self, act):
        """Whether a top loop is left out of the stack altogether, so the loops inside it are top loops
        (the epoch loop named by --epoch-loop may be nested in another loop)."""
        return False

    def keep_main(self, act):
        """Asked at the end of a main loop's first epoch; False demotes it to a plain loop."""
        return True

    def on_demoted(self, act):
        """The main loop ``act`` was demoted after its first epoch: forget what was recorded for it."""

    def on_main(self, act):
        """A top loop was just confirmed as a main loop (during its iteration ``act.index``)."""

    def on_epoch_start(self, act):
        pass

    def on_epoch_end(self, act, last):
        pass

    def drive_top(self, act, iterable):
        """Return a generator that drives this top loop's iterations itself (the replayer skips and jumps
        epochs), or None for the default: every element runs, boundaries reported as they pass."""
        return None

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
        if act.role == "block":
            step = act.step if act.taken is None else act.taken() - 1
        else:
            step = None if act.main else act.index
        return self.epoch, step, act.info.id

    # ---- for loops ---------------------------------------------------------------------------
    def for_loop(self, iterable, info, frame):
        if self.stack and self.stack[-1].whileloop:
            self._drop_stale(frame)
        depth = len(self.stack)
        if depth == 0:
            return self._top(iterable, Activation(info, frame, "top"))
        if depth == 1 and self._nests(self.stack[0]):
            return self._block(iterable, self._new_block(info, frame, False))
        return iterable

    def abandon(self, info, frame):
        """The hook of a for loop failed before the loop ran (its iterable's iter() raised): end what
        was begun for it, as for a loop of no iterations."""
        for act in reversed(self.stack):
            if act.info is info and act.frame is frame and not act.whileloop:
                if act.role == "top":
                    self._finish_top(act)
                else:
                    self._finish_block(act)
                break

    def _nests(self, top):
        """True when a loop starting now inside ``top`` is a block (confirming ``top`` as main if needed)."""
        if not (top.iterating and top.nested):
            return False
        if top.main:
            return True
        if not self.may_become_main(top):
            top.nested = False
            return False
        top.main = True
        top.first = top.index
        top.base = self.next_epoch - top.index
        self.epoch = top.base + top.index
        self.block_seq = 0
        self.on_main(top)
        return True

    def _count_top(self, act):
        act.seq = self.top_runs.get(act.info.id, 0)
        self.top_runs[act.info.id] = act.seq + 1

    def _top(self, iterable, act):
        self._count_top(act)
        if self.transparent(act):
            return iterable
        if type(iterable) in _SIZED:  # exact types: a subclass's __len__ is the user's code
            try:
                act.length = len(iterable)
            except OverflowError:  # range(1, 2**64)
                pass
        self.stack.append(act)
        self.on_top_enter(act)
        driven = self.drive_top(act, iterable)
        if driven is not None:
            return self._driven(driven, act)
        end = _LoopEnd(self._finish_top, act)
        if not self.may_become_main(act):
            act.nested = False
            self._restack()
            return chain(iterable, end)
        # C-level wrappers: an exception raised by the iterable reaches the user's frame with no frame of ours
        # in its traceback; _LoopEnd hears about the end whichever way the loop is left.
        return chain.from_iterable(self._stages(act, iter(iterable), end))

    def _stages(self, act, it, end):
        """The iterations of a top loop: the first PROBE ones reported as they pass; then, if the loop is a
        main loop by then, all of them, else the rest at C speed, untracked (a hot loop over data)."""
        tick = partial(self._tick_top, act)
        yield map(tick, islice(it, PROBE))
        if act.main:
            yield map(tick, it)
        else:
            if act.iterating:
                self._end_iteration(act, last=False)
            act.nested = False
            self._restack()
            yield it
        yield end

    def _tick_top(self, act, x):
        if act.iterating:
            self._end_iteration(act, last=False)
        self._begin_iteration(act)
        return x

    def _driven(self, driven, act):
        try:
            yield from driven
        finally:
            self._finish_top(act)

    def _block(self, iterable, act):
        end = _LoopEnd(self._finish_block, act)
        if self.on_block_enter(act, True):
            act.skipped = True
            return chain((), end)
        it = iter(iterable)
        if type(it) in _SIZED_ITERATORS:  # lists, ranges, tuples tell how many items remain: no per-item work
            total = it.__length_hint__()
            act.taken = lambda: total - it.__length_hint__()
            return chain(it, end)
        counter = count()
        act.taken = partial(_next_value, counter)
        return chain(map(_first, zip(it, counter, strict=False)), end)

    def _finish_block(self, act):
        if act.taken is not None:
            act.steps = act.taken()
        self._pop(act)
        self.on_block_exit(act, act.skipped)

    def _new_block(self, info, frame, whileloop):
        act = Activation(info, frame, "block", whileloop)
        act.seq = self.block_seq
        self.block_seq += 1
        self.stack.append(act)
        self._restack()
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
        self._restack()
        if act.main and act.index == act.first and not self.keep_main(act):
            act.main = act.nested = False
            self.on_demoted(act)
            self.epoch = None
            return
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
                break
        self._restack()

    def _restack(self):
        # A for-loop block is running, or a top loop whose inner loops are not tracked: every loop that starts
        # now is untracked, so the hook can return at once.
        stack = self.stack
        self.deep = (len(stack) >= 2 and not stack[-1].whileloop) or (
            len(stack) == 1 and not stack[0].nested and not stack[0].whileloop
        )
        # The while loops whose ticks are wanted: tracked ones. The others' patched ticks skip the hook.
        ticking = {a.info for a in stack if a.whileloop and (a.role != "top" or a.nested)}
        if ticking != self._ticking:
            for info in self._ticking - ticking:
                info.ticking = False
            for info in ticking - self._ticking:
                info.ticking = True
            self._ticking = ticking

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
            if self.transparent(act):
                return
            self.stack.append(act)
            self._restack()
            self.on_top_enter(act)
        elif depth == 1 and self._nests(self.stack[0]):
            act = self._new_block(info, frame, True)
            self.on_block_enter(act, False)
            act.step = -1

    def _find(self, info, frame):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].info is info and self.stack[i].frame is frame:
                return i
        return None

    def while_tick(self, info, frame):
        i = self._find(info, frame)
        if i is None:
            return
        act = self.stack[i]
        if act.role == "top":
            if not act.nested:  # untracked: a hot loop that ran no other loop in its first iterations
                return
            if act.iterating:
                self._end_iteration(act, last=False)
            if not act.main and act.index + 1 >= PROBE:
                act.nested = False
                self._restack()
                return
            self._begin_iteration(act)
        else:
            del self.stack[i + 1 :]
            self._restack()
            act.step += 1
            act.steps = act.step + 1

    def while_exit(self, info, frame):
        """Also reached by paths that never entered the loop: then nothing is running and nothing happens."""
        i = self._find(info, frame)
        if i is None:
            return
        act = self.stack[i]
        if act.role == "top":
            self._finish_top(act)
        else:
            self._pop(act)
            self.on_block_exit(act, False)
