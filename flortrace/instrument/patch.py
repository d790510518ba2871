"""Find the loops of a code object and patch hook calls around them.

`for` loops get one call before GET_ITER that may replace the iterable (entry, iterations and every exit are
then seen by the wrapper the hook returns: a generator's `finally` runs on exhaustion, `break`, `return` and
exceptions). `while` loops get an entry call, a tick at their header and an exit call on every edge that
leaves them. Comprehensions, generator expressions, generators and coroutines are left alone.
"""

from __future__ import annotations

import ast
import dis
import inspect
import sys
from dataclasses import dataclass, field
from types import CodeType

from bytecode import Bytecode, Instr, Label, TryBegin

from . import emit, sourcemap
from .effects import LoopEffects, analyze

_SKIP_FLAGS = (
    inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE
)
_SKIP_NAMES = {"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<lambda>"}
_RETURNS = {"RETURN_VALUE", "RETURN_CONST"}
# Every loop has a FOR_ITER or a backward jump. On 3.10 jumps are absolute and may go either way, so those
# count when they go back; 3.11+ names its backward jumps.
_LOOP_OPS = {dis.opmap[n] for n in dis.opmap if n == "FOR_ITER" or "BACKWARD" in n}
_ABSOLUTE_JUMPS = set(dis.hasjabs) if sys.version_info < (3, 11) else set()
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
# The most a hook call sequence pushes above the stack it finds (NULL or callable, hook, argument).
_EXTRA_STACK = 3


@dataclass(eq=False)
class LoopInfo:
    """What is known about one loop in source before it runs; embedded in the patched code."""

    id: str
    file: str
    qualname: str
    ordinal: int
    kind: str  # "for" or "while"
    lineno: int
    end_lineno: int
    effects: LoopEffects = field(repr=False)

    def __reduce__(self):  # never pickled with user state; make that explicit
        raise TypeError("LoopInfo is not picklable")


def _name_arg(instr):
    arg = instr.arg
    if isinstance(arg, tuple) and arg and isinstance(arg[-1], str) and isinstance(arg[0], bool):
        return arg[-1]
    if isinstance(arg, Label):
        return None
    return arg


def _pairs(items):
    return [(i.name, _name_arg(i)) for i in items if isinstance(i, Instr)]


def _next_instr(instrs, i):
    for j in range(i + 1, len(instrs)):
        if isinstance(instrs[j], Instr):
            return j
    return None


def _reachable(instrs, labels):
    """Indices reachable in normal flow (exception-table edges of 3.11+ are not followed)."""
    seen, todo = set(), [0]
    while todo:
        i = todo.pop()
        while i < len(instrs) and i not in seen:
            seen.add(i)
            ins = instrs[i]
            if isinstance(ins, Instr):
                if ins.has_jump() and isinstance(ins.arg, Label):
                    todo.append(labels[id(ins.arg)])
                if ins.is_final():
                    break
            i += 1
    return seen


def _lines(instrs, lo, hi):
    return [ins.lineno for ins in instrs[lo:hi] if isinstance(ins, Instr) and isinstance(ins.lineno, int)]


def _find_loops(instrs, labels):
    """Return [(kind, first, header, last)] with indices into ``instrs``, in instruction order."""
    loops, for_headers = [], set()
    for i, ins in enumerate(instrs):
        if isinstance(ins, Instr) and ins.name == "FOR_ITER":  # also inlined comprehensions (3.12+)
            k = i - 1
            while k >= 0 and not isinstance(instrs[k], Instr):
                if isinstance(instrs[k], Label):
                    for_headers.add(k)
                k -= 1
        if isinstance(ins, Instr) and ins.name == "GET_ITER":
            j = _next_instr(instrs, i)
            if j is not None and instrs[j].name == "FOR_ITER":
                loops.append(("for", i, j, labels[id(instrs[j].arg)]))
    reach = _reachable(instrs, labels)
    edges = []
    for i, ins in enumerate(instrs):
        if not (isinstance(ins, Instr) and ins.has_jump() and isinstance(ins.arg, Label)):
            continue
        target = labels[id(ins.arg)]
        if target < i and target not in for_headers and i in reach and "NO_INTERRUPT" not in ins.name:
            edges.append((target, i))
    loops.extend(("while", first, tick, last) for first, tick, last in _merge_while(edges))
    loops.sort(key=lambda loop: loop[1])
    return loops


def _merge_while(edges):
    """Group back edges into while loops: [(entry, tick, last)].

    A loop may have several back-edge targets (3.11 sends `continue` to the test, the bottom test to the
    body): overlapping, non-nested ranges are one loop. It is entered at its first target and ticks at the
    target of its last back edge, which every iteration passes."""
    loops = []
    for target, source in sorted(edges, key=lambda e: (e[0], -e[1])):
        for loop in reversed(loops):
            first, tick, last = loop
            if first <= target <= last < source:  # overlaps the end of a loop: another edge of it
                loop[1], loop[2] = target, source
                break
            if target in (first, tick) and source <= last:  # back to a label the loop already uses
                break
        else:
            loops.append([target, target, source])
    return [tuple(loop) for loop in loops]


def labels_of(instrs):
    """{id(label): its index in ``instrs``}: where each jump target is."""
    return {id(x): i for i, x in enumerate(instrs) if isinstance(x, Label)}


def _with_handlers(instrs, labels, lo, hi):
    """Indices of a loop body [lo, hi) plus the exception handlers of its try blocks, which 3.12+ places
    after the function's code: what runs in an `except` or `finally` belongs to the loop too."""
    body = set(range(lo, hi))
    grew = True
    while grew:
        grew = False
        for i in sorted(body):
            entry = instrs[i]
            if not isinstance(entry, TryBegin) or not isinstance(entry.target, Label):
                continue
            k = labels[id(entry.target)]
            if k in body or lo <= k < hi:
                continue
            while k < len(instrs) and k not in body:
                body.add(k)
                ins = instrs[k]
                if isinstance(ins, Instr) and (ins.name in ("RERAISE", *_RETURNS) or ins.is_uncond_jump()):
                    break
                k += 1
            grew = True
    return sorted(body)


def _line_after(instrs, i):
    j = _next_instr(instrs, i)
    return instrs[j].lineno if j is not None else None


def _qualname(code, parent_qual, parent_is_class):
    if hasattr(code, "co_qualname"):
        return code.co_qualname
    if parent_qual is None or parent_qual == "<module>":
        return code.co_name
    return f"{parent_qual}.{code.co_name}" if parent_is_class else f"{parent_qual}.<locals>.{code.co_name}"


def instrument(code, file, hooks, loops_out=None, spans=None, _parent=None, _parent_is_class=False):
    """Return ``code`` with hooks around its loops, recursively; LoopInfos are appended to ``loops_out``.

    ``spans`` (from ``sourcemap.loop_spans``) numbers loops by source order; without it, bytecode order."""
    loops_out = [] if loops_out is None else loops_out
    qual = "<module>" if _parent is None else _qualname(code, _parent, _parent_is_class)
    is_class = _parent is not None and not code.co_flags & inspect.CO_NEWLOCALS
    consts = tuple(
        instrument(c, file, hooks, loops_out, spans, qual, is_class) if isinstance(c, CodeType) else c
        for c in code.co_consts
    )
    if consts != code.co_consts:
        code = code.replace(co_consts=consts)
    if code.co_flags & _SKIP_FLAGS or code.co_name in _SKIP_NAMES or not _may_loop(code):
        return code
    bc = Bytecode.from_code(code)
    instrs = list(bc)
    labels = labels_of(instrs)  # patching adds labels only to the inserted code: these indices stay right
    found = _find_loops(instrs, labels)
    if not found:
        return code
    pre, post, retarget = {}, {}, {}
    for position, (kind, first, header, last) in enumerate(found):
        lines = _lines(instrs, first, last + 1)
        lineno = lines[0] if lines else code.co_firstlineno
        start = _lines(instrs, first if kind == "for" else header, last + 1)  # while: the body's first line
        hint = instrs[last].lineno if kind == "while" else None
        ordinal = sourcemap.match(spans, qual, kind, start[0], hint) if spans and start else None
        ordinal = position if ordinal is None else ordinal
        body = (header + 1, last) if kind == "for" else (first + 1, last + 1)
        inside = _with_handlers(instrs, labels, *body)
        info = LoopInfo(
            id=f"{file}:{qual}#{ordinal}",
            file=file,
            qualname=qual,
            ordinal=ordinal,
            kind=kind,
            lineno=min(lines, default=lineno),
            end_lineno=max(lines, default=lineno),
            effects=analyze(
                _pairs(instrs[i] for i in inside),
                _pairs(instrs[i] for i in range(body[1], len(instrs)) if i not in inside),
            ),
        )
        loops_out.append(info)
        if kind == "for":
            pre.setdefault(first, []).extend(emit.wrap_top(hooks.for_loop, info, lineno))
            continue
        _patch_while(instrs, labels, info, hooks, first, header, last, pre, post, retarget)
    out = []
    for i, ins in enumerate(instrs):
        out.extend(pre.get(i, ()))
        if isinstance(ins, Instr) and id(ins) in retarget:
            ins.arg = retarget[id(ins)]
        out.append(ins)
        out.extend(post.get(i, ()))
    bc.clear()
    bc.extend(out)
    if getattr(code, "co_exceptiontable", b""):
        return bc.to_code()  # the depths of the exception table's entries are recomputed with the stack size
    # Inserted calls push at most _EXTRA_STACK above the stack they find, so the size is known: computing it
    # (a walk of the control flow graph) would be most of the cost of patching.
    return bc.to_code(stacksize=code.co_stacksize + _EXTRA_STACK, compute_exception_stack_depths=False)


def _may_loop(code):
    """False when ``code`` surely has no loop (then it is not converted at all: cheap imports)."""
    raw, ext = code.co_code, 0
    for offset in range(0, len(raw), 2):
        op, arg = raw[offset], raw[offset + 1] | ext
        if op == _EXTENDED_ARG:
            ext = arg << 8
            continue
        ext = 0
        if op in _LOOP_OPS or (op in _ABSOLUTE_JUMPS and arg * 2 <= offset):
            return True
    return False


def _patch_while(instrs, labels, info, hooks, first, tick, last, pre, post, retarget):
    """Enter before ``first``, tick after the ``tick`` label, and call exit where every edge that leaves
    [first, last] lands. Other paths reach those places too (the 3.12 entry test, an outer loop's header):
    there the runtime finds no running activation of this loop in this frame and does nothing."""
    entry = Label()
    # Inserted calls take the line of the instruction that runs next, so line events and tracebacks stay
    # those of the user's code.
    pre.setdefault(first, []).extend(
        [entry, *emit.call_discard(hooks.while_enter, info, _line_after(instrs, first))]
    )
    post.setdefault(tick, []).extend(emit.call_discard(hooks.while_tick, info, _line_after(instrs, tick)))
    landings = set()
    for i, ins in enumerate(instrs):
        if not isinstance(ins, Instr):
            continue
        target = labels.get(id(ins.arg)) if ins.has_jump() and isinstance(ins.arg, Label) else None
        inside = first < i <= last
        if target == first and i < first:
            retarget[id(ins)] = entry
        elif inside and target is not None and not first <= target <= last and ins.name != "FOR_ITER":
            landings.add(target)
        elif inside and ins.name in _RETURNS:
            pre.setdefault(i, []).extend(emit.call_discard(hooks.while_exit, info, ins.lineno))
    if not instrs[last].is_uncond_jump():
        landings.add(last + 1)
    for t in sorted(landings):
        call = emit.call_discard(hooks.while_exit, info, _line_after(instrs, t - 1 if t > last else t))
        if isinstance(instrs[t], Label):
            post.setdefault(t, []).extend(call)
        else:
            pre.setdefault(t, []).extend(call)


def instrument_module_code(code, file, hooks, source=None):
    """Instrument a module's code; returns (code, loops). ``source`` gives stable loop ordinals."""
    loops, spans = [], None
    if source:
        try:
            spans = sourcemap.loop_spans(ast.parse(source))
        except (SyntaxError, ValueError):
            spans = None
    return instrument(code, file, hooks, loops, spans), loops
