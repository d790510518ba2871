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
        description="Write TensorBoard event files: DIR/run-<id>/record holds the values logged while "
        "recording, DIR/run-<id>/hindsight those from replays. Exporting again replaces them. " + STEPS,
    )
    tb.add_argument("dir", help="TensorBoard log folder (view: tensorboard --logdir DIR)")
    ml = sub.add_parser(
        "mlflow",
        parents=[common],
        help="MLflow runs",
        description="Log each run to MLflow: numbers as metrics with their original timestamps, argv, "
        "script and git as params and tags. Exporting a run again replaces its MLflow run. " + STEPS,
    )
    ml.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLflow's, env MLFLOW_TRACKING_URI)")
    ml.add_argument("--experiment", default="flortrace", help="experiment name (default flortrace)")
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
    if hasattr(ns, "dir") and os.path.exists(ns.dir) and not os.path.isdir(ns.dir):
        return f"cannot write into {ns.dir}: it is not a folder"
    return None


def _tensorboard(ns) -> int:
    try:
        from .tensorboard import export_tensorboard
    except ImportError as exc:
        return _missing("tensorboard", "tensorboard", exc)
    with open_store(ns.store) as store:
        ids = run_ids(store.catalog, ns.run)
        written, skipped = export_tensorboard(store.catalog, ids, ns.dir, ns.name)
    _notice_skipped(skipped, "TensorBoard")
    print(f"wrote {written} value(s) of run {_ids(ids)} to {ns.dir} (view: tensorboard --logdir {ns.dir})")
    return 0


def _mlflow(ns) -> int:
    try:
        from mlflow.exceptions import MlflowException

        from .mlflow import export_mlflow
    except ImportError as exc:
        return _missing("mlflow", "mlflow", exc)
    with open_store(ns.store) as store:
        ids = run_ids(store.catalog, ns.run)
        try:
            done, skipped, renamed = export_mlflow(
                store.catalog, ids, ns.tracking_uri, ns.experiment, ns.name
            )
        except MlflowException as exc:
            print(f"flortrace: error: mlflow: {exc.message}", file=sys.stderr)
            return 2
    _notice_skipped(skipped, "MLflow")
    for name, key in renamed.items():
        print(
            f"flortrace: {name!r} is logged to MLflow as {key!r} (MLflow refuses the name)", file=sys.stderr
        )
    for run_id, mlflow_id, count in done:
        print(f"run {run_id}: {count} metric value(s) in MLflow run {mlflow_id} (experiment {ns.experiment})")
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
    print(f"flortrace: export {fmt} needs {package} ({exc}): pip install {package}", file=sys.stderr)
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
