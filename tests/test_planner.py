"""The replay plan, in process: which checkpoint a jump restores, what runs, what --plan estimates, and
how a recorded run's main loops become epoch specs."""

from __future__ import annotations

import pytest

from flortrace.exceptions import SpecError
from flortrace.replay.planner import MainRun, Plan, loops, main_runs

LOOP = "t.py:<module>#0"


def plan(selected, checkpoints=(), memos=(), probes=(), count=6):
    return Plan(
        run_id=1,
        mains=[MainRun(LOOP, 0, 0, count, training=True)],
        selected=set(selected),
        checkpoints={e: f"m{e}" for e in checkpoints},
        memos={(e, "t.py:train#0", 0): f"b{e}" for e in memos},
        probes=set(probes),
        epoch_seconds={e: 1.0 for e in range(count)},
        block_seconds={(e, "t.py:train#0", 0): 0.75 for e in range(count)},
    )


def test_a_jump_restores_the_latest_checkpoint_before_the_epoch():
    p = plan({4}, checkpoints=[1, 2, 5])
    main = p.mains[0]
    assert p.start_for(main, 4, -1) == 2  # the end state of epoch 2: epoch 3 runs, then 4
    assert p.start_for(main, 4, 3) == 3  # already at the end of epoch 3: nothing to restore
    bare = plan({4})
    assert bare.start_for(bare.mains[0], 4, -1) == -1  # no checkpoint: run from the start


def test_steps_and_estimate_skip_blocks_with_memos_unless_they_are_probes():
    p = plan({3, 4}, checkpoints=[2], memos=[3])
    assert p.steps() == [
        (2, "restore checkpoint", 0.0),
        (3, "run epoch (1 block(s) from memos)", 0.25),
        (4, "run epoch", 1.0),
    ]
    assert p.estimate() == 1.25
    probed = plan({3, 4}, checkpoints=[2], memos=[3], probes={"t.py:train#0"})
    assert probed.estimate() == 2.0


def test_epochs_to_run_are_local_to_their_main_loop():
    p = plan({0, 2, 7, 9})
    p.mains.append(MainRun("t.py:finetune#0", 0, 6, 4, name="finetune"))
    assert p.epochs_to_run(p.mains[0]) == [0, 2]
    assert p.epochs_to_run(p.mains[1]) == [1, 3]
    assert p.main_run("t.py:finetune#0", 0) is p.mains[1] and p.main_run(LOOP, 1) is None


def test_main_runs_become_epoch_specs_with_one_grammar():
    run = {"info": {"main_runs": [{"loop_id": LOOP, "run": 0, "base": 0, "training": True}]}}
    epochs = [{"epoch": e, "loop_id": LOOP, "run": 0} for e in range(6)]
    mains = main_runs(run, epochs)
    assert [(m.loop_id, m.base, m.count) for m in mains] == [(LOOP, 0, 6)]
    spec = loops(mains)
    assert spec.select("::2") == [0, 2, 4]  # what replay --epochs, logs --epochs and watch all read
    assert spec.select("-2:") == [4, 5] and spec.select("1,3") == [1, 3]
    with pytest.raises(SpecError):
        spec.select("9")
