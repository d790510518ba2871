"""Number loops from the source (per scope, in source order), so loop ids survive compiler differences.

The bytecode of each Python version lays loops out differently (3.12 moves exception handlers, while-loop
tests are duplicated); the AST does not change, so ordinals come from here and are matched by line.
"""

from __future__ import annotations

import ast


def match(spans, qualname, kind, lineno, first_line=None):
    """The ordinal of the ``kind`` loop of ``qualname`` starting at ``first_line``, else of the innermost
    one whose lines contain ``lineno``; None when there is none."""
    for (qual, ordinal), (lo, _, k) in spans.items():
        if qual == qualname and k == kind and lo == first_line:
            return ordinal
    best = None
    for (qual, ordinal), (lo, hi, k) in spans.items():
        if qual == qualname and k == kind and lo <= lineno <= hi and (best is None or lo > best[1]):
            best = (ordinal, lo)
    return None if best is None else best[0]


def loop_spans(tree):
    """{(qualname, ordinal): (first line, last line, kind)}: loops numbered per scope in source order."""
    spans = {}

    def visit(node, qual):
        loops = []

        def collect(n):
            for child in ast.iter_child_nodes(n):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    continue
                if isinstance(child, (ast.For, ast.While)):
                    loops.append(child)
                if isinstance(child, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                    continue
                collect(child)

        collect(node)
        loops.sort(key=lambda n: (n.lineno, n.col_offset))
        for i, loop in enumerate(loops):
            spans[(qual, i)] = (
                loop.lineno,
                loop.end_lineno or loop.lineno,
                "while" if isinstance(loop, ast.While) else "for",
            )
        for child in ast.walk(node):
            if child is node:
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _parent_scope(
                node, child
            ):
                sep = "." if isinstance(node, ast.ClassDef) or qual == "<module>" else ".<locals>."
                name = child.name if qual == "<module>" else f"{qual}{sep}{child.name}"
                visit(child, name)

    visit(tree, "<module>")
    return spans


def _parent_scope(scope, node):
    """True when ``node`` is defined directly in ``scope`` (not inside a nested function or class)."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        n = stack.pop()
        if n is node:
            return True
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(n))
    return False
