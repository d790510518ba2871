"""Splitting a replay into checkpoint-aligned segments."""

from flortrace.replay.parallel import segments
from flortrace.replay.planner import MainRun, Plan


def plan(selected, checkpoints, seconds=1.0, count=20):
    return Plan(
        run_id=1,
        mains=[MainRun("t.py:<module>#0", 0, 0, count)],
        selected=set(selected),
        checkpoints={e: "m" for e in checkpoints},
        memos={},
        probes=set(),
        epoch_seconds={e: seconds for e in range(count)},
        block_seconds={},
    )


def test_segments_start_after_checkpoints_and_balance():
    assert segments(plan(range(1, 9), [0, 4, 8]), 2) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert segments(plan(range(0, 12), [3, 5, 7, 9]), 3) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_no_checkpoint_means_one_segment():
    assert segments(plan(range(1, 9), [0]), 4) == [list(range(1, 9))]


def test_one_worker_or_one_epoch():
    assert segments(plan(range(5), [0, 1, 2]), 1) == [list(range(5))]
    assert segments(plan([3], [2]), 4) == [[3]]
    assert segments(plan([], [2]), 4) == []


def test_every_epoch_once_in_order():
    for workers in range(1, 6):
        parts = segments(plan(range(2, 17), range(0, 20, 3)), workers)
        assert [e for p in parts for e in p] == list(range(2, 17)) and len(parts) <= workers
