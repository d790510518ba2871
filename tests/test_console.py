"""The replay console through the real CLI: record a script in a temp folder, drive ``python -m flortrace
console`` with commands on stdin (and once through a pseudo-terminal), and compare what it shows with a plain
run of the same script that prints the same expressions at the same points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

TRAIN = textwrap.dedent(
    """\
    import random
    import sys

    random.seed(0)
    data = [(random.random(), random.random()) for _ in range(60)]
    w = [0.0, 0.0]


    def train_epoch(w, data, lr):
        total = 0.0
        random.shuffle(data)
        for step in range(0, len(data), 10):
            batch = data[step:step + 10]
            for x, y in batch:
                err = w[0] * x + w[1] - y
                w[0] -= lr * err * x
                w[1] -= lr * err
                total += err * err
        return total / len(data)


    lr = 0.1
    for epoch in range(int(sys.argv[1])):
        loss = train_epoch(w, data, lr)
        lr *= 0.9
        print(epoch, round(loss, 6))
    print("done", w)
    """
)
BATCH_LINE = TRAIN.splitlines().index("        batch = data[step:step + 10]") + 1
EPOCHS = "10"


def insert_before(src, anchor, line):
    """Insert ``line`` before the line containing ``anchor``, with its indentation."""
    lines = src.splitlines()
    i = next(i for i, text in enumerate(lines) if anchor in text)
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i, indent + line)
    return "\n".join(lines) + "\n"


def env(folder):
    return dict(os.environ, FLORTRACE_STORE=str(folder / ".store"), PYTHONHASHSEED="0")


def flortrace(folder, *args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "flortrace", *args],
        cwd=folder,
        env=env(folder),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def record(folder, source=TRAIN, argv=(EPOCHS,)):
    folder.mkdir(exist_ok=True)
    (folder / "train.py").write_text(source)
    out = flortrace(folder, "-q", "train.py", *argv)
    assert out.returncode == 0, out.stderr
    return folder


def console(folder, commands, argv=(EPOCHS,)):
    """Run the console with ``commands`` on stdin; returns the finished process."""
    return flortrace(folder, "console", "-q", "train.py", *argv, stdin="".join(c + "\n" for c in commands))


def answers(stdout, command):
    """The line printed right after each echoed ``command``."""
    lines = stdout.splitlines()
    return [lines[i + 1] for i, text in enumerate(lines) if text == f"(flortrace) {command}"]


def table(stdout, header, rows):
    """The ``rows`` lines under the first table whose header is ``header`` (columns split on spaces)."""
    lines = stdout.splitlines()
    i = next(i for i, text in enumerate(lines) if text.split() == header)
    return [line.split() for line in lines[i + 1 : i + 1 + rows]]


def plain(folder, source, argv=(EPOCHS,), tag="AT"):
    """Lines tagged ``tag`` printed by a plain ``python`` run of ``source``: {key: rest of the line}."""
    folder.mkdir(exist_ok=True)
    (folder / "train.py").write_text(source)
    out = subprocess.run(
        [sys.executable, "train.py", *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    found = {}
    for line in out.stdout.splitlines():
        if line.startswith(tag + " "):
            key, _, rest = line[len(tag) + 1 :].partition(" ")
            found[key] = rest
    return found


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One recording shared by the tests that only read it."""
    return record(tmp_path_factory.mktemp("console") / "run")


@pytest.fixture(scope="module")
def tops(tmp_path_factory):
    """{epoch: repr((w, lr, epoch))} at the top of each epoch of a plain run."""
    source = insert_before(TRAIN, "loss = train_epoch", 'print("AT", epoch, repr((w, lr, epoch)))')
    source = insert_before(source, 'print("done"', 'print("AT", "end", repr((w, lr, epoch)))')
    return plain(tmp_path_factory.mktemp("plain") / "tops", source)


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    """{'epoch/step': repr((step, w, total, epoch))} at the top of each step of the batch loop."""
    source = insert_before(
        TRAIN, "batch = data[", 'print("AT", f"{epoch}/{step // 10}", repr((step, w, total, epoch)))'
    )
    return plain(tmp_path_factory.mktemp("plain") / "steps", source)


def test_epoch_travel_forward_and_back_matches_a_plain_run(recorded, tops):
    order = ["5", "2", "9", "0", "7", "7"]
    commands = ["p (w, lr, epoch)"]
    for epoch in order:
        commands += [f"epoch {epoch}", "p (w, lr, epoch)"]
    commands += ["epoch 0", "c", "p (w, lr, epoch)"]  # continue: blocks with memos are restored, not run
    out = console(recorded, commands + ["c"])
    assert out.returncode == 0, out.stderr
    assert "flortrace: top of epoch 0" in out.stdout and "flortrace: top of epoch 9" in out.stdout
    assert "flortrace: end of the main loop train.py:<module>#0 after epoch 9" in out.stdout
    assert answers(out.stdout, "p (w, lr, epoch)") == [tops[e] for e in ["0", *order, "end"]]
    assert "flortrace: the script finished with exit code 0" in out.stdout


def test_breakpoint_in_the_batch_loop_stops_at_the_right_step(recorded, steps):
    out = console(
        recorded,
        [
            "epoch 3",
            f"b train.py:{BATCH_LINE}",
            "c",
            "p (step, w, total, epoch)",
            "c",
            "p (step, w, total, epoch)",
            "w",
            "q",
        ],
    )
    assert out.returncode == 0, out.stderr
    assert answers(out.stdout, "p (step, w, total, epoch)") == [steps["3/0"], steps["3/1"]]
    assert "flortrace: epoch 3, step 0 of train.py:train_epoch#0" in out.stdout
    assert f"train.py({BATCH_LINE})train_epoch()" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_epoch_step_stops_at_the_top_of_that_step(recorded, steps):
    out = console(
        recorded,
        [
            "epoch 6",
            "epoch 3 step 4",
            "p (step, w, total, epoch)",
            "n",
            "p step",
            "epoch 3 step 2",
            "p (step, w, total, epoch)",
        ],
    )  # then EOF: quit
    assert out.returncode == 0, out.stderr
    assert answers(out.stdout, "p (step, w, total, epoch)") == [steps["3/4"], steps["3/2"]]
    assert answers(out.stdout, "p step")[0] == "40"


def test_watch_equals_a_plain_run_and_lands_in_the_logs(tmp_path, tops):
    folder = record(tmp_path / "run")
    out = console(folder, ["watch w[0]", "p epoch", "watch w[0] 2:4", "q"])
    assert out.returncode == 0, out.stderr
    expected = {int(e): eval(v)[0][0] for e, v in tops.items() if e != "end"}
    assert {int(e): float(v) for e, v in table(out.stdout, ["epoch", "w[0]"], 10)} == expected
    assert any(set(line.split()[0]) <= set("▁▂▃▄▅▆▇█") and "max" in line for line in out.stdout.splitlines())
    assert answers(out.stdout, "p epoch") == ["9"]  # a watch ends at the top of its last epoch
    assert "(2 saved before)" in out.stdout
    rows = json.loads(flortrace(folder, "logs", "--name", "w[0]", "--format", "json").stdout)
    assert {r["epoch"]: r["value"] for r in rows} == expected
    assert {(r["origin"], r["step"]) for r in rows} == {("replay", None)}


def test_numpy_state_restores_in_place(tmp_path):
    pytest.importorskip("numpy")
    source = textwrap.dedent(
        """\
        import sys

        import numpy as np

        rng = np.random.default_rng(0)
        X = rng.normal(size=(64, 3))
        y = X @ np.array([1.0, -2.0, 0.5])
        W = np.zeros(3)
        for epoch in range(int(sys.argv[1])):
            order = rng.permutation(len(X))
            for start in range(0, len(X), 16):
                idx = order[start:start + 16]
                W -= 0.05 * X[idx].T @ (X[idx] @ W - y[idx]) / len(idx)
        """
    )
    folder = record(tmp_path / "run", source, ("6",))
    out = console(folder, ["watch float(W.sum())", "epoch 2", "p float(W.sum())", "q"], ("6",))
    assert out.returncode == 0, out.stderr
    probe = insert_before(source, "order = rng", 'print("AT", epoch, float(W.sum()))')
    expected = plain(tmp_path / "plain", probe, ("6",))
    watched = table(out.stdout, ["epoch", "float(W.sum())"], 6)
    assert watched == [[str(e), expected[str(e)]] for e in range(6)]
    assert answers(out.stdout, "p float(W.sum())") == [expected["2"]]


def test_errors_never_end_the_session(recorded):
    out = console(
        recorded, ["p nope", "epoch 99", "epoch x", "watch (", "p 6 * 7", "b nowhere.py:3", "epochs"]
    )
    assert out.returncode == 0, out.stderr
    assert answers(out.stdout, "p nope")[0].startswith("*** NameError")
    assert answers(out.stdout, "epoch 99")[0] == "*** no epoch 99 in run 1 (epochs 0..9)"
    assert answers(out.stdout, "epoch x")[0].startswith("*** usage: epoch N [step S]")
    assert answers(out.stdout, "watch (")[0].startswith("*** watch: SyntaxError")
    assert answers(out.stdout, "p 6 * 7") == ["42"]
    assert answers(out.stdout, "epochs")[0].split() == ["epoch", "seconds", "checkpoint", "memos"]
    assert "Traceback" not in out.stderr


def test_one_shot_iterator_cannot_go_back(tmp_path):
    source = TRAIN.replace(
        "for epoch in range(int(sys.argv[1])):", "for epoch in (e for e in range(int(sys.argv[1]))):"
    )
    folder = record(tmp_path / "run", source)
    out = console(folder, ["epoch 4", "epoch 1", "p epoch", "epoch 6", "p epoch", "q"])
    assert out.returncode == 0, out.stderr
    assert "cannot go back to epoch 1: the main loop iterates over a one-shot generator" in out.stdout
    assert answers(out.stdout, "p epoch") == ["4", "6"]


def test_breakpoints_during_replay(tmp_path, steps):
    folder = record(tmp_path / "run")
    edited = insert_before(TRAIN, "lr *= 0.9", "if epoch == 4: flortrace.breakpoint()")
    edited = insert_before(edited, "batch = data[", "if epoch == 6 and step == 20: breakpoint()")
    edited = "import flortrace\n" + edited
    (folder / "train.py").write_text(edited)
    commands = "p (epoch, w)\nc\np (step, w, total, epoch)\nc\n"
    out = flortrace(folder, "replay", "-q", "train.py", EPOCHS, stdin=commands)
    assert out.returncode == 0, out.stderr
    assert "flortrace: breakpoint at epoch 4" in out.stdout
    assert answers(out.stdout, "p (step, w, total, epoch)") == [steps["6/2"]]
    assert out.stdout.rstrip().splitlines()[-1].startswith("done")
    quit_early = flortrace(folder, "replay", "-q", "train.py", EPOCHS, stdin="q\n")
    assert quit_early.returncode == 0 and "Traceback" not in quit_early.stderr
    assert "done" not in quit_early.stdout
    outside = subprocess.run(
        [sys.executable, "train.py", "3"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert (
        outside.returncode == 0 and "(flortrace)" not in outside.stdout
    )  # flortrace.breakpoint() is a no-op


def test_terminal_session(recorded):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "flortrace", "console", "-q", "train.py", EPOCHS],
        cwd=str(recorded),
        env=env(recorded),
        encoding="utf-8",
        timeout=60,
    )
    child.expect_exact("flortrace: top of epoch 0")
    child.expect_exact("(flortrace) ")
    child.sendline("epochs")
    child.expect(r"epoch\s+seconds\s+checkpoint\s+memos")
    child.expect_exact("(flortrace) ")
    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


SLOW = textwrap.dedent(
    """\
    import sys
    import time

    w = [0.0]


    def train_epoch(w):
        total = 0.0
        for step in range(40):
            time.sleep(0.05)
            w[0] += 0.01
            total += w[0]
        return total


    for epoch in range(int(sys.argv[1])):
        loss = train_epoch(w)
        print("loss", epoch, round(loss, 4))
    """
)
SLOW_LINE = SLOW.splitlines().index("        w[0] += 0.01") + 1


def spawn(folder, *args):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "flortrace", "console", "-q", *args],
        cwd=str(folder),
        env=env(folder),
        encoding="utf-8",
        timeout=60,
    )
    child.expect_exact("(flortrace) ")
    return child


def ask(child, command):
    """Send ``command``; what it printed before the next prompt."""
    child.sendline(command)
    child.expect_exact("(flortrace) ")
    return child.before.split("\r\n", 1)[1] if "\r\n" in child.before else ""


def quit_console(child):
    import pexpect

    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """SLOW recorded twice: with checkpoints and memos (the default) and without (--overhead 0)."""
    folder = tmp_path_factory.mktemp("slow")
    (folder / "train.py").write_text(SLOW)
    for options in ([], ["--overhead", "0"]):
        out = flortrace(folder, "-q", *options, "train.py", "4")
        assert out.returncode == 0, out.stderr
    return folder


def test_ctrl_c_during_c_and_during_a_jump_gives_the_prompt_back(slow):
    child = spawn(slow, "--run", "2", "train.py")  # no snapshots: a jump back re-executes epochs
    child.sendline("c")
    child.expect_exact("loss 0 ")
    child.sendintr()
    child.expect_exact("(flortrace) ")
    assert "Program interrupted" in child.before and "bdb.py" not in child.before
    assert (
        "flortrace: epoch 1, step" in child.before and "train_epoch()\r\n" in child.before
    )  # the script's line
    assert ask(child, "p epoch").strip() == "1"
    child.sendline("epoch 2 step 30")  # from inside epoch 1: epoch 1 runs on, then epoch 2 up to step 30
    child.expect_exact("loss 1 ")
    child.sendintr()
    child.expect_exact("(flortrace) ")
    assert "(on the way to epoch 2: `c` goes on" in child.before and "Traceback" not in child.before
    assert ask(child, "p epoch").strip() == "2"
    assert "epoch 2, step 30 of train.py:train_epoch#0" in ask(child, "c")
    assert ask(child, "p step, epoch").strip() == "(30, 2)"
    quit_console(child)


def test_a_breakpoint_stops_inside_a_jump_that_runs_its_line(slow):
    child = spawn(slow, "--run", "2", "train.py")
    ask(child, f"b train.py:{SLOW_LINE}")
    shown = ask(child, "epoch 3")  # no snapshots: epochs 0-2 run again, through the breakpoint
    assert "flortrace: epoch 0, step 0 of train.py:train_epoch#0 (on the way to epoch 3" in shown
    assert f"train.py({SLOW_LINE})train_epoch()" in shown
    assert ask(child, "p step, epoch").strip() == "(0, 0)"
    ask(child, "cl 1")
    assert "flortrace: top of epoch 3" in ask(child, "c")
    quit_console(child)
    child = spawn(slow, "--run", "1", "train.py")  # a checkpoint after epoch 0, then epoch 1's block runs
    ask(child, f"b train.py:{SLOW_LINE}")
    shown = ask(child, "epoch 1 step 5")
    assert "flortrace: epoch 1, step 0 of train.py:train_epoch#0 (on the way to epoch 1" in shown
    assert "flortrace: epoch 1, step 1 of" in ask(child, "c")
    ask(child, "cl 1")
    assert "flortrace: epoch 1, step 5 of train.py:train_epoch#0\r\n" in ask(child, "c")
    quit_console(child)


def test_going_back_from_inside_an_epoch_does_not_run_its_rest(slow, tmp_path):
    top = plain(
        tmp_path / "plain", insert_before(SLOW, "loss = train_epoch", 'print("AT", epoch, w[0])'), ("4",)
    )
    child = spawn(slow, "--run", "1", "train.py")
    ask(child, f"b train.py:{SLOW_LINE}")
    assert f"train.py({SLOW_LINE})train_epoch()" in ask(child, "c")  # inside epoch 0's block, step 0
    ask(child, "cl 1")
    began = time.monotonic()
    shown = ask(child, "epoch 0")  # its block has a memo: the rest of it (2 s) is not run
    took = time.monotonic() - began
    assert took < 1.5 and "leaving epoch 0 first" not in shown
    banner = next(line for line in shown.splitlines() if "top of epoch 0" in line)
    assert float(banner.rsplit("; ", 1)[1].rstrip("s)")) < 1.5  # the banner counts leaving the epoch
    assert ask(child, "p w[0], epoch").strip() == f"({top['0']}, 0)"
    quit_console(child)


def test_console_of_a_module(tmp_path):
    folder = tmp_path / "proj"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "train.py").write_text(TRAIN)
    out = flortrace(folder, "-q", "-m", "pkg.train", "4")
    assert out.returncode == 0, out.stderr
    commands = "epoch 2\np epoch\np __import__('flortrace').replaying()\nq\n"
    shown = flortrace(folder, "console", "-q", "-m", "pkg.train", stdin=commands)  # the recorded arguments
    assert shown.returncode == 0, shown.stderr
    assert answers(shown.stdout, "p epoch") == ["2"] and "flortrace: top of epoch 2" in shown.stdout
    assert answers(shown.stdout, "p __import__('flortrace').replaying()") == ["True"]
