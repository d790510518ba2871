"""The verbs that read and manage the store: runs, show, source, query, logs, export, rm, gc.

cli.py parses their arguments and calls these with plain values; they print and return the exit code.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import sys
import time
from collections import Counter

from .exceptions import ExportError, SpecError, StoreError, UsageError
from .export.frame import run_ids as chosen_runs
from .replay import planner
from .runtime import world
from .store import Store


# ---- runs ---------------------------------------------------------------------------------------
def _when(ts):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


def _table(rows, columns, out=sys.stdout):
    cells = [[str(r.get(c, "")) if r.get(c) is not None else "-" for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)


def runs(settings, as_json):
    with Store.open_existing(settings.store) as store:
        rows = store.catalog.runs()
        for r in rows:  # epochs as people count them: the training loop's (others are named in `show`)
            if (r.get("info") or {}).get("main_runs"):
                loops = planner.loops(planner.main_runs(r, store.catalog.epochs(r["id"])))
                r["all_epochs"], r["epochs"] = r["epochs"], loops.default.count
    if as_json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        print()
        return 0
    if not rows:
        print("no runs recorded yet")
        return 0
    view = [dict(r, started=_when(r["started"]), bytes=_size(r["bytes"] or 0)) for r in rows]
    columns = ["id", "name", "status", "started", "epochs", "checkpoints", "memos", "logs", "bytes", "script"]
    _table(view, columns)
    return 0


# ---- show ---------------------------------------------------------------------------------------
def show(settings, run_id, as_json):
    with Store.open_existing(settings.store) as store:
        c = store.catalog
        run = c.run(run_id)
        if run is None:
            raise StoreError(f"no run {run_id} in this store (see python -m flortrace runs)")
        data = dict(
            run=run,
            loops=[r for r in c.loops(run_id) if r["kind"] in ("main", "block")],
            changesets=c.changesets(run_id),
            epochs=c.epochs(run_id),
            snapshots=c.snapshots(run_id),
            decisions=c.decisions(run_id),
            names=sorted({r["name"] for r in c.logs(run_ids=[run_id])}),
        )
        code = _damage_code(c)
    if as_json:
        json.dump(data, sys.stdout, indent=2, default=str)
        print()
        return code
    r = data["run"]
    print(f"run {r['id']}  {r['status']}  {r['script']} {' '.join(r['argv'] or [])}")
    print(
        f"  started {_when(r['started'])}, ended {_when(r['ended'])}, "
        f"exit code {r['exit_code']}, git {r['git']}"
    )
    mains = planner.main_runs(r, data["epochs"])
    loops = planner.loops(mains)
    if mains:
        print("main loops (epoch loops):")
    for m in mains:
        role = "training loop, " if loops.default is not None and m.name == loops.default.name else ""
        print(
            f"  {m.name}: {m.loop_id}, {m.count} epoch(s); {role}{m.why or 'its iterations run other loops'}"
        )
    for loop_id, why in ((r.get("info") or {}).get("not_main") or {}).items():
        print(f"  not an epoch loop: {loop_id}: {why}")
    print("loops:")
    for loop in data["loops"]:
        print(f"  {loop['kind']:<5} {loop['loop_id']} (line {loop['lineno']})")
        for name, reason in data["changesets"].get(loop["loop_id"], []):
            print(f"        changes {name}: {reason}")
    for name, reason in data["changesets"].get("main", []):
        print(f"  epoch state {name}: {reason}")
    snaps = {}
    for s in data["snapshots"]:
        snaps.setdefault(s["epoch"], []).append(s)
    why = {d["epoch"]: f"{d['action']}: {d['reason']}" for d in data["decisions"] if d["kind"] == "snapshot"}
    print("epochs:")
    width = max([4, *(len(loops.show(e["epoch"])) for e in data["epochs"])])
    for e in data["epochs"]:
        got = snaps.get(e["epoch"], [])
        kinds = ", ".join(sorted({s["kind"] for s in got})) or "-"
        stored = sum(s["stored"] or 0 for s in got)
        print(
            f"  {loops.show(e['epoch']):>{width}}  {e['seconds']:8.3f}s  {kinds:<18} {_size(stored):>8}  "
            f"{why.get(e['epoch'], '')}"
        )
    print("logged names: " + (", ".join(data["names"]) or "-"))
    return code


def _damage_code(catalog):
    """1 when values were left out because they failed their checksum (the catalog said which), else 0."""
    return 1 if catalog.damaged_logs else 0


# ---- logs ---------------------------------------------------------------------------------------
def logs(settings, runs, names, origin, epochs, fmt, output):
    """Print or write logged values: of ``runs`` (default: the latest run), the ``epochs`` a spec selects."""
    with Store.open_existing(settings.store) as store:
        catalog = store.catalog
        for wanted in runs or []:
            if catalog.run(wanted) is None:
                raise StoreError(f"no run {wanted} in this store (see python -m flortrace runs)")
        run_ids = runs or ([catalog.runs()[0]["id"]] if catalog.runs() else [])
        rows = catalog.logs(run_ids=run_ids, names=names, origin=origin)
        rows = _by_loop(catalog, rows, epochs)
        code = _damage_code(catalog)
    try:
        return _write_logs(rows, fmt, output) or code
    except OSError as exc:
        print(f"flortrace: error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _by_loop(catalog, rows, spec):
    """Rows numbered as people count epochs (per main loop, with the loop's name in ``loop``), the ones
    ``spec`` selects (the replay grammar) when given."""
    loops = {}
    for run in sorted({r["run"] for r in rows}):
        loops[run] = planner.loops(planner.main_runs(catalog.run(run), catalog.epochs(run)))
    chosen = {}
    if spec is not None:
        try:
            chosen = {run: set(found.select(spec)) for run, found in loops.items()}
        except SpecError as exc:
            raise UsageError(f"--epochs {spec}: {exc}") from None
    out = []
    for r in rows:
        found = loops[r["run"]]
        if spec is not None and r["epoch"] not in chosen[r["run"]]:
            continue
        loop = None if r["epoch"] is None else found.of(r["epoch"])
        out.append(
            dict(r, epoch=r["epoch"] if loop is None else loop.local(r["epoch"]), loop=loop and loop.name)
        )
    return out


def _write_logs(rows, fmt, output):
    """Print or write the rows in the chosen format; returns an exit code for a refusal, else None."""
    columns = ["run", "name", "value", "epoch", "step", "origin"]
    if len({r["loop"] for r in rows if r["loop"] is not None}) > 1:  # several main loops: say which
        columns.insert(3, "loop")
    if fmt == "json":
        keys = dict.fromkeys([*columns, "loop", "loop_id", "lineno", "ts"])
        text = json.dumps([{k: r[k] for k in keys} for r in rows], indent=1)
        return _emit(text + "\n", output)
    if fmt == "csv":
        out = open(output, "w", newline="", errors="backslashreplace") if output else sys.stdout
        w = csv.writer(out)
        w.writerow(columns)
        for r in rows:
            value = json.dumps(r["value"]) if isinstance(r["value"], list) else r["value"]
            w.writerow([value if c == "value" else r[c] for c in columns])
        if output:
            out.close()
        return None
    if fmt == "parquet":
        from .export.frame import parquet_frame

        try:
            parquet_frame(rows).to_parquet(output)
        except ImportError as exc:
            print(
                f"flortrace: --format parquet needs pandas and pyarrow ({exc}): "
                "pip install 'flortrace[parquet]'",
                file=sys.stderr,
            )
            return 2
        return None
    if not rows:
        print("no logged values match")
        return None
    _table(rows, columns)
    return None


def _emit(text, path):
    if path:
        with open(path, "w", errors="backslashreplace") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


# ---- export ---------------------------------------------------------------------------------------
def export_tensorboard(settings, runs, names, folder, into):
    try:
        from .export.tensorboard import export_tensorboard as export
    except ImportError as exc:
        return _missing("tensorboard", "tensorboard", exc)
    with Store.open_existing(settings.store) as store:
        ids = chosen_runs(store.catalog, runs)
        written, skipped, folders = export(store.catalog, ids, folder, names, into)
    _notice_skipped(skipped, "TensorBoard")
    where = folder if into is None else os.path.dirname(os.path.normpath(into)) or "."
    shown = ", ".join(sorted({str(f.parent if into is None else f) for f in folders})) or where
    print(f"wrote {written} value(s) of run {_ids(ids)} to {shown} (view: tensorboard --logdir {where})")
    return 0


def export_mlflow(settings, runs, names, tracking_uri, experiment, into):
    try:
        from mlflow.exceptions import MlflowException

        from .export.mlflow import export_mlflow as export
    except ImportError as exc:
        return _missing("mlflow", "mlflow-skinny", exc)
    with Store.open_existing(settings.store) as store:
        ids = chosen_runs(store.catalog, runs)
        try:
            done, skipped, renamed = export(store.catalog, ids, tracking_uri, experiment, names, into)
        except ExportError as exc:
            print(f"flortrace: error: export mlflow: {exc}", file=sys.stderr)
            return 2
        except MlflowException as exc:
            print(f"flortrace: error: mlflow: {exc.message}", file=sys.stderr)
            return 2
    _notice_skipped(skipped, "MLflow")
    for name, key in renamed.items():
        print(
            f"flortrace: {name!r} is logged to MLflow as {key!r} (MLflow refuses the name)", file=sys.stderr
        )
    for e in done:
        place = f"MLflow run {e.mlflow_id}" + ("" if into else f" (experiment {experiment})")
        had = f"; {e.present} it had already" if e.present else ""
        print(f"run {e.run}: {e.action} {place}: {e.logged} metric value(s) logged{had}")
        if e.changed:
            keys = ", ".join(sorted(e.changed))
            print(
                f"flortrace: {sum(e.changed.values())} value(s) of {keys} changed since the last export; "
                "MLflow keeps the old ones beside them (delete the MLflow run, then export again, to have "
                "only the new ones)",
                file=sys.stderr,
            )
    return 0


def export_file(settings, runs, names, fmt, path):
    """A csv, json or parquet file: what ``logs --format FMT -o PATH`` writes, of all their epochs."""
    with Store.open_existing(settings.store) as store:
        ids = chosen_runs(store.catalog, runs)
    code = logs(settings, ids, names, None, None, fmt, path)
    if code == 0:
        print(f"wrote the logged values of run {_ids(ids)} to {path}")
    return code


def _missing(fmt, package, exc):
    print(f"flortrace: export {fmt} needs {package} ({exc}): pip install 'flortrace[{fmt}]'", file=sys.stderr)
    return 2


def _notice_skipped(skipped: Counter, where):
    if skipped:
        names = ", ".join(sorted(skipped))
        count = sum(skipped.values())
        print(
            f"flortrace: skipped {count} non-numeric value(s) of {names} ({where} takes numbers)",
            file=sys.stderr,
        )


def _ids(ids):
    return ", ".join(map(str, ids))


# ---- rm, gc -------------------------------------------------------------------------------------
def rm(settings, runs):
    with Store.open_existing(settings.store) as store:
        store.catalog.delete_runs(runs)  # checks every run first: `rm 1 999` removes nothing
        for removed in runs:
            world.remove(store.root, removed)  # what the script wrote during its replays (runtime/world.py)
    for removed in dict.fromkeys(runs):
        print(f"removed run {removed}")
    return 0


def gc(settings, yes):
    with Store.open_existing(settings.store) as store:
        count, size = store.gc(dry_run=not yes)  # keeps what running runs may still commit
    if yes:
        print(f"freed {count} blob(s), {_size(size)}")
    else:
        print(f"would free {count} blob(s), {_size(size)} (run with --yes to delete)")
    return 0


# ---- source, query ----------------------------------------------------------------------------------
def source(settings, run_id, file, diff):
    with Store.open_existing(settings.store) as store:
        run = store.catalog.run(run_id)
        if run is None:
            raise StoreError(f"no run {run_id} in this store (see python -m flortrace runs)")
        sources = store.catalog.sources(run_id)
    if not sources:
        raise StoreError(f"run {run_id} recorded no source")
    name = file or next(iter(sorted(sources, key=lambda rel: rel != os.path.basename(run["script"]))))
    if name not in sources:
        raise StoreError(f"run {run_id} recorded no file {name!r} (its files: {', '.join(sorted(sources))})")
    if not diff:
        sys.stdout.write(sources[name])
        return 0
    path = name if os.path.isabs(name) else os.path.join(os.path.dirname(run["script"]), name)
    if not os.path.exists(path):  # a moved or copied project: the file at its place here
        path = name
    try:
        with open(path, encoding="utf-8") as f:
            today = f.read()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = difflib.unified_diff(
        sources[name].splitlines(True), today.splitlines(True), f"run {run_id}/{name}", path
    )
    sys.stdout.writelines(lines)
    return 0


def query(settings, sql, as_json):
    with Store.open_existing(settings.store) as store:
        try:
            rows = store.catalog.query(sql)
        except ValueError as exc:
            raise StoreError(f"query: {exc}") from None
    if as_json:
        json.dump(rows, sys.stdout, indent=1, default=str)
        print()
    elif rows:
        _table(rows, list(rows[0]))
    else:
        print("no rows")
    return 0
