"""Replay stays out of the user's world: the script's TensorBoard writer, W&B and MLflow runs and the files
it saves are sent into the replay's own folder, with the real libraries; the recorded run's files stay
byte for byte, the replay's exit code and fidelity check are those of any replay."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FILES = textwrap.dedent(
    """\
    import json
    import os
    import shutil
    import sys

    import flortrace

    sys.stderr.write(f"replaying={flortrace.replaying()}\\n")
    os.makedirs("out", exist_ok=True)
    if os.path.exists("out/stale"):
        shutil.rmtree("out/stale")
    w = 0.0
    for epoch in range(4):
        for i in range(5):
            w += 0.01 * i
        with open("out/log.csv", "a") as f:
            f.write(f"{epoch},{w}\\n")
        with open("out/tmp.json", "w") as f:
            json.dump({"w": w, "epoch": epoch}, f)
        os.replace("out/tmp.json", "out/last.json")
        with open("out/last.json") as f:
            print(epoch, json.load(f)["w"])
    """
)

TORCH = textwrap.dedent(
    """\
    import sys

    import torch
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X = torch.randn(64, 4)
    y = X.sum(1, keepdim=True)
    writer = SummaryWriter(sys.argv[1])
    step = 0
    for epoch in range(4):
        for i in range(0, 64, 16):
            loss = ((model(X[i : i + 16]) - y[i : i + 16]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            writer.add_scalar("train/loss", loss.item(), step)
            step += 1
        torch.save(model.state_dict(), "ckpt.pt")
    writer.close()
    """
)

WANDB = textwrap.dedent(
    """\
    import os

    import wandb

    run = wandb.init(project="flortrace-test", mode="offline", dir=os.path.join(os.getcwd(), "wb"))
    w = 0.0
    for epoch in range(3):
        for i in range(4):
            w += 0.1 * i
        wandb.log({"w": w}, step=epoch)
    run.finish()
    """
)

MLFLOW = textwrap.dedent(
    """\
    import mlflow

    mlflow.set_experiment("script")
    with mlflow.start_run(run_name="the script's run"):
        mlflow.log_param("lr", 0.1)
        w = 0.0
        for epoch in range(3):
            for i in range(4):
                w += 0.1 * i
            mlflow.log_metric("w", w, step=epoch)
    """
)


def cli(folder, *args, **env):
    return subprocess.run(
        [sys.executable, "-m", "flortrace", *args],
        cwd=folder,
        env=dict(os.environ, FLORTRACE_STORE=str(folder / ".store"), PYTHONHASHSEED="0", **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def world(*folders):
    """{path: digest} of every file under ``folders``, the store and the (edited) script left out."""
    out = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and ".store" not in path.parts and path.name != "train.py":
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def record(folder, source, *argv, **env):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(source)
    recorded = cli(folder, "-q", "train.py", *argv, **env)
    assert recorded.returncode == 0, recorded.stderr
    return recorded


def replay(folder, source, **env):
    """Add a hindsight line to the epoch loop of ``source`` and replay it."""
    lines = source.splitlines()
    i = next(i for i, line in enumerate(lines) if line.lstrip().startswith("for epoch in"))
    indent = " " * (len(lines[i]) - len(lines[i].lstrip()) + 4)
    lines.insert(i + 1, f"{indent}flortrace.log('seen', epoch)")
    (folder / "train.py").write_text("import flortrace\n" + "\n".join(lines) + "\n")
    return cli(folder, "replay", "train.py", **env)


def replay_folder(folder):
    return folder / ".store" / "replays" / "run-1"


def test_files_the_script_writes_stay_the_recordings(tmp_path):
    folder = tmp_path / "proj"
    recorded = record(folder, FILES)
    assert "replaying=False" in recorded.stderr
    (folder / "out" / "stale").mkdir()
    (folder / "out" / "stale" / "keep.txt").write_text("the script removes this folder when it starts")
    before = world(folder)
    replayed = replay(folder, FILES)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout  # it read back what it wrote, as when recording
    assert "replaying=True" in replayed.stderr and "diverged" not in replayed.stderr
    assert world(folder) == before  # out/log.csv, out/last.json, out/stale: the user's, byte for byte
    files = replay_folder(folder) / "files"
    assert (files / "out" / "last.json").read_text() == (folder / "out" / "last.json").read_text()
    log = (files / "out" / "log.csv").read_text().splitlines()
    assert log[:4] == (folder / "out" / "log.csv").read_text().splitlines() and len(log) == 8
    said = [line for line in replayed.stderr.splitlines() if "files the script writes go into" in line]
    assert len(said) == 1 and said[0].endswith("(first: out/log.csv)")
    again = cli(folder, "replay", "-q", "train.py")  # the replay's folder starts empty every time
    assert again.returncode == 0 and len((files / "out" / "log.csv").read_text().splitlines()) == 8
    assert "flortrace" not in again.stderr
    assert cli(folder, "rm", "1").returncode == 0 and not replay_folder(folder).exists()


def test_isolate_off_writes_as_the_script_does(tmp_path):
    folder = tmp_path / "proj"
    record(folder, FILES)
    before = world(folder)
    replayed = replay(folder, FILES, FLORTRACE_ISOLATE="0")
    assert replayed.returncode == 0, replayed.stderr
    assert len((folder / "out" / "log.csv").read_text().splitlines()) == 8
    assert world(folder) != before and not replay_folder(folder).joinpath("files").exists()


def test_tensorboard_writer_and_torch_save(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder, logdir = tmp_path / "proj", tmp_path / "tb" / "exp"  # a logdir outside the project
    record(folder, TORCH, str(logdir))
    before = world(folder, logdir)
    replayed = replay(folder, TORCH)
    assert replayed.returncode == 0, replayed.stderr
    assert "diverged" not in replayed.stderr
    assert world(folder, logdir) == before  # ckpt.pt and the event file: the recording's
    assert len(list(logdir.iterdir())) == 1  # no second event file in the user's logdir
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(16))
    moved = replay_folder(folder) / "tensorboard" / "_abs" / str(logdir).lstrip("/")
    assert len(list(moved.glob("events.out.tfevents.*"))) == 1
    assert (replay_folder(folder) / "files" / "ckpt.pt").exists()
    assert replayed.stderr.count(f"TensorBoard writer for {logdir} writes into") == 1


def test_wandb_creates_no_run(tmp_path):
    pytest.importorskip("wandb")
    folder = tmp_path / "proj"
    env = dict(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(tmp_path / "wandb-home"))
    record(folder, WANDB, **env)
    before = world(folder)
    replayed = replay(folder, WANDB, **env)
    assert replayed.returncode == 0, replayed.stderr
    assert len(list((folder / "wb" / "wandb").glob("offline-run-*"))) == 1 and world(folder) == before
    assert replayed.stderr.count("wandb.init runs disabled: no W&B run is created or changed") == 1


def test_mlflow_logs_into_the_replays_folder(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for the client here: the script uses a file store
    from mlflow.tracking import MlflowClient

    folder, tracking = tmp_path / "proj", (tmp_path / "tracking").as_uri()  # a store outside the project
    env = dict(MLFLOW_TRACKING_URI=tracking, MLFLOW_ALLOW_FILE_STORE="true")
    record(folder, MLFLOW, **env)
    before = world(folder, tmp_path / "tracking")
    replayed = replay(folder, MLFLOW, **env)
    assert replayed.returncode == 0, replayed.stderr
    assert world(folder, tmp_path / "tracking") == before
    client = MlflowClient(tracking)
    (run,) = client.search_runs([client.get_experiment_by_name("script").experiment_id])
    assert [m.value for m in client.get_metric_history(run.info.run_id, "w")] == pytest.approx(
        [0.6, 1.2, 1.8]
    )
    ours = (replay_folder(folder) / "mlflow").as_uri()
    assert replayed.stderr.count(f"MLflow logs into {ours}, not into {tracking}") == 1
    replay_client = MlflowClient(ours)
    (copy,) = replay_client.search_runs([replay_client.get_experiment_by_name("script").experiment_id])
    assert copy.info.run_name == "the script's run"
