"""Replay time against record time for hindsight statements, and the speed-up of parallel replay.

Each workload is recorded once at the default budget; then the script gets a hindsight statement and is
replayed. pure_python (no imports to speak of, one thread) gets an epoch-level statement over all epochs
and a batch-level one over all epochs with ``--workers 1`` and ``--workers 2``. char_lm
(torch; 30 epochs of 80 steps, so training, not imports, dominates) gets an epoch-level statement over all
epochs, a batch-level one (each step's loss) over a range of epochs, and the batch-level one over all
epochs with ``--workers 1`` and ``--workers 2`` (torch already keeps both cores of a 2-core machine
busy, so two workers can gain little there). digits_cnn, whose short run is dominated by importing torch
and scikit-learn, gets the epoch- and batch-level statements too, to show where the floor is. Each replay
must log its values and pass the fidelity check.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from harness import Row, emit, flortrace, fmt_seconds, has_module, parser
from variants import hindsight


def summary(stderr: str) -> str:
    """The replay's own one-line account, after 'replayed run N:' ('ran 10 epoch(s), ...')."""
    for line in stderr.splitlines():
        if line.startswith("flortrace: replayed run"):
            return line.split(":", 2)[-1].strip()
    return "(no replay summary printed)"


class Bench:
    """One example in a temp folder as train.py, recorded once, then edited and replayed."""

    def __init__(self, example: str, work: Path, args: list[str]):
        self.example, self.work, self.args, self.store = example, work, args, work / "store"
        self.script = work / "train.py"

    def record(self, *options: str) -> float:
        hindsight(self.example, self.script, None)
        return flortrace(*options, "-q", self.script.name, *self.args, store=self.store, cwd=self.work).wall

    def replay(self, level: str, *options: str) -> tuple[float, str, int]:
        """(seconds, replay summary, values logged) of one replay of the edited script."""
        name = hindsight(self.example, self.script, level)
        command = ["replay", *options, self.script.name, *self.args]
        started = time.time()
        replay = flortrace(*command, store=self.store, cwd=self.work)
        logs = flortrace("logs", "--name", name, "--format", "json", store=self.store, cwd=self.work)
        rows = json.loads(logs.proc.stdout)
        values = [r for r in rows if r["origin"] == "replay" and r["ts"] >= started]  # this replay's only
        if not values:
            detail = replay.proc.stderr[-2000:]
            raise RuntimeError(f"replay {' '.join(options)} logged no {name} values:\n{detail}")
        return replay.wall, summary(replay.proc.stderr), len(values)


def measure(example: str, args: list[str], replays: list[tuple[str, str, list[str]]], record=()):
    """Record ``example`` once (with ``record`` options), then time each (label, level, options) replay.

    Returns (rows, replay seconds)."""
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-replay-") as tmp:
        bench = Bench(example, Path(tmp), args)
        recorded = bench.record(*record)
        results = [bench.replay(level, *options) for _, level, options in replays]
    label = " ".join([example, *args])
    how = " ".join(["python -m flortrace", *record])
    rows = [Row("replay", f"{label}: record", fmt_seconds(recorded), f"{how}, one run")]
    for (what, _, _), (seconds, how, values) in zip(replays, results, strict=True):
        ratio = f"{seconds / recorded:.2f}x record ({fmt_seconds(seconds)})"
        rows.append(Row("replay", f"{example}: {what}", ratio, f"{values} values; {how}"))
    return rows, [seconds for seconds, _, _ in results]


def speedup_row(example: str, seconds: list[float]) -> Row:
    """The speed-up of the second of two timed replays (``--workers 2``) over the first (``--workers 1``)."""
    speedup = f"{seconds[0] / seconds[1]:.2f}x"
    return Row("replay", f"{example}: speed-up of --workers 2 over --workers 1", speedup)


def main(argv=None):
    ns = parser(__doc__.splitlines()[0]).parse_args(argv)
    epochs = ["--epochs", "4" if ns.quick else "30"]
    quick = ["--quick"] if ns.quick else []
    span = "1:3" if ns.quick else "2:5"
    rows, seconds = measure(
        "pure_python",
        [*quick, *epochs],
        [
            ("epoch-level statement, all epochs", "epoch", []),
            ("batch-level statement, all epochs, --workers 1", "batch", ["--workers", "1"]),
            ("batch-level statement, all epochs, --workers 2", "batch", ["--workers", "2"]),
        ],
    )
    rows.append(speedup_row("pure_python", seconds[1:]))
    if not has_module("torch"):
        rows.append(Row("replay", "char_lm and digits_cnn skipped", "need torch"))
        emit(rows, ns.json)
        return
    steps = [] if ns.quick else ["--steps", "80"]
    char_lm, seconds = measure(
        "char_lm",
        [*quick, *epochs, *steps],
        [
            ("epoch-level statement, all epochs", "epoch", []),
            (f"batch-level statement, --epochs {span}", "batch", ["--epochs", span]),
            ("batch-level statement, all epochs, --workers 1", "batch", ["--workers", "1"]),
            ("batch-level statement, all epochs, --workers 2", "batch", ["--workers", "2"]),
        ],
    )
    rows += [*char_lm, speedup_row("char_lm", seconds[2:])]
    if not has_module("sklearn"):
        rows.append(Row("replay", "digits_cnn skipped", "needs scikit-learn"))
        emit(rows, ns.json)
        return
    digits, _ = measure(
        "digits_cnn",
        [*quick, *epochs],
        [
            ("epoch-level statement, all epochs", "epoch", []),
            (f"batch-level statement, --epochs {span}", "batch", ["--epochs", span]),
        ],
    )
    emit(rows + digits, ns.json)


if __name__ == "__main__":
    main()
