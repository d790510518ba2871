"""TensorBoard event files from logged values, for ``flortrace export tensorboard``.

Each run gets a folder in the logdir, named by the run's ``--name`` (``run-<id>`` without one, or when
other runs have the same name), holding ``record`` (values logged while recording) and ``hindsight``
(values from replays): TensorBoard drops data that arrives at an earlier step of a run it has already read,
and hindsight values arrive long after the recording. ``into`` writes one run into the script's own
TensorBoard run folder instead, as its sub-runs ``flortrace`` and ``flortrace-hindsight``, so TensorBoard
lists them beside the script's values. Exporting again replaces the event files of these folders (only
flortrace writes them).

Steps: an epoch-level value is at step = epoch; a value inside an epoch's loop is at the global step
``epoch * W + step``, W being the most iterations that loop made in one epoch (see ``frame.global_step``).
Wall times are when the recording reached the value (``frame.wall_times``), also for hindsight values.
Only numbers are written (TensorBoard keeps them as float32).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from ..store import Catalog
from .frame import global_step, number, step_widths, wall_times

FOLDERS = {"record": "record", "replay": "hindsight"}
INTO = {"record": "flortrace", "replay": "flortrace-hindsight"}


def run_folder(catalog: Catalog, run_id: int) -> str:
    """The folder name of a run in the logdir: its ``--name`` when no other run has it, else run-<id>."""
    name = catalog.run(run_id)["name"]
    if name and sum(r["name"] == name for r in catalog.runs()) == 1:
        safe = re.sub(r"[^\w.\- ]+", "_", name).strip(". ")
        if safe:
            return safe
    return f"run-{run_id}"


def export_tensorboard(
    catalog: Catalog,
    run_ids: list[int],
    logdir: str | Path | None,
    names: list[str] | None = None,
    into: str | Path | None = None,
) -> tuple[int, Counter, list[Path]]:
    """Write event files for the runs' logged numbers into ``logdir`` (or, for one run, ``into``); return
    (values written, skipped values per name, the run folders written)."""
    written, skipped, folders = 0, Counter(), []
    for run_id in run_ids:
        widths = step_widths(catalog, run_id)
        wall_time = wall_times(catalog, run_id)
        events: dict[str, list] = {origin: [] for origin in FOLDERS}
        for row in catalog.logs(run_ids=[run_id], names=names):
            value = number(row)
            if value is None:
                skipped[row["name"]] += 1
                continue
            step = global_step(row, widths)
            events[row["origin"]].append((step, wall_time(row), row["name"], float(value)))
        if into is not None:
            targets = {origin: Path(into) / sub for origin, sub in INTO.items()}
        else:
            base = Path(logdir) / run_folder(catalog, run_id)
            targets = {origin: base / sub for origin, sub in FOLDERS.items()}
        for origin, target in targets.items():
            for old in target.glob("events.out.tfevents.*"):
                old.unlink()
            if events[origin]:
                _write(target, sorted(events[origin]))
                written += len(events[origin])
                folders.append(target)
    return written, skipped, folders


def _write(folder: Path, events: list[tuple]) -> None:
    writer = EventFileWriter(str(folder), max_queue_size=1024)
    try:
        for step, ts, name, value in events:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=name, simple_value=value)])
            writer.add_event(event_pb2.Event(wall_time=ts, step=step, summary=summary))
    finally:
        writer.close()
