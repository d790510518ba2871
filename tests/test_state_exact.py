"""End to end exactness: a run resumed in a new process from a capture matches the uninterrupted run exactly.

Each case is a small training script. `full` trains 4 epochs and writes the capture taken after epoch 1 (its
state plus `capture_rng()`, pickled as the writer does); `resume` rebuilds everything from scratch in a new
process, restores that capture and trains epochs 2 and 3. Losses and final parameters must be identical.
"""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DRIVER = """
import pickle, sys
from flortrace.state import capture, capture_rng, restore, restore_rng


def save(obj, path):
    buffers = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    with open(path, "wb") as f:
        pickle.dump((data, [bytes(b.raw()) for b in buffers]), f)


def load(path):
    with open(path, "rb") as f:
        data, buffers = pickle.load(f)
    return pickle.loads(data, buffers=buffers)


mode, capture_path, out_path = sys.argv[1:4]
objs = build()
losses = {}
if mode == "full":
    for e in range(4):
        losses[e] = epoch(objs, e)
        if e == 1:
            save((capture(state_of(objs)), capture_rng()), capture_path)
else:
    saved, rng = load(capture_path)
    live = state_of(objs)
    assert restore(live, saved) is live
    restore_rng(rng)
    check(objs)
    for e in (2, 3):
        losses[e] = epoch(objs, e)
with open(out_path, "wb") as f:
    pickle.dump({"losses": losses, "result": result(objs)}, f)
"""

TORCH = """
import torch


def step(model, opt, xb, yb):
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def build():
    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = (x[:, 0] + x[:, 1] > 0).long()
    data = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)  # shuffled by torch's global RNG
    gen = torch.Generator().manual_seed(1)
    extra = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True, generator=gen)  # by its own one
    model = torch.nn.Sequential(
        torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    return loader, extra, model, opt, sched


def state_of(objs):
    loader, extra, model, opt, sched = objs
    return {"model": model, "opt": opt, "sched": sched, "extra": extra}


def epoch(objs, e):
    loader, extra, model, opt, sched = objs
    model.train()
    losses = [step(model, opt, xb, yb) for xb, yb in loader]
    losses.append(step(model, opt, *next(iter(extra))))
    sched.step()
    model.eval()
    return losses


def check(objs):
    loader, extra, model, opt, sched = objs
    assert opt.param_groups[0]["params"][0] is model[0].weight
    assert sched.optimizer is opt and not model.training


def result(objs):
    loader, extra, model, opt, sched = objs
    params = {k: v.numpy().tobytes() for k, v in model.state_dict().items()}
    return params, opt.param_groups[0]["lr"]
"""

NUMPY = """
import numpy as np


class Model:
    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.w = self.rng.normal(size=5) * 0.1
        self.b = 0.0
        self.history = []

    def epoch(self, x, y, lr):
        losses = []
        for batch in self.rng.permutation(len(x)).reshape(-1, 16):
            xb, yb = x[batch], y[batch]
            p = 1 / (1 + np.exp(-(xb @ self.w + self.b)))
            self.w -= lr * (xb.T @ (p - yb) / len(batch) + self.rng.normal(scale=0.01, size=5))
            self.b -= lr * float(np.mean(p - yb))
            losses.append(float(-np.mean(yb * np.log(p) + (1 - yb) * np.log(1 - p))))
        self.history.append(np.mean(losses))
        return losses


def build():
    data = np.random.default_rng(42)
    x = data.normal(size=(128, 5))
    y = (x @ np.arange(5.0) > 0).astype(float)
    return Model(), x, y


def state_of(objs):
    return objs[0]


def epoch(objs, e):
    model, x, y = objs
    return model.epoch(x, y, 0.5 * 0.9**e)


def check(objs):
    assert len(objs[0].history) == 2


def result(objs):
    model = objs[0]
    return model.w.tobytes(), model.b, [float(h) for h in model.history]
"""

PYTHON = """
import random

random.seed(7)
params = [0.0, 0.0]
state = {"params": params, "noise": random.Random(3), "steps": 0}


def build():
    return state


def state_of(objs):
    return objs


def epoch(objs, e):
    losses = []
    for _ in range(50):
        x = random.uniform(-1, 1)
        y = 3 * x + 1 + objs["noise"].gauss(0, 0.1)
        err = params[0] * x + params[1] - y
        params[0] -= 0.05 * err * x
        params[1] -= 0.05 * err
        objs["steps"] += 1
        losses.append(err * err)
    return losses


def check(objs):
    assert objs["params"] is params and objs["steps"] == 100


def result(objs):
    return list(params), objs["steps"]
"""


def run(script: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def resumed_equals_uninterrupted(tmp_path: Path, body: str) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(body) + DRIVER)
    cap, full, resumed = tmp_path / "epoch1.cap", tmp_path / "full.pkl", tmp_path / "resumed.pkl"
    run(script, "full", str(cap), str(full))
    run(script, "resume", str(cap), str(resumed))
    full_out = pickle.loads(full.read_bytes())
    resumed_out = pickle.loads(resumed.read_bytes())
    assert full_out["losses"][2] != full_out["losses"][0]  # the state really moves between epochs
    assert resumed_out["losses"] == {e: full_out["losses"][e] for e in (2, 3)}
    assert resumed_out["result"] == full_out["result"]


def test_torch_mlp_adam_steplr_shuffled_loaders(tmp_path):
    pytest.importorskip("torch")
    resumed_equals_uninterrupted(tmp_path, TORCH)


def test_numpy_model_with_generator_attribute(tmp_path):
    pytest.importorskip("numpy")
    resumed_equals_uninterrupted(tmp_path, NUMPY)


def test_pure_python_with_random(tmp_path):
    resumed_equals_uninterrupted(tmp_path, PYTHON)
