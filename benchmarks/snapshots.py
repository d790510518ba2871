"""What the default budget buys: snapshots per run, what recording costs, and how fast replay then is.

Three torch workloads of 12 epochs, each recorded at the default budget: digits_cnn (small batches, so an
epoch trains for about half a second), char_lm (80 steps an epoch) and mlp_train.py (a torch MLP with
half-second epochs and 1.3 MB of state, the case of issue 12). For each, ``python script`` and
``python -m flortrace -q script`` run interleaved (each in each position in turn), medians of wall time
compared; every recorded run's snapshots are counted: epochs with a memo of every block, checkpoints and
the longest stretch of epochs without one. The last recording is then replayed twice: with an
epoch-level statement over all epochs, and with a batch-level statement over epochs 4:8 (4 of 12); each
replay's wall time is divided by the wall time of that recording. What no replay can skip, Python's
start-up and the script's imports and set-up (torch's first optimizer imports torch._dynamo: seconds),
is measured as a plain one-epoch run less one epoch, and the ratio is also shown net of it.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from harness import Row, emit, flortrace, fmt_overhead, fmt_seconds, has_module, median
from harness import parser as base_parser
from harness import run as run_command
from variants import hindsight

from flortrace.store import Store

# name, arguments, quick arguments
WORKLOADS = [
    ("digits_cnn", ["--epochs", "12", "--batch-size", "8"], ["--quick", "--epochs", "12"]),
    ("char_lm", ["--epochs", "12", "--steps", "80"], ["--quick", "--epochs", "12"]),
    ("mlp_train", ["--epochs", "12"], ["--epochs", "12", "--steps", "20"]),
]
SPAN = "4:8"


def counts(store: Path) -> list[dict]:
    """Per recorded run: epochs, epochs with a memo of every block, checkpoints, the longest gap between."""
    out = []
    with Store.open_existing(store) as opened:
        catalog = opened.catalog
        for run in catalog.runs():
            epochs = [e["epoch"] for e in catalog.epochs(run["id"])]
            snaps = catalog.snapshots(run["id"])
            memos = {(s["epoch"], s["loop_id"], s["seq"]) for s in snaps if s["kind"] == "memo"}
            blocks: dict[int, set] = {}
            for b in catalog.blocks(run["id"]):
                blocks.setdefault(b["epoch"], set()).add((b["epoch"], b["loop_id"], b["seq"]))
            checkpoints = sorted(s["epoch"] for s in snaps if s["kind"] == "checkpoint")
            marks = [-1, *checkpoints]
            out.append(
                dict(
                    epochs=len(epochs),
                    memoized=sum(1 for e in epochs if e in blocks and blocks[e] <= memos),
                    checkpoints=len(checkpoints),
                    gap=max(b - a - 1 for a, b in zip(marks, marks[1:] + [len(epochs)], strict=True)),
                )
            )
    return out


def span(values) -> str:
    values = list(values)
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def spread(mode: str, wall: dict) -> str:
    times = wall[mode]
    return f"{mode} {fmt_seconds(median(times))} ({fmt_seconds(min(times))} to {fmt_seconds(max(times))})"


def measure(name: str, args: list[str], repeats: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix=f"flortrace-bench-snap-{name}-") as tmp:
        work = Path(tmp)
        script = work / "train.py"
        hindsight(name, script, None)
        store = work / "store"
        py = sys.executable
        one = list(args)
        one[one.index("--epochs") + 1] = "1"
        modes = {
            "plain": lambda: run_command([py, script.name, *args], work),
            "flortrace": lambda: flortrace("-q", script.name, *args, store=store, cwd=work),
            "one epoch": lambda: run_command([py, script.name, *one], work),
        }
        wall = {mode: [] for mode in modes}
        names = list(modes)
        for r in range(repeats):
            for mode in names[r % len(names) :] + names[: r % len(names)]:
                wall[mode].append(modes[mode]().wall)
        recorded = counts(store)
        record_wall = wall["flortrace"][-1]  # the run replayed is the latest one recorded
        replays = []
        for level, options in (("epoch", []), ("batch", ["--epochs", SPAN])):
            logged = hindsight(name, script, level)
            began = time.time()
            timed = flortrace("replay", *options, script.name, *args, store=store, cwd=work)
            rows = json.loads(
                flortrace("logs", "--name", logged, "--format", "json", store=store, cwd=work).proc.stdout
            )
            values = [r for r in rows if r["origin"] == "replay" and r["ts"] >= began]
            if not values:
                raise RuntimeError(
                    f"{name}: the {level}-level replay logged nothing:\n{timed.proc.stderr[-2000:]}"
                )
            replays.append((level, timed.wall, _summary(timed.proc.stderr)))
    label = f"{name} {' '.join(args)}"
    plain, ours = median(wall["plain"]), median(wall["flortrace"])
    # What no replay can skip: Python, the script's imports and set-up (one epoch's run less one epoch).
    floor = median(wall["one epoch"]) - (plain - median(wall["one epoch"])) / 11
    rows = [
        Row(
            "snapshots",
            f"{label}: snapshots per run at the default budget ({repeats} runs), epochs",
            f"memos in {span(c['memoized'] for c in recorded)} of {span(c['epochs'] for c in recorded)}",
            f"checkpoints {span(c['checkpoints'] for c in recorded)}, "
            f"longest run of epochs without one {span(c['gap'] for c in recorded)}",
        ),
        Row(
            "snapshots",
            f"{name}: record overhead, wall, median of {repeats}",
            f"flortrace {fmt_overhead(ours / plain)}",
            f"{spread('plain', wall)}, {spread('flortrace', wall)}; start-up included",
        ),
    ]
    for level, seconds, summary in replays:
        what = (
            "epoch-level statement, all epochs"
            if level == "epoch"
            else f"batch-level statement, --epochs {SPAN}"
        )
        net = (seconds - floor) / (record_wall - floor)
        rows.append(
            Row(
                "snapshots",
                f"{name}: replay / record, {what}",
                f"{seconds / record_wall:.2f}x ({fmt_seconds(seconds)} / {fmt_seconds(record_wall)})",
                f"{net:.2f}x beyond the script's start-up and set-up ({fmt_seconds(floor)}); {summary}",
            )
        )
    return rows


def _summary(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("flortrace: replayed run"):
            return line.split(":", 2)[-1].strip()
    return "(no replay summary printed)"


def main(argv=None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, help="recordings of each workload (default 3, 2 with --quick)")
    p.add_argument("--only", action="append", help="run only this workload (repeatable)")
    ns = p.parse_args(argv)
    if not has_module("torch"):
        emit([Row("snapshots", "skipped", "needs torch")], ns.json)
        return
    rows = []
    for name, full, quick in WORKLOADS:
        if ns.only and name not in ns.only:
            continue
        if name == "digits_cnn" and not has_module("sklearn"):
            rows.append(Row("snapshots", f"{name}: skipped", "needs scikit-learn"))
            continue
        rows.extend(measure(name, quick if ns.quick else full, ns.repeats or (2 if ns.quick else 3)))
    emit(rows, ns.json)


if __name__ == "__main__":
    main()
