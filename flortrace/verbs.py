"""The verbs after ``python -m flortrace``: replay, console, runs, show, logs, export, rm, gc."""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import os
import sys
import time
from pathlib import Path

from . import config
from .cli import attach_values, split_at_script
from .runtime import world
from .store import Store, StoreError

MAX_RUN_ID = 2**63 - 1  # SQLite's largest integer


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input in flortrace's way: one line, exit code 2."""

    def error(self, message):
        verb = self.prog.removeprefix("flortrace ")
        print(f"flortrace: error: {verb}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def run_id(text):
    """An argparse type: a run id as the catalog numbers them (1, 2, 3, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id (1, 2, 3, ...)") from None
    if not 1 <= value <= MAX_RUN_ID:
        raise argparse.ArgumentTypeError(f"there is no run {text} (run ids are 1, 2, 3, ...)")
    return value


def output_problem(path):
    """Why ``path`` cannot be written as an output file, or None: checked before anything is read."""
    target = Path(path)
    if target.is_dir():
        return f"cannot write {path}: it is a folder (give a file name)"
    parent = target.parent
    if not parent.is_dir():
        return f"cannot write {path}: there is no folder {parent}"
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"cannot write {path}: permission denied"
    return None


def _parser(verb, description):
    p = Parser(prog=f"flortrace {verb}", description=description)
    p.add_argument("--store", help="store folder (default ./.flortrace, env FLORTRACE_STORE)")
    return p


def _settings(ns, **extra):
    return config.load({"store": ns.store, **extra})


# ---- replay -------------------------------------------------------------------------------------
def replay(argv):
    p = _parser("replay", "Re-run an edited script against a recorded run: hindsight log values, exactly.")
    p.add_argument("--run", type=run_id, help="run id (default: the latest recorded run of the script)")
    p.add_argument(
        "--runs",
        help="replay several runs, each with its own recorded code and arguments and today's added lines "
        "carried into it: all, last:N, 3,5,7, 2:6",
    )
    p.add_argument("--where", help="with --runs: only runs whose arguments satisfy this, e.g. 'lr < 0.01'")
    p.add_argument(
        "--epochs",
        help="which epochs: 7, 2:5, ::10, 0,3,9, -1, -2:, a main loop's name first for another loop "
        "(finetune:0:3); default: all",
    )
    p.add_argument("--plan", action="store_true", help="print the plan and an estimated time; run nothing")
    p.add_argument(
        "--force",
        action="store_true",
        help="replay even if the edit changes state or loops, or under other arguments; report where the "
        "replay diverges instead of stopping there",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        help="relative tolerance of the fidelity check for floats (default 0: exact)",
    )
    p.add_argument(
        "--workers", type=int, help="parallel workers, each replaying a checkpoint-aligned segment"
    )
    p.add_argument("--backend", choices=["local", "ray"], help="where workers run (default local processes)")
    p.add_argument("--address", help="Ray cluster address for --backend ray (default: start a local Ray)")
    p.add_argument("--segment", help=argparse.SUPPRESS)
    p.add_argument("--global-epochs", help=argparse.SUPPRESS)  # a parallel replay's worker: global numbers
    p.add_argument("--overlay", help=argparse.SUPPRESS)  # JSON {file: source} to run instead of the files
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no notices, no progress line")
    p.add_argument("-m", dest="module", help="replay a module recorded with -m")
    p.add_argument("target", nargs="?", help="the (edited) script")
    p.usage = "flortrace replay [options] script.py [args ...]"
    p.epilog = (
        "Without script arguments the recorded ones are used. The script's TensorBoard, W&B and MLflow "
        "runs and the files it writes go into STORE/replays/run-<id>, not over the recording's "
        "(FLORTRACE_ISOLATE=0: where the script says). Exit code: the script's; 3 when the replay "
        "does not reproduce the recording (the report names the epoch, the state that differs and the likely "
        "cause); 2 for usage errors."
    )
    own, rest = split_at_script(
        argv,
        {
            "--run",
            "--epochs",
            "--tolerance",
            "--store",
            "--workers",
            "--backend",
            "--address",
            "--segment",
            "--global-epochs",
            "--overlay",
            "--runs",
            "--where",
            "-m",
        },
    )
    ns = p.parse_args(attach_values(own, {"--epochs"}))
    ns.args = rest
    from .replay import planner
    from .replay.epochs import SpecError
    from .replaying import find_run
    from .replaying import replay as run_replay

    settings = _settings(ns, quiet=ns.quiet, tolerance=ns.tolerance, workers=ns.workers, backend=ns.backend)
    settings["address"] = ns.address
    segment = None if ns.segment is None else _segment(ns.segment, p)
    target, args = (
        (ns.module, ([ns.target] if ns.target else []) + ns.args) if ns.module else (ns.target, ns.args)
    )
    if target is None:
        p.error("no script given")
    if ns.epochs is not None and not ns.epochs.strip():
        p.error("--epochs needs epochs, such as 7, 2:5, ::10 or 0,3,9")
    module = bool(ns.module)
    if ns.runs is not None or ns.where is not None:
        if ns.run is not None or args:
            p.error("--runs replays each run with its own recorded arguments: give no --run and no arguments")
        from .replaying import replay_runs

        return replay_runs(target, settings, module, ns.runs or "all", ns.where, ns.epochs, ns.force, ns.plan)
    overlay = None
    if ns.overlay:
        with open(ns.overlay, encoding="utf-8") as f:
            overlay = json.load(f)
        settings["overlay"] = ns.overlay
    # This process holds the run until the replay is over, so `rm` refuses it meanwhile.
    with Store.open_existing(settings["store"]) as store:
        run = find_run(store.catalog, target, module, ns.run)
        store.catalog.hold_run(run)
        epochs = None
        if ns.global_epochs:
            epochs = [int(e) for e in ns.global_epochs.split(",")]
        elif ns.epochs is not None:
            mains = planner.main_runs(store.catalog.run(run), store.catalog.epochs(run))
            try:
                epochs = planner.loops(mains).select(ns.epochs)
            except SpecError as exc:
                p.error(f"--epochs {ns.epochs}: {exc} (run {run})")
        return run_replay(target, args, settings, module, run, epochs, ns.force, ns.plan, segment, overlay)


def _segment(text, p):
    """``--segment INDEX/COUNT`` (what a parallel replay passes its workers), checked."""
    index, slash, count = text.partition("/")
    try:
        segment = (int(index), int(count))
    except ValueError:
        segment = None
    if not slash or segment is None or not 0 <= segment[0] < segment[1]:
        p.error(f"--segment must be INDEX/COUNT with 0 <= INDEX < COUNT, not {text!r}")
    return segment


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


def runs(argv):
    p = _parser("runs", "List recorded runs, newest first.")
    p.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    ns = p.parse_args(argv)
    from .replay import planner

    with Store.open_existing(_settings(ns)["store"]) as store:
        rows = store.catalog.runs()
        for r in rows:  # epochs as people count them: the training loop's (others are named in `show`)
            if (r.get("info") or {}).get("main_runs"):
                loops = planner.loops(planner.main_runs(r, store.catalog.epochs(r["id"])))
                r["all_epochs"], r["epochs"] = r["epochs"], loops.default.count
    if ns.json:
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
def show(argv):
    p = _parser("show", "Details of one run: loops, changesets, snapshots per epoch and why, timings, logs.")
    p.add_argument("run", type=run_id)
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(argv)
    with Store.open_existing(_settings(ns)["store"]) as store:
        c = store.catalog
        run = c.run(ns.run)
        if run is None:
            raise StoreError(f"no run {ns.run} in this store (see python -m flortrace runs)")
        data = dict(
            run=run,
            loops=[r for r in c.loops(ns.run) if r["kind"] in ("main", "block")],
            changesets=c.changesets(ns.run),
            epochs=c.epochs(ns.run),
            snapshots=c.snapshots(ns.run),
            decisions=c.decisions(ns.run),
            names=sorted({r["name"] for r in c.logs(run_ids=[ns.run])}),
        )
        code = _damage_code(c)
    if ns.json:
        json.dump(data, sys.stdout, indent=2, default=str)
        print()
        return code
    r = data["run"]
    print(f"run {r['id']}  {r['status']}  {r['script']} {' '.join(r['argv'] or [])}")
    print(
        f"  started {_when(r['started'])}, ended {_when(r['ended'])}, "
        f"exit code {r['exit_code']}, git {r['git']}"
    )
    from .replay import planner

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
def logs(argv):
    p = _parser("logs", "Print logged values (recorded and replayed).")
    p.add_argument("--run", type=run_id, action="append", help="run id (repeatable; default: the latest run)")
    p.add_argument("--name", action="append", help="only this name (repeatable)")
    p.add_argument("--origin", choices=["record", "replay"])
    p.add_argument("--epochs", help="which epochs, as for replay: 7, 2:5, ::10, -2:, 0,3,9, finetune:0:3")
    p.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    p.add_argument("--output", "-o", help="file to write (required for parquet)")
    ns = p.parse_args(attach_values(argv, {"--epochs"}))
    if ns.epochs is not None and not ns.epochs.strip():
        p.error("--epochs needs epochs, such as 7, 2:5, ::10 or 0,3,9")
    if ns.format == "parquet" and not ns.output:
        p.error("--format parquet needs --output FILE")
    if ns.output and (problem := output_problem(ns.output)):
        p.error(problem)
    with Store.open_existing(_settings(ns)["store"]) as store:
        catalog = store.catalog
        for wanted in ns.run or []:
            if catalog.run(wanted) is None:
                raise StoreError(f"no run {wanted} in this store (see python -m flortrace runs)")
        run_ids = ns.run or ([catalog.runs()[0]["id"]] if catalog.runs() else [])
        rows = catalog.logs(run_ids=run_ids, names=ns.name, origin=ns.origin)
        rows = _by_loop(catalog, rows, ns.epochs, p)
        code = _damage_code(catalog)
    try:
        return _write_logs(rows, ns) or code
    except OSError as exc:
        print(f"flortrace: error: cannot write {ns.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _by_loop(catalog, rows, spec, p):
    """Rows numbered as people count epochs (per main loop, with the loop's name in ``loop``), the ones
    ``spec`` selects (the replay grammar) when given."""
    from .replay import planner
    from .replay.epochs import SpecError

    loops = {}
    for run in sorted({r["run"] for r in rows}):
        loops[run] = planner.loops(planner.main_runs(catalog.run(run), catalog.epochs(run)))
    chosen = {}
    if spec is not None:
        try:
            chosen = {run: set(found.select(spec)) for run, found in loops.items()}
        except SpecError as exc:
            p.error(f"--epochs {spec}: {exc}")
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


def _write_logs(rows, ns):
    """Print or write the rows in the chosen format; returns an exit code for a refusal, else None."""
    columns = ["run", "name", "value", "epoch", "step", "origin"]
    if len({r["loop"] for r in rows if r["loop"] is not None}) > 1:  # several main loops: say which
        columns.insert(3, "loop")
    if ns.format == "json":
        keys = dict.fromkeys([*columns, "loop", "loop_id", "lineno", "ts"])
        text = json.dumps([{k: r[k] for k in keys} for r in rows], indent=1)
        return _emit(text + "\n", ns.output)
    if ns.format == "csv":
        out = open(ns.output, "w", newline="", errors="backslashreplace") if ns.output else sys.stdout
        w = csv.writer(out)
        w.writerow(columns)
        for r in rows:
            value = json.dumps(r["value"]) if isinstance(r["value"], list) else r["value"]
            w.writerow([value if c == "value" else r[c] for c in columns])
        if ns.output:
            out.close()
        return None
    if ns.format == "parquet":
        from .export.frame import parquet_frame

        try:
            parquet_frame(rows).to_parquet(ns.output)
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


# ---- rm, gc -------------------------------------------------------------------------------------
def rm(argv):
    p = _parser(
        "rm",
        "Delete runs from the catalog (their blobs are freed by gc, their replays' files now); all or none.",
    )
    p.add_argument("runs", type=run_id, nargs="+")
    ns = p.parse_args(argv)
    with Store.open_existing(_settings(ns)["store"]) as store:
        store.catalog.delete_runs(ns.runs)  # checks every run first: `rm 1 999` removes nothing
        for removed in ns.runs:
            world.remove(store.root, removed)  # what the script wrote during its replays (runtime/world.py)
    for removed in dict.fromkeys(ns.runs):
        print(f"removed run {removed}")
    return 0


def gc(argv):
    p = _parser("gc", "Free blobs no run references. Dry run unless --yes.")
    p.add_argument("--yes", action="store_true", help="really delete")
    ns = p.parse_args(argv)
    with Store.open_existing(_settings(ns)["store"]) as store:
        count, size = store.gc(dry_run=not ns.yes)  # keeps what running runs may still commit
    if ns.yes:
        print(f"freed {count} blob(s), {_size(size)}")
    else:
        print(f"would free {count} blob(s), {_size(size)} (run with --yes to delete)")
    return 0


# ---- console, export: verbs with modules of their own ----------------------------------------------
def console(argv):
    from .console import console_main

    return console_main(argv)


def export(argv):
    from .export.cli import export_main

    return export_main(argv)


# ---- source, query ----------------------------------------------------------------------------------
def source(argv):
    p = _parser("source", "Print the source a run recorded (the script, or another file of its project).")
    p.add_argument("run", type=run_id)
    p.add_argument("file", nargs="?", help="a file of the project as the run named it (default: the script)")
    p.add_argument("--diff", action="store_true", help="a unified diff against the file as it is today")
    ns = p.parse_args(argv)
    with Store.open_existing(_settings(ns)["store"]) as store:
        run = store.catalog.run(ns.run)
        if run is None:
            raise StoreError(f"no run {ns.run} in this store (see python -m flortrace runs)")
        sources = store.catalog.sources(ns.run)
    if not sources:
        raise StoreError(f"run {ns.run} recorded no source")
    name = ns.file or next(iter(sorted(sources, key=lambda rel: rel != os.path.basename(run["script"]))))
    if name not in sources:
        raise StoreError(f"run {ns.run} recorded no file {name!r} (its files: {', '.join(sorted(sources))})")
    if not ns.diff:
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
    diff = difflib.unified_diff(
        sources[name].splitlines(True), today.splitlines(True), f"run {ns.run}/{name}", path
    )
    sys.stdout.writelines(diff)
    return 0


def query(argv):
    p = _parser(
        "query",
        "Read-only SQL over the store. Views: runs(id, script, name, status, started, ended, exit_code, "
        "argv), args(run, name, value) with each recorded argument parsed argparse-style, "
        "logs(run, name, value, epoch, step, origin).",
    )
    p.add_argument("sql")
    p.add_argument("--json", action="store_true", help="a JSON array of rows instead of a table")
    ns = p.parse_args(argv)
    with Store.open_existing(_settings(ns)["store"]) as store:
        try:
            rows = store.catalog.query(ns.sql)
        except ValueError as exc:
            raise StoreError(f"query: {exc}") from None
    if ns.json:
        json.dump(rows, sys.stdout, indent=1, default=str)
        print()
    elif rows:
        _table(rows, list(rows[0]))
    else:
        print("no rows")
    return 0


VERBS = {
    "replay": replay,
    "console": console,
    "runs": runs,
    "show": show,
    "logs": logs,
    "export": export,
    "rm": rm,
    "gc": gc,
    "source": source,
    "query": query,
}


def main(verb, argv, guard):
    if verb not in ("replay", "console") and hasattr(sys.stdout, "reconfigure"):  # a script's stdout stays
        sys.stdout.reconfigure(errors="backslashreplace")  # names from undecodable file names still print
    return guard(lambda: VERBS[verb](argv))
