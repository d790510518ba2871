"""Patch `while` loops so the runtime sees their entry, every iteration and every way out.

A `while` loop has no iterator the runtime could wrap, so the patched code calls hooks itself: enter before
the loop, tick at the header every iteration passes, and exit however the loop is left:

- an edge that leaves the loop (its test failing, `break`, a jump out of an `except` that 3.12+ places
  after the function's code) goes through a trampoline, placed after all other code, that calls exit and
  jumps on: code after the loop that is also reached without entering it (3.12's first test, an `else`)
  stays as it was;
- `return` inside the loop calls exit first;
- an exception that leaves the loop runs a handler that calls exit and re-raises where it was raised:
  3.11+ add exception-table entries over the loop's code where no handler of the loop's own would catch;
  3.10 sets up a block at entry (SETUP_FINALLY), popped on every way out, as the compiler does for `try`.

The loop is its back-edge range plus the code that range reaches that still belongs to it (see
``Loop._region``). Stack depths, and on 3.10 block levels, are simulated so that every assumption is
checked; a loop whose code has another shape is left unpatched (``Unsupported``): a plain loop to the
runtime.
"""

from __future__ import annotations

import sys

from bytecode import Instr, Label, TryBegin, TryEnd

from . import emit

_TABLES = sys.version_info >= (3, 11)  # exception tables instead of a block stack
_RETURNS = {"RETURN_VALUE", "RETURN_CONST"}
# Jumps that cannot be sent through a trampoline (they land past their target, or push a handler).
_SPECIAL_JUMPS = {"FOR_ITER", "SETUP_FINALLY", "SETUP_WITH", "SETUP_ASYNC_WITH", "SEND"}
_PUSH_BLOCK = {"SETUP_FINALLY", "SETUP_WITH", "SETUP_ASYNC_WITH"}
_POP_BLOCK = {"POP_BLOCK", "POP_EXCEPT"}


class Unsupported(Exception):
    """The loop's code does not have a shape this module knows to patch soundly."""


class Shape:
    """Control-flow facts about one code object's instructions, shared by all its while loops."""

    def __init__(self, instrs, labels):
        self.instrs, self.labels = instrs, labels
        self.covers = [None] * len(instrs)  # 3.11+: the TryBegin whose range holds each index
        self.ranges = {}  # handler index -> [(TryBegin index, TryEnd index)]
        self.tries = []  # indices of TryBegin items
        current, start = None, {}
        for i, item in enumerate(instrs):
            if isinstance(item, TryBegin):
                current, start[id(item)] = item, i
                self.tries.append(i)
            elif isinstance(item, TryEnd):
                target = labels[id(item.entry.target)]
                self.ranges.setdefault(target, []).append((start[id(item.entry)], i))
                current = None
            self.covers[i] = current
        self.next = [self._successors(i) for i in range(len(instrs))]
        self.depths = self._depths()
        self.warm = self.forward(0)
        self.preds = [[] for _ in instrs]
        for i, nexts in enumerate(self.next):
            for s in nexts:
                self.preds[s].append(i)
        for i in self.tries:
            self.preds[self.handler(i)].append(i)

    def handler(self, i):
        return self.labels[id(self.instrs[i].target)]

    def successors(self, i):
        """Where control goes after index ``i`` in normal flow."""
        return self.next[i]

    def _successors(self, i):
        item = self.instrs[i]
        if not isinstance(item, Instr):
            return (i + 1,) if i + 1 < len(self.instrs) else ()
        if item.has_jump() and isinstance(item.arg, Label):
            target = self.labels[id(item.arg)]
            return (target,) if item.is_final() or item.is_uncond_jump() else (target, i + 1)
        return () if item.is_final() else (i + 1,)

    def forward(self, start):
        """Indices reached from ``start`` in normal flow (no exception edges)."""
        seen, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(self.successors(i))
        return seen

    def _depths(self):
        """Stack depth before each index (None where unreachable); raises Unsupported if paths disagree."""
        instrs, labels = self.instrs, self.labels
        depths = [None] * len(instrs)
        todo = [(0, 0)]
        while todo:
            i, depth = todo.pop()
            while i < len(instrs):
                if depths[i] is not None:
                    if depths[i] != depth:
                        raise Unsupported(f"stack depths {depths[i]} and {depth} meet")
                    break
                depths[i] = depth
                item = instrs[i]
                if isinstance(item, TryBegin):
                    todo.append((labels[id(item.target)], item.stack_depth + item.push_lasti + 1))
                elif isinstance(item, Instr):
                    if item.has_jump() and isinstance(item.arg, Label):
                        todo.append((labels[id(item.arg)], depth + item.stack_effect(jump=True)))
                    if item.is_final() or item.is_uncond_jump():
                        break
                    depth += item.stack_effect(jump=False)
                i += 1
        return depths


class Loop:
    """One while loop's region, exits and returns, checked against the code's shape."""

    def __init__(self, shape: Shape, first, tick, last):
        self.shape, self.first, self.tick, self.last = shape, first, tick, last
        self.base = shape.depths[first]
        if self.base is None:
            raise Unsupported("unreachable loop")
        self.inside = self._region()
        self.exits, self.returns = self._ways_out()
        self._check_entries()

    def _region(self):
        """The back-edge range, plus code it reaches that still belongs to the loop: with values of the
        loop's own on the stack (the cleanup of a chained comparison in its test), or that normal flow
        never reaches: the handlers of `try` blocks inside the loop (3.12+ places them after all other
        code; they end by re-raising, returning, or jumping back into the loop or out of it). A `try`
        around the loop is not the loop's: its entries cover the loop's back edge, or also code outside."""
        shape, lo, hi, base = self.shape, self.first, self.last, self.base
        normal = shape.warm if lo in shape.warm else shape.forward(lo)  # a loop inside a handler
        inside, handlers = set(), set()
        todo = list(range(lo, hi + 1))
        while todo:
            while todo:
                i = todo.pop()
                if i in inside:
                    continue
                inside.add(i)
                if isinstance(shape.instrs[i], TryBegin):
                    handlers.add(shape.handler(i))
                if shape.depths[i] is not None:
                    todo.extend(s for s in shape.successors(i) if s not in normal or shape.depths[s] > base)
            for target in list(handlers - inside):
                spans = shape.ranges.get(target, ())
                if all(start in inside and not start < hi < end for start, end in spans):
                    if target in normal:
                        raise Unsupported("handler code is also reached without an exception")
                    todo.append(target)
        return inside

    def _ways_out(self):
        shape, exits, returns = self.shape, [], []
        for i in sorted(self.inside):
            item = shape.instrs[i]
            if shape.depths[i] is None or not isinstance(item, Instr):
                continue
            if item.name in _RETURNS:
                returns.append(i)
                continue
            for s in shape.successors(i):
                if s in self.inside:
                    continue
                if shape.depths[s] > self.base:  # fewer is fine: code after the loop was copied into it
                    raise Unsupported("the loop is left with values on the stack")
                jump = item.has_jump() and isinstance(item.arg, Label) and shape.labels[id(item.arg)] == s
                if jump and item.name in _SPECIAL_JUMPS:
                    raise Unsupported(f"{item.name} leaves the loop")
                exits.append((i, jump))
        return exits, returns

    def _check_entries(self):
        """Only the loop's first label may be reached from outside it (and is, through the enter call)."""
        shape = self.shape
        for s in self.inside:
            for p in shape.preds[s]:
                if p in self.inside or shape.depths[p] is None:
                    continue
                if s != self.first or isinstance(shape.instrs[p], TryBegin):
                    raise Unsupported("code outside the loop jumps into it")

    def entering_jumps(self):
        """Jump instructions outside the loop that target its first label."""
        shape, out = self.shape, []
        for p in shape.preds[self.first]:
            item = shape.instrs[p]
            if p not in self.inside and isinstance(item, Instr) and item.has_jump():
                if shape.labels.get(id(item.arg)) == self.first:
                    out.append(item)
        return out

    def block_levels(self):
        """3.10: where the loop's block must be popped early (the instructions of a `return`, or of the
        end of an `except` copied into a `break`, that pop blocks set up before the loop), the returns
        and exits that still have to report the exit, and a check that those leave at the loop's level."""
        shape, state, todo, unwinds, done = self.shape, {self.first: (0, True)}, [self.first], set(), set()
        while todo:
            i = todo.pop()
            level, ours = state[i]
            item = shape.instrs[i]
            after = jumped = (level, ours)
            if isinstance(item, Instr) and item.name in _PUSH_BLOCK:
                after = jumped = (level + 1, ours)
            elif isinstance(item, Instr) and item.name in _POP_BLOCK:
                if level == 0 and ours:
                    unwinds.add(i)
                    after = (-1, False)
                else:
                    after = (level - 1, ours)
            for s in shape.successors(i):
                is_jump = isinstance(item, Instr) and item.has_jump() and s == shape.labels.get(id(item.arg))
                new = jumped if is_jump and item.name in _PUSH_BLOCK else after
                if s not in self.inside:
                    if not new[1]:
                        done.add(i)  # reported where the loop's block was popped
                    elif new[0] != 0:
                        raise Unsupported("the loop is left with blocks set up")
                    continue
                if s in state:
                    if state[s] != new:
                        raise Unsupported("block levels disagree")
                    continue
                state[s] = new
                todo.append(s)
        returning = {i for i in self.returns if i in state and state[i][1]}
        return unwinds, returning, done


def patch(shape: Shape, loop: Loop, info, hooks, edits):
    """Record in ``edits`` the calls and trampolines that report ``loop``'s entry, ticks and exits. Calls
    in the loop's own code take the line of the instruction next to them, so line events and tracebacks
    stay those of the user's code."""
    instrs = shape.instrs
    lineno = _line_after(instrs, loop.first)
    if _TABLES:
        unwinds, returning, done = set(), loop.returns, set()
    else:  # may raise Unsupported: before anything is recorded
        unwinds, returning, done = loop.block_levels()

    def exit_call(line=emit.NO_LINE):
        return emit.call_discard(hooks.while_exit, info, line)

    entry, handler = Label(), Label()
    enter = [entry, *emit.call_discard(hooks.while_enter, info, lineno)]
    if not _TABLES:
        enter.append(emit.setup_handler(handler, lineno))
    edits.pre.setdefault(loop.first, []).extend(enter)
    for instr in loop.entering_jumps():
        onward = edits.onward.get(id(instr))  # it leaves an earlier loop: its trampoline jumps here
        if onward is not None:
            onward.arg = entry
        else:
            edits.retarget[id(instr)] = entry
    edits.post.setdefault(loop.tick, []).extend(
        emit.call_if(info, "ticking", hooks.while_tick, info, _line_after(instrs, loop.tick))
    )

    def pop(line):  # 3.10: the loop's block goes with it
        return [] if _TABLES else [emit.pop_handler(line)]

    for i in unwinds:
        edits.prepend_pre(i, exit_call(instrs[i].lineno) + pop(instrs[i].lineno))
    for i in returning:
        edits.prepend_pre(i, exit_call(instrs[i].lineno))
    for i, jump in loop.exits:
        if i in done:
            continue
        if not jump:
            edits.prepend_post(i, exit_call(instrs[i].lineno) + pop(instrs[i].lineno))
            continue
        source = instrs[i]
        # The jump may leave an outer loop too: then the trampoline goes on to the outer one's.
        target, trampoline = edits.retarget.get(id(source), source.arg), Label()
        interruptible = emit.interrupts(source)
        edits.retarget[id(source)] = trampoline
        edits.forward.append(source)
        onward = edits.onward[id(source)] = emit.jump_to(target, interruptible)
        edits.add_tail([trampoline, *exit_call(), *pop(emit.NO_LINE), onward], edits.cover[i])
    if _TABLES:
        _cover_exceptions(shape, loop, exit_call, handler, edits)
    else:
        edits.add_tail([handler, *exit_call(), emit.reraise()], None)


def _cover_exceptions(shape, loop, exit_call, first_handler, edits):
    """3.11+: where an exception raised in the loop would leave it, catch it first: call exit, re-raise."""
    mine = {}  # the entry that covered an index before (None: none) -> the entry that replaces it

    def replacement(old):
        if old not in mine:
            label = first_handler if not mine else Label()
            mine[old] = TryBegin(label, True, loop.base)
            edits.add_tail([label, *exit_call(), emit.reraise()], old)
        return mine[old]

    for i in sorted(loop.inside):
        depth = shape.depths[i]
        if depth is None or depth < loop.base:
            continue
        old = edits.cover[i]
        if old is None or shape.labels.get(id(old.target)) not in loop.inside:
            if i == loop.first:  # the enter call before it is outside the loop, a tick after it inside
                edits.post_cover[i] = replacement(old)
            else:
                edits.cover[i] = replacement(old)
    edits.recover = True


def _line_after(instrs, i):
    for j in range(i + 1, len(instrs)):
        if isinstance(instrs[j], Instr):
            return instrs[j].lineno
    return None
