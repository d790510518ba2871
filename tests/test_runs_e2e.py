"""Hindsight across runs and versions, through the real CLI: one replay for every past run, each with its own
recorded code (today's added lines carried into it) and its own arguments."""

from __future__ import annotations

import json
import textwrap

from clirun import flortrace, logs

V1 = textwrap.dedent(
    """\
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    w = [0.0, 0.0]
    data = [(i / 10, 1 - i / 20) for i in range(20)]
    for epoch in range(5):
        for x, y in data:
            err = w[0] * x + w[1] - y
            w[0] -= args.lr * err * x
            w[1] -= args.lr * err
        print(epoch, w)
    """
)
V2 = V1.replace("w[1] -= args.lr * err\n", "w[1] -= args.lr * err * 0.5\n")  # the code changed after run 2
LOG = "    __import__('flortrace').log('w0', w[0])\n"


def add_log(src):
    return src.replace("    print(epoch, w)\n", LOG + "    print(epoch, w)\n")


def test_one_replay_gives_every_run_its_own_code_and_arguments(tmp_path):
    script = tmp_path / "train.py"
    for source, lr in ((V1, "0.1"), (V1, "0.05"), (V2, "0.02")):
        script.write_text(source)
        flortrace(tmp_path, "-q", "train.py", "--lr", lr)
    script.write_text(add_log(V2))
    plan = flortrace(tmp_path, "replay", "--runs", "all", "--plan", "train.py")
    assert plan.stdout.count("replay plan for run") == 3 and "estimated time for 3 run(s)" in plan.stdout
    out = flortrace(tmp_path, "replay", "--runs", "all", "--workers", "2", "train.py")
    assert "replaying 3 run(s)" in out.stderr
    for run, (source, lr) in enumerate(((V1, "0.1"), (V1, "0.05"), (V2, "0.02")), start=1):
        fresh = tmp_path / f"fresh{run}"
        fresh.mkdir()
        (fresh / "train.py").write_text(add_log(source))
        flortrace(fresh, "-q", "train.py", "--lr", lr)
        expected = logs(fresh, 1, "record")
        assert logs(tmp_path, run, "replay") == expected and len(expected) == 5
    import flortrace as ft

    frame = ft.dataframe(runs="all", store=tmp_path / ".store")
    assert list(frame.columns[:5]) == ["run", "argv", "git", "script", "lr"]
    by_run = frame.groupby("run")["lr"].first().to_dict()
    assert by_run == {1: 0.1, 2: 0.05, 3: 0.02} and len(frame) == 15


def test_runs_are_chosen_by_their_arguments(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(V1)
    for lr in ("0.1", "0.05", "0.01"):
        flortrace(tmp_path, "-q", "train.py", "--lr", lr)
    script.write_text(add_log(V1))
    flortrace(tmp_path, "replay", "-q", "--runs", "all", "--where", "lr < 0.07", "train.py")
    rows = json.loads(
        flortrace(tmp_path, "logs", "--run", "1", "--run", "2", "--run", "3", "--format", "json").stdout
    )
    assert sorted({r["run"] for r in rows}) == [2, 3]
    table = flortrace(
        tmp_path, "query", "SELECT run, value FROM args WHERE name = 'lr' ORDER BY run", "--json"
    )
    assert json.loads(table.stdout) == [
        {"run": 1, "value": 0.1},
        {"run": 2, "value": 0.05},
        {"run": 3, "value": 0.01},
    ]


def test_a_line_that_cannot_be_placed_is_reported_and_the_run_left_out(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(V1.replace("    print(epoch, w)\n", "    print('epoch', epoch)\n"))
    flortrace(tmp_path, "-q", "train.py")
    script.write_text(V1)
    flortrace(tmp_path, "-q", "train.py")
    script.write_text(V1.replace("    print(epoch, w)\n", "    print(epoch, w, args.lr)\n"))
    out = flortrace(tmp_path, "replay", "--runs", "all", "train.py", check=False)
    assert out.returncode == 2 and "run 1 left out: today's line 13" in out.stderr


def test_a_moved_project_still_finds_its_runs(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (project / "train.py").write_text(V1)
    flortrace(project, "-q", "train.py")
    moved = tmp_path / "moved"
    project.rename(moved)
    (moved / "train.py").write_text(add_log(V1))
    flortrace(moved, "replay", "-q", "train.py")
    assert len(logs(moved, 1, "replay")) == 5
    source = flortrace(moved, "source", "1")
    assert source.stdout == V1
    diff = flortrace(moved, "source", "1", "--diff")
    assert "+    __import__('flortrace').log('w0', w[0])" in diff.stdout
