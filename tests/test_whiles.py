"""instrument.whiles: a while loop's exit hook runs exactly once however the loop is left (its test,
`break`, `return`, an exception, from `try`, `except`, `finally` and `with` blocks), on every version,
and the program computes what it computes without flortrace."""

from __future__ import annotations

import ast
import os
import sys
import textwrap
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from flortrace.instrument.patch import instrument_module_code


class Balance:
    """Hooks that check every while loop is exited once, innermost first, after it was entered."""

    def __init__(self):
        self.open, self.log = [], []

    def hooks(self):
        return SimpleNamespace(
            for_loop=lambda iterable, info: iterable,
            while_enter=self.enter,
            while_tick=self.tick,
            while_exit=self.exit,
        )

    def _key(self, info):
        return info.id, id(sys._getframe(2))

    def enter(self, info):
        self.open.append(self._key(info))
        self.log.append(("enter", info.qualname, info.ordinal))

    def tick(self, info):
        assert self.open and self.open[-1] == self._key(info), f"tick of a loop not running: {info}"

    def exit(self, info):
        assert self.open and self.open[-1] == self._key(info), f"exit of a loop not running: {info}"
        self.open.pop()
        self.log.append(("exit", info.qualname, info.ordinal))


PRELUDE = """
import weakref

class Big:
    pass

class Ctx:
    def __init__(self, k):
        self.k = k
    def __enter__(self):
        acc.append(("in", self.k))
    def __exit__(self, *exc):
        acc.append(("out", self.k, exc[0] is not None))

acc, refs = [], []
"""

DRIVER = """
for n in range(3):
    try:
        f(n)
    except ValueError as e:
        acc.append(("E", e.args[0]))
    acc.append(("freed", refs[-1]() is None))
"""


def run(src):
    """Run ``src`` plain and patched with balance-checking hooks; return (plain acc, patched acc, loops)."""
    src = textwrap.dedent(src)
    plain = {"__name__": "t"}
    exec(compile(src, "t.py", "exec"), plain)
    balance = Balance()
    code, loops = instrument_module_code(compile(src, "t.py", "exec"), "t.py", balance.hooks(), src)
    ns = {"__name__": "t"}
    exec(code, ns)
    assert balance.open == [], "loops never exited"
    return plain["acc"], ns["acc"], loops, balance


def whiles_in(src, name):
    tree = ast.parse(src)
    func = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    return sum(isinstance(n, ast.While) for n in ast.walk(func))


def loops_in_finally(src):
    """Whether a loop is in a `finally` block: the compiler copies those onto every way out of the `try`,
    into the code of loops around the `return`s in it, and a loop whose code then has a shape the patcher
    does not know is left unpatched (a plain loop)."""
    return any(
        isinstance(n, (ast.While, ast.For))
        for t in ast.walk(ast.parse(src))
        if isinstance(t, ast.Try)
        for s in t.finalbody
        for n in ast.walk(s)
    )


@st.composite
def programs(draw):
    counter = iter(range(1000))

    def block(depth, in_loop, in_finally):
        lines = []
        for _ in range(draw(st.integers(1, 3))):
            lines += statement(depth, in_loop, in_finally)
        return lines

    def statement(depth, in_loop, in_finally):
        k = next(counter)
        kinds = ["append"] + (["while", "for", "try", "finally", "with", "if"] if depth < 4 else [])
        kinds += ["return", "raise"] + (["break", "continue"] if in_loop and not in_finally else [])
        kind = draw(st.sampled_from(kinds))
        inner = lambda loop=in_loop, fin=in_finally: ["    " + line for line in block(depth + 1, loop, fin)]
        if kind == "append":
            return [f"acc.append({k})"]
        if kind == "while":
            tail = ["else:", f"    acc.append('else{k}')"] if draw(st.booleans()) else []
            return [f"w{k} = 0", f"while w{k} <= n:", f"    w{k} += 1", *inner(True, False), *tail]
        if kind == "for":
            return [f"for v{k} in range(n + 1):", *inner(True, False)]
        if kind == "try":
            return [
                "try:",
                *inner(),
                f"except ValueError as e{k}:",
                f"    acc.append(('caught', {k}))",
                *inner(),
            ]
        if kind == "finally":
            return ["try:", *inner(), "finally:", f"    acc.append('finally{k}')", *inner(in_loop, True)]
        if kind == "with":
            return [f"with Ctx({k}):", *inner()]
        if kind == "if":
            return [f"if len(acc) % 3 == {k % 3}:", *inner()]
        if kind == "raise":
            return [f"if len(acc) % 4 == {k % 4}:", f"    raise ValueError({k})"]
        return [f"if len(acc) % 2 == {k % 2}:", f"    {kind}" + (f" {k}" if kind == "return" else "")]

    body = ["big = Big()", "refs.append(weakref.ref(big))", *block(0, False, False), "acc.append('end')"]
    return PRELUDE + "def f(n):\n" + "".join(f"    {line}\n" for line in body) + DRIVER


@settings(max_examples=int(os.environ.get("FLORTRACE_TEST_EXAMPLES", 40)), deadline=None)
@given(programs())
def test_random_programs_exit_every_while_loop_once(src):
    plain, patched, loops, _ = run(src)
    assert patched == plain
    ordinals = {info.ordinal for info in loops if info.kind == "while"}  # 3.10 copies `finally` blocks
    if not loops_in_finally(src):
        assert len(ordinals) == whiles_in(src, "f"), "a while loop was left unpatched"


def test_break_and_return_in_except_reach_the_exit_hook():
    """3.12+ place handlers after the function's code, outside the loop's instructions (r19)."""
    src = (
        PRELUDE
        + textwrap.dedent(
            """
        def f(n):
            big = Big()
            refs.append(weakref.ref(big))
            k = 0
            while k < 10:
                k += 1
                try:
                    if k > n:
                        raise KeyError(k)
                except KeyError:
                    if n == 1:
                        return k
                    break
            acc.append(k)
        """
        )
        + DRIVER
    )
    plain, patched, _, balance = run(src)
    assert (
        patched == plain
        and [x for x in patched if isinstance(x, tuple) and x[0] == "freed"] == [("freed", True)] * 3
    )
    assert balance.log.count(("exit", "f", 0)) == 3


def test_exception_leaving_the_loop_calls_exit_and_keeps_the_traceback():
    """r04: the frame is released with the exception, and the traceback points where it was raised."""
    src = textwrap.dedent(
        """
        import traceback
        acc = []
        def f():
            i = 0
            while True:
                i += 1
                if i > 2:
                    raise ValueError(i)
        try:
            f()
        except ValueError as e:
            tb = e.__traceback__
            while tb.tb_next:
                tb = tb.tb_next
            acc.append((e.args, tb.tb_lineno))
        """
    )
    plain, patched, _, balance = run(src)
    assert patched == plain == [((3,), 9)]
    assert balance.log[:2] == [("enter", "f", 0), ("exit", "f", 0)]


def test_loop_inside_handler_and_returns_through_blocks():
    src = (
        PRELUDE
        + textwrap.dedent(
            """
        def f(n):
            big = Big()
            refs.append(weakref.ref(big))
            for a in range(2):
                with Ctx(a):
                    try:
                        raise ValueError(a)
                    except ValueError:
                        w = 0
                        while w < 3:
                            w += 1
                            if w == n:
                                return w
                        acc.append(w)
        """
        )
        + DRIVER
    )
    plain, patched, loops, _ = run(src)
    assert patched == plain
    assert [info.kind for info in loops if info.qualname == "f"] == ["for", "while"]


def test_copied_finally_blocks_keep_semantics():
    """A return inside nested try/finally, with and except blocks copies the finally's loops into the code
    of the loop around it (found by the random programs above on 3.12)."""
    src = open(os.path.join(os.path.dirname(__file__), "data", "copied_finally.py")).read()
    plain, patched, loops, balance = run(src)
    assert patched == plain and balance.open == []
