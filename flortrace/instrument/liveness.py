"""Which names an epoch can read before it writes them: only their values at an epoch's end matter.

``total_loss, acc = loss_fn()`` at the top of the body throws the previous epoch's ``total_loss`` away; so
does ``pred = Value(0.0)`` at the top of the batch loop for ``pred``. A checkpoint need not hold such names
(a graph of a whole epoch's computation, in an autograd demo), and replay need not compare them. This is a
small dataflow over the AST of the loop body (every Python version shares it): a read counts when no write
reaches it on every path from the top of the iteration. Branches keep what both sides write, loop bodies and
``try`` blocks what they write for the code inside them only. For a module-level loop, names that any
function of the module reads are live too (a call may read them as globals); ``locals()``, ``vars()``,
``eval`` and ``exec`` make everything live.
"""

from __future__ import annotations

import ast

from . import sourcemap

_DYNAMIC = {"locals", "vars", "eval", "exec", "globals", "dir"}


def exposed(source, qualname, ordinal):
    """Names the loop ``qualname#ordinal`` of ``source`` may read before writing them in an iteration, or
    None when that cannot be told."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    span = sourcemap.loop_spans(tree).get((qualname, ordinal))
    loop = None
    if span is not None:
        loop = next(
            (n for n in ast.walk(tree) if isinstance(n, (ast.For, ast.While)) and n.lineno == span[0]), None
        )
    if loop is None or any(isinstance(n, ast.Name) and n.id in _DYNAMIC for n in ast.walk(loop)):
        return None
    flow = _Flow()
    killed = _targets(loop.target) if isinstance(loop, ast.For) else set()
    flow.block(loop.body, killed)
    if isinstance(loop, ast.While):
        flow.reads(loop.test, set())
    out = flow.exposed
    if qualname == "<module>":
        out |= _read_by_functions(tree)
    return out


class _Flow:
    def __init__(self):
        self.exposed = set()

    def reads(self, node, killed):
        if node is not None:
            self.exposed |= _loaded(node) - killed

    def block(self, stmts, killed):
        """Walk statements in order; ``killed`` (what is surely written so far) grows in place."""
        for stmt in stmts:
            self.statement(stmt, killed)

    def statement(self, s, killed):
        if isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            self.reads(s.value, killed)
            for t in targets:
                self.reads_in_target(t, killed)
                if isinstance(s, ast.AugAssign) and isinstance(t, ast.Name):
                    self.exposed |= {t.id} - killed  # x += 1 reads x first
            if not isinstance(s, ast.AugAssign) and s.value is not None:
                for t in targets:
                    killed |= _targets(t)
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                self.reads_in_target(t, killed)
                killed |= _targets(t)
        elif isinstance(s, (ast.Import, ast.ImportFrom)):
            killed |= {(a.asname or a.name).split(".")[0] for a in s.names}
        elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for d in s.decorator_list:
                self.reads(d, killed)
            killed.add(s.name)
        elif isinstance(s, ast.If):
            self.reads(s.test, killed)
            a, b = set(killed), set(killed)
            self.block(s.body, a)
            self.block(s.orelse, b)
            killed |= a & b
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            self.reads(s.iter, killed)
            self.block(s.body, killed | _targets(s.target))
            self.block(s.orelse, set(killed))
        elif isinstance(s, ast.While):
            self.reads(s.test, killed)
            self.block(s.body, set(killed))
            self.block(s.orelse, set(killed))
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self.reads(item.context_expr, killed)
            inner = set(killed)
            for item in s.items:
                if item.optional_vars is not None:
                    inner |= _targets(item.optional_vars)
            self.block(s.body, inner)
            killed |= inner
        elif isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            self.block(s.body, set(killed))
            for h in s.handlers:
                self.reads(h.type, killed)
                self.block(h.body, killed | ({h.name} if h.name else set()))
            self.block(s.orelse, set(killed))
            self.block(s.finalbody, killed)
        elif type(s).__name__ == "Match":
            self.reads(s.subject, killed)
            for case in s.cases:
                self.reads(case.guard, killed)
                self.block(case.body, killed | _targets(case.pattern))
        elif isinstance(s, (ast.Global, ast.Nonlocal)):
            self.exposed |= set(s.names)
        else:  # Expr, Return, Raise, Assert, Pass, Break, Continue
            self.reads(s, killed)

    def reads_in_target(self, t, killed):
        """A store into ``x.a`` or ``x[i]`` reads ``x`` (and ``i``)."""
        for node in ast.walk(t):
            if isinstance(node, (ast.Attribute, ast.Subscript)):
                self.reads(node.value, killed)
                if isinstance(node, ast.Subscript):
                    self.reads(node.slice, killed)


def _targets(node):
    """Names a target binds (``a, (b, *c)``; patterns of ``match``)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif type(n).__name__ in ("MatchAs", "MatchStar") and getattr(n, "name", None):
            out.add(n.name)
    return out


def _loaded(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _read_by_functions(tree):
    """Every name a function or lambda of the module loads without binding it itself: what a call might
    read as a global."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            declared = {name for g in ast.walk(node) if isinstance(g, ast.Global) for name in g.names}
            own = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
            own |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            out |= _loaded(node) - (own - declared)
            out |= declared
    return out
