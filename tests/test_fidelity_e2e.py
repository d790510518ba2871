"""Replay is exact or says why not: each case of the trust issue through the real CLI.

Every test records a script in a temp folder, edits it, replays, and asserts either exact equality with the
recorded run (hindsight values against a fresh run of the edited script, the script's own stdout against the
recording's) or exit code 3 with a report that names the epoch, the path and the likely cause.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from clirun import flortrace, logs


def write(folder, name, text):
    (folder / name).write_text(textwrap.dedent(text))


def add_line(src, anchor, line, after=False):
    """Insert ``line`` before (or after) the line containing ``anchor``, with its indentation."""
    lines = textwrap.dedent(src).splitlines()
    i = next(i for i, text in enumerate(lines) if anchor in text)
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i + 1 if after else i, indent + line)
    return "\n".join(lines) + "\n"


def record_edit_replay(tmp_path, source, edited, argv=(), replay=(), check=True, files=None):
    """Record ``source``, replay ``edited``: (recording's output, replay's output)."""
    for name, text in (files or {}).items():
        write(tmp_path, name, text)
    write(tmp_path, "train.py", source)
    recorded = flortrace(tmp_path, "--overhead", "0.5", "train.py", *argv)
    (tmp_path / "train.py").write_text(edited)
    replayed = flortrace(tmp_path, "replay", *replay, "train.py", *argv, check=check)
    return recorded, replayed


def fresh_values(tmp_path, edited, argv=(), files=None):
    """The values a fresh full run of ``edited`` logs (recorded in a folder of its own)."""
    folder = tmp_path / "fresh"
    folder.mkdir()
    for name, text in (files or {}).items():
        write(folder, name, text)
    (folder / "train.py").write_text(edited)
    out = flortrace(folder, "-q", "train.py", *argv)
    return logs(folder, 1, "record"), out.stdout


# ---- 1. a block in the main loop's own frame changes state through an alias -----------------------
SAME_FRAME = {
    "module": """\
        import flortrace
        from opt import SGD

        w = [0.0, 0.0, 0.0]
        opt = SGD([w], 0.1)
        for epoch in range(5):
            for i in range(10):
                loss = sum((x - 1) ** 2 for x in w)
                opt.step([2 * (x - 1) for x in w])
            print(epoch, loss)
        """,
    "function": """\
        import flortrace
        from opt import SGD


        def main():
            w = [0.0, 0.0, 0.0]
            opt = SGD([w], 0.1)
            for epoch in range(5):
                for i in range(10):
                    loss = sum((x - 1) ** 2 for x in w)
                    opt.step([2 * (x - 1) for x in w])
                print(epoch, loss)


        main()
        """,
    "method": """\
        import flortrace
        from opt import SGD


        class Trainer:
            def __init__(self):
                self.w = [0.0, 0.0, 0.0]
                self.opt = SGD([self.w], 0.1)

            def fit(self):
                w = self.w
                for epoch in range(5):
                    for i in range(10):
                        loss = sum((x - 1) ** 2 for x in w)
                        self.opt.step([2 * (x - 1) for x in w])
                    print(epoch, loss)


        Trainer().fit()
        """,
}
OPT = """\
    class SGD:
        def __init__(self, params, lr):
            self.params, self.lr = params, lr

        def step(self, grads):
            p = self.params[0]
            p[:] = [x - self.lr * g for x, g in zip(p, grads)]
    """


@pytest.mark.parametrize("shape", sorted(SAME_FRAME))
def test_a_block_that_changes_state_through_an_alias_replays_exactly(tmp_path, shape):
    source = SAME_FRAME[shape]
    edited = add_line(source, "print(epoch, loss)", "flortrace.log('w0', w[0])")
    recorded, replayed = record_edit_replay(tmp_path, source, edited, files={"opt.py": OPT})
    fresh, _ = fresh_values(tmp_path, edited, files={"opt.py": OPT})
    assert logs(tmp_path, 1, "replay") == fresh and len(fresh) == 5
    assert replayed.stdout == recorded.stdout


def test_a_bare_tensor_stepped_by_sgd_replays_exactly(tmp_path):
    pytest.importorskip("torch")
    source = """\
        import torch
        torch.manual_seed(0)
        w = torch.zeros(3, requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.1)
        for epoch in range(4):
            for i in range(10):
                loss = ((w - 1) ** 2).sum()
                opt.zero_grad(); loss.backward(); opt.step()
            print(epoch, loss.item())
        """
    edited = add_line(source, "print(epoch,", "import flortrace; flortrace.log('w0', w[0].item())")
    recorded, replayed = record_edit_replay(tmp_path, source, edited)
    fresh, _ = fresh_values(tmp_path, edited)
    assert logs(tmp_path, 1, "replay") == fresh and len(fresh) == 4
    assert replayed.stdout == recorded.stdout


# ---- 2. an unseeded script: the recording is the only truth --------------------------------------
UNSEEDED = """\
    import random

    data = [(random.random(), random.random()) for _ in range(50)]
    w = [random.random(), random.random()]
    for epoch in range(6):
        random.shuffle(data)
        total = 0.0
        for x, y in data:
            err = w[0] * x + w[1] - y
            w[0] -= 0.1 * err * x
            w[1] -= 0.1 * err
            total += err * err
        print(epoch, repr(total))
    """


def test_an_unseeded_script_replays_what_the_recording_printed(tmp_path):
    edited = add_line(UNSEEDED, "print(epoch,", "import flortrace; flortrace.log('total', total)")
    recorded, replayed = record_edit_replay(tmp_path, UNSEEDED, edited)
    printed = [float(line.split()[1]) for line in recorded.stdout.splitlines()]
    assert [v for _, _, _, v in logs(tmp_path, 1, "replay")] == printed
    assert replayed.stdout == recorded.stdout


def test_an_unseeded_torch_script_replays_what_the_recording_printed(tmp_path):
    pytest.importorskip("torch")
    source = """\
        import torch

        X = torch.randn(128, 10)
        Y = (X[:, :1] > 0).float()
        model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for epoch in range(4):
            perm = torch.randperm(128)
            for i in range(0, 128, 32):
                idx = perm[i:i + 32]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(X[idx]), Y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            print(epoch, loss.item())
        """
    edited = add_line(source, "print(epoch,", "import flortrace; flortrace.log('loss', loss.item())")
    recorded, replayed = record_edit_replay(tmp_path, source, edited)
    printed = [float(line.split()[1]) for line in recorded.stdout.splitlines()]
    assert [v for _, _, _, v in logs(tmp_path, 1, "replay")] == printed
    assert replayed.stdout == recorded.stdout


# ---- 3. training state in another module's global ---------------------------------------------
SCHED = """\
    _calls = 0


    def lr(base):
        global _calls
        _calls += 1
        return base / (1 + 0.5 * _calls)
    """
USES_SCHED = """\
    import random
    import sched_state

    random.seed(0)
    data = [(random.random(), random.random()) for _ in range(40)]
    w = [0.0, 0.0]
    for epoch in range(8):
        step = sched_state.lr(0.5)
        for x, y in data:
            err = w[0] * x + w[1] - y
            w[0] -= step * err * x
            w[1] -= step * err
        print(epoch, w)
    """


def test_state_in_a_sibling_module_replays_exactly(tmp_path):
    edited = add_line(USES_SCHED, "print(epoch,", "import flortrace; flortrace.log('step', step)")
    files = {"sched_state.py": SCHED}
    recorded, replayed = record_edit_replay(
        tmp_path, USES_SCHED, edited, replay=("--epochs", "5:8"), files=files
    )
    fresh, _ = fresh_values(tmp_path, edited, files=files)
    assert logs(tmp_path, 1, "replay") == [r for r in fresh if r[1] >= 5] and len(fresh) == 8
    shown = flortrace(tmp_path, "show", "1").stdout
    assert "sched_state._calls" in shown or "_calls" in shown


# ---- 4. a hindsight statement that draws random numbers -----------------------------------------
def test_a_hindsight_statement_that_draws_random_numbers_leaves_training_as_recorded(tmp_path):
    source = textwrap.dedent(UNSEEDED).replace("import random\n", "import random\nrandom.seed(3)\n")
    edited = add_line(source, "print(epoch,", "import flortrace; flortrace.log('probe', random.random())")
    recorded, replayed = record_edit_replay(tmp_path, source, edited)
    assert replayed.stdout == recorded.stdout
    assert len(logs(tmp_path, 1, "replay")) == 6


def test_a_torch_probe_with_fresh_random_input_leaves_training_as_recorded(tmp_path):
    pytest.importorskip("torch")
    source = """\
        import torch
        torch.manual_seed(0)
        X, Y = torch.randn(64, 20), torch.randn(64, 1)
        model = torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        for epoch in range(4):
            for i in torch.randperm(4):
                loss = ((model(X[i * 16:(i + 1) * 16]) - Y[i * 16:(i + 1) * 16]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            print(epoch, loss.item())
        """
    probe = "import flortrace; flortrace.log('probe', model(torch.randn(1, 20)).sum().item())"
    recorded, replayed = record_edit_replay(tmp_path, source, add_line(source, "print(epoch,", probe))
    assert replayed.stdout == recorded.stdout


# ---- 5. edits that change training ---------------------------------------------------------------
TRAIN = """\
    import random

    random.seed(0)
    data = [(random.random(), random.random()) for _ in range(30)]
    w = [0.0, 0.0]


    def fit(w, data):
        for x, y in data:
            err = w[0] * x + w[1] - y
            w[0] -= 0.1 * err * x
            w[1] -= 0.1 * err


    for epoch in range(5):
        fit(w, data)
        print(epoch, w)
    """


def test_an_edit_that_visibly_changes_state_is_refused(tmp_path):
    edited = add_line(TRAIN, "print(epoch, w)", "w.reverse()")
    _, out = record_edit_replay(tmp_path, TRAIN, edited, check=False)
    assert out.returncode == 2 and "train.py:17" in out.stderr and "w.reverse" in out.stderr


def test_clip_grad_norm_added_is_refused(tmp_path):
    pytest.importorskip("torch")
    source = """\
        import torch
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        X, Y = torch.randn(16, 3), torch.randn(16, 1)
        for epoch in range(3):
            for i in range(2):
                loss = ((model(X) - Y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        """
    edited = add_line(source, "opt.step()", "torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)")
    _, out = record_edit_replay(tmp_path, source, edited, check=False)
    assert out.returncode == 2 and "clip_grad_norm_" in out.stderr and "train.py:11" in out.stderr


HIDDEN = """\
    def peek(v):
        v[0] += 1e-9
        return v[0]


    """


def test_an_edit_that_changes_state_out_of_sight_stops_the_replay_and_names_the_line(tmp_path):
    edited = textwrap.dedent(HIDDEN) + add_line(
        TRAIN, "print(epoch, w)", "import flortrace; flortrace.log('w0', peek(w))"
    )
    _, out = record_edit_replay(tmp_path, TRAIN, textwrap.dedent(edited), check=False)
    assert out.returncode == 3
    assert "the added line train.py:22 changes state" in out.stderr and "w: before it" in out.stderr
    assert logs(tmp_path, 1, "replay") == []


def test_forced_an_edit_that_changes_state_runs_on_and_reports(tmp_path):
    edited = textwrap.dedent(HIDDEN) + add_line(
        TRAIN, "print(epoch, w)", "import flortrace; flortrace.log('w0', peek(w))"
    )
    _, out = record_edit_replay(tmp_path, TRAIN, textwrap.dedent(edited), replay=("--force",), check=False)
    assert out.returncode == 3 and "changes state" in out.stderr
    assert len(out.stdout.splitlines()) == 5  # every epoch ran
    assert len(logs(tmp_path, 1, "replay")) == 5


# ---- 6. other arguments than the recording --------------------------------------------------------
ARGS = """\
    import sys

    lr = float(sys.argv[1])
    w = 0.0
    for epoch in range(int(sys.argv[2])):
        for i in range(3):
            w -= lr * (w - 1)
        print(epoch, w)
    """


def test_replay_without_arguments_uses_the_recorded_ones(tmp_path):
    edited = add_line(ARGS, "print(epoch, w)", "import flortrace; flortrace.log('w', w)")
    write(tmp_path, "train.py", ARGS)
    recorded = flortrace(tmp_path, "train.py", "0.1", "6")
    (tmp_path / "train.py").write_text(edited)
    replayed = flortrace(tmp_path, "replay", "train.py")
    assert replayed.stdout == recorded.stdout and len(logs(tmp_path, 1, "replay")) == 6


def test_replay_with_other_arguments_is_refused_showing_both(tmp_path):
    write(tmp_path, "train.py", ARGS)
    flortrace(tmp_path, "-q", "train.py", "0.1", "6")
    out = flortrace(tmp_path, "replay", "train.py", "99", "6", check=False)
    assert out.returncode == 2 and "`0.1 6`" in out.stderr and "`99 6`" in out.stderr
    assert out.stdout == ""
    forced = flortrace(tmp_path, "replay", "--force", "train.py", "99", "6", check=False)
    assert forced.returncode == 3 and "other arguments than the recording" in forced.stderr


# ---- 7. a missing or damaged snapshot -----------------------------------------------------------
def test_a_missing_last_checkpoint_is_reached_by_re_executing(tmp_path):
    source = textwrap.dedent(TRAIN)
    write(tmp_path, "train.py", source)
    flortrace(tmp_path, "-q", "--overhead", "0.5", "train.py")
    shown = json.loads(flortrace(tmp_path, "show", "1", "--json").stdout)
    last = max((s for s in shown["snapshots"] if s["kind"] == "checkpoint"), key=lambda s: s["epoch"])
    assert last["epoch"] == 4
    blob = tmp_path / ".store" / "blobs" / last["manifest"][:2] / last["manifest"]
    blob.unlink()
    edited = source + "import flortrace\nflortrace.log('final', w[0])\n"
    (tmp_path / "train.py").write_text(edited)
    out = flortrace(tmp_path, "replay", "--epochs", "0", "train.py")
    assert "re-executing" in out.stderr
    fresh, _ = fresh_values(tmp_path, edited)
    assert logs(tmp_path, 1, "replay") == [r for r in fresh if r[0] == "final"]


# ---- 8. hindsight values accumulate ------------------------------------------------------------
def test_a_second_replay_keeps_the_first_ones_values(tmp_path):
    source = textwrap.dedent(TRAIN)
    write(tmp_path, "train.py", source)
    flortrace(tmp_path, "-q", "train.py")
    (tmp_path / "train.py").write_text(
        add_line(source, "print(epoch, w)", "import flortrace; flortrace.log('a', w[0])")
    )
    flortrace(tmp_path, "replay", "-q", "train.py")
    flortrace(tmp_path, "replay", "-q", "train.py")  # the same name again: replaced, not duplicated
    (tmp_path / "train.py").write_text(
        add_line(source, "print(epoch, w)", "import flortrace; flortrace.log('b', w[1])")
    )
    flortrace(tmp_path, "replay", "-q", "--epochs", "1:3", "train.py")
    names = [name for name, *_ in logs(tmp_path, 1, "replay")]
    assert names.count("a") == 5 and names.count("b") == 2


# ---- 9. nanoGPT's learning-rate loop inside a `while True` -------------------------------------
def test_param_groups_set_in_a_while_loop_replay_exactly(tmp_path):
    pytest.importorskip("torch")
    source = """\
        import torch

        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias]}], lr=1.0)
        X, Y = torch.randn(64, 4), torch.randn(64, 1)
        it = 0
        while True:
            lr = 0.1 / (it + 1)
            for g in opt.param_groups:
                g["lr"] = lr
            for k in range(2):
                loss = ((model(X[k * 32:(k + 1) * 32]) - Y[k * 32:(k + 1) * 32]) ** 2).mean()
                loss.backward()
            opt.step()
            opt.zero_grad()
            print(it, loss.item())
            it += 1
            if it >= 8:
                break
        """
    edited = add_line(
        source, "print(it,", "import flortrace; flortrace.log('lr0', opt.param_groups[0]['lr'])"
    )
    recorded, replayed = record_edit_replay(tmp_path, source, edited)
    assert replayed.stdout == recorded.stdout
    assert [v for *_, v in logs(tmp_path, 1, "replay")] == [0.1 / (i + 1) for i in range(8)]


# ---- 10. a pure-Python autograd demo: closures on objects, a set's order -----------------------------
MICROGRAD = """\
    class Value:
        def __init__(self, data, children=()):
            self.data, self.grad = data, 0.0
            self._backward = lambda: None
            self._prev = set(children)

        def __add__(self, other):
            out = Value(self.data + other.data, (self, other))

            def _backward():
                self.grad += out.grad
                other.grad += out.grad

            out._backward = _backward
            return out

        def __mul__(self, other):
            out = Value(self.data * other.data, (self, other))

            def _backward():
                self.grad += other.data * out.grad
                other.grad += self.data * out.grad

            out._backward = _backward
            return out

        def backward(self):
            topo, seen = [], set()

            def build(v):
                if v not in seen:
                    seen.add(v)
                    for child in v._prev:
                        build(child)
                    topo.append(v)

            build(self)
            self.grad = 1.0
            for v in reversed(topo):
                v._backward()
    """
AUTOGRAD = """\
    import random

    from micrograd import Value

    random.seed(1)
    params = [Value(random.uniform(-1, 1)) for _ in range(6)]
    data = [([random.uniform(-1, 1) for _ in range(6)], random.uniform(-1, 1)) for _ in range(12)]
    for k in range(6):
        total = Value(0.0)
        for x, y in data:
            pred = Value(0.0)
            for p, xi in zip(params, x):
                pred = pred + p * Value(xi)
            err = pred + Value(-y)
            total = total + err * err
        for p in params:
            p.grad = 0.0
        total.backward()
        for p in params:
            p.data -= 0.01 * p.grad
        print(k, f"{total.data:.6f}")
    """


def test_an_autograd_demo_replays_within_the_tolerance_it_is_told_or_says_why_not(tmp_path):
    edited = add_line(AUTOGRAD, "print(k,", "import flortrace; flortrace.log('p0', params[0].data)")
    files = {"micrograd.py": MICROGRAD}
    recorded, replayed = record_edit_replay(tmp_path, AUTOGRAD, edited, files=files, check=False)
    assert "Traceback" not in replayed.stderr
    if replayed.returncode == 3:  # gradients summed in a set's order, which follows memory addresses
        assert "last bits" in replayed.stderr and "--tolerance" in replayed.stderr
        replayed = flortrace(tmp_path, "replay", "--tolerance", "1e-9", "train.py")
    assert replayed.returncode == 0 and replayed.stdout == recorded.stdout
    assert len(logs(tmp_path, 1, "replay")) == 6
    shown = json.loads(flortrace(tmp_path, "show", "1", "--json").stdout)
    last = [d for d in shown["decisions"] if d["epoch"] == 5 and d["kind"] == "snapshot"]
    has_checkpoint = any(s["epoch"] == 5 and s["kind"] == "checkpoint" for s in shown["snapshots"])
    assert has_checkpoint == (last[-1]["action"] == "take")


# ---- 11. an unmodified script is checked too ---------------------------------------------------
def test_replay_of_an_unmodified_nondeterministic_script_names_the_state_that_differs(tmp_path):
    source = """\
        import os
        w = [0.0, 0.0]
        for epoch in range(5):
            for i in range(3):
                w[0] += 0.1
                w[1] += os.urandom(1)[0] * 1e-3
            print(epoch, round(w[0], 3))
        """
    _, out = record_edit_replay(tmp_path, source, textwrap.dedent(source), check=False)
    assert out.returncode == 3
    assert "at the end of epoch" in out.stderr and "w: recorded" in out.stderr


def test_timing_values_in_the_state_are_not_divergences(tmp_path):
    source = """\
        import time
        w = 0.0
        for epoch in range(4):
            t0 = time.time()
            for i in range(3):
                w += 0.5
            elapsed = time.time() - t0
            print(epoch, w)
        """
    edited = add_line(source, "print(epoch, w)", "import flortrace; flortrace.log('w', w)")
    recorded, replayed = record_edit_replay(tmp_path, source, edited)
    assert replayed.stdout == recorded.stdout
