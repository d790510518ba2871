"""gc and rm safety: blobs two runs share survive removing one run and collecting, and the other still
replays exactly; gc without --yes deletes nothing; gc keeps what a running run may still commit; rm refuses
a run that a replay is using."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from clirun import flortrace

from flortrace.store import Store

pytest.importorskip("numpy")

SCRIPT = textwrap.dedent(
    """\
    import sys
    import time

    import numpy as np

    rng = np.random.default_rng(int(sys.argv[1]))


    class Model:
        def __init__(self):
            self.backbone = np.linspace(0.0, 1.0, 400_000)  # 3 MB that never change: one blob for all runs
            self.head = rng.normal(size=8)

        def step(self, x):
            self.head -= 0.05 * (self.head - self.backbone[::50_000] * x)


    model = Model()
    for epoch in range(6):
        for i in range(5):
            model.step(rng.normal())
        print(epoch, model.head.sum())
        time.sleep(0.1)  # epochs long enough for the budget to pay for flortrace's start-up and snapshots
    """
)
EDITED = SCRIPT.replace("import numpy as np", "import numpy as np\n\nimport flortrace").replace(
    "    print(epoch, model.head.sum())",
    "    print(epoch, model.head.sum())\n"
    "    flortrace.log('probe', float(model.head @ model.backbone[::50_000]))",
)


def digests(store, run_id):
    db = sqlite3.connect(store / "catalog.sqlite")
    try:
        query = (
            "SELECT sb.digest FROM snapshot_blobs sb JOIN snapshots s ON s.id = sb.snapshot WHERE s.run = ?"
        )
        return {d for (d,) in db.execute(query, (run_id,))}
    finally:
        db.close()


def checkpoints_before(store, run_id, epoch):
    db = sqlite3.connect(store / "catalog.sqlite")
    try:
        query = "SELECT id FROM snapshots WHERE run = ? AND kind = 'checkpoint' AND epoch < ?"
        return db.execute(query, (run_id, epoch)).fetchall()
    finally:
        db.close()


def blob_files(store):
    return {p.name for p in (store / "blobs").rglob("*") if p.is_file()}


def probes(cwd, run_id):
    out = flortrace(cwd, "logs", "--run", str(run_id), "--name", "probe", "--format", "json")
    return [(r["epoch"], r["value"]) for r in json.loads(out.stdout)]


def test_gc_keeps_what_the_remaining_run_needs(tmp_path):
    store = tmp_path / ".store"
    (tmp_path / "train.py").write_text(SCRIPT)
    flortrace(tmp_path, "-q", "--overhead", "9", "train.py", "1")
    flortrace(tmp_path, "-q", "--overhead", "9", "train.py", "2")
    first, second = digests(store, 1), digests(store, 2)
    shared, only_first = first & second, first - second
    assert shared and only_first and first | second == blob_files(store)
    assert checkpoints_before(store, 2, 3)  # so the replay below reads blobs

    flortrace(tmp_path, "rm", "1")
    before = blob_files(store)
    dry = flortrace(tmp_path, "gc")
    assert f"would free {len(only_first)} blob(s)" in dry.stdout and blob_files(store) == before
    flortrace(tmp_path, "gc", "--yes")
    assert blob_files(store) == second

    (tmp_path / "train.py").write_text(EDITED)
    flortrace(tmp_path, "replay", "-q", "--run", "2", "--epochs", "3:6", "train.py", "2")  # from a checkpoint
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "train.py").write_text(EDITED)
    flortrace(fresh, "-q", "train.py", "2")
    want = [(epoch, value) for epoch, value in probes(fresh, 1) if epoch >= 3]
    assert len(want) == 3 and probes(tmp_path, 2) == want


def test_gc_keeps_what_a_running_run_may_still_commit(tmp_path):
    """A writer commits a snapshot only once its blobs are written: gc must not take them meanwhile."""
    with Store(tmp_path / ".store") as store:
        run_id = store.catalog.begin_run("train.py", [], str(tmp_path), {}, {})  # running: this process
        digest, size, _ = store.blobs.put(b"a snapshot not committed yet" * 100)
        out = flortrace(tmp_path, "gc", "--yes")
        assert out.stdout.startswith("freed 0 blob(s)") and store.blobs.exists(digest)
        store.catalog.add_snapshot(run_id, 0, "checkpoint", None, None, digest, size, size, 0.0, "", [])
        store.catalog.end_run(run_id, "finished", 0)
        assert flortrace(tmp_path, "gc", "--yes").stdout.startswith("freed 0 blob(s)")
        assert store.blobs.get(digest) == b"a snapshot not committed yet" * 100


WAITS = textwrap.dedent(
    """\
    import os
    import time

    import flortrace

    for epoch in range(3):
        for i in range(5):
            pass
        flortrace.log("e", epoch)
        if epoch == 1 and os.environ.get("GO"):  # the replay waits here until the test says go
            open(os.environ["GO"] + ".waiting", "w").close()
            while not os.path.exists(os.environ["GO"]):
                time.sleep(0.01)
    print("done")
    """
)


def test_rm_refuses_a_run_being_replayed(tmp_path):
    (tmp_path / "train.py").write_text(WAITS)
    flortrace(tmp_path, "-q", "train.py")
    (tmp_path / "train.py").write_text(
        WAITS.replace('flortrace.log("e", epoch)', 'flortrace.log("new", epoch)')
    )
    go = tmp_path / "go"
    # FLORTRACE_ISOLATE=0: the script signals through a file in its folder, which replay would redirect
    env = dict(os.environ, FLORTRACE_STORE=str(tmp_path / ".store"), GO=str(go), FLORTRACE_ISOLATE="0")
    replay = subprocess.Popen(
        [sys.executable, "-m", "flortrace", "replay", "-q", "--force", "train.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "go.waiting").exists():
            assert replay.poll() is None and time.monotonic() < deadline, replay.stderr.read()
            time.sleep(0.01)
        refused = flortrace(tmp_path, "rm", "1", check=False)
        assert refused.returncode == 2 and refused.stderr == (
            "flortrace: error: run 1 is in use by a replay or console; remove it once that has ended\n"
        )
        go.touch()
        out, err = replay.communicate(timeout=60)
    finally:
        replay.kill()
    assert (replay.returncode, out, err) == (0, "done\n", "")
    rows = json.loads(flortrace(tmp_path, "logs", "--name", "new", "--format", "json").stdout)
    assert [(r["run"], r["epoch"], r["value"]) for r in rows] == [(1, 0, 0), (1, 1, 1), (1, 2, 2)]
    assert flortrace(tmp_path, "rm", "1").stdout == "removed run 1\n"
