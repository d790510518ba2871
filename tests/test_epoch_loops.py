"""The right epoch loop on scripts shaped like real ones, through the real CLI.

Each script is recorded; the test asserts the epoch count people would give, exact replay of an epoch-level
and a step-level statement against a fresh run of the edited script, the console stopping at `epoch 3`, and
`--workers 2` using two workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from clirun import flortrace, logs

TOKENIZER_FIRST = """\
    import torch


    def tokenize(lines):
        out = []
        for line in lines:
            ids = []
            for w in line.split():
                ids.append(len(w))
            out.append(torch.tensor(ids, dtype=torch.float32))
        return torch.cat(out)


    data = tokenize(["a bb ccc dddd"] * 30)
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(6):
        for i in range(0, len(data), 8):
            loss = (model(data[i:i + 8].unsqueeze(1)) - 1).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(epoch, loss.item())
    """

WHILE_TRUE = """\
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    X, Y = torch.randn(128, 8), torch.randn(128, 1)
    iter_num, max_iters = 0, 9
    while True:
        lr = 0.01 * min(1.0, (iter_num + 1) / 4)
        for g in opt.param_groups:
            g["lr"] = lr
        for micro in range(3):
            idx = torch.randint(0, 128, (16,))
            loss = ((model(X[idx]) - Y[idx]) ** 2).mean() / 3
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        print(f"iter {iter_num}: loss {loss.item() * 3:.5f}")
        iter_num += 1
        if iter_num > max_iters:
            break
    """

SAMPLE_AFTER = """\
    import random

    random.seed(0)
    w = [0.0, 0.0]
    data = [(random.random(), random.random()) for _ in range(4000)]
    for epoch in range(6):
        for x, y in data:
            err = w[0] * x + w[1] - y
            w[0] -= 0.1 * err * x
            w[1] -= 0.1 * err
        print(epoch, w)

    out = []
    while len(out) < 30:  # sampling after training: no epoch of the training numbering
        probs = [abs(w[0]), abs(w[1])]
        acc, j, r = 0.0, 0, random.random() * sum(probs)
        while acc < r and j < len(probs) - 1:
            acc += probs[j]
            j += 1
        out.append(j)
    print("sample", out)
    """

SHAPES = {  # source, epochs, epoch-level anchor, step-level anchor (after it), probe, console prints
    "tokenizer": (TOKENIZER_FIRST, 6, "print(epoch,", "opt.step()", "loss.item()", ("epoch", "loss.item()")),
    "while_true": (WHILE_TRUE, 10, "print(f", "loss.backward()", "loss.item()", ("iter_num", "lr")),
    "sample_after": (SAMPLE_AFTER, 6, "print(epoch, w)", "w[1] -= 0.1", "w[0]", ("epoch", "w[0]")),
}


def write(folder, text):
    (folder / "train.py").write_text(textwrap.dedent(text))


def with_line(src, anchor, line, after=False):
    lines = textwrap.dedent(src).splitlines()
    i = next(i for i, text in enumerate(lines) if anchor in text)
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i + 1 if after else i, indent + line)
    return "\n".join(lines) + "\n"


def needs(shape):
    if shape != "sample_after":
        pytest.importorskip("torch")


@pytest.fixture(params=sorted(SHAPES))
def shape(request):
    needs(request.param)
    return request.param


def recorded(tmp_path, source):
    write(tmp_path, source)
    out = flortrace(tmp_path, "--overhead", "9", "train.py")  # snapshots to split at, whatever the load
    (run,) = json.loads(flortrace(tmp_path, "runs", "--json").stdout)
    return out, run


def test_the_epoch_count_is_the_training_loops(tmp_path, shape):
    source, epochs, *_ = SHAPES[shape]
    out, run = recorded(tmp_path, source)
    assert run["epochs"] == epochs
    assert f"recorded run 1: {epochs} epochs" in out.stderr
    shown = flortrace(tmp_path, "show", "1").stdout
    assert "training loop" in shown


@pytest.mark.parametrize("level", ["epoch", "step"])
def test_hindsight_values_are_exact(tmp_path, shape, level):
    source, _, epoch_anchor, step_anchor, probe, _ = SHAPES[shape]
    recorded(tmp_path, source)
    anchor, after = (epoch_anchor, False) if level == "epoch" else (step_anchor, True)
    edited = with_line(source, anchor, f"__import__('flortrace').log('probe', {probe})", after)
    (tmp_path / "train.py").write_text(edited)
    flortrace(tmp_path, "replay", "-q", "--epochs", "2:4", "train.py")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "train.py").write_text(edited)
    flortrace(fresh, "-q", "train.py")
    replayed = logs(tmp_path, 1, "replay")
    assert replayed and replayed == [r for r in logs(fresh, 1, "record") if r[1] in (2, 3)]


def test_the_console_stops_at_epoch_3(tmp_path, shape):
    source, _, _, _, _, (var, other) = SHAPES[shape]
    recorded(tmp_path, source)
    env = dict(os.environ, FLORTRACE_STORE=str(tmp_path / ".store"), PYTHONHASHSEED="0")
    out = subprocess.run(
        [sys.executable, "-m", "flortrace", "console", "train.py"],
        input=f"epoch 3\np {var}\np {other}\nq\n",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "top of epoch 3" in out.stdout
    after = out.stdout.split("top of epoch 3", 1)[1]
    assert "(flortrace) p" in after and "\n3\n" in after.replace("(flortrace) ", "\n")


def test_two_workers_are_used(tmp_path, shape):
    source, epochs, epoch_anchor, *_ = SHAPES[shape]
    # Epochs long enough for the writer to keep up, on a loaded machine too: checkpoints to split at.
    source = with_line(source, epoch_anchor, "__import__('time').sleep(0.3)")
    recorded(tmp_path, source)
    edited = with_line(source, epoch_anchor, "__import__('flortrace').log('seen', 1)")
    (tmp_path / "train.py").write_text(edited)
    out = flortrace(tmp_path, "replay", "--workers", "2", "train.py")
    assert "in 2 worker(s)" in out.stderr
    assert [e for _, e, _, _ in logs(tmp_path, 1, "replay")] == list(range(epochs))


def test_a_sampling_loop_after_training_is_named_and_selected_by_name(tmp_path):
    recorded(tmp_path, SAMPLE_AFTER)
    shown = flortrace(tmp_path, "show", "1").stdout
    assert "train#2" in shown or "not an epoch loop" in shown
    edited = with_line(SAMPLE_AFTER, "print(epoch, w)", "__import__('flortrace').log('w0', w[0])")
    (tmp_path / "train.py").write_text(edited)
    flortrace(tmp_path, "replay", "-q", "--epochs", "-1", "train.py")
    assert [e for _, e, _, _ in logs(tmp_path, 1, "replay")] == [5]


def test_a_log_before_the_first_inner_loop_gets_the_epochs_number(tmp_path):
    source = """\
        import flortrace
        w = 0.0
        for epoch in range(3):
            flortrace.log("top", epoch)
            for i in range(4):
                w += 0.5
        """
    write(tmp_path, source)
    flortrace(tmp_path, "-q", "train.py")
    assert logs(tmp_path, 1, "record") == [("top", e, None, e) for e in range(3)]


def test_epoch_loop_override(tmp_path):
    source = """\
        for outer in range(2):
            for epoch in range(3):
                for i in range(5):
                    pass
        """
    write(tmp_path, source)
    out = flortrace(tmp_path, "--epoch-loop", "train.py:2", "train.py")
    assert "recorded run 1: 3 epochs (and 3 of train#2)" in out.stderr
    shown = flortrace(tmp_path, "show", "1").stdout
    assert "chosen with epoch_loop = train.py:2" in shown
