"""A shared store lets no one in, and the store is never silently wrong.

Snapshots are pickles: whoever can write to a store can make its owner's replay run their code. So a store
is private to its owner, one that others could have changed is refused before anything is unpickled, and no
link inside a store is followed. A catalog that was emptied, deleted, edited or damaged is reported in one
line, never taken for a new store or shown as if it were right."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import stat
import subprocess
import sys
import textwrap

import pytest

from flortrace.store import Store, StoreError
from flortrace.store.snapshot import MANIFEST_MAGIC

TIMEOUT = 120

TRAIN = textwrap.dedent(
    """\
    import flortrace

    state = {"w": [0.0] * 50}
    for epoch in range(4):
        for i in range(20):
            state["w"][i] += i * 0.001
        flortrace.log("w", sum(state["w"]))
        print("epoch", epoch, round(sum(state["w"]), 6))
    """
)


def run(cwd, *args, **kw):
    env = dict(os.environ, FLORTRACE_STORE=str(cwd / ".store"))
    env.pop("FLORTRACE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "flortrace", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        **kw,
    )


def one_error(out, *words):
    """The command failed with exit code 2 and one line from flortrace that has ``words`` in it."""
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith("flortrace: error: ") and all(w in line for w in words), line


def unrecorded(out, want, *words):
    """The script ran as under Python, with a warning at its start and its end, and was not recorded."""
    assert (out.returncode, out.stdout) == (0, want) and "Traceback" not in out.stderr
    first, last = out.stderr.splitlines()
    assert first.startswith("flortrace: warning: nothing is being recorded: ") and all(
        w in first for w in words
    )
    assert last == first.replace("nothing is being recorded", "this run was not recorded")


@pytest.fixture(scope="module")
def want(tmp_path_factory):
    """What the script prints under plain Python."""
    cwd = tmp_path_factory.mktemp("plain")
    (cwd / "train.py").write_text(TRAIN)
    return subprocess.run([sys.executable, "train.py"], cwd=cwd, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path, want):
    """A folder with the script and a store holding one recorded run with snapshots."""
    (tmp_path / "train.py").write_text(TRAIN)
    out = run(tmp_path, "-q", "--overhead", "9", "train.py")
    assert (out.returncode, out.stdout, out.stderr) == (0, want, "")
    return tmp_path


def sql(project, statement, *params):
    db = sqlite3.connect(project / ".store" / "catalog.sqlite")
    try:
        db.execute(statement, params)
        db.commit()
    finally:
        db.close()


def test_a_new_store_is_private_whatever_the_umask(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    out = run(tmp_path, "-q", "--overhead", "9", "train.py", preexec_fn=lambda: os.umask(0o002))
    assert out.returncode == 0, out.stderr
    store = tmp_path / ".store"
    modes = {str(p.relative_to(store)): oct(stat.S_IMODE(p.stat().st_mode)) for p in store.rglob("*")}
    folders = [p for p in [store, *store.rglob("*")] if p.is_dir()]
    files = [p for p in store.rglob("*") if p.is_file()]
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}, modes
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}, modes
    assert any(p.parent.parent.name == "blobs" for p in files)  # snapshots were written


class Planted:
    """What an attacker plants: unpickling it creates a file (it could run anything)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def plant(project):
    """Make every snapshot of run 1 point at a manifest whose pickle creates ``project/pwned``."""
    with Store.open_existing(project / ".store") as store:
        inband = pickle.dumps({"state": Planted(str(project / "pwned"))}, protocol=5)
        manifest = MANIFEST_MAGIC + json.dumps({"buffers": []}).encode() + b"\n" + inband
        digest, _, _ = store.blobs.put(manifest)
    sql(project, "UPDATE snapshots SET manifest = ?", digest)
    return project / ".store" / "blobs" / digest[:2] / digest


@pytest.mark.parametrize("opened", ["store folder", "catalog", "blobs folder", "locks folder"])
def test_replay_refuses_a_store_others_could_write_before_unpickling(project, opened, want):
    plant(project)
    store = project / ".store"
    path = {"store folder": store, "catalog": store / "catalog.sqlite"}.get(opened, store / opened.split()[0])
    path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWGRP)
    (project / "train.py").write_text(
        TRAIN.replace("    print(", "    flortrace.log('new', epoch)\n    print(")
    )
    for args in (["replay", "--epochs", "3", "train.py"], ["console", "train.py"], ["runs"]):
        out = run(project, *args, input="c\n")
        one_error(out, "is writable by its group", "chmod -R go-w")
        assert out.stdout == "" and not (project / "pwned").exists()
    unrecorded(run(project, "train.py"), want, "is writable by its group")


def test_a_blob_others_could_write_is_never_loaded(project, want):
    blob = plant(project)
    blob.chmod(0o620)
    (project / "train.py").write_text(
        TRAIN.replace("    print(", "    flortrace.log('new', epoch)\n    print(")
    )
    out = run(project, "replay", "--epochs", "3", "train.py")
    assert not (project / "pwned").exists()
    assert out.returncode == 0 and out.stdout == want, out.stderr
    assert "not loaded: the blob" in out.stderr and "is writable by its group" in out.stderr
    rows = json.loads(run(project, "logs", "--name", "new", "--format", "json").stdout)
    assert [(r["epoch"], r["value"]) for r in rows] == [(3, 3)]  # re-executed instead of restored


def test_a_store_of_another_user_is_refused(project, monkeypatch, want):
    plant(project)
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 4242)
    with pytest.raises(StoreError, match="belongs to user .*, not to you"):
        Store.open_existing(project / ".store")
    monkeypatch.undo()
    if os.geteuid() != 0:
        return  # giving the store to another user, for the command line, needs root
    os.chown(project / ".store", 4242, 4242)
    for args in (["runs"], ["replay", "train.py"]):
        one_error(run(project, *args), "belongs to user 4242, not to you")
    assert not (project / "pwned").exists()
    unrecorded(run(project, "train.py"), want, "belongs to user 4242")


@pytest.mark.parametrize("lock", ["run-2.lock", "use-1.lock"])
def test_a_link_in_the_lock_folder_is_never_followed(project, lock, want):
    victim = project / "victim.txt"
    victim.write_text("precious\n")
    (project / ".store" / "locks" / lock).symlink_to(victim)
    if lock.startswith("run"):  # the next recording's lock
        unrecorded(run(project, "train.py"), want, f"{lock} is a symbolic link")
    else:  # what a replay of run 1 holds
        out = run(project, "replay", "train.py")
        one_error(out, f"{lock} is a symbolic link")
        one_error(run(project, "rm", "1"), f"{lock} is a symbolic link")
    assert victim.read_text() == "precious\n"
    assert len(json.loads(run(project, "runs", "--json").stdout)) == 1


def test_gc_never_deletes_through_a_link(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    blobs = project / ".store" / "blobs"
    linked, real = [p for p in (f"{n:02x}" for n in range(256)) if not (blobs / p).exists()][:2]
    (outside / (linked + "c" * 62)).write_text("someone else's file\n")  # named as a blob in a shard
    (blobs / linked).symlink_to(outside, target_is_directory=True)
    (outside / "target").write_text("another file\n")
    (blobs / real).mkdir(mode=0o700)
    (blobs / real / (real + "e" * 62)).symlink_to(outside / "target")
    assert run(project, "rm", "1").returncode == 0
    out = run(project, "gc", "--yes")
    assert out.returncode == 0 and out.stdout.startswith("freed ")
    assert sorted(p.name for p in outside.iterdir()) == sorted([linked + "c" * 62, "target"])
    assert not [p for p in blobs.rglob("*") if p.is_file() and not p.is_symlink()]  # the real blobs went


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_an_emptied_or_deleted_catalog_is_damage_not_a_new_store(project, damage, want):
    catalog = project / ".store" / "catalog.sqlite"
    if damage == "emptied":
        catalog.write_bytes(b"")
    else:
        catalog.unlink()
    for args in (["runs"], ["logs"], ["replay", "train.py"], ["gc", "--yes"]):
        one_error(
            run(project, *args), f"is {'empty' if damage == 'emptied' else 'missing'} but this store had"
        )
    unrecorded(run(project, "train.py"), want, "it was damaged")
    assert (catalog.read_bytes() == b"") if damage == "emptied" else not catalog.exists()
    (project / ".store" / ".flortrace-store").unlink()  # a store from before the marker: its blobs tell
    catalog.write_bytes(b"")
    one_error(run(project, "runs"), "snapshot blob(s) are stored beside it")


def test_a_changed_log_value_is_reported_not_shown(project):
    before = json.loads(run(project, "logs", "--format", "json").stdout)
    assert [r["epoch"] for r in before] == [0, 1, 2, 3]
    sql(project, "UPDATE logs SET value = '9.99' WHERE epoch = 2")  # one digit changed, say
    out = run(project, "logs", "--format", "json")
    assert out.returncode == 1
    (warning,) = out.stderr.splitlines()
    assert warning.startswith("flortrace: warning: 1 logged value(s) in ") and "'w', epoch 2" in warning
    assert json.loads(out.stdout) == [r for r in before if r["epoch"] != 2]
    table = run(project, "logs")
    assert table.returncode == 1 and "9.99" not in table.stdout


@pytest.mark.parametrize(
    "edit, words",
    [
        ("UPDATE meta SET value = 'two'", ["its schema_version is 'two'"]),
        ("DROP TABLE logs", ["table logs is missing"]),
        ("DROP TABLE runs", ["table runs is missing"]),
    ],
)
def test_an_edited_catalog_is_one_line_for_every_verb(project, edit, words, want):
    sql(project, edit)
    for args in (["runs"], ["show", "1"], ["logs"], ["replay", "train.py"], ["rm", "1"], ["gc"]):
        one_error(run(project, *args), "is damaged", *words)
    one_error(run(project, "export", "csv", "out.csv"), "is damaged", *words)
    one_error(run(project, "console", "train.py", input="q\n"), "is damaged", *words)
    unrecorded(run(project, "train.py"), want, "is damaged", *words)


@pytest.mark.parametrize("column", ["argv", "env", "info"])
def test_bad_json_in_a_run_is_one_line_and_the_run_can_be_removed(project, column, want):
    sql(project, f"UPDATE runs SET {column} = '[oops'")
    for args in (["runs"], ["show", "1"], ["replay", "train.py"]):
        one_error(run(project, *args), "is damaged", f"the {column} of run 1 is not valid JSON")
    recorded = run(project, "-q", "train.py")  # recording reads nothing of run 1
    assert (recorded.returncode, recorded.stdout, recorded.stderr) == (0, want, "")
    assert run(project, "rm", "1").returncode == 0
    assert [r["id"] for r in json.loads(run(project, "runs", "--json").stdout)] == [2]


def test_bad_json_in_a_log_value_is_reported_not_a_crash(project):
    db = sqlite3.connect(project / ".store" / "catalog.sqlite")
    (row,) = db.execute(
        "SELECT run, name, vtype, epoch, step, loop_id, lineno, origin, ts FROM logs WHERE epoch = 1"
    )
    db.close()
    from flortrace.store.catalog import _checksum

    fields = (*row[:2], "{bad", *row[2:])  # a checksum that matches: only the JSON is wrong
    sql(project, "UPDATE logs SET value = '{bad', checksum = ? WHERE epoch = 1", _checksum(fields))
    out = run(project, "logs", "--format", "json")
    assert out.returncode == 1 and [r["epoch"] for r in json.loads(out.stdout)] == [0, 2, 3]
    assert (
        out.stderr.startswith("flortrace: warning: 1 logged value(s)") and len(out.stderr.splitlines()) == 1
    )
