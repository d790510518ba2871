"""The bytecode layer: loops found, ids stable, semantics unchanged, every entry, iteration and exit seen."""

from __future__ import annotations

import os
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flortrace.instrument import emit
from flortrace.instrument.patch import instrument_module_code
from flortrace.runtime import hooks
from flortrace.runtime.session import Session


class Events(Session):
    """A session that writes down what it sees."""

    def __init__(self):
        super().__init__()
        self.events = []

    def on_main(self, act):
        self.events.append(("main", act.info.qualname, act.info.ordinal))

    def on_epoch_end(self, act, last):
        self.events.append(("epoch", self.epoch, last))

    def on_block_exit(self, act, skipped):
        self.events.append(("block", act.info.qualname, act.info.ordinal, act.seq, act.steps))


def run(src, session=None):
    src = textwrap.dedent(src)
    code, loops = instrument_module_code(compile(src, "t.py", "exec"), "t.py", hooks.HOOKS, src)
    plain = {"__name__": "t"}
    exec(compile(src, "t.py", "exec"), plain)
    ns = {"__name__": "t"}
    hooks.activate(session or Events())
    try:
        exec(code, ns)
    finally:
        session = hooks.current()
        hooks.deactivate()
    return plain, ns, loops, session


SHAPES = """
def inner(xs):
    t = 0
    for x in xs:
        if x == 7:
            continue
        t += x
    else:
        t += 100
    return t

def early(xs):
    for a in xs:
        for b in xs:
            if a * b > 6:
                return a, b
    return None

class Model:
    def __init__(self):
        self.w = [0.0, 0.0]

    def fit(self, epochs):
        log = []
        for epoch in range(epochs):
            k = 0
            while k < 3:
                k += 1
                if k == 2:
                    continue
            for i, g in enumerate([0.5, -0.25]):
                self.w[i] += g
            try:
                for q in range(3):
                    if q == 1:
                        raise ValueError(q)
            except ValueError as e:
                log.append(("caught", e.args[0]))
            with open(__file__ if "__file__" in globals() else "/dev/null") as f:
                for _ in range(2):
                    break
            log.append((epoch, inner(range(epoch + 8)), early(range(4)), list(self.w)))
        return log

def gen(n):
    i = 0
    while i < n:
        yield i
        i += 1

result = Model().fit(3)
squares = [x * x for x in gen(5)]
total = sum(x for x in range(10) if x % 2)
w = 0
while True:
    w += 1
    if w > 4:
        break
else:
    w = -1
"""


def test_semantics_unchanged_and_hooks_see_structure():
    plain, ns, loops, s = run(SHAPES)
    for name in ("result", "squares", "total", "w"):
        assert ns[name] == plain[name]
    assert s.stack == []
    ids = {(i.qualname, i.ordinal, i.kind) for i in loops}
    assert ("Model.fit", 0, "for") in ids and ("Model.fit", 1, "while") in ids
    assert not any(i.qualname == "gen" for i in loops), "generators are left alone"
    ev = s.events
    assert ev[0] == ("main", "Model.fit", 0)
    assert [e for e in ev if e[0] == "epoch"][:3] == [
        ("epoch", 0, False),
        ("epoch", 1, False),
        ("epoch", 2, True),
    ]
    blocks = [e for e in ev if e[0] == "block"]
    assert ("block", "Model.fit", 1, 0, 3) in blocks  # the while loop: three iterations
    assert ("block", "Model.fit", 3, 2, 2) in blocks  # the loop left by an exception
    assert ("block", "inner", 0, 4, 8) in blocks  # a loop in a called function (epoch 0: range(8))
    assert ("block", "early", 0, 5, 4) in blocks  # left by return from an inner loop
    # a module-level while loop with nested hooked loops? none here: it stays a plain top loop
    assert ("main", "<module>", 1) not in ev


def test_loop_ids_follow_source_order_on_every_version():
    src = """
    def f(xs):
        while xs:
            while len(xs) > 5:
                xs = xs[1:]
            for x in xs:
                pass
            xs = xs[1:]
        try:
            pass
        except Exception:
            for y in range(2):
                pass
        for z in range(2):
            pass
        return xs
    r = f(list(range(8)))
    """
    _, _, loops, _ = run(src)
    got = sorted((i.ordinal, i.kind, i.lineno) for i in loops if i.qualname == "f")
    assert [(o, k) for o, k, _ in got] == [(0, "while"), (1, "while"), (2, "for"), (3, "for"), (4, "for")]


def test_two_main_loops_number_epochs_globally():
    src = """
    def step(xs):
        for x in xs:
            pass
    for a in range(2):
        step(range(3))
    for b in range(3):
        step(range(1))
    """
    *_, s = run(src)
    epochs = [e[1] for e in s.events if e[0] == "epoch"]
    assert epochs == [0, 1, 2, 3, 4]
    assert [e for e in s.events if e[0] == "main"] == [("main", "<module>", 0), ("main", "<module>", 1)]


def test_while_main_loop_and_break():
    src = """
    def work(n):
        for i in range(n):
            pass
    epoch = 0
    while epoch < 10:
        work(epoch + 1)
        epoch += 1
        if epoch == 3:
            break
    """
    plain, ns, _, s = run(src)
    assert ns["epoch"] == plain["epoch"] == 3
    assert [e for e in s.events if e[0] == "epoch"] == [
        ("epoch", 0, False),
        ("epoch", 1, False),
        ("epoch", 2, True),
    ]
    assert s.stack == []


def test_no_session_means_plain_behaviour():
    src = "out = []\nfor i in range(3):\n    for j in range(2):\n        out.append((i, j))\n"
    code, _ = instrument_module_code(compile(src, "t.py", "exec"), "t.py", hooks.HOOKS, src)
    ns = {}
    exec(code, ns)
    assert ns["out"] == [(i, j) for i in range(3) for j in range(2)]


def test_emitter_calls_hook_on_this_version():
    from bytecode import Bytecode, Instr

    seen = []

    def hook(value, extra):
        seen.append((value, extra))
        return value * 2

    def marker(arg):
        seen.append(arg)

    bc = Bytecode([Instr("LOAD_CONST", 21), *emit.wrap_top(hook, "x"), *emit.call_discard(marker, "m")])
    bc.append(Instr("RETURN_VALUE"))
    import sys

    if sys.version_info >= (3, 11):
        bc.insert(0, Instr("RESUME", 0))
    assert eval(bc.to_code()) == 42
    assert seen == [(21, "x"), "m"]


@settings(max_examples=int(os.environ.get("FLORTRACE_TEST_EXAMPLES", 40)), deadline=None)
@given(
    st.lists(st.sampled_from(["for", "while", "break", "continue", "if"]), min_size=1, max_size=6),
    st.integers(0, 4),
)
def test_random_loop_nests_keep_semantics(shape, n):
    """Random nests of for/while with break/continue compute the same as uninstrumented code."""
    lines, depth, counter = ["acc = []"], 0, 0
    for item in shape:
        pad = "    " * depth
        if item == "for":
            lines.append(f"{pad}for v{counter} in range({n}):")
            depth += 1
        elif item == "while":
            lines.append(f"{pad}w{counter} = 0")
            lines.append(f"{pad}while w{counter} < {n}:")
            lines.append(f"{pad}    w{counter} += 1")
            depth += 1
        elif item == "if":
            lines.append(f"{pad}if len(acc) % 3 == 1:")
            lines.append(f"{pad}    acc.append('if')")
            continue
        elif depth:
            lines.append(f"{pad}if len(acc) % 2:")
            lines.append(f"{pad}    acc.append('{item}')")
            lines.append(f"{pad}    {item}")
        lines.append(f"{'    ' * depth}acc.append({counter})")
        counter += 1
    src = "\n".join(lines) + "\n"
    plain, ns, _, s = run(src)
    assert ns["acc"] == plain["acc"]
    assert s.stack == []


def test_hooks_are_callables():
    assert all(
        callable(getattr(hooks.HOOKS, f)) for f in ("for_loop", "while_enter", "while_tick", "while_exit")
    )


@pytest.mark.parametrize("kind", ["listcomp", "genexpr"])
def test_comprehensions_are_not_instrumented(kind):
    src = "r = [x for x in range(3)]" if kind == "listcomp" else "r = sum(x for x in range(3))"
    _, _, loops, _ = run(src)
    assert loops == []


def test_effects_include_exception_handlers_on_every_version():
    src = """
    def f(xs):
        log, skipped = [], 0
        for x in xs:
            try:
                v = 1 / x
            except ZeroDivisionError as err:
                skipped += 1
                log.append(err)
        return skipped, log
    """
    _, _, loops, _ = run(src)
    fx = loops[0].effects
    assert {"skipped", "err"} <= fx.rebound and "log" in fx.mutated and {"log", "skipped"} <= fx.read_after
