"""Carry the lines added to a script since one recording into the recorded source of another run.

A week of runs has a week of sources. To get a new statement's values on all of them, the statements added
to today's file (against ``base``, the source the edits were made on: the newest run's) are placed into each
run's own recorded source, anchored to the unchanged lines around them, and each run replays its own code
with them. An added block goes after the line that precedes it in ``base`` (or before the one that follows
it) where that line is found, unchanged, in the target; a changed line replaces its old self where that is
found. Indentation follows the anchor's if the target indents it otherwise. What cannot be placed is
reported with its line, never guessed.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field


@dataclass
class Carried:
    source: str
    problems: list[str] = field(default_factory=list)  # "today's line N: why it could not be placed"
    placed: int = 0  # edits placed


def carry(base: str, today: str, target: str, name: str = "the script") -> Carried:
    """``target`` with the edits that turn ``base`` into ``today``; identity when ``target`` is ``base``."""
    if target == base:
        return Carried(today, [], int(base != today))
    old, new, into = base.splitlines(), today.splitlines(), target.splitlines()
    where = _mapping(old, into)  # base line -> target line, for lines both have unchanged
    edits, problems = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        lines = new[j1:j2]
        if tag in ("replace", "delete"):
            span = [where.get(i) for i in range(i1, i2)]
            if None in span or span != list(range(span[0], span[0] + len(span))):
                problems.append(f"today's line {j1 + 1}: the lines it changes are not in {name} as they were")
                continue
            edits.append((span[0], span[-1] + 1, _reindent(lines, old[i1], into[span[0]])))
            continue
        before, after = where.get(i1 - 1), where.get(i1)
        if before is not None:
            edits.append((before + 1, before + 1, _reindent(lines, old[i1 - 1], into[before], after=True)))
        elif after is not None:
            edits.append((after, after, _reindent(lines, old[i1], into[after])))
        elif i1 == 0 and not old:
            edits.append((0, 0, lines))
        else:
            problems.append(f"today's line {j1 + 1}: the lines around it are not in {name} as they were")
    out = list(into)
    for lo, hi, lines in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        out[lo:hi] = lines
    text = "\n".join(out) + ("\n" if target.endswith("\n") or not target else "")
    try:
        ast.parse(text)
    except SyntaxError as exc:
        problems.append(f"the placed lines do not parse in {name} (line {exc.lineno}: {exc.msg})")
        return Carried(target, problems, 0)
    return Carried(text, problems, len(edits))


def _mapping(a, b):
    """Which line of ``b`` each line of ``a`` is, for the lines both have (indentation aside)."""
    out = {}
    a, b = [line.strip() for line in a], [line.strip() for line in b]
    for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            out[block.a + k] = block.b + k
    return out


def _indent(line):
    return line[: len(line) - len(line.lstrip())]


def _reindent(lines, anchor_old, anchor_new, after=False):
    """Shift ``lines`` by how much the anchor's indentation changed between the two sources."""
    old, new = _indent(anchor_old), _indent(anchor_new)
    if old == new:
        return list(lines)
    out = []
    for line in lines:
        if line.strip() and line.startswith(old):
            out.append(new + line[len(old) :])
        else:
            out.append(line)
    return out
