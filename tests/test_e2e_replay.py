"""End to end through the real CLI: record a script, edit it, replay, and compare the hindsight values with a
fresh full run of the edited script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clirun import flortrace, logs

PURE = textwrap.dedent(
    """\
    import random
    import sys

    random.seed(0)
    data = [(random.random(), random.random()) for _ in range(120)]
    w = [0.0, 0.0]


    def train_epoch(w, data, lr):
        total = 0.0
        random.shuffle(data)
        for x, y in data:
            err = w[0] * x + w[1] - y
            w[0] -= lr * err * x
            w[1] -= lr * err
            total += err * err
        return total / len(data)


    def evaluate(w, data):
        s = 0.0
        for x, y in data[:30]:
            s += abs(w[0] * x + w[1] - y)
        return s


    lr = 0.1
    for epoch in range(int(sys.argv[1])):
        loss = train_epoch(w, data, lr)
        val = evaluate(w, data)
        lr *= 0.9
        print(epoch, round(loss, 6), round(val, 6))
    print("done", w)
    """
)

NUMPY = textwrap.dedent(
    """\
    import sys

    import numpy as np


    class Model:
        def __init__(self, seed):
            self.rng = np.random.default_rng(seed)
            self.W = self.rng.normal(size=(4, 3))
            self.b = np.zeros(3)

        def fit(self, X, y, epochs):
            history = []
            for epoch in range(epochs):
                order = self.rng.permutation(len(X))
                total = 0.0
                for start in range(0, len(X), 16):
                    idx = order[start:start + 16]
                    logits = X[idx] @ self.W + self.b
                    p = np.exp(logits - logits.max(1, keepdims=True))
                    p /= p.sum(1, keepdims=True)
                    p[np.arange(len(idx)), y[idx]] -= 1
                    self.W -= 0.1 * X[idx].T @ p / len(idx)
                    self.b -= 0.1 * p.mean(0)
                    total += float(np.abs(p).sum())
                history.append(total)
                print(epoch, round(total, 6))
            return history


    rng = np.random.default_rng(1)
    X = rng.normal(size=(96, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    m = Model(0)
    hist = m.fit(X, y, int(sys.argv[1]))
    print("final", m.W.sum())
    """
)


def edit(src, anchor, line):
    """Insert ``line`` after the line containing ``anchor``, with the same indentation; import flortrace."""
    lines = src.splitlines()
    for i, text in enumerate(lines):
        if anchor in text:
            indent = text[: len(text) - len(text.lstrip())]
            lines.insert(i + 1, indent + line)
            break
    else:
        raise AssertionError(anchor)
    first_import = next(i for i, text in enumerate(lines) if text.startswith("import "))
    lines.insert(first_import, "import flortrace")
    return "\n".join(lines) + "\n"


def scenario(tmp_path, source, edited, argv, replay_args=(), epochs=None, loops=False):
    """Record ``source``, replay ``edited``; return (replayed rows, rows of a fresh run of ``edited``)."""
    script = tmp_path / "train.py"
    script.write_text(source)
    flortrace(tmp_path, "-q", "train.py", *argv)
    script.write_text(edited)
    replay = flortrace(tmp_path, "replay", "-q", *replay_args, "train.py", *argv)
    replayed = logs(tmp_path, 1, "replay", loops)
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    (fresh_dir / "train.py").write_text(edited)
    flortrace(fresh_dir, "-q", "train.py", *argv)
    fresh = logs(fresh_dir, 1, "record", loops)
    if epochs is not None:
        fresh = [r for r in fresh if r[1] in epochs]
    return replayed, fresh, replay


@pytest.mark.parametrize(
    "anchor, line, epochs",
    [
        ("print(epoch, round", "flortrace.log('w0', w[0])", None),  # (a) epoch loop
        ("total += err * err", "flortrace.log('err', err)", None),  # (b) batch loop in a called function
        ("s += abs(", "flortrace.log('s', s)", None),  # (c) evaluation loop
        ("print(epoch, round", "flortrace.log('lr', lr)", "3:6"),
        ("total += err * err", "flortrace.log('err', err)", "2,5"),
    ],
)
def test_pure_python(tmp_path, anchor, line, epochs):
    args = ("--epochs", epochs) if epochs else ()
    chosen = None
    if epochs:
        chosen = set(range(3, 6)) if ":" in epochs else {2, 5}
    replayed, fresh, _ = scenario(tmp_path, PURE, edit(PURE, anchor, line), ["7"], args, chosen)
    assert replayed and replayed == fresh


def test_run_recorded_without_snapshots_replays_from_the_start(tmp_path):
    """--overhead 0 takes no snapshot at all, not even the last epoch's; replay re-executes from epoch 0."""
    (tmp_path / "train.py").write_text(PURE)
    flortrace(tmp_path, "-q", "--overhead", "0", "train.py", "6")
    shown = json.loads(flortrace(tmp_path, "show", "1", "--json").stdout)
    assert shown["snapshots"] == [] and len(shown["epochs"]) == 6
    edited = edit(PURE, "print(epoch, round", "flortrace.log('w0', w[0])")
    (tmp_path / "train.py").write_text(edited)
    flortrace(tmp_path, "replay", "-q", "--epochs", "3:5", "train.py", "6")
    replayed = logs(tmp_path, 1, "replay")
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    (fresh_dir / "train.py").write_text(edited)
    flortrace(fresh_dir, "-q", "train.py", "6")
    fresh = [r for r in logs(fresh_dir, 1, "record") if r[1] in (3, 4)]
    assert len(fresh) == 2 and replayed == fresh


@pytest.mark.parametrize(
    "anchor, line, workers",
    [
        ("history.append(total)", "flortrace.log('w_norm', float((self.W ** 2).sum()))", 1),
        ("total += float", "flortrace.log('step_total', total)", 1),
        ("total += float", "flortrace.log('step_total', total)", 2),
    ],
)
def test_numpy_method_loop(tmp_path, anchor, line, workers):
    pytest.importorskip("numpy")
    replay_args = ("--workers", str(workers))
    replayed, fresh, _ = scenario(tmp_path, NUMPY, edit(NUMPY, anchor, line), ["5"], replay_args)
    assert replayed and replayed == fresh


def test_replay_output_matches_a_plain_run(tmp_path):
    edited = edit(PURE, "print(epoch, round", "flortrace.log('w1', w[1])")
    _, _, replay = scenario(tmp_path, PURE, edited, ["6"])
    plain = subprocess.run(
        [sys.executable, "train.py", "6"],
        cwd=tmp_path / "fresh",
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )
    assert replay.stdout == plain.stdout


def test_fidelity_check_catches_nondeterminism(tmp_path):
    noisy = edit(PURE, "print(epoch, round", "flortrace.log('noise', __import__('os').urandom(4).hex())")
    (tmp_path / "train.py").write_text(noisy)
    flortrace(tmp_path, "-q", "train.py", "4")
    out = flortrace(tmp_path, "replay", "train.py", "4", check=False)
    assert out.returncode == 3
    assert "diverged from the recording at epoch 0" in out.stderr and "noise" in out.stderr


def test_state_changing_edit_is_refused(tmp_path):
    (tmp_path / "train.py").write_text(PURE)
    flortrace(tmp_path, "-q", "train.py", "3")
    (tmp_path / "train.py").write_text(edit(PURE, "total += err * err", "w[0] += 1"))
    out = flortrace(tmp_path, "replay", "train.py", "3", check=False)
    assert out.returncode == 2 and "refusing" in out.stderr and "train.py:" in out.stderr


def test_plan_runs_nothing(tmp_path):
    (tmp_path / "train.py").write_text(PURE)
    flortrace(tmp_path, "-q", "train.py", "4")
    out = flortrace(tmp_path, "replay", "--plan", "train.py", "4")
    assert "estimated time" in out.stdout and "0 " not in out.stdout.splitlines()[-1][:2]
    assert "done" not in out.stdout


TORCH_EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits_cnn.py"


def test_torch_digits_batch_level_on_an_epoch_range(tmp_path):
    """With two workers. (The epoch-level case on the same example is in test_examples_flortrace.)"""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    src = TORCH_EXAMPLE.read_text()
    edited = edit(src, "opt.step()", "flortrace.log('loss', loss.item())")
    args = ("--epochs", "1:4", "--workers", "2")
    replayed, fresh, _ = scenario(tmp_path, src, edited, ["--quick", "--epochs", "4"], args, {1, 2, 3})
    assert replayed and replayed == fresh


def parallel_case(tmp_path, backend):
    big = PURE.replace("range(120)", "range(20000)").replace("data[:30]", "data[:300]")
    edited = edit(big, "total += err * err", "flortrace.log('err', err) if x < 0.001 else None")
    (tmp_path / "train.py").write_text(big)
    flortrace(tmp_path, "-q", "--overhead", "9", "train.py", "10")
    (tmp_path / "train.py").write_text(edited)
    out = flortrace(
        tmp_path, "replay", "--workers", "2", "--backend", backend, "--epochs", "1:9", "train.py", "10"
    )
    replayed = logs(tmp_path, 1, "replay")
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    (fresh_dir / "train.py").write_text(edited)
    flortrace(fresh_dir, "-q", "train.py", "10")
    fresh = [r for r in logs(fresh_dir, 1, "record") if 1 <= r[1] < 9]
    assert len(fresh) > 8 and sorted(replayed, key=str) == sorted(fresh, key=str)
    return out


def test_parallel_replay_matches_a_fresh_run(tmp_path):
    out = parallel_case(tmp_path, "local")
    assert "worker(s)" in out.stderr  # how many depends on where the policy put checkpoints (timing)


def test_ray_backend_matches_a_fresh_run(tmp_path):
    pytest.importorskip("ray")
    out = parallel_case(tmp_path, "ray")
    assert "worker(s)" in out.stderr


def test_damaged_checkpoint_is_detected_and_replay_falls_back(tmp_path):
    big = PURE.replace("range(120)", "range(20000)")
    (tmp_path / "train.py").write_text(big)
    flortrace(tmp_path, "-q", "--overhead", "9", "train.py", "8")
    shown = json.loads(flortrace(tmp_path, "show", "1", "--json").stdout)
    checkpoints = sorted(s["epoch"] for s in shown["snapshots"] if s["kind"] == "checkpoint")
    target = max(e for e in checkpoints if e < 7)
    manifest = next(
        s["manifest"] for s in shown["snapshots"] if s["kind"] == "checkpoint" and s["epoch"] == target
    )
    blob = tmp_path / ".store" / "blobs" / manifest[:2] / manifest
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    edited = edit(big, "print(epoch, round", "flortrace.log('w0', w[0])")
    (tmp_path / "train.py").write_text(edited)
    out = flortrace(tmp_path, "replay", "--epochs", f"{target + 1}:8", "train.py", "8")
    assert manifest in out.stderr and "using an earlier snapshot" in out.stderr
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    (fresh_dir / "train.py").write_text(edited)
    flortrace(fresh_dir, "-q", "train.py", "8")
    fresh = [r for r in logs(fresh_dir, 1, "record") if r[1] > target]
    assert logs(tmp_path, 1, "replay") == fresh


UNPICKLABLE = textwrap.dedent(
    """\
    import sys


    class Tally:
        def __init__(self, path):
            self.out = open(path, "w")
            self.count = 0


    tally = Tally("tally.txt")
    total = 0
    for epoch in range(int(sys.argv[1])):
        for i in range(50):
            total += i * epoch
            tally.count += 1
        print(epoch, total, tally.count)
    """
)


def test_unpicklable_state_is_named_and_replay_reexecutes(tmp_path):
    (tmp_path / "train.py").write_text(UNPICKLABLE)
    out = flortrace(tmp_path, "train.py", "4")
    assert "cannot snapshot tally" in out.stderr and "open file" in out.stderr
    edited = edit(UNPICKLABLE, "print(epoch, total", "flortrace.log('count', tally.count)")
    edited = edited.replace("import flortrace\nimport sys", "import sys\nimport flortrace")
    (tmp_path / "train.py").write_text(edited)
    flortrace(tmp_path, "replay", "-q", "--epochs", "2:4", "train.py", "4")
    assert logs(tmp_path, 1, "replay") == [("count", 2, None, 150), ("count", 3, None, 200)]


SHAPES = textwrap.dedent(
    """\
    import sys

    w = [0.0]


    def batches(n):
        for i in range(n):
            w[0] += i * 0.001
        return w[0]


    epoch = 0
    while epoch < 5:  # a while epoch loop
        batches(40)
        print("a", epoch, round(w[0], 6))
        epoch += 1

    for e in range(8):  # a second epoch loop, left early
        if e == 6:
            break
        batches(30)
        print("b", e, round(w[0], 6))
    """
)


@pytest.mark.parametrize(
    "anchor, line, epochs, chosen",
    [
        ('print("a"', "flortrace.log('wa', w[0])", None, None),
        ('print("b"', "flortrace.log('wb', w[0])", "train#2:2:", {("train#2", e) for e in (2, 3, 4, 5, 6)}),
        (
            "w[0] += i",
            "flortrace.log('i', i)",
            "train:3:,train#2:1",
            {("train", 3), ("train", 4), ("train#2", 1)},
        ),
    ],
)
def test_while_loop_two_main_loops_and_break(tmp_path, anchor, line, epochs, chosen):
    """Two main loops, each numbered from 0 and named after the script (a second one with #2)."""
    args = ("--epochs", epochs) if epochs else ()
    edited = edit(SHAPES, anchor, line)
    replayed, fresh, _ = scenario(tmp_path, SHAPES, edited, [], args, chosen, loops=True)
    assert replayed and replayed == fresh
