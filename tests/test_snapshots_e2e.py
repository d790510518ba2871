"""Snapshots of real recorded runs: a reason for every epoch, dense snapshots where they are cheap, shared
memory that a forked child cannot write into, and a replay summary that says how long replay took."""

import json
import os
import textwrap
import time

import pytest
from clirun import flortrace

from flortrace.store import Store
from flortrace.store.snapshot import load_snapshot

np = pytest.importorskip("numpy")

# Epochs that compute (so that load slows them as much as the snapshots), with a small state: snapshots
# cost a small part of the budget whatever the machine.
TRAIN = """
    import numpy as np

    def work(n=12):
        x = np.linspace(0.0, 1.0, 1_000_000)
        for _ in range(n):
            x = np.sin(x)
        return float(x[-1])

    w = np.zeros(1000)
    for epoch in range(8):
        for step in range(3):
            w[step::3] += work()
        print(epoch, round(float(w.sum()), 6))
"""


def record(tmp_path, source=TRAIN, *options):
    (tmp_path / "train.py").write_text(textwrap.dedent(source))
    flortrace(tmp_path, "-q", *options, "train.py")
    return json.loads(flortrace(tmp_path, "show", "1", "--json").stdout)


def test_every_epoch_has_a_decision_with_its_reason(tmp_path):
    shown = record(tmp_path)
    rows = [d for d in shown["decisions"] if d["kind"] == "snapshot"]
    assert [d["epoch"] for d in rows] == list(range(8))
    assert all(d["reason"] for d in rows)
    assert rows[-1]["action"] == "take" and "last epoch" in rows[-1]["reason"]
    printed = flortrace(tmp_path, "show", "1").stdout
    epoch_lines = [line for line in printed.splitlines() if line.strip()[:1].isdigit()]
    assert len(epoch_lines) == 8 and all(("take:" in line or "skip:" in line) for line in epoch_lines)


def test_cheap_state_gets_a_memo_and_a_checkpoint_every_epoch(tmp_path):
    shown = record(tmp_path)
    kinds = {}
    for snap in shown["snapshots"]:
        kinds.setdefault(snap["epoch"], set()).add(snap["kind"])
    assert all({"memo", "checkpoint"} <= kinds.get(epoch, set()) for epoch in range(8)), kinds


def test_no_snapshots_says_so_for_every_epoch(tmp_path):
    shown = record(tmp_path, TRAIN, "--overhead", "0")
    assert shown["snapshots"] == []
    rows = [d for d in shown["decisions"] if d["kind"] == "snapshot"]
    assert [(d["epoch"], d["action"], d["reason"]) for d in rows] == [
        (e, "skip", "no snapshots (--overhead 0)") for e in range(8)
    ]


FORKS = """
    import os
    import time
    import numpy as np

    w = np.zeros(100_000)  # 800 KB: captured into memory shared with the writer process
    child = None
    for epoch in range(6):
        for step in range(2):
            w += 1.0
            if epoch == 1 and child is None:
                child = os.fork()
            if child == 0:  # a child that trains on beside its parent, on other values
                w[:] = -7.0
            time.sleep(0.02)
        if child != 0:
            print(epoch, float(w.sum()))
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
"""


def test_a_forked_child_never_writes_into_the_parents_snapshots(tmp_path):
    shown = record(tmp_path, FORKS)
    assert {s["kind"] for s in shown["snapshots"]} >= {"memo", "checkpoint"}
    with Store.open_existing(tmp_path / ".store") as store:
        for snap in shown["snapshots"]:
            if snap["kind"] in ("memo", "checkpoint"):
                payload = load_snapshot(store, snap["manifest"])
                (idx,) = [entry[3] for entry in payload["names"] if entry[2] == "w"]
                values = payload["objects"][idx].data
                assert (values == 2.0 * (snap["epoch"] + 1)).all(), (snap["epoch"], snap["kind"], values[:3])


def test_replay_says_how_long_it_took_against_the_recording(tmp_path):
    record(tmp_path)
    edited = textwrap.dedent(TRAIN).replace(
        "    print(", "    flortrace.log('w', float(w.sum()))\n    print("
    )
    (tmp_path / "train.py").write_text("import flortrace\n" + edited)
    began = time.monotonic()
    out = flortrace(tmp_path, "replay", "train.py")
    took = time.monotonic() - began
    (line,) = [line for line in out.stderr.splitlines() if line.startswith("flortrace: replayed run 1 in ")]
    replayed = float(line.split(" in ")[1].split(" s")[0])
    recorded = float(line.split("recording took ")[1].split(" s")[0])
    assert 0 < replayed <= took and recorded > 0
    assert os.path.exists(tmp_path / ".store")
