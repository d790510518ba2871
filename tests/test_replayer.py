"""The replayer in process: breakpoints reach the console only through the driver it is given, and logged
values are checked against the recording or kept as new ones."""

from __future__ import annotations

import sys

from flortrace.replay.planner import MainRun, Plan
from flortrace.runtime import hooks
from flortrace.runtime.replayer import Replayer


def replayer(recorded=None):
    plan = Plan(
        run_id=1,
        mains=[MainRun("t.py:<module>#0", 0, 0, 3)],
        selected={0, 1, 2},
        checkpoints={},
        memos={},
        probes=set(),
        epoch_seconds={0: 1.0, 1: 1.0, 2: 1.0},
        block_seconds={},
        recorded_logs=dict(recorded or {}),
        recorded_names={k[0] for k in recorded or {}},
    )
    said = []
    return Replayer(plan, load=None, catalog=None, run_id=1, notify=said.append), said


class Driver:
    def __init__(self):
        self.frames = []

    def break_at(self, frame):
        self.frames.append(frame)


def test_a_breakpoint_goes_to_the_driver():
    session, said = replayer()
    session.driver = Driver()
    frame = sys._getframe()
    session.breakpoint(frame)
    assert session.driver.frames == [frame] and said == []


def test_without_a_driver_breakpoints_are_ignored_and_said_once():
    session, said = replayer()
    session.breakpoint(sys._getframe())
    session.breakpoint(sys._getframe())
    assert len(said) == 1 and "ignored by parallel replay workers" in said[0]


def test_the_builtin_breakpoint_reaches_the_active_session_only_inside_the_guard():
    session, _ = replayer()
    session.driver = Driver()
    before = sys.breakpointhook
    hooks.activate(session)
    try:
        with hooks.breakpoints():
            breakpoint()  # noqa: T100 - the point of the test
            assert sys.breakpointhook is not before
    finally:
        hooks.deactivate()
    assert sys.breakpointhook is before
    (frame,) = session.driver.frames
    assert (
        frame.f_code is test_the_builtin_breakpoint_reaches_the_active_session_only_inside_the_guard.__code__
    )


def test_logged_values_are_checked_against_the_recording_or_kept():
    session, _ = replayer({("loss", None, None, 0): 0.5})
    assert session.log("loss", 0.5) is None and session.value_diffs == []  # as recorded: not stored again
    session.log("loss", 0.25)  # a second value at the same place was not recorded: loss is recorded, not new
    session.seen.clear()
    session.log("loss", 0.75)
    assert session.value_diffs == [("loss", "0.5", "0.75")]
    session.log("grad_norm", 3.0)
    assert [(r["name"], r["value"]) for r in session.rows] == [("grad_norm", 3.0)]
