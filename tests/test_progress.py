"""The replay's progress line: counts restored and executed epochs, estimates the time left, gets out of the
way of the script's output, and shows only on a terminal without -q."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from flortrace.runtime import progress

SCRIPT = textwrap.dedent(
    """\
    import sys

    w = 0.0
    for epoch in range(int(sys.argv[1])):
        for i in range(3):
            w += 0.1 * i
        print(epoch, round(w, 3))
    """
)


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Plan:
    """What the progress line reads of a plan: the epochs, and what each still to run is expected to take."""

    def __init__(self, seconds):
        self.epoch_seconds = dict(enumerate(seconds))
        self._steps = [(e, "run epoch", s) for e, s in enumerate(seconds)]

    def steps(self):
        return self._steps


@pytest.fixture
def line(monkeypatch):
    stream = Terminal()
    monkeypatch.setenv("COLUMNS", "200")
    replayer = SimpleNamespace(plan=Plan([1.0] * 10), progress=progress.SILENT)
    with progress.shown(replayer, enabled=True, stream=stream):
        yield replayer.progress, stream
    assert replayer.progress is progress.SILENT


@pytest.mark.parametrize("tqdm", [True, False])
def test_counts_and_estimates(line, monkeypatch, tqdm):
    bar, stream = line
    if tqdm:
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setattr(bar, "_render", progress._plain_render)
    bar.epoch_started(4)  # the replayer jumped over epochs 0-3: restored
    bar.running = (4, bar.running[1] - 2.0)  # epoch 4 took 2 s, twice its estimate
    bar.epoch_ended(4)
    assert (bar.restored, bar.executed) == (4, 1)
    assert bar.left() == pytest.approx(5 * 1.0 * 2, rel=0.01)  # 5 epochs left, running at half speed
    shown = stream.getvalue().split(progress.CLEAR)[-1]
    assert "5/10 epochs" in shown and "<00:10]" in shown and "4 restored, 1 executed" in shown
    assert ("|" in shown) == tqdm and ("[#####.....]" in shown) != tqdm


def test_output_clears_the_line_first(monkeypatch):
    stream, out = Terminal(), Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    replayer = SimpleNamespace(plan=Plan([1.0, 1.0]), progress=progress.SILENT)
    with progress.shown(replayer, enabled=True, stream=stream):
        bar = replayer.progress
        bar.epoch_started(0)
        assert bar.visible
        out.write("epoch 0 says hello\n")
        assert not bar.visible and stream.getvalue().endswith(progress.CLEAR)
        bar.epoch_ended(0)
        stream.write("flortrace: a notice\n")
        assert stream.getvalue().endswith(progress.CLEAR + "flortrace: a notice\n")
    assert out.getvalue() == "epoch 0 says hello\n"


def test_closing_puts_write_back(monkeypatch):
    stream, out = Terminal(), Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    replayer = SimpleNamespace(plan=Plan([1.0]), progress=progress.SILENT)
    with progress.shown(replayer, enabled=True, stream=stream):
        replayer.progress.epoch_started(0)
        assert "write" in out.__dict__
    assert "write" not in out.__dict__ and "write" not in stream.__dict__
    assert stream.getvalue().endswith(progress.CLEAR)


def test_off_unless_a_terminal_and_not_quiet():
    replayer = SimpleNamespace(plan=Plan([1.0]), progress=progress.SILENT)
    for stream, enabled in [(io.StringIO(), True), (Terminal(), False)]:
        with progress.shown(replayer, enabled=enabled, stream=stream):
            assert replayer.progress is progress.SILENT


def test_a_replay_on_a_terminal(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, FLORTRACE_STORE=str(tmp_path / ".store"), PYTHONHASHSEED="0")
    (tmp_path / "train.py").write_text(SCRIPT)
    recorded = subprocess.run(
        [sys.executable, "-m", "flortrace", "-q", "train.py", "6"], cwd=tmp_path, env=env, capture_output=True
    )
    assert recorded.returncode == 0
    (tmp_path / "train.py").write_text(
        "import flortrace\n" + SCRIPT.replace("    print(", "    flortrace.log('w', w)\n    print(")
    )

    def replay(*options):
        child = pexpect.spawn(
            sys.executable,
            ["-m", "flortrace", "replay", *options, "train.py"],
            cwd=str(tmp_path),
            env=env,
            encoding="utf-8",
            timeout=120,
            dimensions=(24, 200),
        )
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        return child.before

    shown = replay("--epochs", "4:").split(progress.CLEAR)
    assert any(part.startswith("flortrace replay") and "epoch 5 running" in part for part in shown)
    assert "5 1.8\r\n" in shown  # the script's own line, after the progress line was cleared
    assert "flortrace replay" not in "".join(replay("-q", "--epochs", "4:"))
    piped = subprocess.run(
        [sys.executable, "-m", "flortrace", "replay", "train.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert piped.returncode == 0 and "flortrace replay" not in piped.stderr and "\x1b[K" not in piped.stderr
