"""Tests for the SQLite catalog: schema, every method's round trip, liveness and damaged files."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import flortrace.store
from flortrace.store import Catalog, StoreError
from flortrace.store.catalog import SCHEMA_VERSION

PACKAGE_PARENT = str(Path(flortrace.store.__file__).absolute().parents[2])


@pytest.fixture
def cat(tmp_path):
    (tmp_path / "locks").mkdir()
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        yield catalog


def begin(cat, script="train.py", cwd="/proj", **kw):
    return cat.begin_run(script, ["--lr", "0.1"], cwd, {"SEED": "1"}, {"python": "3.11"}, git="abc123", **kw)


def python(code, *args, **kw):
    env = {**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env, text=True, **kw)


def test_schema(cat):
    db = sqlite3.connect(cat.path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "runs", "sources", "loops", "epochs", "blocks", "snapshots", "snapshot_blobs"} <= tables
    assert {"decisions", "changesets", "logs"} <= tables
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_run_round_trip(cat):
    run_id = begin(cat, name="baseline")
    assert run_id == 1
    run = cat.run(run_id)
    assert run["script"] == "train.py" and run["argv"] == ["--lr", "0.1"] and run["cwd"] == "/proj"
    assert run["env"] == {"SEED": "1"} and run["versions"] == {"python": "3.11"} and run["git"] == "abc123"
    assert run["name"] == "baseline" and run["mode"] == "record" and run["parent"] is None
    assert run["status"] == "running" and run["ended"] is None and run["exit_code"] is None
    assert abs(run["started"] - time.time()) < 60
    assert (run["epochs"], run["checkpoints"], run["memos"], run["bytes"], run["logs"]) == (0, 0, 0, 0, 0)
    cat.set_run_info(run_id, torch={"threads": 4}, warnings=["w1"])
    cat.set_run_info(run_id, main_loops=["train.py:main:0"])
    cat.end_run(run_id, "failed", 3, note="ZeroDivisionError")
    run = cat.run(run_id)
    assert run["info"] == {"torch": {"threads": 4}, "warnings": ["w1"], "main_loops": ["train.py:main:0"]}
    assert (run["status"], run["exit_code"], run["note"]) == ("failed", 3, "ZeroDivisionError")
    assert run["ended"] >= run["started"]
    assert not (cat.lock_dir / "run-1.lock").exists()
    assert cat.run(99) is None
    with pytest.raises(ValueError):
        cat.end_run(run_id, "exploded", 1)
    with pytest.raises(StoreError, match="no run 99"):
        cat.set_run_info(99, x=1)


def test_runs_newest_first_with_counts(cat):
    first, second = begin(cat), begin(cat, script="eval.py")
    for epoch in range(3):
        cat.add_epoch(first, epoch, "L0", epoch, 100.0 + epoch, 1.5)
    shared, only1, only2, man1, man2, man3 = (c * 64 for c in "abcdef")
    sizes = {shared: 1000, only1: 10, only2: 20, man1: 1, man2: 2, man3: 3}
    cat.add_snapshot(first, 0, "checkpoint", "L0", None, man1, 1, 1, 0.0, "first", [shared, only1], sizes)
    cat.add_snapshot(first, 0, "memo", "L1", 0, man2, 1, 1, 0.0, "cheap", [shared], sizes)
    cat.add_snapshot(second, 0, "checkpoint", "L0", None, man3, 1, 1, 0.0, "last", [shared, only2], sizes)
    cat.add_logs(first, [{"name": "loss", "value": 1.0, "vtype": "float", "epoch": 0}])
    runs = cat.runs()
    assert [r["id"] for r in runs] == [second, first]
    one = runs[1]
    assert (one["epochs"], one["checkpoints"], one["memos"], one["logs"]) == (3, 1, 1, 1)
    assert one["bytes"] == 1000 + 10 + 1 + 2  # the shared blob counts once for the run
    assert runs[0]["bytes"] == 1000 + 20 + 3
    assert {"id", "script", "argv", "cwd", "name", "status", "started", "ended", "exit_code"} <= set(one)
    assert {"git", "info"} <= set(one)
    assert cat.run(first)["bytes"] == one["bytes"]


def test_latest_run_resolves_paths(cat, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("")
    (tmp_path / "link.py").symlink_to(tmp_path / "train.py")
    assert cat.latest_run() is None
    a = begin(cat, script="train.py", cwd=str(tmp_path))
    b = begin(cat, script=str(tmp_path / "other.py"), cwd="/")
    begin(cat, script="train.py", cwd=str(tmp_path), mode="replay", parent=a)
    assert cat.latest_run("train.py") == a
    assert cat.latest_run(str(tmp_path / "link.py")) == a
    assert cat.latest_run("other.py") == b
    assert cat.latest_run("missing.py") is None
    assert cat.latest_run() == b


def test_sources_loops_epochs_blocks(cat):
    run = begin(cat)
    cat.add_source(run, "/proj/train.py", "for e in range(3):\n    pass\n")
    cat.add_source(run, "/proj/model.py", "x = 1\n")
    assert cat.sources(run) == {
        "/proj/train.py": "for e in range(3):\n    pass\n",
        "/proj/model.py": "x = 1\n",
    }
    main = {"loop_id": "train.py:<module>:0", "file": "/proj/train.py", "qualname": "<module>", "ordinal": 0}
    main |= {"lineno": 1, "kind": "main", "parent": None}
    block = {**main, "loop_id": "train.py:<module>:1", "ordinal": 1, "lineno": 2, "kind": "block"}
    block["parent"] = main["loop_id"]
    cat.add_loops(run, [main, block])
    cat.add_loops(run, [{**block, "lineno": 7}])  # upsert
    loops = cat.loops(run)
    assert [{k: r[k] for k in main} for r in loops] == [main, {**block, "lineno": 7}]
    cat.add_epoch(run, 0, main["loop_id"], 0, 1000.0, 2.5)
    cat.add_epoch(run, 1, main["loop_id"], 1, 1002.5, 2.0)
    epochs = cat.epochs(run)
    assert [(e["epoch"], e["loop_id"], e["index"], e["started"], e["seconds"]) for e in epochs] == [
        (0, main["loop_id"], 0, 1000.0, 2.5),
        (1, main["loop_id"], 1, 1002.5, 2.0),
    ]
    cat.add_block(run, 1, block["loop_id"], 0, 100, 1.0)
    cat.add_block(run, 0, block["loop_id"], 1, 10, 0.1)
    cat.add_block(run, 0, block["loop_id"], 0, 100, 1.1)
    assert [(b["epoch"], b["seq"], b["steps"]) for b in cat.blocks(run)] == [
        (0, 0, 100),
        (0, 1, 10),
        (1, 0, 100),
    ]
    assert [(b["seq"], b["seconds"]) for b in cat.blocks(run, epoch=0)] == [(0, 1.1), (1, 0.1)]


def test_snapshots_decisions_changesets(cat):
    run = begin(cat)
    blob, manifest = "1" * 64, "2" * 64
    sid = cat.add_snapshot(run, 2, "checkpoint", "L0", None, manifest, 300, 120, 0.02, "last epoch", [blob])
    cat.add_snapshot(run, 1, "memo", "L1", 3, manifest, 30, 0, 0.001, "memo rule", [blob])
    snaps = cat.snapshots(run)
    assert [(s["epoch"], s["kind"]) for s in snaps] == [(1, "memo"), (2, "checkpoint")]
    ckpt = cat.snapshots(run, kind="checkpoint")[0]
    assert ckpt["id"] == sid
    assert (ckpt["loop_id"], ckpt["seq"], ckpt["manifest"], ckpt["nbytes"], ckpt["stored"]) == (
        "L0",
        None,
        manifest,
        300,
        120,
    )
    assert (ckpt["stall"], ckpt["reason"]) == (0.02, "last epoch")
    assert [s["seq"] for s in cat.snapshots(run, epoch=1)] == [3]
    assert cat.referenced_blobs() == {blob, manifest}
    with pytest.raises(ValueError):
        cat.add_snapshot(run, 0, "backup", None, None, manifest, 1, 1, 0.0, "", [])

    cat.add_decision(run, 0, "checkpoint", "L0", "skip", "writer busy")
    cat.add_decision(run, 1, "memo", "L1", "take", "M/C below threshold")
    assert [(d["epoch"], d["kind"], d["loop_id"], d["action"], d["reason"]) for d in cat.decisions(run)] == [
        (0, "checkpoint", "L0", "skip", "writer busy"),
        (1, "memo", "L1", "take", "M/C below threshold"),
    ]

    cat.set_changeset(run, "L1", [("model", "method call"), ("opt", "alias of model")])
    cat.set_changeset(run, "L0", [("rng", "random state")])
    cat.set_changeset(run, "L1", [("model", "method call"), ("step", "rebound")])
    assert cat.changesets(run) == {
        "L0": [("rng", "random state")],
        "L1": [("model", "method call"), ("step", "rebound")],
    }


def test_logs_filters_order_and_delete(cat):
    a, b = begin(cat), begin(cat)

    def row(name, value, epoch, step=None, origin="record", **extra):
        vtype = type(value).__name__
        return dict(name=name, value=value, vtype=vtype, epoch=epoch, step=step, origin=origin, **extra)

    cat.add_logs(
        a,
        [
            row("loss", 0.5, 1, 0, ts=1.0),
            row("loss", 0.9, 0, 1),
            row("loss", 1.0, 0, 0),
            row("cfg", {"lr": [0.1, None]}, None),
            row("acc", "n/a", 2, loop_id="L0", lineno=9),
        ],
    )
    cat.add_logs(b, [row("loss", 7, 0, 0)])
    cat.add_logs(a, [row("gnorm", 3.5, e, origin="replay") for e in (0, 1)])
    logs = cat.logs()
    keys = {"run", "name", "value", "vtype", "epoch", "step", "loop_id", "lineno", "origin", "ts"}
    assert all(set(r) == keys for r in logs)
    assert [(r["run"], r["name"], r["epoch"], r["step"]) for r in logs] == [
        (a, "cfg", None, None),
        (a, "gnorm", 0, None),  # SQL order: no step sorts first
        (a, "loss", 0, 0),
        (a, "loss", 0, 1),
        (a, "gnorm", 1, None),
        (a, "loss", 1, 0),
        (a, "acc", 2, None),
        (b, "loss", 0, 0),
    ]
    assert logs[0]["value"] == {"lr": [0.1, None]} and logs[0]["origin"] == "record"
    assert logs[5]["ts"] == 1.0 and logs[0]["ts"] > 1.0 and logs[0]["vtype"] == "dict"
    assert (logs[-2]["loop_id"], logs[-2]["lineno"]) == ("L0", 9)
    assert [r["value"] for r in cat.logs(run_ids=[b])] == [7]
    assert [r["value"] for r in cat.logs(names=["loss"], run_ids=[a])] == [1.0, 0.9, 0.5]
    assert [r["epoch"] for r in cat.logs(run_ids=[a], origin="replay")] == [0, 1]
    assert [r["epoch"] for r in cat.logs(run_ids=[a], epochs=(1, None))] == [1, 1, 2]
    assert [r["epoch"] for r in cat.logs(run_ids=[a], epochs=(None, 1))] == [0, 0, 0]
    assert [r["epoch"] for r in cat.logs(run_ids=[a], epochs=(1, 2))] == [1, 1]
    cat.delete_logs(a, epochs=[1])
    assert [r["epoch"] for r in cat.logs(run_ids=[a], origin="replay")] == [0]
    cat.delete_logs(a)
    assert cat.logs(run_ids=[a], origin="replay") == []
    assert len(cat.logs(run_ids=[a])) == 5


def test_delete_run(cat):
    a, b = begin(cat), begin(cat)
    shared, own, man_a, man_b = "a" * 64, "b" * 64, "c" * 64, "d" * 64
    cat.add_snapshot(a, 0, "checkpoint", None, None, man_a, 1, 1, 0.0, "", [shared, own], {shared: 5, own: 6})
    cat.add_snapshot(b, 0, "checkpoint", None, None, man_b, 1, 1, 0.0, "", [shared], {shared: 5})
    cat.add_logs(a, [{"name": "x", "value": 1, "vtype": "int"}])
    cat.add_epoch(a, 0, "L", 0, 0.0, 1.0)
    with pytest.raises(StoreError, match=f"run {a} is still running"):
        cat.delete_run(a)
    cat.end_run(a, "finished", 0)
    cat.delete_run(a)
    assert cat.run(a) is None and cat.logs(run_ids=[a]) == [] and cat.epochs(a) == []
    assert cat.referenced_blobs() == {shared, man_b}
    assert cat.run(b)["bytes"] == 5
    with pytest.raises(StoreError, match=f"no run {a}"):
        cat.delete_run(a)
    assert begin(cat) == b + 1  # ids are never reused


RUN_AND_WAIT = """
    import sys, time
    from flortrace.store import Catalog
    cat = Catalog(sys.argv[1])
    run = cat.begin_run("train.py", [], "/", {}, {})
    cat.add_epoch(run, 0, "L", 0, time.time(), 0.1)
    print(run, flush=True)
    time.sleep(60)
"""


def test_killed_run_reads_as_crashed(tmp_path):
    path = tmp_path / "catalog.sqlite"
    (tmp_path / "locks").mkdir()
    Catalog(path).close()
    child = python(RUN_AND_WAIT, str(path), stdout=subprocess.PIPE)
    try:
        run_id = int(child.stdout.readline())
        with Catalog(path) as cat:
            assert cat.run(run_id)["status"] == "running"  # alive: its lock is held
            active = cat.run(run_id)["active"]
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
        child.stdout.close()
    with Catalog(path) as cat:
        run = cat.run(run_id)
    assert run["status"] == "crashed"
    assert run["ended"] == active


def test_own_open_run_is_not_crashed(tmp_path):
    (tmp_path / "locks").mkdir()
    with Catalog(tmp_path / "catalog.sqlite") as writer:
        run = writer.begin_run("t.py", [], "/", {}, {})
        with Catalog(tmp_path / "catalog.sqlite") as reader:
            assert reader.run(run)["status"] == "running"
    # Closing without end_run drops the lock: the run is over without having said so.
    with Catalog(tmp_path / "catalog.sqlite") as reader:
        assert reader.run(run)["status"] == "crashed"


def test_concurrent_writers(tmp_path):
    path = tmp_path / "catalog.sqlite"
    (tmp_path / "locks").mkdir()
    with Catalog(path) as cat:
        run = cat.begin_run("t.py", [], "/", {}, {})
        code = f"""
            import sys
            from flortrace.store import Catalog
            with Catalog({str(path)!r}) as cat:
                for i in range(100):
                    cat.add_logs({run}, [{{"name": "child", "value": i, "vtype": "int", "step": i}}])
        """
        child = python(code)
        for i in range(100):
            cat.add_logs(run, [{"name": "parent", "value": i, "vtype": "int", "step": i}])
        assert child.wait(timeout=60) == 0
        assert len(cat.logs(names=["child"])) == len(cat.logs(names=["parent"])) == 100


def test_corrupt_catalog_file(tmp_path):
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(b"this is not a database, just some text" * 100)
    with pytest.raises(StoreError, match=f"the catalog {path} is damaged \\(file is not a database\\)"):
        Catalog(path)


def test_foreign_sqlite_file(tmp_path):
    path = tmp_path / "catalog.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not a flortrace catalog"):
        Catalog(path)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "catalog.sqlite"
    Catalog(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        Catalog(path)


def test_catalog_file_is_private(tmp_path):
    old = os.umask(0)
    try:
        Catalog(tmp_path / "catalog.sqlite").close()
    finally:
        os.umask(old)
    assert (tmp_path / "catalog.sqlite").stat().st_mode & 0o777 == 0o600


def _version_1_catalog(path):
    """A catalog as flortrace wrote it before schema migrations: the version 1 schema, one log row."""
    from flortrace.store.catalog import _SCHEMA_V1

    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO runs (script, script_real, argv, cwd, env, versions, mode, status, started, active)"
        " VALUES ('t.py', '/t.py', '[]', '/', '{}', '{}', 'record', 'finished', 1.0, 1.0)"
    )
    db.execute(
        "INSERT INTO logs (run, name, value, vtype, epoch, origin, ts)"
        " VALUES (1, 'w', '0.5', 'float', 0, 'record', 2.0)"
    )
    db.commit()
    db.close()


def test_an_older_catalog_is_upgraded_in_place(tmp_path):
    path = tmp_path / "catalog.sqlite"
    _version_1_catalog(path)
    with Catalog(path) as cat:
        assert [(r["name"], r["value"]) for r in cat.logs()] == [("w", 0.5)]  # its checksum was computed
        cat.add_logs(1, [{"name": "w", "value": 0.25, "epoch": 1}])
        assert [r["value"] for r in cat.logs()] == [0.5, 0.25]
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
    db.close()


def test_a_catalog_at_version_2_is_upgraded_too(tmp_path):
    """A catalog at version 2 (with the fidelity check's tables) still gets checksums."""
    import flortrace.store.catalog as catalog

    path = tmp_path / "catalog.sqlite"
    _version_1_catalog(path)
    db = sqlite3.connect(path)
    catalog._add_fidelity_tables(db)
    db.execute("UPDATE meta SET value = '2'")
    db.commit()
    db.close()
    with Catalog(path) as cat:
        assert [(r["name"], r["value"]) for r in cat.logs()] == [("w", 0.5)]


def test_a_failed_upgrade_changes_nothing(tmp_path, monkeypatch):
    import flortrace.store.catalog as catalog

    path = tmp_path / "catalog.sqlite"
    _version_1_catalog(path)

    def half_done(db):
        db.execute("ALTER TABLE logs ADD COLUMN checksum INTEGER")
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setitem(catalog.MIGRATIONS, SCHEMA_VERSION, half_done)
    with pytest.raises(StoreError, match="is full"):
        Catalog(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta").fetchall() == [("1",)]
    assert "checksum" not in [r[1] for r in db.execute("PRAGMA table_info(logs)")]
    db.close()


def test_text_that_is_not_unicode_round_trips(cat):
    script = os.fsdecode(b"/proj/tr\xffin.py")
    names = ["f\udcff", "\x1bflortrace-text:41", "\x1b", "plain", "\ud800"]
    run_id = cat.begin_run(script, ["a\udcfe"], "/proj", {}, {}, name="l\udcff")
    cat.add_logs(run_id, [{"name": n, "value": n, "loop_id": n} for n in names])
    cat.add_source(run_id, "tr\udcffin.py", "pass\n")
    assert [(r["name"], r["value"], r["loop_id"]) for r in cat.logs()] == [(n, n, n) for n in names]
    assert [r["name"] for r in cat.logs(names=["f\udcff"])] == ["f\udcff"]
    run = cat.run(run_id)
    assert (run["script"], run["argv"], run["name"]) == (script, ["a\udcfe"], "l\udcff")
    assert cat.latest_run(script) == run_id and cat.sources(run_id) == {"tr\udcffin.py": "pass\n"}


def test_removing_runs_is_all_or_none(cat):
    a, b = begin(cat), begin(cat)
    for run_id in (a, b):
        cat.end_run(run_id, "finished", 0)
    with pytest.raises(StoreError, match=f"no run {b + 1}"):
        cat.delete_runs([a, b + 1])
    assert cat.run(a) is not None
    with Catalog(cat.path) as replaying:
        replaying.hold_run(b)
        with pytest.raises(StoreError, match=f"run {b} is in use by a replay or console"):
            cat.delete_runs([a, b])
        assert cat.run(a) is not None and cat.run(b) is not None
    cat.delete_runs([a, b])
    assert cat.runs() == []
    with pytest.raises(StoreError, match=f"no run {a}"):
        cat.hold_run(a)


def test_rows_for_a_removed_run_are_refused(cat):
    run_id = begin(cat)
    cat.end_run(run_id, "finished", 0)
    with Catalog(cat.path) as other:
        other.delete_run(run_id)
    with pytest.raises(StoreError, match=f"run {run_id} was removed from the store"):
        cat.add_logs(run_id, [{"name": "late", "value": 1}])
    assert cat.logs() == []


def test_a_forked_child_never_writes_through_its_parents_connection(cat):
    run_id = begin(cat)
    pid = os.fork()
    if pid == 0:  # the child: its write must be refused, before SQLite is touched
        try:
            cat.add_logs(run_id, [{"name": "child", "value": 1}])
        except StoreError as exc:
            os._exit(0 if "forked" in str(exc) else 2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    cat.add_logs(run_id, [{"name": "parent", "value": 1}])
    assert [r["name"] for r in cat.logs()] == ["parent"]
