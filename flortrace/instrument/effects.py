"""Static effects of a loop body, read from its bytecode.

The checkpoint layer needs, per loop, the names an iteration may change and the names the code after the
loop reads. This module answers from the instructions alone, with a small abstract interpretation: each
stack slot remembers the names its value came from (``x``, ``x.a``, ``x[i]`` and the items of ``x`` all come
from ``x``), so a store into an attribute or a subscript, a method call and a call argument can each be
charged to a name.

Instructions are ``(opname, argval)`` pairs as ``dis`` gives them, or as the ``bytecode`` package gives them
(``(flag, name)`` tuples for LOAD_GLOBAL/LOAD_ATTR, cell objects, labels as jump targets). The list carries
no positions, so jumps are followed approximately: a conditional jump saves the stack its target will see,
and the instruction after an unconditional jump resumes from a saved stack, chosen by jump target where
targets are given (offsets are ordered, labels only compared) and else by recency. Values meet again where
a jump's target likely is, so ``f(a if c else b)`` and ``f(x or y)`` pass both names. Calls are modelled on
a logical stack where a callable and its NULL or ``self`` slot count as one value, which keeps the model
the same on 3.10-3.13 whether or not the NULL flag of LOAD_GLOBAL/LOAD_ATTR is known. When the model loses
track of a value that is stored into, called or passed, the answer widens to every name the body loads.
"""

from __future__ import annotations

import builtins
import dis
import functools
import inspect
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

__all__ = ["LoopEffects", "analyze"]


@dataclass(frozen=True)
class LoopEffects:
    """What one loop body may change, and what is read after the loop."""

    rebound: frozenset[str] = frozenset()
    """Names (re)bound or deleted in the body: plain, augmented and unpacking assignments, loop targets,
    ``del``, imports, ``with ... as``, ``except ... as``, walrus, global and nonlocal stores."""
    mutated: frozenset[str] = frozenset()
    """Names whose object may change in place: attribute and subscript stores and deletes, augmented
    assignments, method calls on the name or anything reached from it (``x.a.b.step()``, ``x[0].f()``),
    iteration (``for b in loader``)."""
    passed: frozenset[str] = frozenset()
    """Names whose object (or a part of it: ``f(x.a)``, ``f(x[0])``, ``f([x])``) is a call argument."""
    called: frozenset[str] = frozenset()
    """Names called directly (``model(x)``): a callable object may change itself, as a BatchNorm layer
    does. Builtins loaded as globals are left out."""
    read: frozenset[str] = frozenset()
    """Names loaded in the body, including free and global names used by functions defined in it."""
    read_after: frozenset[str] = frozenset()
    """Names loaded in the code after the loop."""
    globals_: frozenset[str] = frozenset()
    """Names stored with STORE_GLOBAL/DELETE_GLOBAL or loaded with LOAD_GLOBAL in the body."""

    def changed(self) -> frozenset[str]:
        """Every name whose value or object the body may change."""
        return self.rebound | self.mutated | self.passed | self.called


def analyze(body: Sequence[tuple[str, object]], after: Sequence[tuple[str, object]] = ()) -> LoopEffects:
    """Effects of the loop ``body`` instructions; ``read_after`` comes from the ``after`` instructions."""
    inside = _Simulation().run(body)
    later = _Simulation().run(after)
    return LoopEffects(
        rebound=frozenset(inside.rebound),
        mutated=frozenset(inside.mutated),
        passed=frozenset(inside.passed),
        called=frozenset(inside.called),
        read=frozenset(inside.read),
        read_after=frozenset(later.read),
        globals_=frozenset(inside.globals_),
    )


@dataclass(frozen=True, slots=True)
class _Val:
    """What the simulation knows about one stack slot."""

    roots: frozenset[str] = frozenset()  # names the value is, or is reached from
    name: str | None = None  # the value is exactly this name
    builtin: bool = False  # loaded as a global or module name that is a builtin
    derived: bool = False  # an attribute, item or element of its roots
    lost: bool = False  # the simulation lost track of where the value came from
    kind: str = ""  # "null", "iter", "code", "func", "comp" (comprehension function), "builder"
    param: frozenset[str] = frozenset()  # comprehension: effects of its body on its iterator argument


_FRESH = _Val()
_LOST = _Val(lost=True)
_NULL = _Val(kind="null")


def _merged(vals: Iterable[_Val]) -> _Val:
    roots: frozenset[str] = frozenset()
    lost = False
    for val in vals:
        roots |= val.roots
        lost = lost or val.lost
    return _Val(roots=roots, derived=bool(roots), lost=lost)


def _merged_stacks(mine: tuple[_Val, ...], theirs: tuple[_Val, ...]) -> tuple[_Val, ...]:
    """``mine`` where each slot may also hold the value in the same slot of ``theirs``, a stack as deep;
    NULL slots stay what they are."""
    return tuple(
        replace(val, roots=val.roots | other.roots, derived=True)
        if not other.roots <= val.roots and "null" not in (val.kind, other.kind)
        else val
        for val, other in zip(mine, theirs, strict=True)
    )


@dataclass(eq=False, slots=True)
class _Branch:
    """The stack a jump lands with, kept until the simulation is likely there."""

    stack: tuple[_Val, ...]
    target: object = None  # the jump's argument: an offset, a label, or None when not given
    loop_body: tuple[_Val, ...] | None = None  # FOR_ITER: the stack of the loop body
    armed: bool = False  # the fall-through stack has been shallower since the jump
    met: bool = False  # ... and as deep again: the fall-through may have reached the target


@dataclass(slots=True)
class _Hidden:
    """A 3.12+ inlined comprehension variable, from LOAD_FAST_AND_CLEAR until its value is restored."""

    name: str
    level: int  # inner-loop nesting where the comprehension starts
    done: bool = False  # its loop ended: the next STORE_FAST of the name restores the outer value


_SLACK = 256  # how far below the simulated stack an argument may reach: more is no real code
_NULL_AFTER_CALLABLE = sys.version_info >= (3, 13)
_HAS_END_FOR = "END_FOR" in dis.opmap
_HASARG = frozenset(getattr(dis, "hasarg", ())) or frozenset(range(dis.HAVE_ARGUMENT, 256))
_JUMPS = frozenset(
    name
    for name, op in dis.opmap.items()
    if op in set(dis.hasjrel) | set(dis.hasjabs) | set(getattr(dis, "hasjump", ()))
)
_UNCONDITIONAL = frozenset(
    {
        "JUMP_FORWARD",
        "JUMP_ABSOLUTE",
        "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT",
        "JUMP",
        "JUMP_NO_INTERRUPT",
        "RETURN_VALUE",
        "RETURN_CONST",
        "RERAISE",
        "RAISE_VARARGS",
    }
)
_CONDITIONAL = _JUMPS - _UNCONDITIONAL
_FORWARD = frozenset({"JUMP_FORWARD", "JUMP"})
_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})
_BUILTINS = frozenset(vars(builtins))
_SUPERINSTRUCTIONS = {
    "LOAD_FAST_LOAD_FAST": ("LOAD_FAST", "LOAD_FAST"),
    "STORE_FAST_STORE_FAST": ("STORE_FAST", "STORE_FAST"),
    "STORE_FAST_LOAD_FAST": ("STORE_FAST", "LOAD_FAST"),
}


def _int(arg: object) -> int:
    if isinstance(arg, int):
        return arg
    try:
        return int(arg)  # an IntEnum of the bytecode package
    except (TypeError, ValueError):
        return 0


def _net_effect(opname: str, arg: object, jump: bool | None = None) -> int:
    """``dis.stack_effect`` by name; 0 for names this Python does not know."""
    op = dis.opmap.get(opname)
    if op is None:
        return 0
    try:
        return dis.stack_effect(op, _int(arg) if op in _HASARG else None, jump=jump)
    except (ValueError, TypeError, OverflowError):
        return 0


def _before(target: object, other: object) -> bool:
    """Whether jump target ``target`` is an offset before offset ``other``."""
    return isinstance(target, int) and isinstance(other, int) and target < other


def _name_of(arg: object) -> str:
    """The name in a name argument; the ``bytecode`` package adds flags before it in a tuple, and gives
    cell and free variables as objects with a ``name``."""
    if isinstance(arg, tuple) and arg:
        arg = arg[-1]
    arg = getattr(arg, "name", arg)
    return arg if isinstance(arg, str) else ""


def _expand(instrs: Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
    """Split 3.13 superinstructions into their two halves; drop entries that are not instructions."""
    out: list[tuple[str, object]] = []
    for opname, arg in instrs:
        if not isinstance(opname, str):
            continue
        halves = _SUPERINSTRUCTIONS.get(opname)
        if halves and isinstance(arg, tuple) and len(arg) == 2:
            out.append((halves[0], arg[0]))
            out.append((halves[1], arg[1]))
        else:
            out.append((opname, arg))
    return out


_Handler = Callable[["_Simulation", object], None]
_HANDLERS: dict[str, _Handler] = {}


def _handles(*opnames: str) -> Callable[[_Handler], _Handler]:
    def register(handler: _Handler) -> _Handler:
        for opname in opnames:
            _HANDLERS[opname] = handler
        return handler

    return register


@dataclass
class _Simulation:
    """One pass over an instruction list, collecting effects on names."""

    stack: list[_Val] = field(default_factory=list)
    saved: list[_Branch] = field(default_factory=list)  # where the instruction after a jump may resume
    joins: list[_Branch] = field(default_factory=list)  # jumps whose values may meet the fall-through
    at_target: dict[object, tuple[_Val, ...]] = field(default_factory=dict)  # stacks of jumps, by target
    rebound: set[str] = field(default_factory=set)
    mutated: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)
    called: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    globals_: set[str] = field(default_factory=set)
    loaded_objects: set[str] = field(default_factory=set)  # read names, less builtins loaded as globals
    lost: bool = False  # a lost value was stored into, called or passed
    loop_level: int = 0  # inner loops open (FOR_ITER seen, END_FOR not yet)
    hidden: list[_Hidden] = field(default_factory=list)  # inlined comprehension variables
    hidden_roots: dict[str, frozenset[str]] = field(default_factory=dict)  # their values' roots
    tracked: frozenset[str] = frozenset()  # locals whose values are followed like hidden ones
    ever_hidden: set[str] = field(default_factory=set)
    instrs: list[tuple[str, object]] = field(default_factory=list)
    index: int = 0  # of the instruction being simulated

    def run(self, instrs: Iterable[tuple[str, object]]) -> _Simulation:
        self.instrs = _expand(instrs)
        after_jump: tuple[str, object] | None = None
        for index, (opname, arg) in enumerate(self.instrs):
            self.index = index
            if opname == "END_FOR":
                self._end_inner_loop()
            elif after_jump:
                self._resume(*after_jump)
            after_jump = None
            self._join()
            if opname == "FOR_ITER":
                self._for_iter(arg)
            elif opname in _UNCONDITIONAL:
                if opname in _FORWARD:
                    self.joins.append(_Branch(self._to_target(tuple(self.stack), arg), arg))
                after_jump = (opname, arg if opname in _JUMPS else None)
            elif opname in _HANDLERS:
                _HANDLERS[opname](self, arg)
            elif opname in _JUMPS:
                self._conditional_jump(opname, arg)
            else:
                self._unknown(opname, arg)
        if self.lost:
            self.mutated |= self.loaded_objects
        return self

    # -- stack --------------------------------------------------------------------------------------------

    def _push(self, *vals: _Val) -> None:
        self.stack.extend(vals)

    def _pop(self) -> _Val:
        return self.stack.pop() if self.stack else _LOST

    def _pop_many(self, count: int) -> list[_Val]:
        """The top ``count`` values, deepest first."""
        vals = [self._pop() for _ in range(max(min(count, len(self.stack) + _SLACK), 0))]
        vals.reverse()
        return vals

    def _pop_null(self) -> bool:
        if self.stack and self.stack[-1].kind == "null":
            self.stack.pop()
            return True
        return False

    def _reach(self, depth: int) -> int:
        """Make sure ``depth`` slots exist (at least one, not absurdly many), filling the bottom with lost
        values; returns the depth made sure of."""
        depth = min(max(depth, 1), len(self.stack) + _SLACK)
        if len(self.stack) < depth:
            self.stack[:0] = [_LOST] * (depth - len(self.stack))
        return depth

    def _unknown(self, opname: str, arg: object) -> None:
        effect = _net_effect(opname, arg, jump=False)
        if effect < 0:
            self._pop_many(-effect)
        else:
            self._push(*[_FRESH] * effect)

    # -- control flow -------------------------------------------------------------------------------------

    def _jump_stack(self, opname: str, arg: object) -> tuple[_Val, ...]:
        """The stack a jump by the next instruction lands with."""
        effect = _net_effect(opname, arg, jump=True)
        if effect < 0:
            return tuple(self.stack[: max(len(self.stack) + effect, 0)])
        return (*self.stack, *[_FRESH] * effect)

    def _to_target(self, stack: tuple[_Val, ...], target: object) -> tuple[_Val, ...]:
        """``stack`` with the values of earlier jumps to the same ``target``, where one is given."""
        if target is None:
            return stack
        try:
            earlier = self.at_target.get(target)
        except TypeError:  # an unhashable jump argument
            return stack
        if earlier is not None and len(earlier) == len(stack):
            stack = _merged_stacks(stack, earlier)
        self.at_target[target] = stack
        return stack

    def _conditional_jump(self, opname: str, arg: object) -> None:
        branch = _Branch(self._to_target(self._jump_stack(opname, arg), arg), arg)
        self.saved.append(branch)
        if not opname.startswith("SETUP_"):  # a handler entry carries no value of the fall-through
            self.joins.append(branch)
        self._unknown(opname, arg)

    def _for_iter(self, arg: object) -> None:
        iterator = self.stack[-1] if self.stack else _LOST
        self.saved.append(_Branch(self._jump_stack("FOR_ITER", 0), arg, loop_body=tuple(self.stack)))
        self.loop_level += 1
        self._push(replace(iterator, name=None, builtin=False, derived=True, kind=""))

    def _resume(self, opname: str, target: object) -> None:
        """Pick the stack for an instruction that follows an unconditional jump to ``target``.

        Branches to the same target, or that the fall-through has met before a forward jump, land past
        this instruction. Of the rest, with offsets the nearest target before the forward jump's wins;
        else the latest branch, except that inside an inner loop of 3.12+ (whose exit is END_FOR) the
        instruction is a `continue` target with the loop body's stack."""
        forward = opname in _FORWARD
        self.saved = [
            branch
            for branch in self.saved
            if branch.loop_body is not None
            or not ((target is not None and branch.target == target) or (forward and branch.met))
        ]
        if forward and isinstance(target, int):
            before = [b for b in self.saved if b.loop_body is None and _before(b.target, target)]
            if before:
                nearest = max(before, key=lambda branch: branch.target)
                self.saved = [b for b in self.saved if b not in before or _before(nearest.target, b.target)]
                self._land(nearest)
                return
        if not self.saved:
            self.stack = []
        elif self.saved[-1].loop_body is not None and _HAS_END_FOR:
            self.stack = list(self.saved[-1].loop_body)
        else:
            self._land(self.saved.pop())

    def _land(self, branch: _Branch) -> None:
        self.stack = list(branch.stack)
        if branch in self.joins:
            self.joins.remove(branch)

    def _join(self) -> None:
        """Merge the stack of a pending jump into the fall-through path where they may meet.

        Those are the points where the fall-through stack, after dipping below the jump's depth, is as deep
        again, until it dips once more: ``f(x or y)`` then passes both names, ``f(a if c else b)`` too. A
        jump whose fall-through goes deeper first (an ``if`` statement) needs no merge. Values tested by a
        jump are not where jumps meet: ``f(a if c else (b if d.e else x))`` passes ``a``."""
        depth = len(self.stack)
        testing = self.instrs[self.index][0] in _CONDITIONAL  # a value about to be tested is no join point
        tested = self.index > 0 and self.instrs[self.index - 1][0] in _CONDITIONAL
        pending = []
        for branch in self.joins:
            if depth < len(branch.stack):
                if branch.met and not tested:
                    continue
                branch.armed, branch.met = True, False  # a met value that was only a condition
            elif depth == len(branch.stack):
                if branch.armed and not testing:
                    branch.met = True
                    self._merge(branch.stack)
            elif not branch.armed:
                continue
            pending.append(branch)
        self.joins = pending

    def _merge(self, other: tuple[_Val, ...]) -> None:
        self.stack = list(_merged_stacks(tuple(self.stack), other))

    def _end_inner_loop(self) -> None:
        """END_FOR (3.12+): back to the stack at the exit of the innermost open loop."""
        for position in range(len(self.saved) - 1, -1, -1):
            if self.saved[position].loop_body is not None:
                self.stack = list(self.saved[position].stack)
                del self.saved[position:]
                break
        else:
            self.stack = []
        self.loop_level = max(self.loop_level - 1, 0)
        for hidden in self.hidden:
            if hidden.level >= self.loop_level:
                hidden.done = True

    # -- effects ------------------------------------------------------------------------------------------

    def _mutate(self, val: _Val) -> None:
        self.mutated |= val.roots
        self.lost = self.lost or val.lost

    def _call(self, func: _Val, args: list[_Val]) -> _Val:
        self.lost = self.lost or func.lost or any(arg.lost for arg in args)
        if func.kind == "comp":
            for arg in args:
                if "mutated" in func.param:
                    self.mutated |= arg.roots
                if "passed" in func.param:
                    self.passed |= arg.roots
            return _FRESH
        for arg in args:
            self.passed |= arg.roots
        if func.name is not None and not func.derived:
            if not func.builtin:
                self.called.add(func.name)
        else:
            self.mutated |= func.roots
        return _Val(kind="func") if func.kind == "builder" else _FRESH

    # -- names --------------------------------------------------------------------------------------------

    def _load(self, name: str, *, global_: bool = False, builtin_scope: bool = False) -> None:
        if not name:
            self._push(_FRESH)
            return
        self.read.add(name)
        builtin = builtin_scope and name in _BUILTINS
        if not builtin:
            self.loaded_objects.add(name)
        if global_:
            self.globals_.add(name)
        self._push(_Val(roots=frozenset({name}), name=name, builtin=builtin))

    def _store(self, name: str, *, global_: bool = False) -> None:
        if name:
            self.rebound.add(name)
            if global_:
                self.globals_.add(name)

    def _is_hidden(self, name: str) -> bool:
        return name in self.tracked or any(h.name == name and not h.done for h in self.hidden)

    def _restores_before_reraise(self) -> bool:
        """A STORE_FAST of comprehension variables that runs into RERAISE: the 3.12+ cleanup path."""
        for opname, arg in self.instrs[self.index :]:
            if opname == "RERAISE":
                return True
            if opname != "STORE_FAST" or _name_of(arg) not in self.ever_hidden:
                return False
        return False

    @_handles("LOAD_FAST", "LOAD_FAST_CHECK")
    def _load_fast(self, arg: object) -> None:
        name = _name_of(arg)
        if self._is_hidden(name):
            roots = self.hidden_roots.get(name, frozenset())
            self._push(_Val(roots=roots, derived=bool(roots)))
        else:
            self._load(name)

    @_handles("LOAD_FAST_AND_CLEAR")
    def _load_fast_and_clear(self, arg: object) -> None:
        name = _name_of(arg)
        self.hidden.append(_Hidden(name, self.loop_level))
        self.ever_hidden.add(name)
        self.hidden_roots.pop(name, None)
        self._push(_FRESH)

    @_handles("LOAD_DEREF", "LOAD_CLASSDEREF")
    def _load_deref(self, arg: object) -> None:
        self._load(_name_of(arg))

    @_handles("LOAD_NAME")
    def _load_name(self, arg: object) -> None:
        self._load(_name_of(arg), builtin_scope=True)

    @_handles("LOAD_GLOBAL")
    def _load_global(self, arg: object) -> None:
        with_null = isinstance(arg, tuple) and len(arg) == 2 and arg[0] is True
        if with_null and not _NULL_AFTER_CALLABLE:
            self._push(_NULL)
        self._load(_name_of(arg), global_=True, builtin_scope=True)
        if with_null and _NULL_AFTER_CALLABLE:
            self._push(_NULL)

    @_handles("LOAD_FROM_DICT_OR_DEREF")
    def _load_from_dict_or_deref(self, arg: object) -> None:
        self._pop()
        self._load(_name_of(arg))

    @_handles("LOAD_FROM_DICT_OR_GLOBALS")
    def _load_from_dict_or_globals(self, arg: object) -> None:
        self._pop()
        self._load(_name_of(arg), builtin_scope=True)

    @_handles("LOAD_CLOSURE")
    def _load_closure(self, arg: object) -> None:
        name = _name_of(arg)
        if name:
            self.read.add(name)
            self.loaded_objects.add(name)
        self._push(_FRESH)

    @_handles("STORE_FAST", "STORE_FAST_MAYBE_NULL")
    def _store_fast(self, arg: object) -> None:
        name = _name_of(arg)
        val = self._pop()
        if name in self.tracked:
            self.hidden_roots[name] = val.roots
            return
        for position in range(len(self.hidden) - 1, -1, -1):
            hidden = self.hidden[position]
            if hidden.name == name:
                if hidden.done:
                    del self.hidden[position]  # the comprehension restores the outer value
                else:
                    self.hidden_roots[name] = val.roots
                return
        if name in self.ever_hidden and self._restores_before_reraise():
            return
        self._store(name)

    @_handles("STORE_DEREF", "STORE_NAME")
    def _store_name(self, arg: object) -> None:
        self._pop()
        self._store(_name_of(arg))

    @_handles("STORE_GLOBAL")
    def _store_global(self, arg: object) -> None:
        self._pop()
        self._store(_name_of(arg), global_=True)

    @_handles("DELETE_FAST", "DELETE_DEREF", "DELETE_NAME")
    def _delete_name(self, arg: object) -> None:
        self._store(_name_of(arg))

    @_handles("DELETE_GLOBAL")
    def _delete_global(self, arg: object) -> None:
        self._store(_name_of(arg), global_=True)

    # -- attributes and items -----------------------------------------------------------------------------

    @_handles("LOAD_ATTR", "LOAD_METHOD")
    def _load_attr(self, arg: object) -> None:
        obj = self._pop()
        self._push(_Val(roots=obj.roots, derived=True, lost=obj.lost))

    @_handles("LOAD_SUPER_ATTR")
    def _load_super_attr(self, arg: object) -> None:
        obj = self._pop_many(3)[-1]
        self._push(_Val(roots=obj.roots, derived=True, lost=obj.lost))

    @_handles("STORE_ATTR")
    def _store_attr(self, arg: object) -> None:
        self._mutate(self._pop())
        self._pop()

    @_handles("DELETE_ATTR")
    def _delete_attr(self, arg: object) -> None:
        self._mutate(self._pop())

    @_handles("BINARY_SUBSCR")
    def _binary_subscr(self, arg: object) -> None:
        container = self._pop_many(2)[0]
        self._push(_Val(roots=container.roots, derived=True, lost=container.lost))

    @_handles("BINARY_SLICE")
    def _binary_slice(self, arg: object) -> None:
        container = self._pop_many(3)[0]
        self._push(_Val(roots=container.roots, derived=True, lost=container.lost))

    @_handles("STORE_SUBSCR")
    def _store_subscr(self, arg: object) -> None:
        self._mutate(self._pop_many(3)[1])

    @_handles("DELETE_SUBSCR")
    def _delete_subscr(self, arg: object) -> None:
        self._mutate(self._pop_many(2)[0])

    @_handles("STORE_SLICE")
    def _store_slice(self, arg: object) -> None:
        self._mutate(self._pop_many(4)[1])

    # -- operators ----------------------------------------------------------------------------------------

    def _in_place(self, target: _Val) -> None:
        self._mutate(target)
        self._push(_Val(roots=target.roots, derived=target.derived, lost=target.lost))

    @_handles("BINARY_OP")
    def _binary_op(self, arg: object) -> None:
        target = self._pop_many(2)[0]
        in_place = getattr(arg, "name", "").startswith("INPLACE") or 13 <= _int(arg) <= 25
        if in_place:
            self._in_place(target)
        else:
            self._push(_FRESH)

    @_handles(
        "INPLACE_ADD",
        "INPLACE_SUBTRACT",
        "INPLACE_MULTIPLY",
        "INPLACE_MATRIX_MULTIPLY",
        "INPLACE_TRUE_DIVIDE",
        "INPLACE_FLOOR_DIVIDE",
        "INPLACE_MODULO",
        "INPLACE_POWER",
        "INPLACE_LSHIFT",
        "INPLACE_RSHIFT",
        "INPLACE_AND",
        "INPLACE_OR",
        "INPLACE_XOR",
    )
    def _inplace_310(self, arg: object) -> None:
        self._in_place(self._pop_many(2)[0])

    @_handles(
        "BINARY_ADD",
        "BINARY_SUBTRACT",
        "BINARY_MULTIPLY",
        "BINARY_MATRIX_MULTIPLY",
        "BINARY_TRUE_DIVIDE",
        "BINARY_FLOOR_DIVIDE",
        "BINARY_MODULO",
        "BINARY_POWER",
        "BINARY_LSHIFT",
        "BINARY_RSHIFT",
        "BINARY_AND",
        "BINARY_OR",
        "BINARY_XOR",
        "COMPARE_OP",
        "IS_OP",
        "CONTAINS_OP",
        "FORMAT_WITH_SPEC",
    )
    def _new_from_two(self, arg: object) -> None:
        self._pop_many(2)
        self._push(_FRESH)

    @_handles(
        "UNARY_NEGATIVE",
        "UNARY_POSITIVE",
        "UNARY_NOT",
        "UNARY_INVERT",
        "TO_BOOL",
        "FORMAT_SIMPLE",
        "CONVERT_VALUE",
    )
    def _new_from_one(self, arg: object) -> None:
        self._pop()
        self._push(_FRESH)

    @_handles("FORMAT_VALUE")
    def _format_value(self, arg: object) -> None:
        self._pop_many(2 if _int(arg) & 0x04 else 1)
        self._push(_FRESH)

    @_handles("BUILD_STRING", "BUILD_SLICE")
    def _build_new(self, arg: object) -> None:
        self._pop_many(_int(arg))
        self._push(_FRESH)

    # -- stack shuffles -----------------------------------------------------------------------------------

    @_handles("POP_TOP")
    def _pop_top(self, arg: object) -> None:
        self._pop()

    @_handles("DUP_TOP")
    def _dup_top(self, arg: object) -> None:
        self._reach(1)
        self._push(self.stack[-1])

    @_handles("DUP_TOP_TWO")
    def _dup_top_two(self, arg: object) -> None:
        self._reach(2)
        self._push(*self.stack[-2:])

    @_handles("COPY")
    def _copy(self, arg: object) -> None:
        self._push(self.stack[-self._reach(_int(arg))])

    @_handles("SWAP")
    def _swap(self, arg: object) -> None:
        depth = self._reach(_int(arg))
        self.stack[-1], self.stack[-depth] = self.stack[-depth], self.stack[-1]

    def _rotate(self, depth: int) -> None:
        depth = self._reach(depth)
        self.stack.insert(len(self.stack) - depth, self.stack.pop())

    @_handles("ROT_TWO")
    def _rot_two(self, arg: object) -> None:
        self._rotate(2)

    @_handles("ROT_THREE")
    def _rot_three(self, arg: object) -> None:
        self._rotate(3)

    @_handles("ROT_FOUR")
    def _rot_four(self, arg: object) -> None:
        self._rotate(4)

    @_handles("ROT_N")
    def _rot_n(self, arg: object) -> None:
        self._rotate(_int(arg))

    # -- containers ---------------------------------------------------------------------------------------

    @_handles("BUILD_TUPLE", "BUILD_LIST", "BUILD_SET")
    def _build(self, arg: object) -> None:
        self._push(_merged(self._pop_many(_int(arg))))

    @_handles("BUILD_MAP")
    def _build_map(self, arg: object) -> None:
        self._push(_merged(self._pop_many(2 * _int(arg))))

    @_handles("BUILD_CONST_KEY_MAP")
    def _build_const_key_map(self, arg: object) -> None:
        self._push(_merged(self._pop_many(_int(arg) + 1)))

    def _add_to(self, depth: int, vals: list[_Val]) -> None:
        depth = self._reach(depth)
        self.stack[-depth] = _merged([self.stack[-depth], *vals])

    @_handles("LIST_APPEND", "SET_ADD", "LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE", "DICT_MERGE")
    def _container_add(self, arg: object) -> None:
        val = self._pop()
        self._add_to(_int(arg), [val])

    @_handles("MAP_ADD")
    def _map_add(self, arg: object) -> None:
        vals = self._pop_many(2)
        self._add_to(_int(arg), vals)

    @_handles("LIST_TO_TUPLE", "CALL_INTRINSIC_1")
    def _keep_roots(self, arg: object) -> None:
        self._push(_merged([self._pop()]))

    @_handles("CALL_INTRINSIC_2")
    def _intrinsic_2(self, arg: object) -> None:
        self._push(_merged(self._pop_many(2)))

    def _unpack(self, count: int) -> None:
        seq = self._pop()
        self._push(*[_Val(roots=seq.roots, derived=bool(seq.roots), lost=seq.lost)] * count)

    @_handles("UNPACK_SEQUENCE")
    def _unpack_sequence(self, arg: object) -> None:
        self._unpack(_int(arg))

    @_handles("UNPACK_EX")
    def _unpack_ex(self, arg: object) -> None:
        count = _int(arg)
        self._unpack((count & 0xFF) + (count >> 8) + 1)

    # -- iteration and context managers -------------------------------------------------------------------

    @_handles("GET_ITER", "GET_YIELD_FROM_ITER", "GET_AITER")
    def _get_iter(self, arg: object) -> None:
        iterable = self._pop()
        self._mutate(iterable)
        self._push(_Val(roots=iterable.roots, derived=bool(iterable.roots), lost=iterable.lost, kind="iter"))

    @_handles("BEFORE_WITH", "BEFORE_ASYNC_WITH")
    def _before_with(self, arg: object) -> None:
        # The __exit__ slot is left out: the exit call (three Nones, CALL 2) then balances on the
        # logical stack, where it takes the first None as its callable.
        self._mutate(self._pop())
        self._push(_FRESH)

    @_handles("SETUP_WITH", "SETUP_ASYNC_WITH")
    def _setup_with(self, arg: object) -> None:
        self.saved.append(_Branch(self._jump_stack("SETUP_WITH", arg), arg))
        self._mutate(self._pop())
        self._push(_FRESH, _FRESH)

    # -- calls --------------------------------------------------------------------------------------------

    @_handles("PUSH_NULL")
    def _push_null(self, arg: object) -> None:
        self._push(_NULL)

    @_handles("PRECALL", "KW_NAMES")
    def _no_stack_change(self, arg: object) -> None:
        """No logical stack change: NULL/self pairs count as one slot."""

    @_handles("CALL_FUNCTION", "CALL_METHOD")
    def _call_310(self, arg: object) -> None:
        args = self._pop_many(_int(arg))
        self._push(self._call(self._pop(), args))

    @_handles("CALL_FUNCTION_KW")
    def _call_function_kw(self, arg: object) -> None:
        self._pop()  # the tuple of keyword names
        self._call_310(arg)

    @_handles("CALL", "CALL_KW")
    def _call_311(self, arg: object) -> None:
        if self.instrs[self.index][0] == "CALL_KW":
            self._pop()  # the tuple of keyword names
        count = _int(arg)
        args = self._pop_many(count)
        null = self._pop_null()
        func = self._pop()
        null = self._pop_null() or null
        if not null and self.stack:
            below = self.stack[-1]
            if func.kind == "iter" and below.kind == "comp":
                # comprehension function called with its iterator in the self slot: CALL 0
                args, func = [func], self._pop()
            elif func.kind == "func" and count == 0 and below.kind not in ("null", "comp"):
                # decorator called with the function in the self slot: CALL 0
                args, func = [func], self._pop()
                self._call(func, args)
                self._push(_Val(kind="func"))
                return
        self._push(self._call(func, args))

    @_handles("CALL_FUNCTION_EX")
    def _call_function_ex(self, arg: object) -> None:
        args = self._pop_many(2 if _int(arg) & 1 else 1)
        self._pop_null()
        func = self._pop()
        self._pop_null()
        self._push(self._call(func, args))

    @_handles("LOAD_BUILD_CLASS")
    def _load_build_class(self, arg: object) -> None:
        self._push(_Val(kind="builder"))

    # -- constants and nested code ------------------------------------------------------------------------

    @_handles("LOAD_CONST")
    def _load_const(self, arg: object) -> None:
        if not isinstance(arg, types.CodeType):
            self._push(_FRESH)
            return
        nested = _nested_effects(arg)
        self.rebound |= nested.rebound
        self.mutated |= nested.mutated
        self.passed |= nested.passed
        self.called |= nested.called
        self.read |= nested.read
        self.loaded_objects |= nested.read
        self.globals_ |= nested.globals_
        kind = "comp" if arg.co_name in _COMPREHENSIONS else "code"
        self._push(_Val(kind=kind, param=nested.param))

    @_handles("MAKE_FUNCTION")
    def _make_function(self, arg: object) -> None:
        vals = self._pop_many(1 - _net_effect("MAKE_FUNCTION", arg))
        code = next((val for val in vals if val.kind in ("code", "comp")), _FRESH)
        self._push(_Val(kind="comp" if code.kind == "comp" else "func", param=code.param))

    @_handles("SET_FUNCTION_ATTRIBUTE")
    def _set_function_attribute(self, arg: object) -> None:
        func = self._pop()
        self._pop()
        self._push(func)


@dataclass(frozen=True)
class _Nested:
    """Effects of a function, class or comprehension defined in the body, on names outside it."""

    rebound: frozenset[str]
    mutated: frozenset[str]
    passed: frozenset[str]
    called: frozenset[str]
    read: frozenset[str]
    globals_: frozenset[str]
    param: frozenset[str]  # "mutated"/"passed": what the code does with its `.0` iterator argument


@functools.lru_cache(maxsize=1024)
def _nested_effects(code: types.CodeType) -> _Nested:
    # A comprehension's variables carry its items, so that `[f(x) for x in xs]` passes items of `xs`, as
    # it does on 3.12+ where list, set and dict comprehensions are inlined.
    tracked = frozenset(code.co_varnames) - {".0"} if code.co_name in _COMPREHENSIONS else frozenset()
    sim = _Simulation(tracked=tracked).run((ins.opname, ins.argval) for ins in dis.get_instructions(code))
    local = set(code.co_varnames) | set(code.co_cellvars)
    if not code.co_flags & inspect.CO_OPTIMIZED:  # a class body: its names are class attributes
        local |= sim.rebound - sim.globals_

    def outer(names: set[str]) -> frozenset[str]:
        return frozenset(names - local)

    param = frozenset(
        label for label, names in (("mutated", sim.mutated), ("passed", sim.passed)) if ".0" in names
    )
    return _Nested(
        rebound=outer(sim.rebound),
        mutated=outer(sim.mutated),
        passed=outer(sim.passed),
        called=outer(sim.called),
        read=outer(sim.read),
        globals_=frozenset(sim.globals_),
        param=param,
    )
