"""MLflow runs from recorded runs, for ``flortrace export mlflow``.

One MLflow run per flortrace run, in one experiment: logged numbers become metrics with their original
timestamps and the same steps as the TensorBoard export (step = epoch for epoch-level values, else
``epoch * W + step``, see ``frame.global_step``); argv, script and git become params and tags. Recorded
and hindsight values land in the same metrics (MLflow keeps late values); the ``flortrace.hindsight`` tag
names the ones replays added. Exporting a run again replaces the MLflow run exported before (it is deleted,
which MLflow can undo).
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAM_VAL_LENGTH

from ..store import Catalog
from .frame import argv_text, global_step, number, step_widths

STATUS = {"finished": "FINISHED", "failed": "FAILED", "crashed": "FAILED"}


def export_mlflow(
    catalog: Catalog,
    run_ids: list[int],
    tracking_uri: str | None = None,
    experiment: str = "flortrace",
    names: list[str] | None = None,
) -> tuple[list[tuple[int, str, int]], Counter, dict[str, str]]:
    """Log the runs to MLflow; return ([(flortrace run, MLflow run id, metrics logged)], skipped values per
    name, {logged name: metric key} for names MLflow does not accept as they are)."""
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    store = str(catalog.path.parent)
    done, skipped, renamed = [], Counter(), {}
    for run_id in run_ids:
        run = catalog.run(run_id)
        for old in client.search_runs([experiment_id], f"tags.`flortrace.run` = '{run_id}'"):
            if old.data.tags.get("flortrace.store") == store:
                client.delete_run(old.info.run_id)
        widths = step_widths(catalog, run_id)
        metrics, hindsight = [], set()
        for row in catalog.logs(run_ids=[run_id], names=names):
            value = number(row)
            if value is None:
                skipped[row["name"]] += 1
                continue
            key = metric_key(row["name"])
            if key != row["name"]:
                renamed[row["name"]] = key
            if row["origin"] == "replay":
                hindsight.add(key)
            metrics.append(Metric(key, float(value), round(row["ts"] * 1000), global_step(row, widths)))
        tags = {
            "flortrace.run": str(run_id),
            "flortrace.store": store,
            "flortrace.status": run["status"],
            "flortrace.hindsight": ",".join(sorted(hindsight)),
            "mlflow.source.name": run["script"],
            "mlflow.source.type": "LOCAL",
        }
        if run["git"]:
            tags["mlflow.source.git.commit"] = run["git"]
        created = client.create_run(
            experiment_id,
            start_time=round(run["started"] * 1000),
            tags=tags,
            run_name=run["name"] or f"flortrace-{run_id}",
        )
        mlflow_id = created.info.run_id
        params = {"argv": argv_text(run), "script": run["script"], "git": run["git"] or "-"}
        client.log_batch(mlflow_id, params=[Param(k, _clip(v)) for k, v in params.items()])
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            client.log_batch(mlflow_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])
        if run["status"] in STATUS:
            client.set_terminated(
                mlflow_id, STATUS[run["status"]], end_time=round((run["ended"] or run["active"]) * 1000)
            )
        done.append((run_id, mlflow_id, len(metrics)))
    return done, skipped, renamed


def metric_key(name: str) -> str:
    """``name`` if MLflow accepts it as a metric key, else with the characters it refuses made ``_``."""
    if (
        re.fullmatch(r"[\w.\- /]+", name)
        and posixpath.normpath(name) == name
        and not name.startswith(("/", ".."))
    ):
        return name
    return re.sub(r"[^\w.\- ]", "_", name).strip(". ") or "_"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_PARAM_VAL_LENGTH else text[: MAX_PARAM_VAL_LENGTH - 3] + "..."
