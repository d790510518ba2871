"""``flortrace.log`` in its forms (name and value, a dict, ``step=``) and ``flortrace.replaying()``, outside
flortrace; under record and replay they are checked end to end in test_export.py and test_trackers.py."""

from __future__ import annotations

import pytest

import flortrace


def test_outside_flortrace_log_returns_its_argument():
    assert flortrace.log("loss", 0.5) == 0.5
    assert flortrace.log("loss", 0.5, step=3) == 0.5
    values = {"loss": 0.5, "acc": 0.9}
    assert flortrace.log(values) is values and flortrace.log(values, 7) is values
    assert flortrace.replaying() is False


def test_a_missing_value_is_an_error_everywhere():
    with pytest.raises(TypeError, match="value is missing"):
        flortrace.log("loss")


class FakeSession:
    def __init__(self):
        self.calls = []

    def log(self, name, value, lineno=None, step=None):
        self.calls.append((name, value, step))


def test_forms_reach_the_session(monkeypatch):
    from flortrace.runtime import hooks

    session = FakeSession()
    monkeypatch.setattr(hooks, "_session", session)
    flortrace.log("a", 1)
    flortrace.log({"b": 2, "c": 3}, 10)
    flortrace.log({"d": 4}, step=11)
    flortrace.log("e", 5, step=12)
    assert session.calls == [("a", 1, None), ("b", 2, 10), ("c", 3, 10), ("d", 4, 11), ("e", 5, 12)]


def test_a_bad_step_is_said_not_raised(monkeypatch, capsys):
    from flortrace.runtime import hooks

    monkeypatch.setattr(hooks, "_session", FakeSession())
    monkeypatch.setattr(flortrace, "_log_failures", [])
    assert flortrace.log("a", 1, step=1.5) == 1
    err = capsys.readouterr().err
    assert "flortrace.log('a', ...) failed, the value is not logged" in err and "TypeError" in err
