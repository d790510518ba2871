"""The background writer: the training process hands over a snapshot and never waits on disk.

``SnapshotWriter.submit`` only queues the payload. A sender thread pickles it (protocol 5, large
buffers out of band, so arrays are not copied) and streams the buffers over a Unix socket, which
releases the GIL while the kernel copies. A persistent writer process hashes, compresses and writes
each buffer as a blob, then a manifest blob, and indexes the snapshot in the catalog only once all
of its blobs are durable. One snapshot is in flight at a time; when the writer is behind, ``submit``
returns False and the policy skips rather than blocks.

The writer process is started with ``subprocess`` (fork + exec of a fresh interpreter), not with
``multiprocessing``'s spawn context: spawn re-imports the parent's ``__main__`` in the child, and
under flortrace ``__main__`` is the user's training script.
"""

from __future__ import annotations

import _thread
import atexit
import json
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
from pathlib import Path
from typing import Any

from flortrace.store import CorruptBlob, Store, StoreError

OUT_OF_BAND_MIN = 64 * 1024  # buffers at least this large travel and are stored as their own blobs
MANIFEST_MAGIC = b"flortrace-snapshot-1\n"
_FRAME = struct.Struct("<Q")
_SOCKET_BUFFER = 4 << 20
_RECV_CHUNK = 16 << 20
_PROGRESS_AFTER = 1.0

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
        self._cond = threading.Condition()
        self._start_lock = threading.Lock()
        self._job: dict | None = None  # the snapshot in flight: submitted, not yet written or failed
        self._payload: Any = None  # its payload until the sender thread takes it
        self._closed = False
        self._closing = False
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._thread: _Sender | None = None
        self._registered = False
        self._submitted = 0.0
        self._recv_lock = threading.Lock()
        self._stats = {
            "jobs": 0,
            "snapshots": 0,
            "bytes_raw": 0,
            "bytes_stored": 0,
            "seconds": 0.0,
            "cpu_seconds": 0.0,
            "send_seconds": 0.0,
        }
        _writers.add(self)

    @property
    def busy(self) -> bool:
        """A snapshot is in flight (answers that have arrived are read first, without waiting)."""
        if self._job is not None and self._thread is None:  # all sent: answers may be waiting
            self._collect(0.0)
        return self._job is not None

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
        """Queue ``payload`` (owned by the writer from now on) without blocking; False if not taken."""
        item = {"payload": payload, "kind": kind, "loop_id": loop_id, "seq": seq, "stall": stall}
        return self.submit_many([item], epoch=epoch, reason=reason)

    def submit_many(self, items: list[dict], *, epoch: int, reason: str) -> bool:
        """Queue several snapshots of one epoch as one job (each item: payload, kind, loop_id, seq, stall).

        They are written and committed in order, each on its own; False if not taken."""
        if self.busy:  # reads the answers that have arrived, so a finished job no longer counts
            return False
        with self._cond:
            if self._job is not None or self.failed is not None or self._closed:
                return False
            metas = [{k: item[k] for k in ("kind", "loop_id", "seq", "stall")} for item in items]
            self._job = {
                "epoch": epoch,
                "reason": reason,
                "items": metas,
                "kind": metas[-1]["kind"],
                "nbytes": None,
                "sending": True,
                "answered": 0,
                "sent_seconds": 0.0,
            }
            self._payload = [item["payload"] for item in items]
            self._submitted = time.monotonic()
            if not self._registered:
                self._registered = True
                atexit.register(self.close)
            # One sender thread per job that only sends, gone once the bytes are out; the writer's answers are
            # read by whoever asks next (busy, wait, close). A thread alive at os.fork() would make Python
            # 3.12+ warn in the user's process, so a fork also waits for a send in progress (see below).
            self._thread = _Sender(self._serve)
            self._cond.notify_all()
        return True

    def in_flight(self) -> float:
        """Seconds the snapshot in flight has been in flight (0.0 when none is)."""
        return time.monotonic() - self._submitted if self.busy else 0.0

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
        """Read the writer's answers that arrive within ``timeout`` seconds; end the job when all are in."""
        job, sock = self._job, self._sock
        if job is None or sock is None or not self._recv_lock.acquire(blocking=False):
            if job is not None and timeout:
                time.sleep(min(timeout, 0.01))
            return
        try:
            while self._job is job and job["answered"] < len(job["items"]):
                if not select.select([sock], [], [], timeout)[0]:
                    return
                try:
                    answer = _recv_frame(sock)
                except (OSError, EOFError):
                    answer = None
                if answer is None:
                    code = self._process.poll() if self._process else None
                    return self._end_job(
                        job, f"the flortrace writer process exited unexpectedly (exit code {code})"
                    )
                status, detail = pickle.loads(answer)
                if status != "ok":
                    return self._end_job(job, detail)
                with self._cond:
                    job["answered"] += 1
                    for key in ("bytes_raw", "bytes_stored", "seconds", "cpu_seconds"):
                        self._stats[key] += detail[key]
                    self._stats["snapshots"] += 1
                timeout = 0.0
            with self._cond:
                if self._job is job and not job["sending"]:
                    self._stats["send_seconds"] += job["sent_seconds"]
                    self._stats["jobs"] += 1
                    self._job = None
                    self._cond.notify_all()
        finally:
            self._recv_lock.release()

    def _end_job(self, job: dict, error: str | None) -> None:
        with self._cond:
            if error is not None:
                self._fail(error)
            if self._job is job:
                self._job = None
            self._cond.notify_all()

    def start(self) -> None:
        """Start the writer process now (the first snapshot does it otherwise, off the training thread)."""
        with self._start_lock:
            if self._process is not None or self.failed is not None:
                return
            if self._closing:
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
        """Snapshots written, bytes raw and stored (new bytes only), the writer's wall and CPU seconds in
        jobs, and seconds spent sending."""
        with self._cond:
            return dict(self._stats)

    def close(self, timeout: float | None = None) -> None:
        """Wait for the snapshot in flight (at most ``timeout`` seconds), then stop the writer process."""
        with self._cond:
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
        with self._cond:
            abandoned = self._job is not None
            self._closing = True
            self._cond.notify_all()
        with self._start_lock:  # from here on no process starts
            if abandoned and self._process is not None:
                self._process.kill()  # it commits nothing partial; the catalog keeps earlier snapshots
        if self._thread is not None:
            self._thread.join()
        if self._sock is not None:
            self._sock.close()  # EOF tells an idle writer process to exit
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    # -- sender thread -------------------------------------------------------------------------------

    def _serve(self) -> None:
        """Send the job's snapshots and end; a failure to send ends the job."""
        with self._cond:
            job = self._job
        try:
            error = self._send(job)
        except Exception as exc:  # a bug here must not leave the writer busy forever
            error = f"the flortrace writer failed: {exc!r}"
        if error is not None:
            self._end_job(job, error)
        with self._cond:
            job["sending"] = False
            self._thread = None
            self._cond.notify_all()

    def _send(self, job: dict) -> str | None:
        """Transfer a job's snapshots one by one; returns an error message or None."""
        with self._cond:
            payloads, self._payload = self._payload, None  # only the buffers keep arrays alive from here
        job["nbytes"] = 0
        payloads.reverse()
        for item in job["items"]:
            error = self._send_one(job, item, payloads.pop())
            if error is not None:
                return error
        return None

    def _send_one(self, job: dict, item: dict, payload: object) -> str | None:
        began = time.monotonic()
        try:
            inband, buffers = serialize(payload)
        except Exception as exc:
            return f"cannot serialize the {item['kind']} of epoch {job['epoch']}: {exc!r}"
        finally:
            del payload
        job["nbytes"] += len(inband) + sum(b.nbytes for b in buffers)
        self.start()
        if self.failed is not None:
            return self.failed
        meta = {"epoch": job["epoch"], "reason": job["reason"], **item, "sizes": [b.nbytes for b in buffers]}
        try:
            _send_frame(self._sock, pickle.dumps(meta))
            _send_frame(self._sock, inband)
            del inband
            buffers.reverse()
            while buffers:
                _send_frame(self._sock, buffers.pop())  # drop each array once sent
        except OSError:
            if self._closing:
                return "the writer was closed before the snapshot was written"
            code = self._process.poll() if self._process else None
            return f"the flortrace writer process exited unexpectedly (exit code {code})"
        job["sent_seconds"] += time.monotonic() - began
        return None

    def _fail(self, message: str) -> None:
        if self.failed is None:
            self.failed = message

    def stop(self, reason: str) -> None:
        """Take no more snapshots (the recording stopped); one in flight still finishes."""
        with self._cond:
            self._fail(reason)

    def _forget_after_fork(self) -> None:
        """In a forked child of the training process: never touch the parent's writer, never wait for it."""
        self._cond = threading.Condition()  # the sender thread may have held the old one at the fork
        self._closed = True
        self.failed = "a forked child process takes no snapshots"
        self._job = None
        self._payload = None
        self._thread = None
        self._process = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class _Sender:
    """A thread running ``fn`` that the threading module does not list: scripts that count their threads
    (threading.active_count(), enumerate()) see none of flortrace's. It must never call
    threading.current_thread(), which would list it."""

    def __init__(self, fn):
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self.ident = _thread.start_new_thread(self._run, (fn,))

    def _run(self, fn):
        try:
            fn()
        finally:
            self._done.release()

    def join(self):
        with self._done:
            pass


_writers: weakref.WeakSet[SnapshotWriter] = weakref.WeakSet()


def _forget_writers_after_fork() -> None:
    for writer in list(_writers):
        writer._forget_after_fork()


def _finish_sends_before_fork() -> None:
    """Fork from a single-threaded process: wait for a send in progress (not for the disk write)."""
    for writer in list(_writers):
        thread = writer._thread
        if thread is not None and thread.ident != threading.get_ident():
            thread.join()


os.register_at_fork(before=_finish_sends_before_fork, after_in_child=_forget_writers_after_fork)


def _announce(job: dict) -> None:
    """Say why the end of the run waits, on a terminal (the script may have closed or replaced stderr)."""
    size = f", {job['nbytes'] / 1e6:.0f} MB" if job["nbytes"] is not None else ""
    try:
        if sys.stderr.isatty():
            print(
                f"flortrace: writing {job['kind']} of epoch {job['epoch']}{size} ...",
                file=sys.stderr,
                flush=True,
            )
    except (AttributeError, ValueError, OSError):
        pass


def serialize(payload: object) -> tuple[bytes, list[memoryview]]:
    """Pickle ``payload`` with protocol 5; buffers >= 64 KiB come back separately, not copied."""
    buffers: list[memoryview] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            view = buffer.raw()
        except BufferError:  # not contiguous: pickle copies it in band
            return True
        if view.nbytes < OUT_OF_BAND_MIN:
            return True
        buffers.append(view)
        return False

    return pickle.dumps(payload, protocol=5, buffer_callback=out_of_band), buffers


def load_snapshot(store: Store, manifest: str) -> object:
    """Rebuild a snapshot's payload (arrays writable) from its manifest; CorruptBlob on any damage."""
    data = store.blobs.get(manifest)
    try:
        if not data.startswith(MANIFEST_MAGIC):
            raise ValueError("no manifest header")
        end = data.index(b"\n", len(MANIFEST_MAGIC))
        entries = json.loads(data[len(MANIFEST_MAGIC) : end])["buffers"]
        inband = memoryview(data)[end + 1 :]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptBlob(f"blob {manifest} is not a snapshot manifest ({exc})") from None
    buffers = []
    for digest, nbytes in entries:
        buffer = store.blobs.get(digest, mutable=True)
        if len(buffer) != nbytes:
            raise CorruptBlob(f"blob {digest} of snapshot {manifest} has {len(buffer)} bytes, not {nbytes}")
        buffers.append(buffer)
    return pickle.loads(inband, buffers=buffers)


def _manifest(entries: list[tuple[str, int]], inband: bytes | bytearray) -> bytes:
    return MANIFEST_MAGIC + json.dumps({"buffers": entries}).encode() + b"\n" + inband


# -- framing: 8-byte little-endian length, then the bytes ------------------------------------------


def _send_frame(sock: socket.socket, data: bytes | memoryview) -> None:
    sock.sendall(_FRAME.pack(memoryview(data).nbytes), socket.MSG_NOSIGNAL)
    sock.sendall(data, socket.MSG_NOSIGNAL)


def _recv_exact(sock: socket.socket, view: memoryview) -> bool:
    """Fill ``view``; False on EOF before the first byte, EOFError on EOF after it."""
    pos, size = 0, view.nbytes
    while pos < size:
        got = sock.recv_into(view[pos:], min(size - pos, _RECV_CHUNK))
        if got == 0:
            if pos == 0:
                return False
            raise EOFError("connection closed mid-frame")
        pos += got
    return True


def _recv_frame(sock: socket.socket) -> bytearray | None:
    """The next frame, or None on a clean EOF between frames."""
    head = bytearray(_FRAME.size)
    if not _recv_exact(sock, memoryview(head)):
        return None
    (size,) = _FRAME.unpack(head)
    data = bytearray(size)
    if size and not _recv_exact(sock, memoryview(data)):
        raise EOFError("connection closed mid-frame")
    return data


def _skip_frame(sock: socket.socket) -> None:
    head = bytearray(_FRAME.size)
    if not _recv_exact(sock, memoryview(head)):
        raise EOFError("connection closed mid-snapshot")
    (left,) = _FRAME.unpack(head)
    scratch = memoryview(bytearray(min(left, 1 << 20)))
    while left:
        chunk = scratch[: min(left, scratch.nbytes)]
        if not _recv_exact(sock, chunk):
            raise EOFError("connection closed mid-frame")
        left -= chunk.nbytes


# -- the writer process ----------------------------------------------------------------------------


def _child_main(fd: int, store_root: str, run_id: int) -> None:
    """Entry point of the writer process: write snapshots until the training process hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    store, setup_error = None, None
    try:
        store = Store(store_root, create=False)
    except (StoreError, OSError, sqlite3.Error) as exc:
        setup_error = f"cannot open the store at {store_root}: {exc}"
    try:
        while True:
            head = _recv_frame(sock)
            if head is None:
                return
            answer = _write_snapshot(sock, store, run_id, pickle.loads(head), setup_error)
            _send_frame(sock, pickle.dumps(answer))
            if answer[0] != "ok":
                return
    except (EOFError, OSError):
        return  # the training process is gone: whatever was half received is not committed
    finally:
        if store is not None:
            store.close()
        sock.close()


def _write_snapshot(
    sock: socket.socket, store: Store | None, run_id: int, meta: dict, error: str | None
) -> tuple[str, Any]:
    """Receive one snapshot's frames and write it; ('ok', stats) or ('error', message)."""
    began, cpu = time.monotonic(), time.process_time()
    inband = _recv_frame(sock)
    if inband is None:
        raise EOFError("connection closed mid-snapshot")
    entries: list[tuple[str, int]] = []
    sizes: dict[str, int] = {}
    new_bytes = 0
    for _ in meta["sizes"]:
        if error is not None:
            _skip_frame(sock)  # keep the stream in step, then report
            continue
        data = _recv_frame(sock)
        if data is None:
            raise EOFError("connection closed mid-snapshot")
        try:
            digest, stored, new = store.blobs.put(data)
        except Exception as exc:
            error = _describe(exc, store_root=store.root)
            continue
        entries.append((digest, len(data)))
        sizes[digest] = stored
        new_bytes += stored if new else 0
        del data
    if error is not None:
        return "error", error
    raw = len(inband) + sum(n for _, n in entries)
    try:
        manifest, stored, new = store.blobs.put(_manifest(entries, inband))
        sizes[manifest] = stored
        new_bytes += stored if new else 0
        store.catalog.add_snapshot(
            run_id,
            meta["epoch"],
            meta["kind"],
            meta["loop_id"],
            meta["seq"],
            manifest,
            nbytes=raw,
            stored=new_bytes,
            stall=meta["stall"],
            reason=meta["reason"],
            blobs=[d for d, _ in entries],
            blob_sizes=sizes,
        )
    except Exception as exc:
        return "error", _describe(exc, store_root=store.root)
    return "ok", {
        "bytes_raw": raw,
        "bytes_stored": new_bytes,
        "seconds": time.monotonic() - began,
        "cpu_seconds": time.process_time() - cpu,
    }


def _describe(exc: BaseException, store_root: Path) -> str:
    detail = str(exc) if isinstance(exc, OSError | sqlite3.Error | StoreError) else repr(exc)
    return f"cannot write snapshots to the store at {store_root}: {detail}"
