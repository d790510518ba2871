"""Hindsight statements run isolated, so that lines added since the recording cannot change training.

On replay every simple statement on a line that changed since the recording is wrapped, in the AST, in
``with __import__("flortrace")._hindsight(FILE, LINE, COLUMN):``. The session's isolation saves the
process-wide RNG states before the statement and puts them back after it (a probe that draws random numbers
leaves training's draws as they were), and mutes the statement's output in the comparison with what the
recording printed. The first time each statement runs inside an epoch, the loop-carried state is digested
before and after it: a statement that changes state is named (file:line) and stops the replay. Line numbers
and tracebacks stay the user's: the wrapper carries the statement's own position.
"""

from __future__ import annotations

import ast

from .. import state

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Global, ast.Nonlocal, ast.Pass)
_COMPOUND = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
    *((ast.Match,) if hasattr(ast, "Match") else ()),
)


def statements(tree, lines):
    """The simple statements of ``tree`` that touch one of ``lines`` (1-based), outermost first."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt)
        and not isinstance(node, (*_COMPOUND, *_DEFINITIONS))
        and any(node.lineno <= n <= (node.end_lineno or node.lineno) for n in lines)
    ]


def wrap(tree, file, lines):
    """Wrap the statements on ``lines`` in isolation (``tree`` is changed in place and returned)."""
    chosen = {id(node) for node in statements(tree, lines) if not _suspends(node)}
    if not chosen:
        return tree
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                setattr(node, name, [_isolated(s, file) if id(s) in chosen else s for s in body])
        for handler in getattr(node, "handlers", ()):
            handler.body = [_isolated(s, file) if id(s) in chosen else s for s in handler.body]
        for case in getattr(node, "cases", ()):
            case.body = [_isolated(s, file) if id(s) in chosen else s for s in case.body]
    return tree


def _suspends(node):
    """A statement that yields or awaits: isolation around it would span other code's execution."""
    return any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) for n in ast.walk(node))


def _isolated(stmt, file):
    call = ast.Call(
        func=ast.Attribute(
            value=ast.Call(
                func=ast.Name("__import__", ast.Load()), args=[ast.Constant("flortrace")], keywords=[]
            ),
            attr="_hindsight",
            ctx=ast.Load(),
        ),
        args=[ast.Constant(file), ast.Constant(stmt.lineno), ast.Constant(stmt.col_offset)],
        keywords=[],
    )
    node = ast.With(items=[ast.withitem(context_expr=call)], body=[])
    for n in ast.walk(node):  # the wrapper takes the statement's position; the statement keeps its own
        ast.copy_location(n, stmt)
        n.end_lineno, n.end_col_offset = stmt.end_lineno, stmt.end_col_offset
    node.body.append(stmt)
    return node


class Isolation:
    """One execution of a hindsight statement (see the module docstring); ``session`` provides
    ``hindsight_depth``, ``check_statement(key) -> digest or None`` and ``statement_done(key, before)``."""

    __slots__ = ("session", "key", "rng", "before")

    def __init__(self, session, key):
        self.session, self.key = session, key

    def __enter__(self):
        s = self.session
        s.hindsight_depth += 1
        if s.hindsight_depth == 1:
            self.before = s.check_statement(self.key)
            self.rng = state.capture_rng()
        return self

    def __exit__(self, *exc):
        s = self.session
        s.hindsight_depth -= 1
        if s.hindsight_depth == 0:
            state.restore_rng(self.rng)
            s.statement_done(self.key, self.before, exc[0] is not None)
        return False


class NoIsolation:
    """Outside replay the wrapper does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


NOTHING = NoIsolation()
