"""Logged values as tables: ``flortrace.dataframe``, and the helpers every exporter shares (which runs, which
values are numbers, one x-axis step and one wall time per logged value)."""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Iterable
from numbers import Integral

from .. import config, scriptargs
from ..replay import runs as run_specs
from ..store import Catalog, Store, StoreError

KEYS = ("run", "epoch", "step")
RUN_COLUMNS = ("argv", "git", "script")


def open_store(store=None) -> Store:
    """The store at ``store``, or where the settings (env, pyproject, default) say."""
    return Store.open_existing(store if store is not None else config.load({}).store)


def run_ids(catalog: Catalog, run: int | Iterable[int] | None) -> list[int]:
    """Run ids for ``run``: an id, several, or None for the latest recorded run; unknown ids raise."""
    if run is None:
        latest = catalog.latest_run()
        if latest is None:
            raise StoreError(f"no recorded runs in {catalog.path.parent}")
        return [latest]
    ids = [int(run)] if isinstance(run, Integral) else [int(r) for r in run]
    for run_id in ids:
        if catalog.run(run_id) is None:
            raise StoreError(f"no run {run_id} in {catalog.path.parent} (see python -m flortrace runs)")
    return ids


def number(row: dict) -> float | int | None:
    """The row's value as a number (non-finite floats, stored as text, come back as floats), else None."""
    value = row["value"]
    if isinstance(value, (bool, int, float)):
        return value
    if row.get("vtype") == "float" and isinstance(value, str):
        return float(value)  # repr of nan, inf, -inf
    return None


def argv_text(run: dict) -> str:
    """The run's command line after the script, as a shell would read it."""
    return shlex.join(run["argv"] or [])


def step_widths(catalog: Catalog, run_id: int) -> dict[str, int]:
    """Steps per epoch of each loop of a run: the most iterations one execution of it took in any epoch
    (from the block timings), or the highest step logged in it plus one, whichever is larger."""
    widths: dict[str, int] = {}
    for block in catalog.blocks(run_id):
        widths[block["loop_id"]] = max(widths.get(block["loop_id"], 0), block["steps"] or 0)
    for row in catalog.logs(run_ids=[run_id]):
        if row["step"] is not None and row["loop_id"] is not None:
            widths[row["loop_id"]] = max(widths.get(row["loop_id"], 0), row["step"] + 1)
    return widths


def global_step(row: dict, widths: dict[str, int]) -> int:
    """One x-axis position per logged value: ``epoch * W + step`` with W the steps per epoch of the row's
    loop (see :func:`step_widths`), the epoch itself for epoch-level values, ``step`` (or 0) outside epochs,
    and the step the script passed (``flortrace.log(..., step=N)``, a row without loop) as it is.

    It increases with (epoch, step), so a step-level series reads in order, and a partial replay gets the
    same positions as a full one."""
    epoch, step = row["epoch"], row["step"]
    if epoch is None or (step is not None and row["loop_id"] is None):
        return step or 0
    if step is None:
        return epoch
    return epoch * widths[row["loop_id"]] + step


def wall_times(catalog: Catalog, run_id: int):
    """A function giving each logged row of a run its wall time (Unix seconds): when the recording got to
    that point. A recorded value has its own time. A value a replay logged takes the time of a recorded
    value at the same (epoch, step) of the same loop; else its recorded epoch's time, spread evenly over the
    epoch's steps (an epoch-level value at the epoch's end); else, outside epochs, the run's end."""
    run = catalog.run(run_id)
    epochs = {e["epoch"]: (e["started"], e["seconds"]) for e in catalog.epochs(run_id)}
    recorded = {}
    for row in catalog.logs(run_ids=[run_id], origin="record"):
        recorded.setdefault((row["epoch"], row["step"], row["loop_id"]), row["ts"])
    widths = step_widths(catalog, run_id)
    end = run["ended"] or run["active"]

    def wall_time(row: dict) -> float:
        if row["origin"] == "record":
            return row["ts"]
        epoch, step = row["epoch"], row["step"]
        found = recorded.get((epoch, step, row["loop_id"]))
        if found is not None:
            return found
        if epoch not in epochs or epochs[epoch][0] is None:
            return end
        started, seconds = epochs[epoch]
        width = widths.get(row["loop_id"], 0)
        if step is None or row["loop_id"] is None or not width:
            return started + seconds
        return started + seconds * min(step + 1, width) / width

    return wall_time


def dataframe(*names: str, run: int | Iterable[int] | None = None, runs: str | None = None, store=None):
    """A pandas DataFrame of logged values, recorded and replayed merged: one row per (run, epoch, step), a
    column per logged name (``names``, or every name in the order first logged), plus ``run``.

    ``run`` is a run id, a list of ids, or None for the latest recorded run. With a list, ``argv``, ``git``
    and ``script`` columns tell the runs apart. ``runs`` selects recorded runs as ``replay --runs`` does
    (``all``, ``last:N``, ``3,5,7``, ``2:6``) and adds a column per script argument, read as argparse
    reads it (``--lr 0.1`` gives a number column ``lr``; scriptargs.py). Values logged outside any epoch
    have epoch <NA>; a name logged twice at one (run, epoch, step) keeps its last value (with a warning). A
    logged name that clashes with one of these columns becomes ``logged_<name>``, an argument ``arg_<name>``.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("flortrace.dataframe needs pandas: pip install pandas") from exc
    if run is not None and runs is not None:
        raise ValueError("give run or runs, not both")
    with open_store(store) as st:
        if runs is None:
            ids = run_ids(st.catalog, run)
        else:
            recorded = [r for r in st.catalog.runs() if r["mode"] == "record"]
            ids = [r["id"] for r in run_specs.select(runs, recorded)]
        meta = {run_id: st.catalog.run(run_id) for run_id in ids}
        rows = st.catalog.logs(run_ids=ids, names=list(names) or None)
    several = runs is not None or (run is not None and not isinstance(run, Integral))
    extra = RUN_COLUMNS if several else ()
    args = {run_id: scriptargs.values(meta[run_id]["argv"]) for run_id in ids} if runs is not None else {}
    arg_names = list(dict.fromkeys(name for values in args.values() for name in values))
    arg_column = {name: f"arg_{name}" if name in set(KEYS) | set(extra) else name for name in arg_names}
    reserved = set(KEYS) | set(extra) | set(arg_column.values())
    order = list(dict.fromkeys(names or [r["name"] for r in sorted(rows, key=lambda r: r["ts"])]))
    column = {name: f"logged_{name}" if name in reserved else name for name in order}
    table: dict[tuple, dict] = {}
    dropped = 0
    for r in rows:
        cells = table.setdefault((r["run"], r["epoch"], r["step"]), {})
        dropped += column[r["name"]] in cells
        value = number(r)
        cells[column[r["name"]]] = r["value"] if value is None else value
    if dropped:
        warnings.warn(
            f"{dropped} logged value(s) shared a (run, epoch, step) with a later value of the same name and "
            "are not in the frame (python -m flortrace logs lists every value)",
            stacklevel=3,  # the caller of flortrace.dataframe
        )
    records = []
    for (run_id, epoch, step), cells in table.items():
        info = dict(argv=argv_text(meta[run_id]), git=meta[run_id]["git"], script=meta[run_id]["script"])
        given = {arg_column[k]: v for k, v in args.get(run_id, {}).items()}
        records.append({"run": run_id, **{k: info[k] for k in extra}, **given, "epoch": epoch, "step": step})
        records[-1].update(cells)
    columns = ["run", *extra, *arg_column.values(), "epoch", "step", *column.values()]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for key in KEYS:
        frame[key] = frame[key].astype("Int64")
    return frame


def parquet_frame(rows: list[dict]):
    """The rows of ``flortrace logs`` as a typed DataFrame, for a parquet file: ``value`` is a number column
    (integers when every number is one), ``text`` holds the other values as JSON, and ``run``, ``epoch``,
    ``step`` are integer columns (null where there is none)."""
    import json

    import pandas as pd

    numbers = [number(r) for r in rows]
    numbers = [None if v is None else (int(v) if isinstance(v, bool) else v) for v in numbers]
    whole = all(isinstance(v, int) for v in numbers if v is not None)
    frame = pd.DataFrame(
        {
            "run": pd.array([r["run"] for r in rows], dtype="Int64"),
            "name": pd.array([r["name"] for r in rows], dtype="string"),
            "value": pd.array(numbers, dtype="Int64" if whole else "Float64"),
            "text": pd.array(
                [json.dumps(r["value"]) if v is None else None for r, v in zip(rows, numbers, strict=True)],
                dtype="string",
            ),
            "epoch": pd.array([r["epoch"] for r in rows], dtype="Int64"),
            "step": pd.array([r["step"] for r in rows], dtype="Int64"),
            "origin": pd.array([r["origin"] for r in rows], dtype="string"),
        }
    )
    return frame
