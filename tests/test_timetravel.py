"""Time travel in process: what the driver may ask for is checked before the script runs anywhere, and
breakpoints reach the driver only when no jump is under way."""

from __future__ import annotations

import sys

import pytest

from flortrace.replay.planner import MainRun, Plan
from flortrace.runtime.timetravel import Goto, Sweep, TimeTravel, TravelError


class Catalog:
    def __init__(self, steps):
        self.steps = steps

    def blocks(self, run_id, epoch):
        return [{"seq": 0, "loop_id": "t.py:train#1", "steps": self.steps}]


class Driver:
    def __init__(self):
        self.frames = []

    def break_at(self, frame):
        self.frames.append(frame)


def travel(steps=10):
    mains = [MainRun("t.py:pretrain#0", 0, 0, 3, name="pretrain"), MainRun("t.py:train#0", 0, 3, 5)]
    plan = Plan(
        run_id=7,
        mains=mains,
        selected=set(range(8)),
        checkpoints={},
        memos={},
        probes=set(),
        epoch_seconds={e: 1.0 for e in range(8)},
        block_seconds={},
        recorded_logs={},
        recorded_names=set(),
    )
    said = []
    session = TimeTravel(plan, load=None, catalog=Catalog(steps), run_id=7, notify=said.append)
    session.driver = Driver()
    return session, said


def test_epochs_are_found_in_their_main_loop():
    session, _ = travel()
    assert session.epoch_count == 8
    assert session.main_of(2).loop_id == "t.py:pretrain#0" and session.main_of(3).loop_id == "t.py:train#0"
    assert session.main_of(8) is None


def test_a_jump_is_checked_before_it_is_asked_for():
    session, _ = travel(steps=10)
    with pytest.raises(TravelError, match=r"no epoch 9 in run 7 \(epochs 0..7\)"):
        session.goto(9)
    with pytest.raises(TravelError, match="ran 10 step"):
        session.goto(4, step=10)
    assert session.request is None and session.destination is None
    session.goto(4, step=3)
    assert session.request == Goto(4, 3) and session.destination == 4 and session.heading


def test_an_ended_main_loop_cannot_be_travelled_back_to():
    session, _ = travel()
    session.finished.add(("t.py:pretrain#0", 0))
    with pytest.raises(TravelError, match="which has ended"):
        session.goto(1)


def test_a_sweep_visits_its_epochs_in_order():
    session, _ = travel()
    with pytest.raises(TravelError, match="no epochs selected"):
        session.sweep([], print)
    session.sweep([6, 4, 6], print)
    assert session.request == Sweep([4, 6], print) and session.destination == 4


def test_breakpoints_stop_only_when_no_jump_is_under_way():
    session, _ = travel()
    frame = sys._getframe()
    session.breakpoint(frame)
    session.goto(5)
    session.breakpoint(frame)
    assert session.driver.frames == [frame]
