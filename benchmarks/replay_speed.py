"""Replay time against record time for hindsight statements, and the speed-up of parallel replay.

digits_cnn.py (its batch loop dominates) is recorded once. Then the script gets a hindsight statement and
is replayed: an epoch-level statement (the classifier's weight norm after each epoch) over all epochs, a
batch-level one (each batch's loss) over a range of epochs, and the batch-level one over all epochs with
``--workers 1`` and ``--workers 2``. Each replay must log its values and pass the fidelity check.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from harness import Row, emit, flortrace, fmt_seconds, has_module, parser
from variants import digits_hindsight


def summary(stderr: str) -> str:
    """The replay's own one-line account ('ran 10 epoch(s), ...'), without the run id."""
    for line in stderr.splitlines():
        if line.startswith("flortrace: replayed run"):
            return line.split(":", 2)[-1].strip()
    return "(no replay summary printed)"


class Bench:
    def __init__(self, work: Path, args: list[str]):
        self.work, self.args, self.store = work, args, work / "store"
        self.script = work / "train.py"

    def record(self) -> float:
        digits_hindsight(self.script, None)
        return flortrace("-q", self.script.name, *self.args, store=self.store, cwd=self.work).wall

    def replay(self, level: str, *options: str) -> tuple[float, str, int]:
        """(seconds, replay summary, values logged) of one replay of the edited script."""
        name = digits_hindsight(self.script, level)
        command = ["replay", *options, self.script.name, *self.args]
        replay = flortrace(*command, store=self.store, cwd=self.work)
        logs = flortrace("logs", "--name", name, "--format", "json", store=self.store, cwd=self.work)
        values = [r for r in json.loads(logs.proc.stdout) if r["origin"] == "replay"]
        if not values:
            detail = replay.proc.stderr[-2000:]
            raise RuntimeError(f"replay {' '.join(options)} logged no {name} values:\n{detail}")
        return replay.wall, summary(replay.proc.stderr), len(values)


def measure(quick: bool) -> list[Row]:
    args = ["--quick", "--epochs", "4"] if quick else ["--epochs", "30"]
    span = "1:3" if quick else "2:5"
    replays = [
        ("epoch-level statement, all epochs", "epoch", []),
        (f"batch-level statement, --epochs {span}", "batch", ["--epochs", span]),
        ("batch-level statement, all epochs, --workers 1", "batch", ["--workers", "1"]),
        ("batch-level statement, all epochs, --workers 2", "batch", ["--workers", "2"]),
    ]
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-replay-") as tmp:
        bench = Bench(Path(tmp), args)
        recorded = bench.record()
        results = [bench.replay(level, *options) for _, level, options in replays]
    label = " ".join(["digits_cnn", *args])
    rows = [Row("replay", f"{label}: record", fmt_seconds(recorded), "python -m flortrace, one run")]
    for (what, _, _), (seconds, how, values) in zip(replays, results, strict=True):
        ratio = f"{seconds / recorded:.2f}x record ({fmt_seconds(seconds)})"
        rows.append(Row("replay", what, ratio, f"{values} values; {how}"))
    one, two = results[2][0], results[3][0]
    rows.append(Row("replay", "speed-up of --workers 2 over --workers 1", f"{one / two:.2f}x"))
    return rows


def main(argv=None):
    ns = parser(__doc__.splitlines()[0]).parse_args(argv)
    if not (has_module("torch") and has_module("sklearn")):
        emit([Row("replay", "skipped", "needs torch and scikit-learn")], ns.json)
        return
    emit(measure(ns.quick), ns.json)


if __name__ == "__main__":
    main()
