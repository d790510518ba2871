"""The epoch loops of PyTorch Lightning (``Trainer.fit``) and Hugging Face ``Trainer.train``, through the real
CLI on tiny models built in the test (no downloads).

As in test_epoch_loops.py: the trainer's epoch count, exact replay of an epoch-level and a step-level
statement against a fresh run of the edited script, the console stopping at `epoch 3`, and `--workers 2`
using two workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from clirun import flortrace, logs
from test_epoch_loops import with_line

LIGHTNING = """\
    import sys
    import time

    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    PAUSE = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0


    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def on_train_epoch_end(self):
            time.sleep(PAUSE)
            print("epoch", self.current_epoch, round(self.net.weight.sum().item(), 6))

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)]


    L.seed_everything(0, verbose=False)
    X, Y = torch.randn(64, 4), torch.randn(64, 1)
    train = DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(X[:16], Y[:16]), batch_size=8)
    trainer = L.Trainer(
        max_epochs=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(Tiny(), train, val)
    """

HF = """\
    import sys
    import time

    import torch
    from transformers import PretrainedConfig, PreTrainedModel, Trainer, TrainerCallback, TrainingArguments

    PAUSE = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0


    class TinyConfig(PretrainedConfig):
        model_type = "tiny"

        def __init__(self, width=4, **kwargs):
            super().__init__(**kwargs)
            self.width = width


    class Tiny(PreTrainedModel):
        config_class = TinyConfig

        def __init__(self, config):
            super().__init__(config)
            self.net = torch.nn.Linear(config.width, 1)

        def forward(self, x, labels=None):
            out = self.net(x)
            loss = torch.nn.functional.mse_loss(out, labels)
            return {"loss": loss, "logits": out}


    class Report(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            time.sleep(PAUSE)
            print("epoch", round(state.epoch), round(model.net.weight.sum().item(), 6))


    torch.manual_seed(0)
    X, Y = torch.randn(64, 4), torch.randn(64, 1)
    data = [{"x": X[i], "labels": Y[i]} for i in range(64)]
    args = TrainingArguments(
        output_dir="out",
        num_train_epochs=6,
        per_device_train_batch_size=16,
        learning_rate=0.1,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    Trainer(model=Tiny(TinyConfig()), args=args, train_dataset=data, callbacks=[Report()]).train()
    """

SHAPES = {  # package, source, epochs, epoch-level anchor, its probe, step-level anchor (after it), its probe,
    # what the console prints as 3 at the top of epoch 3 (in the framework's epoch loop)
    "lightning": (
        "lightning",
        LIGHTNING,
        6,
        'print("epoch"',
        "self.net.weight.sum().item()",
        "loss = torch.nn.functional.mse_loss(self.net(x), y)",
        "loss.item()",
        "self.trainer.current_epoch",
    ),
    "hf": (
        "transformers",
        HF,
        6,
        'print("epoch"',
        "model.net.weight.sum().item()",
        "loss = torch.nn.functional.mse_loss(out, labels)",
        "loss.item()",
        "epoch",
    ),
}


@pytest.fixture(params=sorted(SHAPES))
def shape(request):
    pytest.importorskip(SHAPES[request.param][0])
    return request.param


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("WANDB_DISABLED", "true")


def recorded(tmp_path, source, *args):
    (tmp_path / "train.py").write_text(textwrap.dedent(source))
    out = flortrace(tmp_path, "--overhead", "9", "train.py", *args)
    (run,) = json.loads(flortrace(tmp_path, "runs", "--json").stdout)
    return out, run


def test_the_epoch_count_is_the_trainers(tmp_path, shape):
    _, source, epochs, *_ = SHAPES[shape]
    out, run = recorded(tmp_path, source)
    assert run["epochs"] == epochs
    assert f"recorded run 1: {epochs} epochs" in out.stderr
    assert "cannot snapshot" not in out.stderr
    assert "training loop" in flortrace(tmp_path, "show", "1").stdout


@pytest.mark.parametrize("level", ["epoch", "step"])
def test_hindsight_values_are_exact(tmp_path, shape, level):
    _, source, _, epoch_anchor, epoch_probe, step_anchor, step_probe, _ = SHAPES[shape]
    recorded(tmp_path, source)
    anchor, probe, after = (
        (epoch_anchor, epoch_probe, False) if level == "epoch" else (step_anchor, step_probe, True)
    )
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
    _, source, *_, expr = SHAPES[shape]
    recorded(tmp_path, source)
    env = dict(os.environ, FLORTRACE_STORE=str(tmp_path / ".store"), PYTHONHASHSEED="0")
    out = subprocess.run(
        [sys.executable, "-m", "flortrace", "console", "train.py"],
        input=f"epoch 3\np {expr}\nq\n",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "top of epoch 3" in out.stdout
    after = out.stdout.split("top of epoch 3", 1)[1]
    assert "\n3\n" in after.replace("(flortrace) ", "\n")


def test_two_workers_are_used(tmp_path, shape):
    _, source, epochs, epoch_anchor, *_ = SHAPES[shape]
    recorded(tmp_path, source, "0.3")  # epochs long enough for the writer to keep up: checkpoints to split at
    edited = with_line(source, epoch_anchor, "__import__('flortrace').log('seen', 1)")
    (tmp_path / "train.py").write_text(edited)
    out = flortrace(tmp_path, "replay", "--workers", "2", "train.py")
    assert "in 2 worker(s)" in out.stderr
    assert [e for _, e, _, _ in logs(tmp_path, 1, "replay")] == list(range(epochs))
