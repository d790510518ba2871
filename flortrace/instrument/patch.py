"""Find the loops of a code object and patch hook calls around them.

`for` loops get one call before GET_ITER that may replace the iterable (entry, iterations and every exit are
then seen by the wrapper the hook returns: a generator's `finally` runs on exhaustion, `break`, `return` and
exceptions). `while` loops get enter, tick and exit calls (``whiles``). Comprehensions, generator
expressions, generators and coroutines are left alone.

Patching is linear in the size of the code: what a loop changes (``LoopInfo.effects``) is worked out only
when the runtime first asks, from the module's source compiled again.
"""

from __future__ import annotations

import dis
import inspect
import sys
from types import CodeType

from bytecode import Bytecode, Instr, Label, TryBegin, TryEnd

from . import emit, sourcemap, whiles
from .effects import LoopEffects, analyze

_SKIP_FLAGS = (
    inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE
)
_SKIP_NAMES = {"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<lambda>"}
# Every loop has a FOR_ITER or a backward jump. On 3.10 jumps are absolute and may go either way, so those
# count when they go back; 3.11+ names its backward jumps.
_LOOP_OPS = {dis.opmap[n] for n in dis.opmap if n == "FOR_ITER" or "BACKWARD" in n}
_ABSOLUTE_JUMPS = set(dis.hasjabs) if sys.version_info < (3, 11) else set()
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
_TABLES = sys.version_info >= (3, 11)
_ENDS = {"RERAISE", "RETURN_VALUE", "RETURN_CONST"}
# The most inserted code pushes above the stack it finds: a hook call (NULL or callable, hook, argument);
# on 3.10 a while loop's handler runs its exit call above the six values an exception pushes.
_EXTRA_STACK = 3
_EXTRA_STACK_WHILE = 9


class LoopInfo:
    """What is known about one loop in source before it runs; embedded in the patched code.

    Pickles by value (cloudpickle ships functions with their code), with its effects worked out."""

    __slots__ = (
        "id",
        "file",
        "qualname",
        "ordinal",
        "kind",
        "lineno",
        "end_lineno",
        "_effects",
        "_where",
        "ticking",
    )

    def __init__(self, id, file, qualname, ordinal, kind, lineno, end_lineno, effects=None, where=None):
        self.id, self.file, self.qualname, self.ordinal = id, file, qualname, ordinal
        self.kind, self.lineno, self.end_lineno = kind, lineno, end_lineno
        self._effects, self._where = effects, where  # where: (Origin, const path, loop position)
        self.ticking = False  # a while loop's tick calls its hook only while the runtime tracks the loop

    @property
    def effects(self) -> LoopEffects:
        if self._effects is None:
            origin, path, position = self._where
            self._effects = origin.effects(path, position)
        return self._effects

    def fields(self):
        return (self.id, self.file, self.qualname, self.ordinal, self.kind, self.lineno, self.end_lineno)

    def __reduce__(self):
        return LoopInfo, (*self.fields(), self.effects)

    def __repr__(self):
        return f"LoopInfo({self.id!r}, {self.kind}, lines {self.lineno}-{self.end_lineno})"


class Origin:
    """Where the unpatched code of a module can be had again: its source (compiled on first use) or, with
    no source, the code itself."""

    def __init__(self, filename, source=None, code=None):
        self.filename, self._source, self._code = filename, source, code
        self._last = (None, None)  # one function's instructions and loops, kept for its other loops

    def code(self):
        if self._code is None:
            self._code = compile(self._source, self.filename, "exec", dont_inherit=True)
            self._source = None
        return self._code

    def effects(self, path, position):
        if self._last[0] != path:  # loops of one function are usually asked for one after the other
            code = self.code()
            for k in path:
                code = code.co_consts[k]
            instrs = list(Bytecode.from_code(code))
            labels = labels_of(instrs)
            self._last = (path, (instrs, labels, _find_loops(instrs, labels)))
        instrs, labels, found = self._last[1]
        kind, first, header, last = found[position]
        body = (header + 1, last) if kind == "for" else (first + 1, last + 1)
        inside = _with_handlers(instrs, labels, *body)
        after = [instrs[i] for i in range(body[1], len(instrs)) if i not in inside]
        return analyze(_pairs(instrs[i] for i in sorted(inside)), _pairs(after))


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
        # A back edge from handler code (3.11+ reach it by exceptions only) into normal code is a
        # `continue` of the loop around the `try`; one that stays in handler code is a loop in the handler.
        inner = i in reach or target not in reach
        if target < i and target not in for_headers and inner and "NO_INTERRUPT" not in ins.name:
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
    todo = [i for i in range(lo, hi) if isinstance(instrs[i], TryBegin)]
    while todo:
        entry = instrs[todo.pop()]
        if not isinstance(entry.target, Label):
            continue
        k = labels[id(entry.target)]
        while k < len(instrs) and k not in body:
            body.add(k)
            ins = instrs[k]
            if isinstance(ins, TryBegin):
                todo.append(k)
            if isinstance(ins, Instr) and (ins.name in _ENDS or ins.is_uncond_jump()):
                break
            k += 1
    return body


def _qualname(code, parent_qual, parent_is_class):
    if hasattr(code, "co_qualname"):
        return code.co_qualname
    if parent_qual is None or parent_qual == "<module>":
        return code.co_name
    return f"{parent_qual}.{code.co_name}" if parent_is_class else f"{parent_qual}.<locals>.{code.co_name}"


class _Edits:
    """What patching one code object inserts: before and after instructions, jumps retargeted, code
    appended after everything (trampolines, handlers), and on 3.11+ which exception-table entry covers
    each instruction."""

    def __init__(self):
        self.pre, self.post, self.retarget, self.forward, self.tail = {}, {}, {}, [], []
        self.onward = {}  # id of a jump leaving a while loop -> the jump its trampoline ends with
        self.cover = None  # index -> TryBegin (or None), when while loops may change it
        self.post_cover = {}
        self.recover = False  # rebuild the exception table from ``cover``

    def prepend_pre(self, i, items):
        self.pre[i] = list(items) + self.pre.get(i, [])

    def prepend_post(self, i, items):
        self.post[i] = list(items) + self.post.get(i, [])

    def add_tail(self, items, cover):
        self.tail.append((items, cover))


def instrument(
    code, file, hooks, loops_out=None, index=None, origin=None, _path=(), _parent=None, _parent_is_class=False
):
    """Return ``code`` with hooks around its loops, recursively; LoopInfos are appended to ``loops_out``.

    ``index`` (``sourcemap.index`` of the source's loop spans) numbers loops by source order; without it,
    bytecode order. ``origin`` gives the unpatched code again later (default: ``code`` itself)."""
    loops_out = [] if loops_out is None else loops_out
    origin = Origin(code.co_filename, code=code) if origin is None else origin
    qual = "<module>" if _parent is None else _qualname(code, _parent, _parent_is_class)
    is_class = _parent is not None and not code.co_flags & inspect.CO_NEWLOCALS
    consts = tuple(
        instrument(c, file, hooks, loops_out, index, origin, (*_path, k), qual, is_class)
        if isinstance(c, CodeType)
        else c
        for k, c in enumerate(code.co_consts)
    )
    if consts != code.co_consts:
        code = code.replace(co_consts=consts)
    if code.co_flags & _SKIP_FLAGS or code.co_name in _SKIP_NAMES or not _may_loop(code):
        return code
    # The exception table's depths are kept: inserted code does not change them (see the end).
    bc = (
        Bytecode.from_code(code, conserve_exception_block_stackdepth=True)
        if _TABLES
        else Bytecode.from_code(code)
    )
    instrs = list(bc)
    labels = labels_of(instrs)  # patching adds labels only to the inserted code: these indices stay right
    found = _find_loops(instrs, labels)
    if not found:
        return code
    shape = edits = None
    patched = 0
    for position, (kind, first, header, last) in enumerate(found):
        lines = _lines(instrs, first, last + 1)
        lineno = lines[0] if lines else code.co_firstlineno
        start = _lines(instrs, first if kind == "for" else header, last + 1)  # while: the body's first line
        hint = instrs[last].lineno if kind == "while" else None
        ordinal = sourcemap.match(index, qual, kind, start[0], hint) if index and start else None
        info = LoopInfo(
            f"{file}:{qual}#{position if ordinal is None else ordinal}",
            file,
            qual,
            position if ordinal is None else ordinal,
            kind,
            min(lines, default=lineno),
            max(lines, default=lineno),
            where=(origin, _path, position),
        )
        if edits is None:
            edits = _Edits()
        if kind == "for":
            edits.pre.setdefault(first, []).extend(emit.wrap_top(hooks.for_loop, info, lineno))
        else:
            try:
                if shape is None:
                    shape = whiles.Shape(instrs, labels)
                    edits.cover = list(shape.covers)
                whiles.patch(shape, whiles.Loop(shape, first, header, last), info, hooks, edits)
            except whiles.Unsupported:
                continue  # left as it is: a plain loop for the runtime
            patched += 1
        loops_out.append(info)
    if edits is None or not (edits.pre or edits.post):
        return code
    bc.clear()
    bc.extend(_assemble(instrs, edits))
    extra = _EXTRA_STACK_WHILE if patched else _EXTRA_STACK
    # Inserted code pushes at most ``extra`` above the stack it finds and leaves the exception table's depths
    # as they were, so neither needs computing (a walk of the control flow graph: most of patching's cost).
    return bc.to_code(stacksize=code.co_stacksize + extra, compute_exception_stack_depths=False)


def _assemble(instrs, edits):
    for source in edits.forward:  # sent to a trampoline after all other code
        emit.point_forward(source)
    for ins in instrs:
        if isinstance(ins, Instr) and id(ins) in edits.retarget:
            ins.arg = edits.retarget[id(ins)]
    if not edits.recover:
        out = []
        for i, ins in enumerate(instrs):
            out.extend(edits.pre.get(i, ()))
            out.append(ins)
            out.extend(edits.post.get(i, ()))
        for items, _ in edits.tail:
            out.extend(items)
        return out
    return _Covered(edits.cover).build(instrs, edits)


class _Covered:
    """Lays instructions out with exception-table pseudo-instructions rebuilt from per-index coverage."""

    def __init__(self, cover):
        self.cover, self.out, self.entry, self.open = cover, [], None, None

    def build(self, instrs, edits):
        for i, ins in enumerate(instrs):
            if isinstance(ins, (TryBegin, TryEnd)):
                continue
            for x in edits.pre.get(i, ()):
                self.place(x, self.cover[i])
            self.place(ins, self.cover[i])
            for x in edits.post.get(i, ()):
                self.place(x, edits.post_cover.get(i, self.cover[i]))
        for items, cover in edits.tail:
            for x in items:
                self.place(x, cover)
        self.place(None, None)
        return self.out

    def place(self, item, entry):
        if item is not None and not isinstance(item, Instr):
            self.out.append(item)
            return
        if entry is not self.entry:
            if self.open is not None:
                self.out.append(TryEnd(self.open))
            self.open = None if entry is None else TryBegin(entry.target, entry.push_lasti, entry.stack_depth)
            if self.open is not None:
                self.out.append(self.open)
            self.entry = entry
        if item is not None:
            self.out.append(item)


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


def instrument_module_code(code, file, hooks, source=None):
    """Instrument a module's code; returns (code, loops). ``source`` gives stable loop ordinals and is
    what loop effects are later worked out from."""
    loops = []
    index = sourcemap.SourceIndex(source) if source else None
    origin = Origin(code.co_filename, source=source) if source else None
    return instrument(code, file, hooks, loops, index, origin), loops
