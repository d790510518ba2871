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
from flortrace.store.writer import OUT_OF_BAND_MIN, SnapshotWriter, load_snapshot  # noqa: E402

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
    header = data[len(writer_module.MANIFEST_MAGIC) : data.index(b"\n", len(writer_module.MANIFEST_MAGIC))]
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
    # Contiguous arrays of 64 KiB and more travel out of band and are stored as their own blobs.
    oob = sorted(n for _, n in manifest_buffers(store, snap["manifest"]))
    assert oob == sorted(a.nbytes for a in arrays(payload) if a.nbytes >= OUT_OF_BAND_MIN and contiguous(a))
    assert len(oob) == 11
    stats = writer.stats()
    assert stats["snapshots"] == 1 and stats["bytes_raw"] == snap["nbytes"]
    assert stats["bytes_stored"] == snap["stored"] > 0


def test_same_array_is_stored_once(store, run_id, writer):
    frozen = np.random.default_rng(2).standard_normal(200_000)
    for epoch in range(2):
        head = np.full(50_000, float(epoch))
        assert submit(writer, {"frozen": frozen, "head": head}, epoch=epoch)
        wait_idle(writer)
    first, second = store.catalog.snapshots(run_id)
    frozen_digest = {d for d, n in manifest_buffers(store, first["manifest"]) if n == frozen.nbytes}
    assert frozen_digest == {d for d, n in manifest_buffers(store, second["manifest"]) if n == frozen.nbytes}
    assert second["stored"] < first["stored"] - frozen.nbytes // 2  # the frozen array was not written again
    run = store.catalog.run(run_id)
    assert run["bytes"] == store.blobs.total_bytes() == first["stored"] + second["stored"]
    assert_same(load_snapshot(store, second["manifest"])["frozen"], frozen)


def test_submit_while_busy_is_refused(store, run_id, writer):
    payload = {"x": np.random.default_rng(3).standard_normal(4_000_000)}
    assert submit(writer, payload, epoch=0)
    assert writer.busy
    assert not submit(writer, {"y": 1}, epoch=1)
    wait_idle(writer)
    assert submit(writer, {"y": 1}, epoch=2)
    wait_idle(writer)
    assert [s["epoch"] for s in store.catalog.snapshots(run_id)] == [0, 2]


def test_submit_returns_at_once_for_200_mb(store, run_id, writer):
    payload = {"weights": np.full(25_000_000, 1.5)}  # 200 MB
    began = time.perf_counter()
    assert submit(writer, payload)
    assert time.perf_counter() - began < 0.05
    wait_idle(writer)
    assert writer.failed is None and writer.stats()["bytes_raw"] > 200_000_000


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
    assert submit(writer, {"f": lambda: 1})
    wait_idle(writer)
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
    import sys, time, numpy as np
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
    blobs = len(list(store.blobs))
    assert w.submit({f"layer{i}": rng.standard_normal(1_000_000) for i in range(8)}, epoch=1, **meta)
    while len(list(store.blobs)) == blobs:  # wait until the writer is part way through
        time.sleep(0.001)
    print(run, w._process.pid, flush=True)
    time.sleep(60)
"""


def test_killed_training_process_leaves_only_complete_snapshots(tmp_path):
    root = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    code = textwrap.dedent(TRAIN_AND_DIE)
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(root)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        run_id, writer_pid = map(int, child.stdout.readline().split())
        child.send_signal(signal.SIGKILL)  # part way through a 64 MB snapshot
        child.wait()
    finally:
        child.kill()
        child.stdout.close()
    deadline = time.monotonic() + 30
    while _alive(writer_pid):
        assert time.monotonic() < deadline, "the writer process outlived the training process"
        time.sleep(0.01)
    with Store.open_existing(root) as store:
        assert store.catalog.run(run_id)["status"] == "crashed"
        (snap,) = store.catalog.snapshots(run_id)
        assert snap["epoch"] == 0
        np.testing.assert_array_equal(load_snapshot(store, snap["manifest"])["small"], np.arange(100_000))


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
    (digest, _), *_ = manifest_buffers(store, snap["manifest"])
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
