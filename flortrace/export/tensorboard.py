"""TensorBoard event files from logged values, for ``flortrace export tensorboard DIR``.

Each run gets ``DIR/run-<id>/record`` (values logged while recording) and ``DIR/run-<id>/hindsight``
(values from replays): TensorBoard drops data that arrives at an earlier step of a run it has already read,
and hindsight values arrive long after the recording. Exporting again replaces both folders' event files.

Steps: an epoch-level value is at step = epoch; a value inside an epoch's loop is at the global step
``epoch * W + step``, W being the most iterations that loop made in one epoch (see ``frame.global_step``).
Wall times are the original logging times. Only numbers are written (TensorBoard keeps them as float32).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from ..store import Catalog
from .frame import global_step, number, step_widths

FOLDERS = {"record": "record", "replay": "hindsight"}


def export_tensorboard(
    catalog: Catalog, run_ids: list[int], logdir: str | Path, names: list[str] | None = None
) -> tuple[int, Counter]:
    """Write event files for the runs' logged numbers; return (values written, skipped values per name)."""
    written, skipped = 0, Counter()
    for run_id in run_ids:
        widths = step_widths(catalog, run_id)
        events: dict[str, list] = {origin: [] for origin in FOLDERS}
        for row in catalog.logs(run_ids=[run_id], names=names):
            value = number(row)
            if value is None:
                skipped[row["name"]] += 1
                continue
            events[row["origin"]].append((global_step(row, widths), row["ts"], row["name"], float(value)))
        for origin, folder in FOLDERS.items():
            target = Path(logdir) / f"run-{run_id}" / folder
            for old in target.glob("events.out.tfevents.*"):
                old.unlink()
            if events[origin]:
                _write(target, sorted(events[origin]))
                written += len(events[origin])
    return written, skipped


def _write(folder: Path, events: list[tuple]) -> None:
    writer = EventFileWriter(str(folder), max_queue_size=1024)
    try:
        for step, ts, name, value in events:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=name, simple_value=value)])
            writer.add_event(event_pb2.Event(wall_time=ts, step=step, summary=summary))
    finally:
        writer.close()
