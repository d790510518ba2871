"""Tests for the background snapshot writer and load_snapshot."""

import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

import flortrace.store  # noqa: E402
from flortrace.store import Catalog, CorruptBlob, Store  # noqa: E402
from flortrace.store import writer as writer_module  # noqa: E402
from flortrace.store.snapshot import MANIFEST_MAGIC, load_snapshot  # noqa: E402
from flortrace.store.writer import OUT_OF_BAND_MIN, SnapshotWriter  # noqa: E402

PACKAGE_PARENT = str(Path(flortrace.store.__file__).absolute().parents[2])
META = {"kind": "checkpoint", "loop_id": "train.py:<module>:0", "seq": None, "reason": "test", "stall": 0.01}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "store") as store:
        yield store


@pytest.fixture
def run_id(store):
    run = store.catalog.begin_run("train.py", [], "/", {}, {})
    yield run
    store.catalog.end_run(run, "finished", 0)


@pytest.fixture
def writer(store, run_id):
    w = SnapshotWriter(store.root, run_id)
    yield w
    w.close(timeout=30)


def wait_idle(w, timeout=60):
    deadline = time.monotonic() + timeout
    while w.busy:
        assert time.monotonic() < deadline, "the writer did not finish"
        time.sleep(0.005)


def submit(w, payload, epoch=0, **meta):
    return w.submit(payload, epoch=epoch, **{**META, **meta})


def assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        assert a.flags.f_contiguous == b.flags.f_contiguous
        np.testing.assert_array_equal(a, b)
        assert b.flags.writeable
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b or (a != a and b != b)  # NaN


def arrays(tree):
    if isinstance(tree, np.ndarray):
        yield tree
    elif isinstance(tree, dict | list | tuple):
        for item in tree.values() if isinstance(tree, dict) else tree:
            yield from arrays(item)


def contiguous(a):
    return a.flags.c_contiguous or a.flags.f_contiguous


def manifest_buffers(store, digest):
    data = store.blobs.get(digest)
    header = data[len(MANIFEST_MAGIC) : data.index(b"\n", len(MANIFEST_MAGIC))]
    return json.loads(header)["buffers"]


def test_payload_round_trip(store, run_id, writer):
    rng = np.random.default_rng(1)
    big = rng.standard_normal((300, 200)).astype(np.float32)
    payload = {
        "model": {
            "w": big,
            "w_fortran": np.asfortranarray(rng.standard_normal((128, 96))),
            "half": rng.standard_normal(40_000).astype(np.float16),
            "ints": {str(t): np.arange(-50, 50_000, dtype=t) for t in ("int8", "int16", "int32", "int64")},
            "uints": np.arange(70_000, dtype=np.uint16),
            "mask": rng.random(100_000) > 0.5,
            "complex": (rng.standard_normal(5000) + 1j).astype(np.complex64),
            "nan": np.array([np.nan, np.inf, -0.0] * 10_000),
            "dates": np.arange("2020-01-01", "2024-01-01", dtype="datetime64[D]"),
            "scalar": np.array(3.5),
            "empty": np.zeros((0, 7), dtype=np.int32),
            "strided": big[::2, ::3],
            "record": np.zeros(9000, dtype=[("a", "i4"), ("b", "f8")]),
        },
        "optimizer": [{"lr": 0.1, "momentum": np.zeros((300, 200), dtype=np.float32)}, ("adam", None)],
        "step": 1234,
        "note": "epoch 0",
        "rng": (3, tuple(range(625)), None),
        "raw": b"\x00\x01" * 10,
    }
    assert submit(writer, payload, epoch=4)
    wait_idle(writer)
    assert writer.failed is None
    (snap,) = store.catalog.snapshots(run_id)
    assert (snap["epoch"], snap["kind"], snap["reason"], snap["stall"]) == (4, "checkpoint", "test", 0.01)
    restored = load_snapshot(store, snap["manifest"])
    assert_same(payload, restored)
    # Contiguous arrays of 64 KiB and more travel out of band; under 1 MiB they share one blob, at offsets.
    entries = manifest_buffers(store, snap["manifest"])
    oob = sorted(e[1] for e in entries)
    assert oob == sorted(a.nbytes for a in arrays(payload) if a.nbytes >= OUT_OF_BAND_MIN and contiguous(a))
    assert len(oob) == 11 and len({e[0] for e in entries}) == 1 and len({e[2] for e in entries}) == 11
    stats = writer.stats()
    assert stats["snapshots"] == 1 and stats["bytes_raw"] == snap["nbytes"]
    assert stats["bytes_stored"] == snap["stored"] > 0


def test_same_array_is_stored_once(store, run_id, writer):
    rng = np.random.default_rng(2)
    frozen, frozen_small = rng.standard_normal(200_000), rng.standard_normal(60_000)  # 1.6 MB, 480 KB
    for epoch in range(2):
        head = np.full(50_000, float(epoch))
        assert submit(writer, {"frozen": frozen, "small": frozen_small, "head": head}, epoch=epoch)
        wait_idle(writer)
    first, second = store.catalog.snapshots(run_id)
    before, after = (manifest_buffers(store, s["manifest"]) for s in (first, second))
    assert [e for e in before if e[1] == frozen.nbytes] == [e for e in after if e[1] == frozen.nbytes]
    assert [e for e in before if e[1] == frozen_small.nbytes] == [
        e for e in after if e[1] == frozen_small.nbytes
    ]
    assert second["stored"] < first["stored"] - frozen.nbytes // 2 - frozen_small.nbytes // 2  # not again
    run = store.catalog.run(run_id)
    assert run["bytes"] == store.blobs.total_bytes() == first["stored"] + second["stored"]
    restored = load_snapshot(store, second["manifest"])
    assert_same(restored["frozen"], frozen)
    assert_same(restored["small"], frozen_small)
    assert_same(restored["head"], np.full(50_000, 1.0))


def test_snapshots_of_one_job_share_their_blobs(store, run_id, writer):
    """A memo and a checkpoint taken from the same state store its bytes once, in one job."""
    rng = np.random.default_rng(8)
    state = {"w": rng.standard_normal(100_000), "big": rng.standard_normal(300_000)}
    items = [dict(payload=state, kind=kind, loop_id="l", seq=0, stall=0.0) for kind in ("memo", "checkpoint")]
    assert writer.submit_many(items, epoch=0, reason="test")
    wait_idle(writer)
    memo, checkpoint = store.catalog.snapshots(run_id)
    assert manifest_buffers(store, memo["manifest"]) == manifest_buffers(store, checkpoint["manifest"])
    assert checkpoint["stored"] < 2000 < memo["stored"]  # only its manifest is new
    assert_same(load_snapshot(store, checkpoint["manifest"]), state)


def test_submit_while_busy_is_refused(store, run_id, writer):
    payload = {"x": np.random.default_rng(3).standard_normal(4_000_000)}
    assert submit(writer, payload, epoch=0)
    assert writer.busy
    assert not submit(writer, {"y": 1}, epoch=1)
    wait_idle(writer)
    assert submit(writer, {"y": 1}, epoch=2)
    wait_idle(writer)
    assert [s["epoch"] for s in store.catalog.snapshots(run_id)] == [0, 2]


def test_no_array_bytes_go_through_the_socket(store, run_id, writer, monkeypatch):
    """A capture copies into the writer's shared memory: handing over 200 MB sends a small message."""
    sent = []
    real = writer_module._send_frame
    monkeypatch.setattr(
        writer_module,
        "_send_frame",
        lambda sock, data, fds=(): sent.append(len(data)) or real(sock, data, fds),
    )
    weights = writer.alloc(200_000_000).view(np.float64)
    weights[:] = 1.5
    assert submit(writer, {"weights": weights, "small": np.arange(10)})
    del weights
    wait_idle(writer)
    assert writer.failed is None and writer.stats()["bytes_raw"] > 200_000_000
    assert len(sent) == 1 and sent[0] < 10_000
    (snap,) = store.catalog.snapshots(run_id)
    restored = load_snapshot(store, snap["manifest"])
    assert restored["weights"].shape == (25_000_000,) and (restored["weights"] == 1.5).all()


def test_shared_memory_is_reused_only_when_nothing_uses_it(store, run_id, writer):
    first = writer.alloc(1 << 20)
    first[:] = 1
    assert submit(writer, {"a": first})
    held = writer.alloc(1 << 20)  # assembled while the first job is in flight: other memory
    assert held.ctypes.data != first.ctypes.data
    held[:] = 2
    wait_idle(writer)
    del first
    again = writer.alloc(1 << 20)  # the first arena is free again, and reused
    assert submit(writer, {"b": held, "c": again})
    wait_idle(writer)
    kept = held  # a snapshot kept alive keeps its memory from being handed out again
    fresh = writer.alloc(1 << 20)
    fresh[:] = 3
    assert (kept == 2).all() and fresh.ctypes.data != kept.ctypes.data
    assert writer.alloc(100) is None  # small buffers travel in band


def test_close_waits_and_stops_the_process(store, run_id, writer):
    assert submit(writer, {"x": np.arange(1_000_000)})
    writer.close()
    assert not writer.busy and writer._process.returncode == 0
    assert len(store.catalog.snapshots(run_id)) == 1
    writer.close()  # twice is fine
    assert not submit(writer, {"x": 1})


def test_close_prints_progress_only_on_a_tty(store, run_id, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(writer_module, "_PROGRESS_AFTER", 0.0)
    printed = []
    for stream in (io.StringIO(), Terminal()):
        monkeypatch.setattr(sys, "stderr", stream)
        w = SnapshotWriter(store.root, run_id)
        assert submit(w, {"x": np.random.default_rng(4).standard_normal(2_000_000)}, epoch=5)
        w.close()
        printed.append(stream.getvalue())
    assert printed[0] == ""
    assert printed[1].startswith("flortrace: writing checkpoint of epoch 5")
    assert len(store.catalog.snapshots(run_id)) == 2


def test_close_timeout_abandons_the_snapshot(store, run_id):
    w = SnapshotWriter(store.root, run_id)
    w.start()
    big = {"x": np.random.default_rng(5).standard_normal(16_000_000)}  # 128 MB
    assert submit(w, big)
    began = time.monotonic()
    w.close(timeout=0.01)
    assert time.monotonic() - began < 5
    assert w._process.returncode is not None
    assert store.catalog.snapshots(run_id) == []


def test_unpicklable_payload_fails_the_writer(store, run_id, writer):
    assert not submit(writer, {"f": lambda: 1})
    assert writer.failed.startswith("cannot serialize the checkpoint of epoch 0")
    assert not submit(writer, {"x": 1})


def test_missing_store_fails_the_writer(tmp_path):
    w = SnapshotWriter(tmp_path / "nowhere", 1)
    assert submit(w, {"x": np.zeros(100_000)})
    wait_idle(w)
    assert "no flortrace store at" in w.failed
    w.close()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_does_not_use_the_parents_writer(store, run_id, writer):
    assert submit(writer, {"x": 1})
    wait_idle(writer)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not submit(writer, {"x": 2}) and writer._sock is None else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert submit(writer, {"x": 3})
    wait_idle(writer)
    assert [load_snapshot(store, s["manifest"]) for s in store.catalog.snapshots(run_id)] == [
        {"x": 1},
        {"x": 3},
    ]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_no_shared_memory(store, run_id, writer):
    """A child's capture must not land in memory its parent's writer reads: it gets private memory."""
    held = writer.alloc(1 << 20)
    held[:] = 5
    pid = os.fork()
    if pid == 0:
        os._exit(0 if writer.alloc(1 << 20) is None else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert submit(writer, {"a": held})
    wait_idle(writer)
    (snap,) = store.catalog.snapshots(run_id)
    assert (load_snapshot(store, snap["manifest"])["a"] == 5).all()


def test_write_error_is_reported(store, run_id):
    """A real write error from the kernel: RLIMIT_FSIZE makes writes past 1 MiB fail with EFBIG.

    File modes cannot simulate a full or read-only disk here (tests may run as root, which ignores
    them); a file size limit is honoured by root too, and the writer process inherits it at start.
    """
    w = SnapshotWriter(store.root, run_id)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        w.start()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    try:
        assert submit(w, {"x": np.random.default_rng(6).standard_normal(1_000_000)})  # 8 MB
        wait_idle(w)
        assert "File too large" in w.failed and str(store.root) in w.failed
        assert not submit(w, {"x": 1})
        assert store.catalog.snapshots(run_id) == []
        assert os.listdir(store.tmp) == []  # the partial temporary file was removed
    finally:
        w.close()


FULL_DISK = """
    import json, subprocess, sys, time, numpy as np
    from flortrace.store import Store
    from flortrace.store.writer import SnapshotWriter
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", sys.argv[1]], check=True)
    store = Store(sys.argv[1])
    run = store.catalog.begin_run("t.py", [], "/", {}, {})
    w = SnapshotWriter(sys.argv[1], run)
    w.submit({"x": np.random.default_rng(0).standard_normal(1_000_000)}, epoch=0, kind="checkpoint",
             loop_id=None, seq=None, reason="", stall=0.0)
    while w.busy:
        time.sleep(0.001)
    print(json.dumps({"failed": w.failed, "snapshots": len(store.catalog.snapshots(run))}))
    w.close()
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_full_disk_is_reported(tmp_path):
    """ENOSPC for real: a 2 MiB tmpfs in a private user and mount namespace (skipped where not allowed)."""
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available")
    mount = tmp_path / "small"
    mount.mkdir()
    code = textwrap.dedent(FULL_DISK)
    env = {**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    done = subprocess.run(
        ["unshare", "-Urm", sys.executable, "-c", code, str(mount)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "No space left on device" in result["failed"] and result["snapshots"] == 0


TRAIN_AND_DIE = """
    import os, sys, time, numpy as np
    from flortrace.store import Store
    from flortrace.store.writer import SnapshotWriter
    store = Store(sys.argv[1])
    run = store.catalog.begin_run("t.py", [], "/", {}, {})
    w = SnapshotWriter(sys.argv[1], run)
    meta = dict(kind="checkpoint", loop_id=None, seq=None, reason="", stall=0.0)
    w.submit({"small": np.arange(100_000)}, epoch=0, **meta)
    while w.busy:
        time.sleep(0.001)
    rng = np.random.default_rng(0)
    assert w.submit({f"layer{i}": rng.standard_normal(1_000_000) for i in range(8)}, epoch=1, **meta)
    while not os.listdir(store.tmp):  # wait until the writer is part way through
        time.sleep(0.0005)
    print(run, w._process.pid, flush=True)
    time.sleep(60)
"""


def _train_and_kill(root, victim):
    """Run TRAIN_AND_DIE and SIGKILL the training process or its writer part way through a 64 MB job;
    returns (run id, writer pid)."""
    env = {**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    code = textwrap.dedent(TRAIN_AND_DIE)
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(root)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        run_id, writer_pid = map(int, child.stdout.readline().split())
        os.kill(child.pid if victim == "training" else writer_pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    deadline = time.monotonic() + 30
    while _alive(writer_pid):
        assert time.monotonic() < deadline, "the writer process outlived the training process"
        time.sleep(0.01)
    return run_id


def _assert_complete(store, run_id, epochs):
    """The run's snapshots are those of ``epochs``, each whole, and every blob in place verifies."""
    snaps = store.catalog.snapshots(run_id)
    assert [s["epoch"] for s in snaps] == epochs
    rng = np.random.default_rng(0)
    expected = {
        0: {"small": np.arange(100_000)},
        1: {f"layer{i}": rng.standard_normal(1_000_000) for i in range(8)},
    }
    for snap in snaps:
        assert_same(load_snapshot(store, snap["manifest"]), expected[snap["epoch"]])
    for digest in store.blobs:
        store.blobs.get(digest)


def test_killed_training_process_keeps_complete_snapshots(tmp_path):
    """The job in flight lies whole in shared memory: the writer may finish it, then exits."""
    run_id = _train_and_kill(tmp_path / "store", "training")
    with Store.open_existing(tmp_path / "store") as store:
        assert store.catalog.run(run_id)["status"] == "crashed"
        epochs = [s["epoch"] for s in store.catalog.snapshots(run_id)]
        assert epochs in ([0], [0, 1])
        _assert_complete(store, run_id, epochs)


def test_killed_writer_commits_nothing_partial(tmp_path):
    """A writer killed mid-job (power loss, OOM killer) leaves earlier snapshots whole and none partial."""
    run_id = _train_and_kill(tmp_path / "store", "writer")
    with Store.open_existing(tmp_path / "store") as store:
        _assert_complete(store, run_id, [0])


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_damaged_snapshot_raises(store, run_id, writer):
    assert submit(writer, {"x": np.arange(100_000)})
    wait_idle(writer)
    (snap,) = store.catalog.snapshots(run_id)
    digest = manifest_buffers(store, snap["manifest"])[0][0]
    store.blobs.delete(digest)
    with pytest.raises(CorruptBlob, match=f"missing blob {digest}"):
        load_snapshot(store, snap["manifest"])
    not_manifest, _, _ = store.blobs.put(b"just data")
    with pytest.raises(CorruptBlob, match="not a snapshot manifest"):
        load_snapshot(store, not_manifest)


def test_catalog_stays_readable_while_writing(store, run_id, writer):
    assert submit(writer, {"x": np.random.default_rng(7).standard_normal(4_000_000)})
    with Catalog(store.root / "catalog.sqlite") as reader:
        while writer.busy:
            assert reader.run(run_id)["status"] == "running"
        assert len(reader.snapshots(run_id)) == 1


def test_a_finished_snapshot_does_not_block_the_next_submit(writer, store, run_id):
    """Nobody asks `busy` between two epochs' snapshots: submitting reads the writer's answer itself."""
    assert submit(writer, {"w": np.arange(10.0)}, epoch=0)
    deadline = time.monotonic() + 60
    while writer.stats()["jobs"] == 0 and len(store.catalog.snapshots(run_id)) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)  # the answer is on its way back once the catalog row exists
    assert submit(writer, {"w": np.arange(10.0) + 1}, epoch=1)
    wait_idle(writer)
    assert [s["epoch"] for s in store.catalog.snapshots(run_id)] == [0, 1]
    stats = writer.stats()
    assert stats["jobs"] == 2 and 0 < stats["cpu_seconds"] <= stats["seconds"] * 1.5
