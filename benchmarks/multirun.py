"""Hindsight values for a sweep: one ``replay --runs all --workers 2`` against three single-run replays.

pure_python (plain Python, one thread, no imports to speak of) is recorded three times with a different
``--lr`` each, at the default budget; then the script gets a batch-level hindsight statement and the three
runs are replayed: with one command and two workers, and one after the other with ``replay --run N``, in
both orders of the two ways (each way's time is the median of its two tries). What a user does without
flortrace, running the three trainings again with the statement, is timed too. Every replay must log the
statement's values for every epoch of its run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from harness import Row, emit, flortrace, fmt_seconds, median, parser
from harness import run as run_command
from variants import hindsight

LRS = ("5", "10", "20")


def replayed(store: Path, work: Path, name: str, since: float) -> dict[int, int]:
    """Values of ``name`` each run got from replays that started after ``since``."""
    runs = [arg for run in (1, 2, 3) for arg in ("--run", str(run))]
    logs = flortrace("logs", *runs, "--name", name, "--format", "json", store=store, cwd=work)
    counts: dict[int, int] = {}
    for row in json.loads(logs.proc.stdout):
        if row["origin"] == "replay" and row["ts"] >= since:
            counts[row["run"]] = counts.get(row["run"], 0) + 1
    return counts


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    sizes = ["--quick", "--epochs", "6"] if args.quick else ["--epochs", "10"]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        script, store = work / "train.py", work / "store"
        hindsight("pure_python", script, None)
        for lr in LRS:
            flortrace("-q", script.name, *sizes, "--lr", lr, store=store, cwd=work)
        name = hindsight("pure_python", script, "batch")
        one, serial, plain = [], [], []
        for order in range(2):
            for way in ("one", "serial") if order == 0 else ("serial", "one"):
                started = time.time()
                if way == "one":
                    t = flortrace(
                        "replay", "-q", "--runs", "all", "--workers", "2", script.name, store=store, cwd=work
                    )
                    one.append(t.wall)
                else:
                    serial.append(
                        sum(
                            flortrace(
                                "replay", "-q", "--run", str(run), script.name, store=store, cwd=work
                            ).wall
                            for run in (1, 2, 3)
                        )
                    )
                counts = replayed(store, work, name, started)
                if sorted(counts) != [1, 2, 3] or len(set(counts.values())) != 1:
                    sys.exit(f"multirun: the {way} replay did not log {name} for all three runs: {counts}")
            plain.append(
                sum(run_command([sys.executable, script.name, *sizes, "--lr", lr], work).wall for lr in LRS)
            )
    t_one, t_serial, t_plain = median(one), median(serial), median(plain)
    rows.append(
        Row(
            "multirun",
            "3 runs of pure_python, batch-level statement: replay --runs all --workers 2",
            f"{fmt_seconds(t_one)} ({t_one / t_serial:.2f}x of serial replays)",
            f"3 x replay --run N: {fmt_seconds(t_serial)}; 3 plain trainings again: {fmt_seconds(t_plain)}"
            f" ({t_one / t_plain:.2f}x)",
        )
    )
    emit(rows, args.json)


if __name__ == "__main__":
    main()
