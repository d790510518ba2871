"""The background writer: the training process hands over a snapshot and never waits on disk.

Captures copy large arrays into shared memory (shared.py). ``SnapshotWriter.submit_many`` pickles a
snapshot on the training thread with protocol 5, so every array of 64 KiB or more stays out of band as a
reference into that memory, and sends the small pickle and the references to a persistent writer process
in one message: no array bytes go through the socket, and no thread is left running in the training
process. The writer process hashes, compresses (or, for data lz4 cannot shrink, stores raw) and writes the
arrays as blobs, on as many threads as there are idle cores, then a manifest blob per snapshot; it makes
all the blobs of a job durable in one round of fsyncs and only then indexes the snapshots in the catalog.
One job is in flight at a time; when the writer is behind, ``submit_many`` returns False and the policy
skips rather than blocks. The shared memory of a job is reused only once the writer has answered for it.

The writer process is started with ``subprocess`` (fork + exec of a fresh interpreter), not with
``multiprocessing``'s spawn context: spawn re-imports the parent's ``__main__`` in the child, and
under flortrace ``__main__`` is the user's training script.
"""

from __future__ import annotations

import atexit
import mmap
import os
import pickle
import select
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flortrace.exceptions import StoreError
from flortrace.store import Store
from flortrace.store.blobs import Batch, digest_of
from flortrace.store.shared import Arenas
from flortrace.store.snapshot import manifest as make_manifest

OUT_OF_BAND_MIN = 64 * 1024  # buffers at least this large travel by reference, outside the pickle
PACK_BELOW = 1 << 20  # smaller new buffers of a job are stored together in one blob; larger ones alone
_FRAME = struct.Struct("<Q")
_SOCKET_BUFFER = 4 << 20
_RECV_CHUNK = 16 << 20
_PROGRESS_AFTER = 1.0
_MAX_FDS = 64  # segments one job may bring
_PARALLEL_FROM = 4 << 20  # jobs with fewer array bytes are written on one thread
_MAX_THREADS = 8
_SYNC_THREADS = 16  # fsyncs in flight at once (they wait on the disk, not the CPU)

_CHILD_CODE = (
    "import sys; sys.path[0] = sys.argv[1]; from flortrace.store.writer import _child_main; "
    "_child_main(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))"
)


class SnapshotWriter:
    """Writes snapshots of run ``run_id`` into the store at ``store_root`` from a separate process."""

    def __init__(self, store_root: str | os.PathLike, run_id: int):
        self.store_root = os.fspath(Path(store_root).absolute())
        self.run_id = run_id
        self.failed: str | None = None
        self._lock = threading.RLock()
        self._job: dict | None = None  # the job in flight: submitted, not yet written or failed
        self._jobs = 0
        self._closed = False
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._arenas = Arenas()
        self._registered = False
        self._stats = {
            "jobs": 0,
            "snapshots": 0,
            "bytes_raw": 0,
            "bytes_stored": 0,
            "seconds": 0.0,
            "cpu_seconds": 0.0,
            "send_seconds": 0.0,
            "phases": {},  # wall seconds of the writer process in each step: hash, write, fsync, index
        }
        _writers.add(self)

    @property
    def busy(self) -> bool:
        """A job is in flight (an answer that has arrived is read first, without waiting)."""
        if self._job is not None:
            self._collect(0.0)
        return self._job is not None

    def alloc(self, nbytes: int):
        """A writable uint8 numpy array of ``nbytes`` in shared memory for a capture to copy into, or None
        (a small buffer, which travels in band, or no snapshots are being taken): the next job reads it
        from there."""
        if nbytes < OUT_OF_BAND_MIN or self.failed is not None or self._closed:
            return None
        try:
            return self._arenas.alloc(nbytes)
        except OSError as exc:
            self._fail(f"cannot allocate shared memory for snapshots: {exc}")
            return None

    def submit(
        self,
        payload: object,
        *,
        epoch: int,
        kind: str,
        loop_id: str | None,
        seq: int | None,
        reason: str,
        stall: float,
    ) -> bool:
        """Hand ``payload`` over (the writer owns it from now on) without waiting; False if not taken."""
        item = {"payload": payload, "kind": kind, "loop_id": loop_id, "seq": seq, "stall": stall}
        return self.submit_many([item], epoch=epoch, reason=reason)

    def submit_many(self, items: list[dict], *, epoch: int, reason: str) -> bool:
        """Hand over several snapshots of one epoch as one job (each item: payload, kind, loop_id, seq,
        stall); their blobs become durable together, then each is indexed on its own. False if not taken."""
        try:
            if self.busy or self.failed is not None or self._closed:
                return False
            began = time.perf_counter()
            job = {"id": self._jobs, "epoch": epoch, "reason": reason, "kind": items[-1]["kind"], "nbytes": 0}
            arenas: set = set()
            try:
                job["items"] = [self._serialize(item, job, arenas) for item in items]
            except Exception as exc:
                self._fail(f"cannot serialize the {job['kind']} of epoch {epoch}: {exc!r}")
                return False
            self.start()
            if self.failed is not None:
                return False
            if not self._registered:
                self._registered = True
                atexit.register(self.close)
            self._send(job, arenas)
            self._stats["send_seconds"] += time.perf_counter() - began
            return self.failed is None
        finally:
            self._arenas.seal()

    def _serialize(self, item: dict, job: dict, arenas: set) -> dict:
        """An item as the writer process receives it: its pickle, and where its large buffers lie."""
        refs, keep = [], []

        def out_of_band(buffer: pickle.PickleBuffer) -> bool:
            try:
                view = buffer.raw()
            except BufferError:  # not contiguous: pickle copies it in band
                return True
            if view.nbytes < OUT_OF_BAND_MIN:
                return True
            found = self._locate(view, keep)
            if found is None:
                return True
            arena, segment, offset = found
            arenas.add(arena)
            refs.append((segment, offset, view.nbytes))
            job["nbytes"] += view.nbytes
            return False

        inband = pickle.dumps(item["payload"], protocol=5, buffer_callback=out_of_band)
        job["nbytes"] += len(inband)
        meta = {k: item[k] for k in ("kind", "loop_id", "seq", "stall")}
        return {**meta, "inband": inband, "buffers": refs}

    def _locate(self, view: memoryview, keep: list):
        """Where a buffer lies in shared memory; memory of the process's own is copied there first."""
        np = sys.modules.get("numpy")
        if np is None:
            return None
        found = self._arenas.find(np.frombuffer(view, dtype=np.uint8).ctypes.data, view.nbytes)
        if found is None:
            copy = self.alloc(view.nbytes)
            if copy is None:
                return None
            copy[:] = np.frombuffer(view, dtype=np.uint8)
            keep.append(copy)  # alive until sent: its arena cannot be reused before
            found = self._arenas.find(copy.ctypes.data, view.nbytes)
        return found

    def _send(self, job: dict, arenas: set) -> None:
        segments = self._arenas.take_unsent()
        message = {
            "id": job["id"],
            "epoch": job["epoch"],
            "reason": job["reason"],
            "items": job.pop("items"),
            "segments": [(s.ident, s.size) for s in segments],
            "retired": self._arenas.take_retired(),
        }
        try:
            _send_frame(self._sock, pickle.dumps(message, protocol=5), [s.fd for s in segments])
        except OSError:
            code = self._process.poll() if self._process else None
            self._fail(f"the flortrace writer process exited unexpectedly (exit code {code})")
            return
        finally:
            for segment in segments:
                segment.close_fd()  # the writer process holds its own descriptor now
        with self._lock:
            for arena in arenas:
                arena.jobs.add(job["id"])
            self._jobs += 1
            job["submitted"] = time.monotonic()
            self._job = job

    def in_flight(self) -> float:
        """Seconds the job in flight has been in flight (0.0 when none is)."""
        return time.monotonic() - self._job["submitted"] if self.busy else 0.0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is in flight; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._job is not None:
            left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            if left <= 0:
                return False
            self._collect(left)
        return True

    def _collect(self, timeout: float) -> None:
        """Read the writer's answer if it arrives within ``timeout`` seconds, and end the job."""
        with self._lock:
            job, sock = self._job, self._sock
            if job is None or sock is None:
                return
            if not select.select([sock], [], [], timeout)[0]:
                return
            try:
                answer = _recv_frame(sock)
            except (OSError, EOFError):
                answer = None
            if answer is None:
                code = self._process.poll() if self._process else None
                self._fail(f"the flortrace writer process exited unexpectedly (exit code {code})")
            else:
                status, detail = pickle.loads(answer)
                if status != "ok":
                    self._fail(detail)
                else:
                    for key in ("snapshots", "bytes_raw", "bytes_stored", "seconds", "cpu_seconds"):
                        self._stats[key] += detail[key]
                    for phase, seconds in detail["phases"].items():
                        self._stats["phases"][phase] = self._stats["phases"].get(phase, 0.0) + seconds
                    self._stats["jobs"] += 1
            self._arenas.done(job["id"])
            self._job = None

    def start(self) -> None:
        """Start the writer process now (the first job does it otherwise)."""
        with self._lock:
            if self._process is not None or self.failed is not None:
                return
            if self._closed:
                self._fail("the writer was closed before the snapshot was written")
                return
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                for sock, option in ((parent, socket.SO_SNDBUF), (child, socket.SO_RCVBUF)):
                    sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
                package_parent = str(Path(__file__).absolute().parents[2])
                argv = [sys.executable, "-c", _CHILD_CODE, package_parent, str(child.fileno())]
                self._process = subprocess.Popen(
                    [*argv, self.store_root, str(self.run_id)],
                    pass_fds=(child.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C in the terminal must not cut a checkpoint short
                )
            except OSError as exc:
                parent.close()
                self._fail(f"cannot start the flortrace writer process: {exc}")
                return
            finally:
                child.close()
            self._sock = parent

    def stats(self) -> dict:
        """Jobs and snapshots written, bytes raw and stored (new bytes only), the writer's wall and CPU
        seconds in jobs (and wall seconds per step), and seconds the training thread spent handing over."""
        return {**self._stats, "phases": dict(self._stats["phases"])}

    def close(self, timeout: float | None = None) -> None:
        """Wait for the job in flight (at most ``timeout`` seconds), then stop the writer process."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        began = time.monotonic()
        deadline = None if timeout is None else began + timeout
        announced = False
        while self._job is not None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if not announced and now - began >= _PROGRESS_AFTER:
                announced = True
                _announce(self._job)
            self._collect(0.25 if deadline is None else min(0.25, deadline - now))
        with self._lock:
            if self._job is not None and self._process is not None:
                self._process.kill()  # it commits nothing partial; the catalog keeps earlier snapshots
            self._job = None
            if self._sock is not None:
                self._sock.close()  # EOF tells an idle writer process to exit
            self._arenas.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _fail(self, message: str) -> None:
        if self.failed is None:
            self.failed = message

    def stop(self, reason: str) -> None:
        """Take no more snapshots (the recording stopped); a job in flight still finishes."""
        self._fail(reason)

    def _forget_after_fork(self) -> None:
        """In a forked child of the training process: never touch the parent's writer or its shared memory
        (a capture there would write into memory the parent's writer reads), never wait for it."""
        self._lock = threading.RLock()
        self._closed = True
        self.failed = "a forked child process takes no snapshots"
        self._job = None
        self._process = None
        self._arenas = Arenas()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


_writers: weakref.WeakSet[SnapshotWriter] = weakref.WeakSet()


def _forget_writers_after_fork() -> None:
    for writer in list(_writers):
        writer._forget_after_fork()


os.register_at_fork(after_in_child=_forget_writers_after_fork)


def _announce(job: dict) -> None:
    """Say why the end of the run waits, on a terminal (the script may have closed or replaced stderr)."""
    try:
        if sys.stderr.isatty():
            print(
                f"flortrace: writing {job['kind']} of epoch {job['epoch']}, {job['nbytes'] / 1e6:.0f} MB ...",
                file=sys.stderr,
                flush=True,
            )
    except (AttributeError, ValueError, OSError):
        pass


# -- framing: 8-byte little-endian length, then the bytes; descriptors ride on the length --------------


def _send_frame(sock: socket.socket, data: bytes | memoryview, fds: list[int] = ()) -> None:
    head = _FRAME.pack(memoryview(data).nbytes)
    if fds:
        sent = socket.send_fds(sock, [head], list(fds), socket.MSG_NOSIGNAL)
        head = head[sent:]
    sock.sendall(head, socket.MSG_NOSIGNAL)
    sock.sendall(data, socket.MSG_NOSIGNAL)


def _recv_exact(sock: socket.socket, view: memoryview, fds: list | None = None) -> bool:
    """Fill ``view`` (descriptors that come along go to ``fds``); False on EOF before the first byte,
    EOFError on EOF after it."""
    pos, size = 0, view.nbytes
    while pos < size:
        if fds is None:
            got = sock.recv_into(view[pos:], min(size - pos, _RECV_CHUNK))
        else:
            data, more, _, _ = socket.recv_fds(sock, size - pos, _MAX_FDS)
            view[pos : pos + len(data)] = data
            fds.extend(more)
            got = len(data)
        if got == 0:
            if pos == 0:
                return False
            raise EOFError("connection closed mid-frame")
        pos += got
    return True


def _recv_frame(sock: socket.socket, fds: list | None = None) -> bytearray | None:
    """The next frame, or None on a clean EOF between frames."""
    head = bytearray(_FRAME.size)
    if not _recv_exact(sock, memoryview(head), fds):
        return None
    (size,) = _FRAME.unpack(head)
    data = bytearray(size)
    if size and not _recv_exact(sock, memoryview(data)):
        raise EOFError("connection closed mid-frame")
    return data


# -- the writer process ----------------------------------------------------------------------------


def _child_main(fd: int, store_root: str, run_id: int) -> None:
    """Entry point of the writer process: write jobs until the training process hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    store, setup_error = None, None
    try:
        store = Store(store_root, create=False)
    except (StoreError, OSError, sqlite3.Error) as exc:
        setup_error = f"cannot open the store at {store_root}: {exc}"
    writer = _Writer(store, run_id)
    try:
        while True:
            fds: list[int] = []
            frame = _recv_frame(sock, fds)
            if frame is None:
                return
            try:
                job = writer.map_segments(pickle.loads(frame), fds)
            finally:
                for segment_fd in fds:
                    os.close(segment_fd)
            answer = ("error", setup_error) if setup_error is not None else writer.write(job)
            _send_frame(sock, pickle.dumps(answer))
            if answer[0] != "ok":
                return
    except (EOFError, OSError):
        return  # the training process is gone
    finally:
        if store is not None:
            store.close()
        sock.close()


class _Writer:
    """The writer process's state: the shared memory it maps, its threads, and where the small buffers it
    packed in this run lie (an unchanged one is pointed to, not stored again).

    Hashing and writing use the cores that are idle when a job comes (hashlib, lz4 and os.write release the
    GIL); fsyncs, which only wait on the disk, all go out at once."""

    def __init__(self, store: Store | None, run_id: int):
        self.store, self.run_id = store, run_id
        self.maps: dict[int, mmap.mmap] = {}
        self.packed: dict[str, tuple[str, int, int]] = {}  # buffer digest -> (pack digest, size, offset)
        self.sizes: dict[str, int] = {}  # blob digest -> stored size, for the blobs of this run's jobs
        self._cpu: dict[int, ThreadPoolExecutor] = {}
        self._sync = ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="flortrace-fsync")

    def map_segments(self, job: dict, fds: list[int]) -> dict:
        """Map the shared memory a job brings (a descriptor per new segment); unmap what it retires."""
        if len(fds) != len(job["segments"]):
            raise EOFError(f"{len(fds)} descriptors came with {len(job['segments'])} segments")
        for (ident, size), fd in zip(job["segments"], fds, strict=True):
            self.maps[ident] = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        for ident in job["retired"]:
            self.maps.pop(ident).close()
        return job

    def _cpu_map(self, threads: int):
        """A map function over ``threads`` threads."""
        if threads == 1:
            return map
        if threads not in self._cpu:
            self._cpu[threads] = ThreadPoolExecutor(threads, thread_name_prefix="flortrace-write")
        return self._cpu[threads].map

    def _sync_map(self, fn, items):
        items = list(items)
        return map(fn, items) if len(items) < 2 else self._sync.map(fn, items)

    def write(self, job: dict) -> tuple[str, Any]:
        """Write one job's snapshots; ('ok', stats) or ('error', message). Every blob of the job is durable
        before the first of its snapshots is indexed; a failure leaves no temporary file, indexes nothing."""
        began, cpu = time.monotonic(), time.process_time()
        views = [
            [memoryview(self.maps[s])[o : o + n] for s, o, n in item["buffers"]] for item in job["items"]
        ]
        try:
            with Batch(self.store.blobs) as batch:
                stats = self._write(batch, job, views)
        except Exception as exc:
            return "error", _describe(exc, store_root=self.store.root)
        finally:
            del views
        return "ok", {**stats, "seconds": time.monotonic() - began, "cpu_seconds": time.process_time() - cpu}

    def _write(self, batch: Batch, job: dict, views: list) -> dict:
        began = time.perf_counter()
        flat = [v for vs in views for v in vs]
        threads = 1 if sum(v.nbytes for v in flat) < _PARALLEL_FROM else _idle_cores()
        digests = [digest_of(v, threads) for v in flat]  # BLAKE3 spreads a large buffer over the threads
        hashed = time.perf_counter()
        where, pack, own, packed_bytes = {}, [], [], 0  # digest -> manifest entry; small, large new buffers
        for digest, view in zip(digests, flat, strict=True):
            if digest in where:
                continue
            if digest in self.packed:
                where[digest] = list(self.packed[digest])
            elif view.nbytes < PACK_BELOW:
                where[digest] = [None, view.nbytes, packed_bytes]
                pack.append(view)
                packed_bytes += view.nbytes
            else:
                where[digest] = [digest, view.nbytes]
                own.append((digest, view))
        pending = []
        try:
            pending = _prepare(batch, self._cpu_map(threads), own)
            if pack:
                packed = batch.prepare(b"".join(pack))
                pending.append(packed)
                for entry in where.values():
                    if entry[0] is None:
                        entry[0] = packed.digest
            manifests, pos = [], 0
            for item, vs in zip(job["items"], views, strict=True):
                entries = [where[d] for d in digests[pos : pos + len(vs)]]
                pos += len(vs)
                manifests.append((batch.prepare(make_manifest(entries, item["inband"])), entries))
            pending += [m for m, _ in manifests]
            written = time.perf_counter()
            batch.commit(pending, map=self._sync_map)
        except BaseException:
            batch.discard(pending)
            raise
        synced = time.perf_counter()
        for digest, entry in where.items():
            if len(entry) == 3:
                self.packed[digest] = tuple(entry)
        self.sizes.update((p.digest, p.stored) for p in pending)
        stats = self._index(job, manifests, {p.digest: p for p in pending})
        phases = {"hash": hashed - began, "write": written - hashed, "fsync": synced - written}
        return {**stats, "phases": {**phases, "index": time.perf_counter() - synced}}

    def _index(self, job: dict, manifests: list, pending: dict) -> dict:
        """Add the job's snapshots to the catalog; their stats (bytes new to the store count once)."""
        counted: set[str] = set()
        raw_total = stored_total = 0
        for item, (manifest, entries) in zip(job["items"], manifests, strict=True):
            blobs = {e[0] for e in entries} | {manifest.digest}
            sizes = {d: self.sizes[d] for d in blobs}
            new = sum(pending[d].stored for d in blobs - counted if d in pending and pending[d].new)
            counted |= blobs
            raw = len(item["inband"]) + sum(e[1] for e in entries)
            self.store.catalog.add_snapshot(
                self.run_id,
                job["epoch"],
                item["kind"],
                item["loop_id"],
                item["seq"],
                manifest.digest,
                nbytes=raw,
                stored=new,
                stall=item["stall"],
                reason=job["reason"],
                blobs=sorted(blobs - {manifest.digest}),
                blob_sizes=sizes,
            )
            raw_total += raw
            stored_total += new
        return {"snapshots": len(job["items"]), "bytes_raw": raw_total, "bytes_stored": stored_total}


def _idle_cores() -> int:
    """Cores nobody is using, judged by the load average (the training process counts)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_THREADS, int(cores - os.getloadavg()[0] + 0.5)))


def _prepare(batch: Batch, run, buffers: list) -> list:
    """Prepare the blobs of ``buffers`` ((digest, view) pairs) through ``run``; on a failure, the ones
    already written are discarded and the first error is raised."""
    done, errors = [], []

    def one(pair):
        try:
            done.append(batch.prepare(pair[1], pair[0]))
        except Exception as exc:
            errors.append(exc)

    list(run(one, buffers))
    if errors:
        batch.discard(done)
        raise errors[0]
    return done


def _describe(exc: BaseException, store_root: Path) -> str:
    detail = str(exc) if isinstance(exc, OSError | sqlite3.Error | StoreError) else repr(exc)
    return f"cannot write snapshots to the store at {store_root}: {detail}"
