"""Compare the edited sources with the recorded ones: which blocks changed, and is every edit read-only.

A block whose lines changed is a *probe* (it must execute). A changed line in a function that holds no
recorded loop may be called from any block, so then every block is a probe. Added statements that rebind
existing names, store into attributes or subscripts, or call well-known mutating methods would change the
training and are refused unless forced: a first filter, cheap and early; replay's state check judges every
added line on its first run (runtime/hindsight.py). Random numbers drawn or seeds set by an added line
cannot leak into training, as replay restores the generators after it.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from ..instrument.sourcemap import loop_spans

MUTATING_METHODS = {
    "step",
    "backward",
    "zero_grad",
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "update",
    "add",
    "discard",
    "setdefault",
    "load_state_dict",
    "train",
    "eval",
    "shuffle",
    "sort",
    "reverse",
    "popitem",
    "apply",
    "register_buffer",
    "register_parameter",
    "add_module",
}


@dataclass
class Report:
    probes: set[str] = field(default_factory=set)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: dict[str, set[int]] = field(default_factory=dict)


def changed_lines(old, new):
    """1-based line numbers of ``new`` that are added or replaced (a deletion marks the line after it)."""
    a, b = old.splitlines(), new.splitlines()
    out = set()
    for tag, _, _, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "insert"):
            out.update(range(j1 + 1, j2 + 1))
        elif tag == "delete":
            out.add(j1 + 1)
    return {n for n in out if n > len(b) or _is_code(b[n - 1])}


def _is_code(line):
    text = line.strip()
    return bool(text) and not text.startswith("#")


def _bound_names(tree):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _statements_on(tree, lines):
    """Innermost simple statements that start on one of ``lines``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno in lines:
            if not isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.FunctionDef)):
                out.append(node)
    return out


def _root(node):
    """The name an expression is reached from (``model`` for ``model.fc.weight[0]`` and for
    ``model.parameters()``), or None for a fresh value (a call of a plain function, a literal)."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def _why_mutating(stmt, old_names):
    """Why a statement would change state the recording had, or None. A first filter: replay's state check
    judges every added line on its first run."""
    for node in ast.walk(stmt):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, (ast.Attribute, ast.Subscript)) and isinstance(
                        sub.ctx, (ast.Store, ast.Del)
                    ):
                        if _root(sub) in old_names:
                            return f"stores into {ast.unparse(sub)}"
                    if isinstance(sub, ast.Name) and sub.id in old_names:
                        return f"rebinds {sub.id!r}, which the recorded code uses"
        if isinstance(node, ast.NamedExpr) and node.target.id in old_names:
            return f"rebinds {node.target.id!r}, which the recorded code uses"
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return "declares global/nonlocal names"
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        in_place = name.endswith("_") and not name.endswith("__")  # torch's naming of in-place operations
        if isinstance(node.func, ast.Attribute) and (name in MUTATING_METHODS or in_place):
            if _root(node.func.value) in old_names:
                return f"calls {ast.unparse(node.func)}(), which changes state"
        if in_place or name in ("setattr", "delattr"):
            touched = [a for a in node.args if _root(a) in old_names]
            if touched:
                return f"calls {ast.unparse(node.func)}() on {ast.unparse(touched[0])}, which changes it"
    return None


def _functions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def compare(recorded, root, loops, today=None):
    """``recorded``: {relative path: source}; ``loops``: catalog loop rows; ``today``: sources to compare
    with instead of the files on disk (another run's edits carried into this one's). Returns a Report."""
    report = Report()
    root = Path(root)
    tracked = [r for r in loops if r["kind"] in ("main", "block")]
    for rel, old in recorded.items():
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        try:
            new = today[rel] if today and rel in today else path.read_text(encoding="utf-8")
        except OSError:
            report.notes.append(f"{rel}: not found now; replaying its recorded behaviour")
            continue
        if new == old:
            continue
        try:
            tree = ast.parse(new, str(path))
            old_names = _bound_names(ast.parse(old))
        except SyntaxError as exc:
            report.refusals.append(f"{rel}:{exc.lineno}: syntax error: {exc.msg}")
            continue
        lines = changed_lines(old, new)
        report.changed[rel] = lines
        for stmt in _statements_on(tree, lines):
            why = _why_mutating(stmt, old_names)
            if why:
                report.refusals.append(f"{rel}:{stmt.lineno}: the edit {why}: {ast.unparse(stmt)[:80]}")
        spans = loop_spans(tree)
        for row in tracked:
            if row["file"] != rel:
                continue
            span = spans.get((row["qualname"], row["ordinal"]))
            if span is None:
                report.refusals.append(
                    f"{rel}: loop {row['loop_id']} (line {row['lineno']}) is gone or moved"
                )
                continue
            if row["kind"] == "block" and any(span[0] <= n <= span[1] for n in lines):
                report.probes.add(row["loop_id"])
        holders = [(lo, hi) for lo, hi, _ in spans.values()]
        for fn in _functions(tree):
            end = fn.end_lineno or fn.lineno
            if any(fn.lineno <= n <= end for n in lines) and not any(
                fn.lineno <= s <= end for s, _ in holders
            ):
                report.probes.update(r["loop_id"] for r in tracked if r["kind"] == "block")
                report.notes.append(f"{rel}:{fn.lineno}: {fn.name}() changed and may run inside any block")
                break
    return report
