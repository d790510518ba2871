"""How long `epoch N` takes in the replay console, next to re-running the script up to epoch N.

Records a pure-Python training script (small state, all compute) twice in a temp folder: once with a
generous overhead budget (a checkpoint after most epochs) and once with a tiny one (checkpoints only after
the first and the last epoch). Then it times, through a pseudo-terminal, the seconds from sending `epoch N`
to the next prompt in each, and a plain `python train.py N` (which runs epochs 0..N-1, i.e. up to the top
of epoch N). Needs pexpect.

    python benchmarks/console_latency.py [--epochs 12] [--epoch-seconds 0.2] [--target 9]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import harness
import pexpect

SCRIPT = textwrap.dedent(
    """\
    import random
    import sys

    random.seed(0)
    data = [(random.random(), random.random()) for _ in range(2000)]
    w = [0.0, 0.0]


    def train_epoch(w, data, lr):
        total = 0.0
        random.shuffle(data)
        for start in range(0, {passes} * len(data), 100):
            for x, y in data[start % len(data):start % len(data) + 100]:
                err = w[0] * x + w[1] - y
                w[0] -= lr * err * x
                w[1] -= lr * err
                total += err * err
        return total / len(data)


    lr = 0.1
    for epoch in range(int(sys.argv[1])):
        loss = train_epoch(w, data, lr)
        lr *= 0.99
    print("done", w)
    """
)
PROMPT = "(flortrace) "


def passes_for(seconds):
    """Passes over the data per epoch that make one epoch take about ``seconds`` on this machine."""
    probe = 10
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.py"
        path.write_text(SCRIPT.format(passes=probe))
        times = []
        for epochs in (1, 4):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(path), str(epochs)], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
    per_epoch = (times[1] - times[0]) / 3
    return max(1, round(probe * seconds / per_epoch))


def flortrace(folder, store, *args):
    """``python -m flortrace ARGS`` in ``folder`` against ``store``; its CompletedProcess (fails loudly)."""
    return harness.flortrace(*args, store=store, cwd=folder).proc


def checkpoints(folder, store):
    runs = json.loads(flortrace(folder, store, "runs", "--json").stdout)
    show = json.loads(flortrace(folder, store, "show", str(runs[0]["id"]), "--json").stdout)
    return sorted({s["epoch"] for s in show["snapshots"] if s["kind"] == "checkpoint"})


def console_seconds(folder, store, epochs, target):
    """(startup seconds to the first prompt, seconds from `epoch target` to the next prompt)."""
    env = dict(os.environ, FLORTRACE_STORE=str(store))
    t0 = time.perf_counter()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "flortrace", "console", "-q", "train.py", str(epochs)],
        cwd=str(folder),
        env=env,
        encoding="utf-8",
        timeout=600,
    )
    child.expect_exact(PROMPT)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    child.sendline(f"epoch {target}")
    child.expect_exact(f"top of epoch {target}")
    child.expect_exact(PROMPT)
    travel = time.perf_counter() - t0
    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    return startup, travel


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--epoch-seconds", type=float, default=0.2)
    p.add_argument("--target", type=int, default=9, help="the epoch to travel to")
    ns = p.parse_args()
    passes = passes_for(ns.epoch_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.py").write_text(SCRIPT.format(passes=passes))
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "train.py", str(ns.target)], cwd=folder, check=True, capture_output=True
        )
        rerun = time.perf_counter() - t0
        print(
            f"{ns.epochs} epochs of ~{ns.epoch_seconds}s ({passes} passes over 2000 rows), "
            f"travelling to epoch {ns.target}"
        )
        print(f"  re-run `python train.py {ns.target}` (epochs 0..{ns.target - 1}):  {rerun:7.3f}s")
        for label, overhead in (("dense", "5"), ("sparse", "0.0001")):
            store = folder / f".store-{label}"
            flortrace(folder, store, "-q", "--overhead", overhead, "train.py", str(ns.epochs))
            have = checkpoints(folder, store)
            nearest = max((c for c in have if c <= ns.target - 1), default=None)
            startup, travel = console_seconds(folder, store, ns.epochs, ns.target)
            where = "none before it" if nearest is None else f"after epoch {nearest}"
            print(f"  console, {label} checkpoints {have}: nearest {where}")
            print(f"    startup to the first prompt: {startup:7.3f}s")
            print(
                f"    `epoch {ns.target}` to the prompt:    {travel:7.3f}s  "
                f"(re-run / travel = {rerun / travel:.1f}x, re-run / (startup + travel) = "
                f"{rerun / (startup + travel):.1f}x)"
            )


if __name__ == "__main__":
    main()
