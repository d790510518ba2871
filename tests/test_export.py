"""flortrace export: TensorBoard and MLflow files read back with their own readers, csv/json files, and the
one-line message when an exporter's package is missing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

from flortrace.export.cli import export_main
from flortrace.store import Store

SCRIPT = textwrap.dedent(
    """\
    import math
    import random
    import sys

    import flortrace

    random.seed(int(sys.argv[1]))
    w = 0.0


    def train(w):
        for i in range(5):
            x = random.random()
            w += 0.1 * x
            flortrace.log("x", x)
        return w


    for epoch in range(4):
        w = train(w)
        flortrace.log("w", w)
        flortrace.log("note", f"epoch {epoch}")
        flortrace.log("pair", [epoch, w])
        flortrace.log("acc@1", math.inf if epoch == 2 else w / 2)
    flortrace.log("final", w)
    """
)
HINDSIGHT = SCRIPT.replace(
    'flortrace.log("x", x)', 'flortrace.log("x", x)\n        flortrace.log("w_step", w)'
).replace('flortrace.log("w", w)', 'flortrace.log("w", w)\n    flortrace.log("hind", 2 * w)')
BATCHES = 5


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two recorded runs (seeds 1 and 2), both replayed with hindsight statements."""
    folder = tmp_path_factory.mktemp("export")
    env = dict(os.environ, FLORTRACE_STORE=str(folder / ".store"), PYTHONPATH=os.getcwd(), PYTHONHASHSEED="0")

    def flortrace(*args):
        out = subprocess.run(
            [sys.executable, "-m", "flortrace", "-q", *args]
            if args[0] != "replay"
            else [sys.executable, "-m", "flortrace", "replay", "-q", *args[1:]],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr

    (folder / "train.py").write_text(SCRIPT)
    flortrace("train.py", "1")
    flortrace("train.py", "2")
    (folder / "train.py").write_text(HINDSIGHT)
    flortrace("replay", "--run", "1", "train.py", "1")
    flortrace("replay", "--run", "2", "train.py", "2")
    return folder / ".store"


def logged(store, run_id):
    with Store.open_existing(store) as st:
        return st.catalog.logs(run_ids=[run_id])


def expected_step(row):
    if row["epoch"] is None:
        return 0
    return row["epoch"] if row["step"] is None else row["epoch"] * BATCHES + row["step"]


def test_tensorboard_files_read_back(store, tmp_path, capsys):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    assert export_main(["tensorboard", str(tmp_path), "--run", "1", "--run", "2", "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    assert "wrote 106 value(s) of run 1, 2" in out
    assert "skipped 16 non-numeric value(s) of note, pair" in err
    for run_id in (1, 2):
        rows = logged(store, run_id)
        for folder, origin, names in [
            ("record", "record", {"x", "w", "acc@1", "final"}),
            ("hindsight", "replay", {"w_step", "hind"}),
        ]:
            acc = event_accumulator.EventAccumulator(str(tmp_path / f"run-{run_id}" / folder))
            acc.Reload()
            assert set(acc.Tags()["scalars"]) == names
            for name in names:
                want = [r for r in rows if r["name"] == name and r["origin"] == origin]
                got = acc.Scalars(name)
                assert [e.step for e in got] == [expected_step(r) for r in want]
                assert [e.wall_time for e in got] == [r["ts"] for r in want]
                for e, r in zip(got, want, strict=True):
                    value = float(r["value"])
                    assert (
                        e.value == pytest.approx(value, rel=1e-6) or math.isinf(e.value) and math.isinf(value)
                    )
    steps = [e.step for e in acc.Scalars("w_step")]
    assert steps == list(range(4 * BATCHES))


def test_tensorboard_export_again_replaces_the_files(store, tmp_path, capsys):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    for _ in range(2):
        assert export_main(["tensorboard", str(tmp_path), "--store", str(store), "--name", "w"]) == 0
    folder = tmp_path / "run-2" / "record"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    acc = event_accumulator.EventAccumulator(str(folder))
    acc.Reload()
    assert [e.step for e in acc.Scalars("w")] == [0, 1, 2, 3]
    assert not list((tmp_path / "run-2" / "hindsight").glob("events.out.tfevents.*"))
    assert "skipped" not in capsys.readouterr().err


def test_mlflow_runs_read_back(store, tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow-skinny has no SQL store
    uri = (tmp_path / "mlruns").as_uri()
    args = [
        "mlflow",
        "--tracking-uri",
        uri,
        "--experiment",
        "hind",
        "--store",
        str(store),
        "--run",
        "1",
        "--run",
        "2",
    ]
    assert export_main(args) == 0
    out, err = capsys.readouterr()
    assert "skipped 16 non-numeric" in err and "'acc@1' is logged to MLflow as 'acc_1'" in err
    assert export_main(args) == 0  # again: replaces the MLflow runs
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("hind")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["flortrace.run"] for r in runs) == ["1", "2"]
    for mlrun in runs:
        run_id = int(mlrun.data.tags["flortrace.run"])
        assert mlrun.data.params["argv"] == str(run_id) and mlrun.data.params["script"].endswith("train.py")
        assert mlrun.data.tags["flortrace.hindsight"] == "hind,w_step"
        assert mlrun.info.status == "FINISHED"
        rows = logged(store, run_id)
        for name, key in [
            ("x", "x"),
            ("w_step", "w_step"),
            ("hind", "hind"),
            ("acc@1", "acc_1"),
            ("final", "final"),
        ]:
            want = [r for r in rows if r["name"] == name]
            got = sorted(
                client.get_metric_history(mlrun.info.run_id, key), key=lambda m: (m.step, m.timestamp)
            )
            assert [(m.step, m.timestamp) for m in got] == [
                (expected_step(r), round(r["ts"] * 1000)) for r in want
            ]
            assert [m.value for m in got] == [float(r["value"]) for r in want]
        assert "note" not in mlrun.data.metrics and "pair" not in mlrun.data.metrics


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_file_formats(store, tmp_path, fmt, capsys):
    target = tmp_path / f"logs.{fmt}"
    assert export_main([fmt, str(target), "--store", str(store), "--run", "2", "--name", "hind"]) == 0
    want = [r["value"] for r in logged(store, 2) if r["name"] == "hind"]
    text = target.read_text()
    if fmt == "json":
        assert [r["value"] for r in json.loads(text)] == want
    else:
        lines = text.splitlines()
        assert lines[0].startswith("run,name,value") and [float(x.split(",")[2]) for x in lines[1:]] == want
    assert f"to {target}" in capsys.readouterr().out


@pytest.mark.parametrize("fmt, package", [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_missing_package_is_one_line_and_exit_2(store, tmp_path, monkeypatch, capsys, fmt, package):
    for name in [m for m in sys.modules if m.split(".")[0] == package or m == f"flortrace.export.{fmt}"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)
    args = (
        [fmt, str(tmp_path)] if fmt == "tensorboard" else [fmt, "--tracking-uri", (tmp_path / "m").as_uri()]
    )
    assert export_main([*args, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install {package}" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_unknown_run_is_one_line_and_exit_2(store, tmp_path, capsys):
    assert export_main(["json", str(tmp_path / "x.json"), "--store", str(store), "--run", "9"]) == 2
    assert capsys.readouterr().err.strip().endswith("(see python -m flortrace runs)")
    assert not (tmp_path / "x.json").exists()


def test_metric_keys_mlflow_accepts():
    pytest.importorskip("mlflow")
    from flortrace.export.mlflow import metric_key

    assert metric_key("train/loss") == "train/loss" and metric_key("val loss-2.x") == "val loss-2.x"
    assert metric_key("acc@1") == "acc_1" and metric_key("../up") == "_up" and metric_key("/abs") == "_abs"
    assert metric_key("...") == "_"
