"""Training loops in installed code, through the real CLI: a trainer class in the user's own package
installed with ``pip install -e`` and run from a subfolder, and a package named with ``--include``.

As in test_epoch_loops.py: the epoch count, exact replay of an epoch-level and a step-level statement (added
to the installed package's file) against a fresh run of the edited code, the console stopping at
`epoch 3`, and `--workers 2` using two workers.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_importer import editable_install, site_env

torch = pytest.importorskip("torch")

TRAINER = """\
import time

import torch


class Trainer:
    def __init__(self, model, X, Y, epochs, pause=0.0):
        self.model, self.X, self.Y, self.epochs, self.pause = model, X, Y, epochs, pause
        self.opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def run(self):
        for epoch in range(self.epochs):
            for i in range(0, len(self.X), 8):
                loss = ((self.model(self.X[i:i + 8]) - self.Y[i:i + 8]) ** 2).mean()
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
            time.sleep(self.pause)
            print(epoch, round(loss.item(), 6))
"""

SCRIPT = """\
import sys

import torch
from minitrain.trainer import Trainer

torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
X, Y = torch.randn(64, 4), torch.randn(64, 1)
Trainer(model, X, Y, epochs=6, pause=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0).run()
with torch.no_grad():
    for split in range(3):  # evaluation after training: no epoch loop
        total = 0.0
        for i in range(0, 64, 16):
            total += ((model(X[i:i + 16]) - Y[i:i + 16]) ** 2).sum().item()
        print("eval", split, round(total, 6))
"""


@pytest.fixture
def project(tmp_path):
    """A project with package ``minitrain`` installed in editable mode (a flat layout: setuptools'
    __editable__ finder) and its script in ``scripts/``; returns (scripts folder, trainer file, env)."""
    root = tmp_path / "proj"
    (root / "minitrain").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "minitrain"\nversion = "0.1"\n')
    (root / "minitrain" / "__init__.py").write_text("")
    (root / "minitrain" / "trainer.py").write_text(TRAINER)
    (root / "scripts" / "train.py").write_text(SCRIPT)
    editable_install(tmp_path / "site", root, "minitrain")
    return root / "scripts", root / "minitrain" / "trainer.py", site_env(tmp_path, tmp_path / "site")


def cli(cwd, env, store, *args, stdin=None):
    out = subprocess.run(
        [sys.executable, "-m", "flortrace", *args],
        cwd=cwd,
        env=dict(env, FLORTRACE_STORE=str(store)),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out


def values(cwd, env, store, origin):
    out = cli(cwd, env, store, "logs", "--run", "1", "--origin", origin, "--format", "json")
    return [(r["name"], r["epoch"], r["step"], r["value"]) for r in json.loads(out.stdout)]


def with_line(path, anchor, line, after=False):
    lines = path.read_text().splitlines()
    i = next(i for i, text in enumerate(lines) if anchor in text)
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i + 1 if after else i, indent + line)
    path.write_text("\n".join(lines) + "\n")


def test_the_trainer_of_an_editable_install_has_the_epochs(project, tmp_path):
    scripts, _, env = project
    out = cli(scripts, env, tmp_path / "store", "--overhead", "9", "train.py")
    assert "recorded run 1: 6 epochs" in out.stderr
    shown = cli(scripts, env, tmp_path / "store", "show", "1").stdout
    assert "trainer.py" in shown and "training loop" in shown


@pytest.mark.parametrize(
    "level, anchor, probe, after",
    [("epoch", "time.sleep", "loss.item()", False), ("step", "self.opt.step()", "loss.item()", True)],
)
def test_a_statement_added_to_the_installed_package_replays_exactly(
    project, tmp_path, level, anchor, probe, after
):
    scripts, trainer, env = project
    cli(scripts, env, tmp_path / "store", "--overhead", "9", "train.py")
    with_line(trainer, anchor, f"__import__('flortrace').log('probe', {probe})", after)
    if level == "step":  # the edit in the package's file is seen: its batch loop re-executes
        assert "probes" in cli(scripts, env, tmp_path / "store", "replay", "--plan", "train.py").stdout
    cli(scripts, env, tmp_path / "store", "replay", "-q", "--epochs", "2:4", "train.py")
    cli(scripts, env, tmp_path / "fresh", "-q", "train.py")
    replayed = values(scripts, env, tmp_path / "store", "replay")
    assert replayed and replayed == [
        r for r in values(scripts, env, tmp_path / "fresh", "record") if r[1] in (2, 3)
    ]


def test_the_console_stops_at_epoch_3_in_the_package(project, tmp_path):
    scripts, _, env = project
    cli(scripts, env, tmp_path / "store", "--overhead", "9", "train.py")
    out = cli(
        scripts, env, tmp_path / "store", "console", "train.py", stdin="epoch 3\np epoch\np self.epochs\nq\n"
    )
    assert "top of epoch 3" in out.stdout
    after = out.stdout.split("top of epoch 3", 1)[1].replace("(flortrace) ", "\n")
    assert "\n3\n" in after and "\n6\n" in after


def test_two_workers_replay_the_package(project, tmp_path):
    scripts, trainer, env = project
    cli(scripts, env, tmp_path / "store", "--overhead", "9", "train.py", "0.3")
    with_line(trainer, "time.sleep", "__import__('flortrace').log('seen', 1)")
    out = cli(scripts, env, tmp_path / "store", "replay", "--workers", "2", "train.py")
    assert "in 2 worker(s)" in out.stderr
    assert [e for _, e, _, _ in values(scripts, env, tmp_path / "store", "replay")] == list(range(6))


def test_an_included_package_is_instrumented(tmp_path):
    """``--include NAME`` instruments a package that is neither the project's nor an editable install (here
    one on PYTHONPATH, outside the project), and replay instruments it again from the recording."""
    lib = tmp_path / "lib" / "looplib"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "trainer.py").write_text(TRAINER)
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(SCRIPT.replace("minitrain", "looplib"))
    env = site_env(tmp_path, tmp_path / "nosite")
    env["PYTHONPATH"] += f":{tmp_path / 'lib'}"
    plain = cli(work, env, tmp_path / "plain", "train.py")
    assert "recorded run 1: no epoch loop" in plain.stderr  # only the evaluation loop is seen
    out = cli(work, env, tmp_path / "store", "--include", "looplib", "train.py")
    assert "recorded run 1: 6 epochs" in out.stderr
    with_line(lib / "trainer.py", "time.sleep", "__import__('flortrace').log('probe', loss.item())")
    cli(work, env, tmp_path / "store", "replay", "-q", "--epochs", "4", "train.py")
    assert [e for _, e, _, _ in values(work, env, tmp_path / "store", "replay")] == [4]
