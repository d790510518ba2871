"""``flortrace export``: logged values (recorded and hindsight) to TensorBoard, MLflow or a csv/json/parquet
file. Each format's package is optional; without it the verb says which to install and exits with 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from ..config import ConfigError
from ..store import StoreError
from ..verbs import output_problem
from ..verbs import run_id as run_id_type
from .frame import open_store, run_ids

STEPS = (
    "Steps: an epoch-level value is at step = epoch; a value logged inside an epoch's loop is at "
    "epoch * W + step, W being the most iterations that loop made in one epoch of the run."
)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", help="store folder (default ./.flortrace, env FLORTRACE_STORE)")
    common.add_argument(
        "--run", type=run_id_type, action="append", help="run id (repeatable; default: the latest run)"
    )
    common.add_argument("--name", action="append", help="only this logged name (repeatable)")
    p = argparse.ArgumentParser(prog="flortrace export", description="Export logged values.")
    sub = p.add_subparsers(dest="format", required=True, metavar="{tensorboard,mlflow,csv,json,parquet}")
    tb = sub.add_parser(
        "tensorboard",
        parents=[common],
        help="TensorBoard event files",
        description="Write TensorBoard event files: DIR/<run>/record holds the values logged while "
        "recording, DIR/<run>/hindsight those from replays, <run> being the run's --name (else "
        "run-<id>). DIR may be the script's own logdir: only these folders are written. Wall times are when "
        "the recording reached each value. Exporting again replaces them. " + STEPS,
        usage="flortrace export tensorboard [options] (DIR | --into RUN_DIR)",
    )
    tb.add_argument("dir", nargs="?", help="TensorBoard log folder (view: tensorboard --logdir DIR)")
    tb.add_argument(
        "--into",
        metavar="RUN_DIR",
        help="write one run into the script's own TensorBoard run folder (such as runs/exp), as its sub-runs "
        "flortrace and flortrace-hindsight, so TensorBoard lists them beside the script's values",
    )
    ml = sub.add_parser(
        "mlflow",
        parents=[common],
        help="MLflow runs",
        description="Log each run to MLflow, named by its --name: numbers as metrics at the time the "
        "recording reached them, each script argument as a param (with argv, script and git), flortrace's "
        "run as tags. Exporting a run again updates its MLflow run with the values it lacks. " + STEPS,
    )
    ml.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI: a server, sqlite:///FILE, file:///DIR (default: MLflow's, env "
        "MLFLOW_TRACKING_URI)",
    )
    ml.add_argument("--experiment", default="flortrace", help="experiment name (default flortrace)")
    ml.add_argument(
        "--into",
        metavar="MLFLOW_RUN_ID",
        help="add the values of one run to this existing MLflow run (such as the one the script logged) "
        "instead of a run of its own",
    )
    for fmt in ("csv", "json", "parquet"):
        one = sub.add_parser(fmt, parents=[common], help=f"a {fmt} file, as flortrace logs --format {fmt}")
        one.add_argument("file")
    return p


def export_main(argv: list[str]) -> int:
    """``python -m flortrace export FORMAT ...``; returns the exit code."""
    ns = _parser().parse_args(argv)
    problem = _path_problem(ns)
    if problem:
        print(f"flortrace: error: export {ns.format}: {problem}", file=sys.stderr)
        return 2
    try:
        return EXPORTERS[ns.format](ns)
    except (StoreError, ConfigError) as exc:
        print(f"flortrace: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = getattr(ns, "file", None) or getattr(ns, "dir", None)
        print(
            f"flortrace: error: export {ns.format}: cannot write {where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2


def _path_problem(ns) -> str | None:
    """Why the file or folder to export to cannot be written, checked before the store is read."""
    if hasattr(ns, "file"):
        return output_problem(ns.file)
    if ns.format != "tensorboard":
        return None
    if (ns.dir is None) == (ns.into is None):
        return "give a log folder DIR, or --into RUN_DIR (one of them)"
    if ns.into is not None:
        if not os.path.isdir(ns.into):
            return f"--into {ns.into}: there is no such folder (the script's TensorBoard run folder)"
        if ns.run is not None and len(ns.run) > 1:
            return "--into writes one run: give one --run"
    elif os.path.exists(ns.dir) and not os.path.isdir(ns.dir):
        return f"cannot write into {ns.dir}: it is not a folder"
    return None


def _tensorboard(ns) -> int:
    try:
        from .tensorboard import export_tensorboard
    except ImportError as exc:
        return _missing("tensorboard", "tensorboard", exc)
    with open_store(ns.store) as store:
        ids = run_ids(store.catalog, ns.run)
        written, skipped, folders = export_tensorboard(store.catalog, ids, ns.dir, ns.name, ns.into)
    _notice_skipped(skipped, "TensorBoard")
    where = ns.dir if ns.into is None else os.path.dirname(os.path.normpath(ns.into)) or "."
    shown = ", ".join(sorted({str(f.parent if ns.into is None else f) for f in folders})) or where
    print(f"wrote {written} value(s) of run {_ids(ids)} to {shown} (view: tensorboard --logdir {where})")
    return 0


def _mlflow(ns) -> int:
    try:
        from mlflow.exceptions import MlflowException

        from .mlflow import ExportError, export_mlflow
    except ImportError as exc:
        return _missing("mlflow", "mlflow-skinny", exc)
    with open_store(ns.store) as store:
        ids = run_ids(store.catalog, ns.run)
        try:
            done, skipped, renamed = export_mlflow(
                store.catalog, ids, ns.tracking_uri, ns.experiment, ns.name, ns.into
            )
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
        place = f"MLflow run {e.mlflow_id}" + ("" if ns.into else f" (experiment {ns.experiment})")
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


def _logs_file(ns) -> int:
    from ..verbs import logs

    with open_store(ns.store) as store:
        ids = run_ids(store.catalog, ns.run)
    args = ["--format", ns.format, "--output", ns.file]
    args += [a for run_id in ids for a in ("--run", str(run_id))]
    args += [a for name in ns.name or [] for a in ("--name", name)]
    if ns.store:
        args += ["--store", ns.store]
    code = logs(args)
    if code == 0:
        print(f"wrote the logged values of run {_ids(ids)} to {ns.file}")
    return code


def _missing(fmt: str, package: str, exc: ImportError) -> int:
    print(f"flortrace: export {fmt} needs {package} ({exc}): pip install 'flortrace[{fmt}]'", file=sys.stderr)
    return 2


def _notice_skipped(skipped: Counter, where: str) -> None:
    if skipped:
        names = ", ".join(sorted(skipped))
        count = sum(skipped.values())
        print(
            f"flortrace: skipped {count} non-numeric value(s) of {names} ({where} takes numbers)",
            file=sys.stderr,
        )


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids))


EXPORTERS = {
    "tensorboard": _tensorboard,
    "mlflow": _mlflow,
    "csv": _logs_file,
    "json": _logs_file,
    "parquet": _logs_file,
}
