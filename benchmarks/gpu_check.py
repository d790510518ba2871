"""GPU check (for a session with a CUDA machine): record and replay a CUDA training script end to end,
and time the training-thread stall of a checkpoint of CUDA state next to a plain device->host copy and a
synchronous torch.save.

    python benchmarks/gpu_check.py            # prints a table; exit code 1 if replay is not exact

It exercises what only a GPU shows: device->host staging of parameters and optimizer state, restoring them
to their device in place, the CUDA RNG, and DataLoader workers forked after CUDA was initialised (the
writer process is started with subprocess, never forked from a CUDA process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent(
    """\
    import sys
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    dev = "cuda"
    X = torch.randn(4096, 256)
    y = (X[:, 0] > 0).long()
    loader = DataLoader(TensorDataset(X, y), batch_size=128, shuffle=True, num_workers=2)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                torch.nn.Linear(512, 2)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)


    def train_epoch():
        model.train()
        total = 0.0
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
        return total


    for epoch in range(int(sys.argv[1])):
        print(epoch, round(train_epoch(), 6))
    """
)


def flortrace(cwd, *args):
    env = dict(os.environ, FLORTRACE_STORE=str(Path(cwd) / ".store"), CUBLAS_WORKSPACE_CONFIG=":4096:8")
    cmd = [sys.executable, "-m", "flortrace", *args]
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"flortrace {' '.join(args)} failed:\n{out.stderr}")
    return out


def replay_check():
    edited = SCRIPT.replace(
        "            total += loss.item()\n",
        "            total += loss.item()\n            flortrace.log('loss', loss.item())\n",
    ).replace("import sys\n", "import sys\nimport flortrace\n", 1)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "train.py").write_text(SCRIPT)
        t0 = time.perf_counter()
        flortrace(tmp, "-q", "train.py", "6")
        record_s = time.perf_counter() - t0
        (Path(tmp) / "train.py").write_text(edited)
        t0 = time.perf_counter()
        flortrace(tmp, "replay", "-q", "--epochs", "3:6", "train.py", "6")
        replay_s = time.perf_counter() - t0
        got = json.loads(flortrace(tmp, "logs", "--origin", "replay", "--format", "json").stdout)
        fresh = Path(tmp) / "fresh"
        fresh.mkdir()
        (fresh / "train.py").write_text(edited)
        flortrace(fresh, "-q", "train.py", "6")
        want = [r for r in json.loads(flortrace(fresh, "logs", "--format", "json").stdout) if r["epoch"] >= 3]
    key = lambda rows: [(r["epoch"], r["step"], r["value"]) for r in rows]  # noqa: E731
    same = key(got) == key(want)
    return same, record_s, replay_s, len(want)


def stall_check(megabytes=200):
    import torch

    from flortrace.runtime import changeset
    from flortrace.store import Store
    from flortrace.store.writer import SnapshotWriter

    n = megabytes * 2**20 // 4 // 2048
    model = torch.nn.Linear(2048, n, bias=False).cuda()
    nbytes = model.weight.numel() * 4
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.weight.detach().cpu()
    memcpy = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        run = store.catalog.begin_run("gpu_check", [], tmp, {}, {}, None, None)
        writer = SnapshotWriter(tmp, run)
        writer.start()
        t0 = time.perf_counter()
        payload, problems = changeset.capture({("main", "local", "model"): model}, alloc=writer.alloc)
        writer.submit_many(
            [dict(payload=payload, kind="checkpoint", loop_id=None, seq=None, stall=0.0)],
            epoch=0,
            reason="gpu check",
        )
        stall = time.perf_counter() - t0
        writer.close()
        t0 = time.perf_counter()
        torch.save(model.state_dict(), Path(tmp) / "model.pt")
        save = time.perf_counter() - t0
        store.catalog.end_run(run, "finished", 0)
        store.close()
    gb = nbytes / 1e9
    return dict(stall=gb / stall, memcpy=gb / memcpy, torch_save=gb / save, problems=problems)


def main():
    try:
        import torch
    except ImportError:
        raise SystemExit("gpu_check needs torch") from None
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check needs a CUDA device")
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    same, record_s, replay_s, rows = replay_check()
    print(
        f"replay of a batch-level statement, epochs 3-5 of 6: exact={same} ({rows} values), "
        f"replay/record time = {replay_s / record_s:.2f}"
    )
    s = stall_check()
    print(
        f"checkpoint stall: {s['stall']:.2f} GB/s   device->host copy: {s['memcpy']:.2f} GB/s   "
        f"torch.save: {s['torch_save']:.2f} GB/s   problems: {s['problems'] or 'none'}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
