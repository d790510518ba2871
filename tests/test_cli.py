"""The command line: help, bad input, listing verbs, crash handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """\
    import sys
    import flortrace

    state = {"w": 0.0}


    def step(xs):
        for x in xs:
            state["w"] += x * 0.01


    for epoch in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        step(range(50))
        flortrace.log("w", state["w"])
        flortrace.log("tag", f"e{epoch}")
    print("w", round(state["w"], 6))
    """
)


def run(cwd, *args, **kw):
    env = dict(os.environ, FLORTRACE_STORE=str(cwd / ".store"))
    return subprocess.run(
        [sys.executable, "-m", "flortrace", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


@pytest.fixture
def project(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    return tmp_path


def test_help_and_version(tmp_path):
    out = run(tmp_path, "--help")
    assert out.returncode == 0 and "replay" in out.stdout and "--overhead" in out.stdout
    assert run(tmp_path, "--version").stdout.startswith("flortrace ")
    for verb in ("replay", "runs", "show", "logs", "rm", "gc"):
        out = run(tmp_path, verb, "--help")
        assert out.returncode == 0 and out.stdout.startswith("usage: flortrace " + verb), verb


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "no script given"),
        (("--bogus", "x.py"), "unknown option --bogus"),
        (("--overhead", "lots", "x.py"), "invalid float value"),
        (("replay", "nothere.py"), "no flortrace store"),
    ],
)
def test_bad_input_is_one_clear_line(project, args, message):
    out = run(project, *args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_unusable_store_runs_the_script_unrecorded(project):
    """A store that cannot be used never stops the script: a warning at its start and its end instead."""
    plain = subprocess.run([sys.executable, "train.py"], cwd=project, capture_output=True, text=True)
    out = run(project, "--store", "/etc/passwd/store", "train.py")
    assert (out.returncode, out.stdout) == (0, plain.stdout) and "Traceback" not in out.stderr
    first, last = out.stderr.splitlines()
    assert first.startswith("flortrace: warning: nothing is being recorded: cannot write the store")
    assert last.startswith("flortrace: warning: this run was not recorded: cannot write the store")


def test_corrupt_catalog(project):
    store = project / ".store"
    store.mkdir(mode=0o700)
    (store / "catalog.sqlite").write_text("not a database")
    out = run(project, "train.py")
    assert out.returncode == 0 and out.stdout.startswith("w ")
    assert "nothing is being recorded: the catalog" in out.stderr and "is damaged" in out.stderr
    assert (store / "catalog.sqlite").read_text() == "not a database"
    listed = run(project, "runs")
    assert listed.returncode == 2 and listed.stderr.startswith("flortrace: error: the catalog")


def test_runs_show_logs(project):
    assert run(project, "-q", "train.py", "4").returncode == 0
    runs = json.loads(run(project, "runs", "--json").stdout)
    assert runs[0]["id"] == 1 and runs[0]["status"] == "finished" and runs[0]["epochs"] == 4
    assert {"id", "script", "status", "epochs", "checkpoints", "bytes"} <= set(runs[0])
    table = run(project, "runs").stdout
    assert "finished" in table and "train.py" in table
    rows = json.loads(run(project, "logs", "--format", "json").stdout)
    assert [r["value"] for r in rows if r["name"] == "tag"] == ["e0", "e1", "e2", "e3"]
    assert all({"run", "name", "value", "epoch", "step", "origin"} <= set(r) for r in rows)
    csv = run(project, "logs", "--format", "csv", "--name", "w").stdout.splitlines()
    assert csv[0] == "run,name,value,epoch,step,origin" and len(csv) == 5
    show = run(project, "show", "1").stdout
    assert "main" in show and "epochs:" in show and "checkpoint" in show
    assert run(project, "show", "9").returncode == 2


def test_rm_and_gc(project):
    run(project, "-q", "train.py", "2")
    assert "would free" in run(project, "gc").stdout
    assert run(project, "rm", "1").returncode == 0
    assert json.loads(run(project, "runs", "--json").stdout) == []
    assert "freed" in run(project, "gc", "--yes").stdout


def test_exit_code_passes_through(project):
    (project / "fail.py").write_text("import sys\nfor i in range(2):\n    pass\nsys.exit(3)\n")
    assert run(project, "-q", "fail.py").returncode == 3
    runs = json.loads(run(project, "runs", "--json").stdout)
    assert runs[0]["status"] == "failed" and runs[0]["exit_code"] == 3


def test_killed_run_reads_crashed_and_replays_its_epochs(project):
    slow = SCRIPT.replace(
        '    flortrace.log("tag", f"e{epoch}")\n',
        '    flortrace.log("tag", f"e{epoch}")\n    print(epoch, flush=True)\n'
        '    if epoch >= 3:\n        __import__("time").sleep(0.3)\n',
    )
    (project / "train.py").write_text(slow)
    env = dict(os.environ, FLORTRACE_STORE=str(project / ".store"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flortrace", "-q", "--overhead", "9", "train.py", "50"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.strip() == "6":
            break
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    runs = json.loads(run(project, "runs", "--json").stdout)
    assert runs[0]["status"] == "crashed"
    edited = slow.replace(
        '    flortrace.log("tag", f"e{epoch}")\n',
        '    flortrace.log("tag", f"e{epoch}")\n    flortrace.log("w2", state["w"] * 2)\n',
    )
    (project / "train.py").write_text(edited)
    out = run(project, "replay", "--epochs", "1:3", "train.py", "50")
    assert out.returncode == 0, out.stderr
    assert "crashed" in out.stderr
    rows = json.loads(run(project, "logs", "--format", "json", "--name", "w2").stdout)
    w = json.loads(run(project, "logs", "--format", "json", "--name", "w").stdout)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["value"] for r in rows] == [2 * r["value"] for r in w if r["epoch"] in (1, 2)]
