"""Which recorded runs a command means: ``--runs all | last:N | 3,5,7 | 2:6`` and ``--where 'lr < 0.01'``.

A run's arguments are read the way argparse reads them (scriptargs.py), so a sweep can be selected by its
hyperparameters: ``--where`` takes comparisons joined with and/or/not, names being the arguments; nothing
else is evaluated.
"""

from __future__ import annotations

import ast
import operator

from ..exceptions import RunsError


def select(spec, runs):
    """The runs ``spec`` names among ``runs`` (rows newest first), oldest first."""
    runs = sorted(runs, key=lambda r: r["id"])
    ids = [r["id"] for r in runs]
    spec = (spec or "all").strip()
    if spec == "all":
        return runs
    if spec.startswith("last:"):
        try:
            n = int(spec[5:])
        except ValueError:
            raise RunsError(f"bad --runs {spec!r}: use last:N") from None
        if n < 1:
            raise RunsError("--runs last:N needs N >= 1")
        return runs[-n:]
    chosen = set()
    for part in spec.split(","):
        lo, colon, hi = part.strip().partition(":")
        try:
            if colon:
                first = int(lo) if lo else ids[0] if ids else 0
                last = int(hi) if hi else (ids[-1] + 1 if ids else 0)
                chosen.update(i for i in ids if first <= i < last)
            else:
                wanted = int(lo)
                if wanted not in ids:
                    raise RunsError(f"no run {wanted} of this script (its runs: {_listing(ids)})")
                chosen.add(wanted)
        except ValueError:
            raise RunsError(
                f"bad --runs {spec!r}: use all, last:N, a list like 3,5,7 or a range like 2:6"
            ) from None
    return [r for r in runs if r["id"] in chosen]


def _listing(ids):
    return ", ".join(map(str, ids)) or "none"


_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def matches(expr, args):
    """Whether a run's parsed ``args`` satisfy ``--where`` ``expr``; RunsError for anything but
    comparisons of names and literals joined with and/or/not."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise RunsError(f"bad --where {expr!r}: {exc.msg}") from None
    return bool(_eval(tree.body, args, expr))


def _eval(node, args, expr):
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, args, expr) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _eval(node.operand, args, expr)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, args, expr)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, args, expr)
            try:
                if type(op) not in _COMPARE or not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        return args.get(node.id)
    if isinstance(node, ast.Constant):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
    ):
        return -node.operand.value
    raise RunsError(f"bad --where {expr!r}: only comparisons of arguments and values, with and/or/not")
