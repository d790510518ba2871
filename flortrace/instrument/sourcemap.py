"""Number loops from the source (per scope, in source order), so loop ids survive compiler differences.

The bytecode of each Python version lays loops out differently (3.12 moves exception handlers, while-loop
tests are duplicated); the AST does not change, so ordinals come from here and are matched by line.
"""

from __future__ import annotations

import ast
from collections import deque

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def index(spans):
    """``spans`` grouped by scope: {qualname: [(ordinal, first line, last line, kind)]}, for ``match``."""
    out = {}
    for (qual, ordinal), (lo, hi, kind) in spans.items():
        out.setdefault(qual, []).append((ordinal, lo, hi, kind))
    return out


class SourceIndex:
    """``index`` of a module's source, parsed when first asked (most modules have no loops at all);
    empty when the source does not parse (then loops are numbered in bytecode order)."""

    def __init__(self, source):
        self.source, self._index = source, None

    def get(self, qualname, default=()):
        if self._index is None:
            try:
                self._index = index(loop_spans(ast.parse(self.source)))
            except (SyntaxError, ValueError, RecursionError):
                self._index = {}
        return self._index.get(qualname, default)


def match(index, qualname, kind, lineno, first_line=None):
    """The ordinal of the ``kind`` loop of ``qualname`` starting at ``first_line``, else of the innermost
    one whose lines contain ``lineno``; None when there is none. ``index``: ``index(spans)`` or a
    SourceIndex."""
    loops = index.get(qualname, ())
    for ordinal, lo, _, k in loops:
        if k == kind and lo == first_line:
            return ordinal
    best = None
    for ordinal, lo, hi, k in loops:
        if k == kind and lo <= lineno <= hi and (best is None or lo > best[1]):
            best = (ordinal, lo)
    return None if best is None else best[0]


def loop_spans(tree):
    """{(qualname, ordinal): (first line, last line, kind)}: loops numbered per scope in source order.

    One walk of the tree's statements (loops and scopes are statements, so expressions are never looked
    into): each scope collects its own loops and starts the walk of the scopes it defines."""
    spans = {}

    def visit(scope, qual):
        loops, todo = [], deque([scope])
        while todo:  # breadth first, as ast.walk: a name defined twice in a scope keeps its last span
            for child in _statements(todo.popleft()):
                if isinstance(child, _SCOPES):
                    sep = "." if isinstance(scope, ast.ClassDef) or qual == "<module>" else ".<locals>."
                    visit(child, child.name if qual == "<module>" else f"{qual}{sep}{child.name}")
                    continue
                if isinstance(child, (ast.For, ast.While)):
                    loops.append(child)
                todo.append(child)
        loops.sort(key=lambda n: (n.lineno, n.col_offset))
        for i, loop in enumerate(loops):
            kind = "while" if isinstance(loop, ast.While) else "for"
            spans[(qual, i)] = (loop.lineno, loop.end_lineno or loop.lineno, kind)

    visit(tree, "<module>")
    return spans


def _statements(node):
    """The statements right inside ``node`` (and the except and case clauses that hold some), in the order
    ast.iter_child_nodes gives them."""
    for name in node._fields:
        if name in _BLOCKS:
            yield from getattr(node, name)


_BLOCKS = {"body", "orelse", "finalbody", "handlers", "cases"}
