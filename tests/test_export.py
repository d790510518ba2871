"""flortrace export: TensorBoard and MLflow files read back with their own readers (recorded wall times,
parsed params, updates instead of copies), csv/json/parquet files, one-line messages for what is missing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

from flortrace.cli import main
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
        flortrace.log({"half": w / 2, "neg": -w}, 10 * epoch)
    flortrace.log("final", w)
    """
)
HINDSIGHT = (
    SCRIPT.replace('flortrace.log("x", x)', 'flortrace.log("x", x)\n        flortrace.log("w_step", w)')
    .replace('flortrace.log("w", w)', 'flortrace.log("w", w)\n    flortrace.log("hind", 2 * w)')
    .replace('flortrace.log("note"', 'flortrace.log("g", w, step=100 + epoch)\n    flortrace.log("note"')
)
BATCHES = 5
RECORDED = {"x", "w", "acc@1", "half", "neg", "final"}  # the numbers logged while recording
HINDSIGHT_NAMES = {"w_step", "hind", "g"}


def run_cli(folder, *args):
    env = dict(os.environ, FLORTRACE_STORE=str(folder / ".store"), PYTHONPATH=os.getcwd(), PYTHONHASHSEED="0")
    out = subprocess.run(
        [sys.executable, "-m", "flortrace", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out


def export_main(argv):
    """``python -m flortrace export ...`` in this process, through the command line's error funnel."""
    return main(["export", *argv])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two recorded runs (seed 1 named "first" with options, seed 2), both replayed with hindsight lines."""
    folder = tmp_path_factory.mktemp("export")
    (folder / "train.py").write_text(SCRIPT)
    run_cli(folder, "-q", "--name", "first", "train.py", "1", "--lr", "0.5", "--fast", "--depth=3")
    run_cli(folder, "-q", "train.py", "2")
    (folder / "train.py").write_text(HINDSIGHT)
    run_cli(folder, "replay", "-q", "--run", "1", "train.py")
    run_cli(folder, "replay", "-q", "--run", "2", "train.py")
    return folder / ".store"


def logged(store, run_id):
    with Store.open_existing(store) as st:
        return st.catalog.logs(run_ids=[run_id])


def expected_step(row):
    if row["epoch"] is None:
        return 0
    if row["step"] is not None and row["loop_id"] is None:  # flortrace.log(..., step=N)
        return row["step"]
    return row["epoch"] if row["step"] is None else row["epoch"] * BATCHES + row["step"]


def expected_wall_time(row, rows, epochs):
    """When the recording reached the row: its own time if recorded, else that of the recorded value at the
    same epoch, step and loop, else the end of its recorded epoch."""
    if row["origin"] == "record":
        return row["ts"]
    key = (row["epoch"], row["step"], row["loop_id"])
    same = [r["ts"] for r in rows if r["origin"] == "record" and (r["epoch"], r["step"], r["loop_id"]) == key]
    return same[0] if same else epochs[row["epoch"]]


def recorded_epoch_ends(store, run_id):
    with Store.open_existing(store) as st:
        return {e["epoch"]: e["started"] + e["seconds"] for e in st.catalog.epochs(run_id)}


def test_log_forms_land_as_logged(store):
    rows = logged(store, 1)
    pairs = {(r["name"], r["epoch"], r["step"]): r["value"] for r in rows}
    w = {r["epoch"]: r["value"] for r in rows if r["name"] == "w"}
    for epoch in range(4):
        assert (
            pairs[("half", epoch, 10 * epoch)] == w[epoch] / 2
            and pairs[("neg", epoch, 10 * epoch)] == -w[epoch]
        )
        assert pairs[("g", epoch, 100 + epoch)] == w[epoch]
    assert all(r["loop_id"] is None for r in rows if r["name"] in ("half", "neg", "g"))


def test_tensorboard_files_read_back(store, tmp_path, capsys):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    assert export_main(["tensorboard", str(tmp_path), "--run", "1", "--run", "2", "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    assert "wrote 130 value(s) of run 1, 2" in out
    assert "skipped 16 non-numeric value(s) of note, pair" in err
    for run_id, run_folder in ((1, "first"), (2, "run-2")):  # named by --name, else by id
        rows, ends = logged(store, run_id), recorded_epoch_ends(store, run_id)
        replayed = min(r["ts"] for r in rows if r["origin"] == "replay")
        for folder, origin, names in [
            ("record", "record", RECORDED),
            ("hindsight", "replay", HINDSIGHT_NAMES),
        ]:
            acc = event_accumulator.EventAccumulator(str(tmp_path / run_folder / folder))
            acc.Reload()
            assert set(acc.Tags()["scalars"]) == names
            for name in names:
                want = [r for r in rows if r["name"] == name and r["origin"] == origin]
                got = acc.Scalars(name)
                assert [e.step for e in got] == [expected_step(r) for r in want]
                times = [e.wall_time for e in got]
                assert times == pytest.approx([expected_wall_time(r, rows, ends) for r in want], abs=1e-6)
                assert max(times) < replayed  # when the recording ran, not when the replay did
                for e, r in zip(got, want, strict=True):
                    value = float(r["value"])
                    assert (
                        e.value == pytest.approx(value, rel=1e-6) or math.isinf(e.value) and math.isinf(value)
                    )
    assert [e.step for e in acc.Scalars("w_step")] == list(range(4 * BATCHES))
    assert [e.step for e in acc.Scalars("g")] == [100, 101, 102, 103]


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


def test_tensorboard_into_the_scripts_own_run(store, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    own = tmp_path / "runs" / "exp"  # what the script's SummaryWriter wrote
    writer = EventFileWriter(str(own))
    for step in range(4):
        value = summary_pb2.Summary.Value(tag="train/loss", simple_value=1.0 / (step + 1))
        writer.add_event(
            event_pb2.Event(wall_time=1.0 + step, step=step, summary=summary_pb2.Summary(value=[value]))
        )
    writer.close()
    (mine,) = own.glob("events.out.tfevents.*")
    before = mine.read_bytes()
    for _ in range(2):
        assert export_main(["tensorboard", "--into", str(own), "--run", "1", "--store", str(store)]) == 0
    assert f"(view: tensorboard --logdir {tmp_path / 'runs'})" in capsys.readouterr().out
    assert mine.read_bytes() == before and list(own.glob("events.out.tfevents.*")) == [mine]
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(tmp_path / "runs"))
    multiplexer.Reload()
    assert set(multiplexer.Runs()) == {"exp", "exp/flortrace", "exp/flortrace-hindsight"}
    assert len(multiplexer.Tensors("exp/flortrace-hindsight", "hind")) == 4
    assert len(multiplexer.Tensors("exp", "train/loss")) == 4


def test_tensorboard_usage_errors(store, tmp_path, capsys):
    assert export_main(["tensorboard", "--store", str(store)]) == 2
    assert export_main(["tensorboard", str(tmp_path), "--into", str(tmp_path), "--store", str(store)]) == 2
    assert export_main(["tensorboard", "--into", str(tmp_path / "nope"), "--store", str(store)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("give a log folder DIR, or --into RUN_DIR (one of them)") and len(err) == 3
    assert "there is no such folder" in err[2]


def check_mlflow_run(client, mlrun, store, hindsight="g,hind,w_step"):
    """The MLflow run of a flortrace run: params, tags, name, metrics at recorded steps and wall times."""
    run_id = int(mlrun.data.tags["flortrace.run"])
    params = mlrun.data.params
    assert params["script"].endswith("train.py") and params["arg1"] == str(run_id)
    if run_id == 1:
        assert params["argv"] == "1 --lr 0.5 --fast --depth=3" and mlrun.info.run_name == "first"
        assert (params["lr"], params["fast"], params["depth"]) == ("0.5", "true", "3")
    else:
        assert params["argv"] == "2" and mlrun.info.run_name == "flortrace-2"
    assert mlrun.data.tags["flortrace.hindsight"] == hindsight
    assert mlrun.info.status == "FINISHED"
    rows, ends = logged(store, run_id), recorded_epoch_ends(store, run_id)
    for name, key in [("x", "x"), ("w_step", "w_step"), ("hind", "hind"), ("acc@1", "acc_1"), ("g", "g")]:
        want = [r for r in rows if r["name"] == name]
        got = sorted(client.get_metric_history(mlrun.info.run_id, key), key=lambda m: (m.step, m.timestamp))
        assert [(m.step, m.timestamp) for m in got] == [
            (expected_step(r), round(expected_wall_time(r, rows, ends) * 1000)) for r in want
        ]
        assert [_stored(m.value) for m in got] == [float(r["value"]) for r in want]
    assert "note" not in mlrun.data.metrics and "pair" not in mlrun.data.metrics


def _stored(value):
    return math.copysign(math.inf, value) if abs(value) >= sys.float_info.max else value  # SQL stores: inf


def test_mlflow_file_store_and_export_again_updates(store, tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # a file: URI is asked for: allowed
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
    assert out.count(": created MLflow run") == 2
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("hind")
    first = {r.info.run_id for r in client.search_runs([experiment.experiment_id])}
    assert export_main(args) == 0  # again: the same MLflow runs, nothing added twice
    out = capsys.readouterr().out
    assert out.count(": updated MLflow run") == 2 and "0 metric value(s) logged; 65 it had already" in out
    with Store.open_existing(store) as st:  # a replay since then logged one more value
        (row,) = [r for r in st.catalog.logs(run_ids=[2], names=["hind"]) if r["epoch"] == 1]
        st.catalog.add_logs(2, [dict(row, name="late", value=7.0)])
    try:
        assert export_main([*args[:-4], "--run", "2"]) == 0
    finally:
        with Store.open_existing(store) as st:
            st.catalog.delete_logs(2, "replay", [1], names=["late"])
    assert "run 2: updated MLflow run" in (out := capsys.readouterr().out)
    assert "1 metric value(s) logged; 65 it had already" in out
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    assert {r.info.run_id for r in runs} == first and sorted(r.data.tags["flortrace.run"] for r in runs) == [
        "1",
        "2",
    ]
    for mlrun in runs:
        late = mlrun.data.tags["flortrace.run"] == "2"
        check_mlflow_run(client, mlrun, store, "g,hind,late,w_step" if late else "g,hind,w_step")


def test_mlflow_default_and_sqlite_uris(store, tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("alembic")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert export_main(["mlflow", "--store", str(store), "--run", "2"]) == 0  # MLflow 3's default: sqlite
    assert ": created MLflow run" in capsys.readouterr().out
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert (tmp_path / "mlflow.db").exists()
    assert export_main(["mlflow", "--tracking-uri", uri, "--store", str(store), "--run", "2"]) == 0
    out = capsys.readouterr().out
    assert ": updated MLflow run" in out and "0 metric value(s) logged; 65 it had already" in out
    client = MlflowClient(uri)
    (mlrun,) = client.search_runs([client.get_experiment_by_name("flortrace").experiment_id])
    check_mlflow_run(client, mlrun, store)


def test_mlflow_into_an_existing_run(store, tmp_path, capsys):
    pytest.importorskip("mlflow")
    from flortrace.export.mlflow import client as mlflow_client

    uri = (tmp_path / "mlruns").as_uri()
    client = mlflow_client(uri)
    own = client.create_run(client.create_experiment("script"), run_name="the script's own")
    client.log_param(own.info.run_id, "lr", "0.5")
    args = ["mlflow", "--tracking-uri", uri, "--store", str(store), "--run", "1", "--into", own.info.run_id]
    assert export_main(args) == 0
    assert (
        f"run 1: added to MLflow run {own.info.run_id}: 65 metric value(s) logged" in capsys.readouterr().out
    )
    mlrun = client.get_run(own.info.run_id)
    assert mlrun.info.run_name == "the script's own" and mlrun.data.params["lr"] == "0.5"
    assert mlrun.data.params["depth"] == "3" and mlrun.data.tags["flortrace.run"] == "1"
    assert len(client.get_metric_history(own.info.run_id, "hind")) == 4
    assert export_main([*args[:-2], "--into", "0" * 32]) == 2
    assert export_main([*args, "--run", "2"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("flortrace: error: export mlflow: there is no MLflow run 000") and len(err) == 2
    assert err[1].endswith("--into adds one flortrace run to one MLflow run: give one --run")


def test_mlflow_says_what_a_database_uri_needs(store, tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "alembic" else real(name, *a)
    )
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    assert export_main(["mlflow", "--tracking-uri", uri, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"flortrace: error: export mlflow: MLflow needs alembic for the tracking URI {uri}: "
        "pip install 'flortrace[mlflow]'\n"
    )
    assert not (tmp_path / "m.db").exists()


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
    assert err.count("\n") == 1 and f"pip install 'flortrace[{fmt}]'" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_unknown_run_is_one_line_and_exit_2(store, tmp_path, capsys):
    assert export_main(["json", str(tmp_path / "x.json"), "--store", str(store), "--run", "9"]) == 2
    assert capsys.readouterr().err.strip().endswith("(see python -m flortrace runs)")
    assert not (tmp_path / "x.json").exists()


def test_metric_keys_mlflow_accepts():
    pytest.importorskip("mlflow")
    from flortrace.export.mlflow import metric_key

    assert metric_key("train/loss") == "train/loss" and metric_key("val loss-2.x") == "val loss-2.x"
    assert metric_key("acc@1") == "acc_1" and metric_key("../up") == "up" and metric_key("/abs") == "abs"
    assert metric_key("w[0]") == "w_0" and metric_key("float(W.sum())") == "float_W.sum"
    assert metric_key("...") == "_" and metric_key("a/../b") == "a/b" and metric_key("a//b") == "a/b"


def test_parquet_columns_are_typed(store, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    target = tmp_path / "logs.parquet"
    assert export_main(["parquet", str(target), "--store", str(store), "--run", "1"]) == 0
    frame = pd.read_parquet(target)
    assert list(frame.columns) == ["run", "name", "value", "text", "epoch", "step", "origin"]
    assert str(frame["value"].dtype) == "Float64" and str(frame["step"].dtype) == "Int64"
    assert str(frame["epoch"].dtype) == "Int64" and str(frame["run"].dtype) == "Int64"
    rows = logged(store, 1)
    assert len(frame) == len(rows)
    for got, want in zip(frame.itertuples(), rows, strict=True):
        value = want["value"]
        if want["name"] in ("note", "pair"):
            assert pd.isna(got.value) and json.loads(got.text) == value
        else:
            assert got.value == (math.inf if value == "inf" else value) and pd.isna(got.text)
        assert (None if pd.isna(got.step) else got.step) == want["step"]


def test_runs_shows_the_name(store):
    out = run_cli(store.parent, "runs")
    header, *lines = out.stdout.splitlines()
    assert header.split()[:3] == ["id", "name", "status"]
    assert [line.split()[:2] for line in lines] == [["2", "-"], ["1", "first"]]


@pytest.mark.parametrize(
    "argv, params",
    [
        (
            ["--lr", "0.1", "--epochs=5", "-b", "32", "--no-shuffle"],
            {"lr": "0.1", "epochs": "5", "b": "32", "no_shuffle": "true"},
        ),
        (["--fast", "--lr", "-0.5", "data.csv"], {"fast": "true", "lr": "-0.5", "arg1": "data.csv"}),
        (["train", "--", "--not-an-option"], {"arg1": "train", "arg2": "--not-an-option"}),
        (["--x", "1", "--x", "2", "--last"], {"x": "2", "last": "true"}),
    ],
)
def test_script_args_as_text(argv, params):
    from flortrace.scriptargs import texts

    assert texts(argv) == params
