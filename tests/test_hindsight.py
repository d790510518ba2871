"""Hindsight statements: the AST wrapper keeps the user's lines; isolation restores RNG states."""

from __future__ import annotations

import ast
import random
import sys
import textwrap
import traceback

from flortrace.runtime.hindsight import Isolation, statements, wrap

SRC = textwrap.dedent(
    """\
    total = 0
    for e in range(3):
        total += e
        print("e", e,
              total)
        if e:
            def helper():
                return 1
            x = [i for i in range(e)]
    """
)


def test_only_simple_statements_on_changed_lines_are_chosen():
    chosen = statements(ast.parse(SRC), {5, 7, 9})
    assert [type(s).__name__ for s in chosen] == ["Expr", "Assign"]  # print (its second line), x = ...


def test_wrapped_code_runs_the_same_and_keeps_line_numbers():
    tree = wrap(ast.parse(SRC), "f.py", {4, 9})
    assert ast.unparse(tree).count("_hindsight('f.py'") == 2
    out = {}
    exec(compile(tree, "f.py", "exec"), out)
    assert out["total"] == 3 and out["x"] == [0, 1]

    broken = wrap(ast.parse("a = 1\nb = a / 0\n"), "g.py", {2})
    try:
        exec(compile(broken, "g.py", "exec"), {})
    except ZeroDivisionError:
        frames = traceback.extract_tb(sys.exc_info()[2])
    assert frames[-1].lineno == 2 and frames[-1].filename == "g.py"


def test_statements_that_yield_are_not_wrapped():
    src = "def gen():\n    yield 1\n    x = 2\n"
    assert "_hindsight" not in ast.unparse(wrap(ast.parse(src), "f.py", {2}))


class _Session:
    hindsight_depth = 0

    def __init__(self):
        self.done = []

    def check_statement(self, key):
        return None

    def statement_done(self, key, before, failed):
        self.done.append((key, failed))


def test_isolation_restores_the_random_generators():
    session = _Session()
    random.seed(4)
    expected = random.random()
    random.seed(4)
    with Isolation(session, ("f.py", 1, 0)):
        random.random()
        random.random()
    assert random.random() == expected and session.done == [(("f.py", 1, 0), False)]
