"""Tests for the content-addressed blob store."""

import array
import hashlib
import os

import blake3
import lz4.frame
import pytest

from flortrace.store import CorruptBlob, Store, StoreError
from flortrace.store.blobs import Batch, BlobStore, compresses


@pytest.fixture
def blobs(tmp_path):
    (tmp_path / "tmp").mkdir()
    return BlobStore(tmp_path / "blobs", tmpdir=tmp_path / "tmp")


def test_round_trip(blobs):
    data = b"hello flortrace" * 1000
    digest, stored, new = blobs.put(data)
    assert digest == blake3.blake3(data).hexdigest()
    assert new is True
    path = blobs.root / digest[:2] / digest
    assert path.is_file() and stored == path.stat().st_size
    assert stored < len(data)  # lz4 compressed it
    assert blobs.get(digest) == data
    assert blobs.exists(digest) and blobs.size(digest) == stored
    assert list(blobs) == [digest]
    assert blobs.total_bytes() == stored


def test_empty_and_multibyte_buffers(blobs):
    digest, _, _ = blobs.put(b"")
    assert blobs.get(digest) == b""
    doubles = array.array("d", [1.5, -2.0, 3.25] * 1000)
    digest, _, _ = blobs.put(memoryview(doubles))
    assert blobs.get(digest) == doubles.tobytes()


def test_large_buffer_is_compressed_in_slices(blobs):
    data = bytes(range(256)) * (20 * 4096 + 7)  # > 20 MB, several compression slices
    digest, _, _ = blobs.put(memoryview(data))
    assert blobs.get(digest) == data


def test_incompressible_data_is_stored_raw_and_reads_back(blobs):
    np = pytest.importorskip("numpy")
    weights = np.random.default_rng(0).standard_normal(3_000_000).astype(np.float32)  # 12 MB, 3 blocks
    zeros = np.zeros(3_000_000, dtype=np.float32)
    assert not compresses(memoryview(weights).cast("B")) and compresses(memoryview(zeros).cast("B"))
    raw, raw_size, _ = blobs.put(memoryview(weights))
    packed, packed_size, _ = blobs.put(memoryview(zeros))
    frame = (blobs.root / raw[:2] / raw).read_bytes()
    assert raw_size == weights.nbytes + 7 + 3 * 4 + 4  # header, a size word per block, end mark
    assert frame[7 + 4 : 7 + 4 + 100] == weights.tobytes()[:100]  # the bytes as they are
    assert packed_size < zeros.nbytes // 100
    assert blobs.get(raw) == weights.tobytes() and blobs.get(packed) == zeros.tobytes()
    assert lz4.frame.decompress(frame) == weights.tobytes()  # still a standard lz4 frame


def test_blobs_named_by_older_versions_still_verify(blobs):
    data = b"written by flortrace 0.1" * 100
    legacy = hashlib.blake2b(data, digest_size=32).hexdigest()
    (blobs.root / legacy[:2]).mkdir(parents=True)
    (blobs.root / legacy[:2] / legacy).write_bytes(lz4.frame.compress(data, content_checksum=True))
    assert blobs.get(legacy) == data
    (blobs.root / legacy[:2] / legacy).write_bytes(lz4.frame.compress(data[1:]))
    with pytest.raises(CorruptBlob, match="does not match its digest"):
        blobs.get(legacy)


def test_prepared_blobs_appear_only_when_committed(blobs, tmp_path):
    datas = [os.urandom(300_000) for _ in range(4)]
    synced = []

    def recording_map(fn, items):
        items = list(items)
        synced.extend(items)
        return map(fn, items)

    with Batch(blobs) as batch:
        pending = [batch.prepare(d) for d in datas]
        assert list(blobs) == [] and len(os.listdir(tmp_path / "tmp")) == 4
        batch.commit(pending, map=recording_map)
    assert sorted(blobs) == sorted(p.digest for p in pending) and os.listdir(tmp_path / "tmp") == []
    assert len(synced) == 4 + len({p.digest[:2] for p in pending})  # the files, then their folders
    assert [blobs.get(p.digest) for p in pending] == datas
    with Batch(blobs) as batch:
        again = batch.prepare(datas[0])
    assert (again.new, again.tmp, again.stored) == (False, None, pending[0].stored)


def test_discarded_and_failed_commits_leave_no_temporary_files(blobs, tmp_path):
    with Batch(blobs) as batch:
        batch.discard([batch.prepare(os.urandom(1000))])
        assert os.listdir(tmp_path / "tmp") == [] and list(blobs) == []
        pending = [batch.prepare(os.urandom(1000)) for _ in range(2)]

        def failing_map(fn, items):
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError, match="No space"):
            batch.commit(pending, map=failing_map)
    assert os.listdir(tmp_path / "tmp") == [] and list(blobs) == []


def test_get_mutable_returns_bytearray(blobs):
    digest, _, _ = blobs.put(b"abc" * 100)
    data = blobs.get(digest, mutable=True)
    assert isinstance(data, bytearray) and data == b"abc" * 100


def test_second_put_writes_nothing(blobs, tmp_path):
    data = os.urandom(100_000)
    digest, stored, new = blobs.put(data)
    path = blobs.root / digest[:2] / digest
    before = (path.stat().st_ino, path.read_bytes())
    again = blobs.put(bytearray(data))
    assert again == (digest, stored, False)
    assert (path.stat().st_ino, path.read_bytes()) == before
    assert list(blobs) == [digest]
    assert os.listdir(tmp_path / "tmp") == []


def test_flipped_byte_is_corrupt(blobs):
    data = os.urandom(50_000)
    digest, _, _ = blobs.put(data)
    path = blobs.root / digest[:2] / digest
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(raw)
    with pytest.raises(CorruptBlob) as info:
        blobs.get(digest)
    assert digest in str(info.value) and str(path) in str(info.value)


def test_truncated_blob_is_corrupt(blobs):
    digest, _, _ = blobs.put(os.urandom(50_000))
    path = blobs.root / digest[:2] / digest
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptBlob, match=digest):
        blobs.get(digest)


def test_valid_frame_with_other_content_is_corrupt(blobs):
    first, _, _ = blobs.put(b"first" * 100)
    second, _, _ = blobs.put(b"second" * 100)
    (blobs.root / second[:2] / second).write_bytes((blobs.root / first[:2] / first).read_bytes())
    with pytest.raises(CorruptBlob, match="does not match its digest"):
        blobs.get(second)


def test_missing_blob(blobs):
    digest = "ab" * 32
    with pytest.raises(CorruptBlob, match=f"missing blob {digest}"):
        blobs.get(digest)
    assert not blobs.exists(digest)


def test_bad_digest_is_refused(blobs):
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 31):
        with pytest.raises(CorruptBlob, match="not a blob digest"):
            blobs.get(bad)


def test_delete_and_iteration_skip_foreign_files(blobs):
    digests = sorted(blobs.put(bytes([i]) * 1000)[0] for i in range(5))
    (blobs.root / "README").write_text("not a blob")
    (blobs.root / digests[0][:2] / ".partial").write_text("not a blob")
    assert sorted(blobs) == digests
    assert blobs.delete(digests[0]) is True
    assert blobs.delete(digests[0]) is False
    assert sorted(blobs) == digests[1:]
    assert blobs.total_bytes() == sum(blobs.size(d) for d in digests[1:])


def test_store_layout_and_errors(tmp_path):
    root = tmp_path / "store"
    with pytest.raises(StoreError, match="no flortrace store at .*record a run first"):
        Store.open_existing(root)
    with Store(root) as store:
        names = {p.name for p in root.iterdir()}
        assert {"blobs", "catalog.sqlite", "locks", "tmp"} <= names
        digest, _, _ = store.blobs.put(b"x" * 10)
    with Store.open_existing(root) as store:
        assert store.blobs.get(digest) == b"x" * 10
    # Root ignores file modes, so make the store impossible to create: its parent is a file.
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=f"cannot write the store at {blocker}/store: "):
        Store(blocker / "store")


def test_gc_keeps_referenced_and_fresh_blobs(tmp_path):
    with Store(tmp_path / "store") as store:
        cat = store.catalog
        kept, _, _ = store.blobs.put(b"kept" * 100)
        manifest, _, _ = store.blobs.put(b"manifest" * 100)
        old, old_size, _ = store.blobs.put(b"old" * 100)
        run = cat.begin_run("t.py", [], str(tmp_path), {}, {})
        cat.add_snapshot(run, 0, "checkpoint", None, None, manifest, 10, 10, 0.0, "r", [kept])
        fresh, _, _ = store.blobs.put(b"fresh" * 100)  # unreferenced, but the run is still running
        past = cat.run(run)["started"] - 60
        os.utime(store.blobs.path(old), (past, past))
        stale_tmp = store.tmp / ".leftover"
        stale_tmp.write_bytes(b"partial")
        os.utime(stale_tmp, (past, past))
        assert store.gc(tmp_age=30) == (1, old_size)
        assert sorted(store.blobs) == sorted([kept, manifest, fresh])
        assert not stale_tmp.exists()
        cat.end_run(run, "finished", 0)
        os.utime(store.blobs.path(fresh), (past, past))
        assert store.gc(dry_run=True)[0] == 1 and fresh in set(store.blobs)
        assert store.gc()[0] == 1
        assert sorted(store.blobs) == sorted([kept, manifest])
