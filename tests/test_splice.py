"""Carrying added statements into the recorded source of another run."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from flortrace.replay.splice import carry

BASE = textwrap.dedent(
    """\
    import sys
    lr = 0.1
    w = 0.0
    for epoch in range(5):
        for i in range(3):
            w -= lr * (w - 1)
        print(epoch, w)
    print("done")
    """
)


def edit(src, anchor, line, after=True):
    lines = src.splitlines()
    i = next(i for i, text in enumerate(lines) if anchor in text)
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i + 1 if after else i, indent + line)
    return "\n".join(lines) + "\n"


def test_the_base_itself_gets_todays_source():
    today = edit(BASE, "print(epoch, w)", "log('w', w)", after=False)
    assert carry(BASE, today, BASE).source == today


def test_an_added_line_lands_next_to_its_anchor_in_an_older_version():
    older = BASE.replace("lr = 0.1", "lr = 0.5\nmomentum = 0.9")  # the run before had other code
    today = edit(BASE, "print(epoch, w)", "log('w', w)", after=False)
    got = carry(BASE, today, older)
    assert not got.problems and got.placed == 1
    assert got.source == edit(older, "print(epoch, w)", "log('w', w)", after=False)


def test_indentation_follows_the_target():
    older = BASE.replace("for epoch in range(5):", "def train():\n  for epoch in range(5):").replace(
        "\n    ", "\n      "
    )
    older = older.replace('print("done")', "train()")
    today = edit(BASE, "print(epoch, w)", "log('w', w)")
    got = carry(BASE, today, older)
    assert not got.problems
    assert "      print(epoch, w)\n      log('w', w)\n" in got.source


def test_a_changed_line_replaces_its_old_self():
    today = BASE.replace("print(epoch, w)", "print(epoch, w, lr)")
    got = carry(BASE, today, BASE.replace("w = 0.0", "w = 1.0"))
    assert "print(epoch, w, lr)" in got.source and "w = 1.0" in got.source and not got.problems


def test_what_cannot_be_placed_is_reported_not_guessed():
    older = BASE.replace("    print(epoch, w)\n", "    print('epoch', epoch)\n")
    today = BASE.replace("print(epoch, w)", "print(epoch, w, lr)")
    got = carry(BASE, today, older, "run 1's train.py")
    assert got.problems == ["today's line 7: the lines it changes are not in run 1's train.py as they were"]
    assert got.source == older


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 7), st.sampled_from(["log('a', w)", "x = 1", "pass"]))
def test_any_single_added_line_is_placed_where_it_was(where, line):
    lines = BASE.splitlines()
    indent = "    " if 4 <= where <= 6 else ""
    today_lines = lines[:where] + [indent + line] + lines[where:]
    today = "\n".join(today_lines) + "\n"
    older = BASE.replace("lr = 0.1", "lr = 0.3")
    got = carry(BASE, today, older)
    if got.problems:  # an anchor changed in the older version: then it says so
        return
    assert got.source == today.replace("lr = 0.1", "lr = 0.3")
