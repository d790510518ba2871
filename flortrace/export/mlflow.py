"""MLflow runs from recorded runs, for ``flortrace export mlflow``.

One MLflow run per flortrace run, in one experiment, named by the run's ``--name``: logged numbers become
metrics at the time the recording reached them (``frame.wall_times``) and the same steps as the TensorBoard
export (step = epoch for epoch-level values, else ``epoch * W + step``, see ``frame.global_step``); the
script's arguments become one param each (``scriptargs.texts``), beside ``argv``, ``script`` and ``git``.
Recorded and hindsight values land in the same metrics; the ``flortrace.hindsight`` tag names the ones
replays added. Exporting a run again updates the MLflow run exported before: values it lacks are added
(MLflow keeps every value it was given, so a value that changed since is added beside the old one, and
said). ``into`` adds to an existing MLflow run instead, such as the one the script logged itself.

Tracking URIs: MLflow's default and ``sqlite:`` need SQLAlchemy and Alembic (in ``flortrace[mlflow]``);
``file:`` and plain paths use MLflow's file store (kept by MLflow in maintenance mode); servers as usual.
"""

from __future__ import annotations

import importlib.util
import math
import os
import posixpath
import re
import sys
from collections import Counter
from dataclasses import dataclass, field

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAM_VAL_LENGTH

from ..exceptions import ExportError
from ..scriptargs import texts as script_params
from ..store import Catalog
from .frame import argv_text, global_step, number, step_widths, wall_times

STATUS = {"finished": "FINISHED", "failed": "FAILED", "crashed": "FAILED"}
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's SQLAlchemy stores
OWN_PARAMS = ("argv", "script", "git")


@dataclass
class Exported:
    """What one flortrace run became in MLflow."""

    run: int
    mlflow_id: str
    action: str  # "created", "updated" or "added to"
    logged: int = 0  # metric values sent
    present: int = 0  # values the MLflow run already had
    changed: Counter = field(default_factory=Counter)  # metric key -> values that differ from MLflow's


def client(tracking_uri: str | None) -> MlflowClient:
    """An MlflowClient for ``tracking_uri`` (None: MLflow's default), with MLflow's file store allowed for
    ``file:`` URIs and paths, and a clear error when a database store's packages are missing."""
    from mlflow.tracking import get_tracking_uri

    uri = tracking_uri or get_tracking_uri()
    if uri.startswith(("file:", "/", ".", "~")):
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # asked for by name: MLflow's file store
    elif uri.split(":")[0].split("+")[0] in DATABASES:
        missing = [name for name in ("sqlalchemy", "alembic") if importlib.util.find_spec(name) is None]
        if missing:
            raise ExportError(
                f"MLflow needs {' and '.join(missing)} for the tracking URI {uri}: "
                "pip install 'flortrace[mlflow]'"
            )
    return MlflowClient(tracking_uri)


def export_mlflow(
    catalog: Catalog,
    run_ids: list[int],
    tracking_uri: str | None = None,
    experiment: str = "flortrace",
    names: list[str] | None = None,
    into: str | None = None,
) -> tuple[list[Exported], Counter, dict[str, str]]:
    """Log the runs to MLflow; return (what each became, skipped values per name, {logged name: metric key}
    for names MLflow does not accept as they are)."""
    if into is not None and len(run_ids) != 1:
        raise ExportError("--into adds one flortrace run to one MLflow run: give one --run")
    mlflow = client(tracking_uri)
    store = str(catalog.path.parent)
    done, skipped, renamed = [], Counter(), {}
    experiment_id = None if into is not None else _experiment(mlflow, experiment)
    for run_id in run_ids:
        run = catalog.run(run_id)
        if into is not None:
            existing = _run_or_none(mlflow, into)
            if existing is None:
                raise ExportError(f"there is no MLflow run {into} at {mlflow.tracking_uri}")
            exported = Exported(run_id, into, "added to")
        else:
            existing = _exported_before(mlflow, experiment_id, run_id, store)
            if existing is None:
                existing = _create(mlflow, experiment_id, run, run_id, store)
                exported = Exported(run_id, existing.info.run_id, "created")
            else:
                exported = Exported(run_id, existing.info.run_id, "updated")
        metrics, hindsight = _metrics(catalog, run_id, names, skipped, renamed)
        _log_params(mlflow, existing, run)
        tags = {"flortrace.run": str(run_id), "flortrace.store": store, "flortrace.status": run["status"]}
        tags["flortrace.hindsight"] = ",".join(sorted(hindsight | _tag_set(existing, "flortrace.hindsight")))
        for key, value in tags.items():
            mlflow.set_tag(exported.mlflow_id, key, value)
        new = _new_points(mlflow, existing, metrics, exported)
        for start in range(0, len(new), MAX_METRICS_PER_BATCH):
            mlflow.log_batch(exported.mlflow_id, metrics=new[start : start + MAX_METRICS_PER_BATCH])
        exported.logged = len(new)
        if into is None and run["status"] in STATUS:
            end = round((run["ended"] or run["active"]) * 1000)
            mlflow.set_terminated(exported.mlflow_id, STATUS[run["status"]], end_time=end)
        done.append(exported)
    return done, skipped, renamed


def _experiment(mlflow: MlflowClient, name: str) -> str:
    found = mlflow.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage == "deleted":
        mlflow.restore_experiment(found.experiment_id)
    return found.experiment_id if found is not None else mlflow.create_experiment(name)


def _run_or_none(mlflow: MlflowClient, mlflow_id: str):
    try:
        return mlflow.get_run(mlflow_id)
    except MlflowException:
        return None


def _exported_before(mlflow: MlflowClient, experiment_id: str, run_id: int, store: str):
    for found in mlflow.search_runs([experiment_id], f"tags.`flortrace.run` = '{run_id}'"):
        if found.data.tags.get("flortrace.store") == store:
            return found
    return None


def _create(mlflow: MlflowClient, experiment_id: str, run: dict, run_id: int, store: str):
    tags = {"mlflow.source.name": run["script"], "mlflow.source.type": "LOCAL"}
    if run["git"]:
        tags["mlflow.source.git.commit"] = run["git"]
    return mlflow.create_run(
        experiment_id,
        start_time=round(run["started"] * 1000),
        tags=tags,
        run_name=run["name"] or f"flortrace-{run_id}",
    )


def _metrics(catalog, run_id, names, skipped, renamed):
    """The run's numbers as MLflow metrics, and the keys replays added."""
    widths = step_widths(catalog, run_id)
    wall_time = wall_times(catalog, run_id)
    keys = MetricKeys()
    metrics, hindsight = [], set()
    for row in catalog.logs(run_ids=[run_id], names=names):
        value = number(row)
        if value is None:
            skipped[row["name"]] += 1
            continue
        key = keys(row["name"])
        if key != row["name"]:
            renamed[row["name"]] = key
        if row["origin"] == "replay":
            hindsight.add(key)
        metrics.append(Metric(key, float(value), round(wall_time(row) * 1000), global_step(row, widths)))
    return metrics, hindsight


def _log_params(mlflow: MlflowClient, existing, run: dict) -> None:
    """argv, script, git and one param per argument, except those the MLflow run has (MLflow's params are
    set once)."""
    params = {"argv": argv_text(run), "script": run["script"], "git": run["git"] or "-"}
    for key, value in script_params(run["argv"]).items():
        key = metric_key(key)
        params[f"arg.{key}" if key in OWN_PARAMS else key] = value
    have = existing.data.params
    fresh = [Param(k, _clip(v)) for k, v in params.items() if k not in have]
    for start in range(0, len(fresh), 100):
        mlflow.log_batch(existing.info.run_id, params=fresh[start : start + 100])


def _new_points(mlflow: MlflowClient, existing, metrics: list, exported: Exported) -> list:
    """The metric values the MLflow run does not have yet (counting those that differ from its own)."""
    keys = {m.key for m in metrics} & set(existing.data.metrics)
    have = {}
    for key in keys:
        for m in mlflow.get_metric_history(existing.info.run_id, key):
            have.setdefault((key, m.step, m.timestamp), set()).add(_stored(m.value))
    new = []
    for m in metrics:
        old = have.get((m.key, m.step, m.timestamp))
        if old is not None and _stored(m.value) in old:
            exported.present += 1
            continue
        if old is not None:
            exported.changed[m.key] += 1
        new.append(m)
    return new


def _stored(value: float):
    """A value as stores keep it: SQL stores turn infinities into the largest float, NaN never equals."""
    if math.isnan(value):
        return "nan"
    return math.copysign(math.inf, value) if abs(value) >= sys.float_info.max else value


def _tag_set(existing, tag: str) -> set[str]:
    value = existing.data.tags.get(tag) or ""
    return {v for v in value.split(",") if v}


class MetricKeys:
    """Metric keys for logged names: the name itself where MLflow takes it, else a readable one (each run
    of refused characters made one ``_``), distinct for distinct names."""

    def __init__(self):
        self.keys, self.used = {}, set()

    def __call__(self, name: str) -> str:
        key = self.keys.get(name)
        if key is None:
            key = base = metric_key(name)
            n = 1
            while key in self.used:
                n += 1
                key = f"{base}_{n}"
            self.keys[name] = key
            self.used.add(key)
        return key


def metric_key(name: str) -> str:
    """``name`` if MLflow accepts it as a metric or param key, else with the characters it refuses made
    ``_`` (``acc@1`` -> ``acc_1``, ``w[0]`` -> ``w_0``) and no empty, ``.`` or ``..`` path parts."""
    if _accepted(name):
        return name
    key = re.sub(r"[^\w.\- /:]+", "_", name)
    key = "/".join(p.strip("_ ") for p in key.split("/") if p.strip("_ ") not in ("", ".", ".."))
    for candidate in (key, key.replace("/", "_")):
        if candidate and _accepted(candidate):
            return candidate
    return "_"


def _accepted(key: str) -> bool:
    try:
        from mlflow.utils.validation import path_not_unique, validate_param_and_metric_name
    except ImportError:  # other MLflow versions: the rule of 2.x and 3.x
        return bool(re.fullmatch(r"[\w.\- /:]+", key)) and posixpath.normpath(key) == key and key[0] != "/"
    return bool(validate_param_and_metric_name(key)) and not path_not_unique(key)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_PARAM_VAL_LENGTH else text[: MAX_PARAM_VAL_LENGTH - 3] + "..."
