"""flortrace.dataframe: one row per (run, epoch, step), a column per name, recorded and replayed merged."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest

import flortrace
from flortrace.export.frame import dataframe, global_step
from flortrace.runtime.logvalues import typed
from flortrace.store import Store, StoreError

pd = pytest.importorskip("pandas")


def add_run(root, argv, rows, git=None, script="train.py"):
    """A finished run holding ``rows``: (name, value, epoch, step, origin) stored as the recorder would."""
    with Store(root) as store:
        run_id = store.catalog.begin_run(script, argv, str(root), {}, {}, git=git)
        logs = []
        for i, (name, value, epoch, step, origin) in enumerate(rows):
            vtype, val = typed(value)
            logs.append(
                dict(
                    name=name,
                    value=val,
                    vtype=vtype,
                    epoch=epoch,
                    step=step,
                    loop_id="L",
                    origin=origin,
                    ts=1000.0 + i,
                )
            )
        store.catalog.add_logs(run_id, logs)
        store.catalog.end_run(run_id, "finished", 0)
    return run_id


ROWS = [
    ("loss", 0.5, 0, 0, "record"),
    ("loss", 0.25, 0, 1, "record"),
    ("acc", 0.75, 0, None, "record"),
    ("grad", 3.0, 0, 0, "replay"),
    ("grad", 2.0, 0, 1, "replay"),
    ("loss", 0.125, 1, 0, "record"),
    ("grad", 1.0, 1, 0, "replay"),
    ("acc", 0.875, 1, None, "record"),
    ("test_acc", 0.9, None, None, "record"),
]


def test_rows_are_run_epoch_step_and_origins_merge(tmp_path):
    add_run(tmp_path, ["--lr", "0.1"], ROWS)
    df = dataframe(store=tmp_path)
    assert list(df.columns) == ["run", "epoch", "step", "loss", "acc", "grad", "test_acc"]
    assert [str(df[k].dtype) for k in ("run", "epoch", "step")] == ["Int64"] * 3
    keyed = {
        (e if e is not pd.NA else None, s if s is not pd.NA else None): row
        for e, s, row in zip(df["epoch"], df["step"], df.to_dict("records"), strict=True)
    }
    assert set(keyed) == {(0, 0), (0, 1), (0, None), (1, 0), (1, None), (None, None)}
    assert keyed[(0, 0)]["loss"] == 0.5 and keyed[(0, 0)]["grad"] == 3.0  # recorded and hindsight, one row
    assert keyed[(0, 1)]["loss"] == 0.25 and keyed[(0, 1)]["grad"] == 2.0
    assert keyed[(1, 0)]["loss"] == 0.125 and keyed[(1, 0)]["grad"] == 1.0
    assert keyed[(1, None)]["acc"] == 0.875 and math.isnan(keyed[(1, None)]["loss"])
    assert keyed[(None, None)]["test_acc"] == 0.9
    assert (df["run"] == 1).all()


def test_names_choose_and_order_columns(tmp_path):
    add_run(tmp_path, [], ROWS)
    df = dataframe("grad", "acc", "never_logged", store=tmp_path)
    assert list(df.columns) == ["run", "epoch", "step", "grad", "acc", "never_logged"]
    assert len(df) == 5 and df["never_logged"].isna().all()
    assert sorted(df["grad"].dropna()) == [1.0, 2.0, 3.0]


def test_latest_run_by_default_and_several_runs_carry_their_argv_and_git(tmp_path):
    add_run(tmp_path, ["--lr", "0.1"], [("loss", 1.0, 0, None, "record")], git="abc123")
    add_run(tmp_path, ["--lr", "0.2", "a b"], [("loss", 2.0, 0, None, "record")], git="def456")
    assert dataframe(store=tmp_path)["loss"].tolist() == [2.0]
    assert dataframe(run=1, store=tmp_path)["loss"].tolist() == [1.0]
    assert dataframe(run=pd.Series([1])[0], store=tmp_path)["loss"].tolist() == [1.0]  # a numpy int
    assert "argv" not in dataframe(run=1, store=tmp_path).columns
    both = dataframe(run=[1, 2], store=tmp_path)
    assert list(both.columns) == ["run", "argv", "git", "script", "epoch", "step", "loss"]
    assert both[["run", "argv", "git", "loss"]].values.tolist() == [
        [1, "--lr 0.1", "abc123", 1.0],
        [2, "--lr 0.2 'a b'", "def456", 2.0],
    ]
    assert (both["script"] == "train.py").all()


def test_value_types_survive(tmp_path):
    rows = [
        ("nan", math.nan, 0, None, "record"),
        ("inf", -math.inf, 0, None, "record"),
        ("text", "hello", 0, None, "record"),
        ("pair", [1, 2.5], 0, None, "record"),
        ("flag", True, 0, None, "record"),
        ("count", 7, 0, None, "record"),
    ]
    add_run(tmp_path, [], rows)
    row = dataframe(store=tmp_path).iloc[0]
    assert math.isnan(row["nan"]) and row["inf"] == -math.inf
    assert row["text"] == "hello" and row["pair"] == [1, 2.5]
    assert row["flag"] == True and row["count"] == 7  # noqa: E712 - numpy bool


def test_a_name_logged_twice_in_a_step_keeps_the_last_with_a_warning(tmp_path):
    add_run(
        tmp_path, [], [("x", 1.0, 0, 0, "record"), ("x", 2.0, 0, 0, "record"), ("x", 3.0, 0, 1, "record")]
    )
    with pytest.warns(UserWarning, match="1 logged value"):
        df = dataframe(store=tmp_path)
    assert df["x"].tolist() == [2.0, 3.0]


def test_a_logged_name_that_clashes_with_a_key_column_is_renamed(tmp_path):
    add_run(tmp_path, [], [("epoch", 5, 0, None, "record"), ("argv", 1.0, 0, None, "record")])
    df = dataframe(run=[1], store=tmp_path)
    assert df["logged_epoch"].tolist() == [5] and df["epoch"].tolist() == [0]
    assert df["logged_argv"].tolist() == [1.0] and df["argv"].tolist() == [""]


def test_unknown_run_and_missing_store_say_so(tmp_path):
    with pytest.raises(StoreError, match="no flortrace store"):
        dataframe(store=tmp_path / "nowhere")
    add_run(tmp_path, [], ROWS)
    with pytest.raises(StoreError, match="no run 9"):
        dataframe(run=[1, 9], store=tmp_path)


def test_empty_store_has_no_latest_run(tmp_path):
    Store(tmp_path).close()
    with pytest.raises(StoreError, match="no recorded runs"):
        dataframe(store=tmp_path)


def test_store_comes_from_the_settings(tmp_path, monkeypatch):
    add_run(tmp_path / "s", [], ROWS)
    monkeypatch.setenv("FLORTRACE_STORE", str(tmp_path / "s"))
    assert flortrace.dataframe("acc")["acc"].dropna().tolist() == [0.75, 0.875]


def test_without_pandas_the_error_says_what_to_install(tmp_path, monkeypatch):
    add_run(tmp_path, [], ROWS)
    for name in [m for m in sys.modules if m == "pandas" or m.startswith("pandas.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        dataframe(store=tmp_path)


def test_global_step_orders_epochs_then_steps():
    widths = {"batch": 5, "main": 1}
    at = lambda epoch, step, loop="batch": global_step(dict(epoch=epoch, step=step, loop_id=loop), widths)  # noqa: E731
    assert [at(0, 0), at(0, 4), at(1, 0), at(3, 2)] == [0, 4, 5, 17]
    assert at(7, None, "main") == 7 and at(None, None, None) == 0 and at(None, 3) == 3


SCRIPT = textwrap.dedent(
    """\
    import random

    random.seed(0)
    w = 0.0
    for epoch in range(3):
        for i in range(4):
            w += random.random()
        print(epoch, w)
    """
)


def test_recorded_and_hindsight_values_of_a_real_run(tmp_path):
    env = dict(os.environ, FLORTRACE_STORE=str(tmp_path / ".store"), PYTHONPATH=os.getcwd())
    script = tmp_path / "train.py"
    script.write_text("import flortrace\n" + SCRIPT.replace("print(epoch, w)", "flortrace.log('w', w)"))
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "flortrace", "-q", *a],
        cwd=tmp_path,
        env=env,  # noqa: E731
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run("train.py").returncode == 0
    script.write_text(
        script.read_text().replace(
            "w += random.random()", "w += random.random()\n        flortrace.log('w_step', w)"
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "flortrace", "replay", "-q", "train.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    df = dataframe(store=tmp_path / ".store")
    epoch_rows = df[df["step"].isna()]
    step_rows = df[df["step"].notna()]
    assert epoch_rows["epoch"].tolist() == [0, 1, 2] and step_rows["w"].isna().all()
    assert len(step_rows) == 12 and step_rows["w_step"].notna().all()
    # the last step of each epoch saw the value the epoch then logged
    last = step_rows.groupby("epoch")["w_step"].last().tolist()
    assert last == epoch_rows["w"].tolist()
