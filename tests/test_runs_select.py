"""Selecting recorded runs by id and by their arguments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flortrace.replay.runs import RunsError, matches, select
from flortrace.scriptargs import values as parse_args

RUNS = [{"id": i, "argv": ["--lr", str(lr)]} for i, lr in ((1, 0.1), (2, 0.01), (4, 0.001), (7, 1))]


def test_arguments_are_read_the_way_argparse_reads_them():
    args = parse_args(
        ["data.txt", "--lr", "0.1", "--epochs=12", "--no-shuffle", "--name", "a b", "--m", "-3"]
    )
    assert args == {"arg1": "data.txt", "lr": 0.1, "epochs": 12, "no_shuffle": True, "name": "a b", "m": -3}


def test_selections():
    ids = lambda spec: [r["id"] for r in select(spec, RUNS)]  # noqa: E731
    assert ids("all") == ids(None) == [1, 2, 4, 7]
    assert ids("last:2") == [4, 7]
    assert ids("1,7") == [1, 7] and ids("2:7") == [2, 4] and ids(":3") == [1, 2] and ids("4:") == [4, 7]
    with pytest.raises(RunsError, match="no run 3 of this script"):
        select("3", RUNS)
    with pytest.raises(RunsError, match="bad --runs"):
        select("x", RUNS)


def test_where_compares_arguments_and_nothing_else():
    lr = lambda r: parse_args(r["argv"])  # noqa: E731
    assert [r["id"] for r in RUNS if matches("lr < 0.05", lr(r))] == [2, 4]
    assert [r["id"] for r in RUNS if matches("lr >= 0.1 and not lr == 1", lr(r))] == [1]
    assert not matches("missing > 3", {})
    with pytest.raises(RunsError, match="only comparisons"):
        matches("__import__('os').system('true')", {})


@given(st.lists(st.sampled_from(["--a", "--b", "1", "x", "--c=2", "-5", "--d"]), max_size=8))
def test_reading_arguments_never_fails(argv):
    assert isinstance(parse_args(argv), dict)
