"""Content-addressed blob store: each blob is an lz4 frame at ``ROOT/ab/<blake3 hex digest>``.

A blob is written to a temporary file, made durable (fsync), then renamed into place, so a blob that exists
is complete. A ``Batch`` writes many blobs and then commits them at once: the blobs of a snapshot share one
round of fsyncs, issued together, instead of one round trip to the disk each.
Identical data is stored once, across snapshots and runs (a frozen backbone costs nothing after the first
checkpoint). Data that lz4 cannot shrink (trained float weights, mostly) is detected from samples and
stored in uncompressed frame blocks, at the speed of a copy; it still reads as an lz4 frame. Reads verify
the digest, so damage is reported rather than restored. Blobs are named by BLAKE3 (cryptographic, and
faster per core than lz4 itself on the data it cannot compress); blobs of stores made before it are named
by blake2b-256 and still verify.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3
import lz4.block
import lz4.frame

from flortrace.exceptions import CorruptBlob
from flortrace.store.access import FOLDER_MODE, UnsafeStore, check_owned, open_nofollow

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 8 << 20  # compress in slices so a huge buffer never has a second full-size copy in memory
_BLOCK = 4 << 20  # lz4 frame block size: large blocks let lz4 skip through incompressible data quickly
_RAW_FLAG = 0x80000000  # an lz4 frame block stored uncompressed
_END_MARK = b"\0\0\0\0"
_SAMPLE = 64 << 10  # bytes in each of the three samples that judge whether data compresses
_SAMPLED_FROM = 4 * _SAMPLE  # smaller data is simply compressed
_INCOMPRESSIBLE = 0.9  # samples lz4 cannot shrink below this fraction: store the data raw


def digest_of(data: bytes | bytearray | memoryview, threads: int = 1) -> str:
    """The blob name of ``data``: hex BLAKE3-256 of the raw bytes, hashed on up to ``threads`` threads."""
    return blake3.blake3(data, max_threads=threads).hexdigest()


def _names(data, digest: str) -> bool:
    """Whether ``digest`` names ``data``: its BLAKE3, or its blake2b-256 (blobs of older versions)."""
    if digest_of(data, blake3.blake3.AUTO) == digest:
        return True
    return hashlib.blake2b(data, digest_size=32).hexdigest() == digest


def _frame_header() -> bytes:
    """The 7-byte header of an lz4 frame with 4 MiB blocks, no checksums and no content size."""
    return lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB, content_checksum=False).begin()


_HEADER = _frame_header()


def compresses(view: memoryview) -> bool:
    """Whether lz4 is worth running on ``view``: judged from three samples (start, middle, end)."""
    if view.nbytes < _SAMPLED_FROM:
        return True
    size = view.nbytes
    packed = sum(
        len(lz4.block.compress(view[at : at + _SAMPLE], store_size=False))
        for at in (0, (size - _SAMPLE) // 2, size - _SAMPLE)
    )
    return packed < _INCOMPRESSIBLE * 3 * _SAMPLE


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view.nbytes:
        view = view[os.write(fd, view) :]


def write_frame(fd: int, view: memoryview) -> None:
    """Write ``view`` to ``fd`` as one lz4 frame: compressed, or in raw blocks when it does not compress."""
    if not compresses(view):
        _write_all(fd, _HEADER)
        for start in range(0, view.nbytes, _BLOCK):
            block = view[start : start + _BLOCK]
            _write_all(fd, struct.pack("<I", block.nbytes | _RAW_FLAG))
            _write_all(fd, block)
        _write_all(fd, _END_MARK)
        return
    if view.nbytes <= _CHUNK:  # in one call, with blocks no larger than the data
        _write_all(
            fd, lz4.frame.compress(view, block_size=lz4.frame.BLOCKSIZE_MAX4MB, content_checksum=False)
        )
        return
    comp = lz4.frame.LZ4FrameCompressor(
        block_size=lz4.frame.BLOCKSIZE_MAX4MB, content_checksum=False, compression_level=0
    )
    _write_all(fd, comp.begin(view.nbytes))
    for start in range(0, view.nbytes, _CHUNK):
        _write_all(fd, comp.compress(view[start : start + _CHUNK]))
    _write_all(fd, comp.flush())


@dataclass
class Pending:
    """A blob ``prepare`` handled: new ones wait in the temporary file ``tmp`` until ``commit``."""

    digest: str
    stored: int  # its size on disk
    new: bool  # not stored before
    tmp: str | None = None


class BlobStore:
    """Blobs under ``root``; temporary files go to ``tmpdir`` (same filesystem), default ``root``.

    Every access goes through a file descriptor of the blob's shard folder opened without following links,
    so a link planted in the store cannot make a read, write or delete happen outside it."""

    def __init__(self, root: str | os.PathLike, tmpdir: str | os.PathLike | None = None):
        self.root = Path(root)
        self.tmpdir = Path(tmpdir) if tmpdir is not None else self.root

    def path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise CorruptBlob(f"not a blob digest: {digest!r}")
        return self.root / digest[:2] / digest

    def _shard(self, digest: str) -> int:
        """An open descriptor of the digest's shard folder (FileNotFoundError when there is none)."""
        self.path(digest)  # validates the digest
        root = open_nofollow(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return open_nofollow(digest[:2], os.O_RDONLY | os.O_DIRECTORY, dir_fd=root)
        finally:
            os.close(root)

    def _lstat(self, digest: str) -> os.stat_result:
        """The blob file's own stat (FileNotFoundError when absent); a link in its place is refused."""
        shard = self._shard(digest)
        try:
            st = os.stat(digest, dir_fd=shard, follow_symlinks=False)
        finally:
            os.close(shard)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeStore(f"{self.path(digest)} is not a regular file; flortrace never follows links")
        return st

    def put(self, data: bytes | bytearray | memoryview) -> tuple[str, int, bool]:
        """Store ``data`` durably; return (digest, stored size on disk, whether it was newly written)."""
        with Batch(self) as batch:
            (pending,) = batch.commit([batch.prepare(data)])
        return pending.digest, pending.stored, pending.new

    def get(self, digest: str, mutable: bool = False) -> bytes | bytearray:
        """The verified content of a blob (a bytearray when ``mutable``); CorruptBlob on any damage.

        A blob someone else could have written is treated as damaged too (CorruptBlob, never read): blobs
        are unpickled."""
        path = self.path(digest)
        try:
            shard = self._shard(digest)
            try:
                check_owned(path.parent, os.fstat(shard), "blob folder")
                fd = open_nofollow(digest, os.O_RDONLY, dir_fd=shard)
            finally:
                os.close(shard)
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise UnsafeStore(f"{path} is not a regular file")
                check_owned(path, st, "blob")
                packed = f.read()
        except FileNotFoundError:
            raise CorruptBlob(f"missing blob {digest} (expected at {path})") from None
        except UnsafeStore as exc:
            raise CorruptBlob(f"blob {digest} not loaded: {exc}") from None
        except OSError as exc:
            raise CorruptBlob(f"cannot read blob {digest} at {path}: {exc.strerror or exc}") from exc
        try:
            data = lz4.frame.decompress(packed, return_bytearray=mutable)
        except RuntimeError as exc:
            raise CorruptBlob(f"corrupt blob {digest} at {path}: {exc}") from None
        if not _names(data, digest):
            raise CorruptBlob(f"corrupt blob {digest} at {path}: content does not match its digest")
        return data

    def exists(self, digest: str) -> bool:
        try:
            self._lstat(digest)
        except FileNotFoundError:
            return False
        return True

    def size(self, digest: str) -> int:
        """Stored (compressed) size on disk."""
        return self._lstat(digest).st_size

    def mtime(self, digest: str) -> float:
        """When the blob was last written or re-put."""
        return self._lstat(digest).st_mtime

    def delete(self, digest: str) -> bool:
        """Remove a blob; False when it was not there. Never deletes through a link."""
        try:
            shard = self._shard(digest)
        except FileNotFoundError:
            return False
        try:
            os.unlink(digest, dir_fd=shard)
        except FileNotFoundError:
            return False
        finally:
            os.close(shard)
        return True

    def __iter__(self) -> Iterator[str]:
        """Digests of the blobs in real shard folders (links, and whatever they lead to, are skipped)."""
        try:
            root = open_nofollow(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            with os.scandir(root) as entries:
                shards = sorted(
                    e.name for e in entries if len(e.name) == 2 and e.is_dir(follow_symlinks=False)
                )
        finally:
            os.close(root)
        for name in shards:
            try:
                fd = open_nofollow(self.root / name, os.O_RDONLY | os.O_DIRECTORY)
            except (FileNotFoundError, UnsafeStore):
                continue
            try:
                with os.scandir(fd) as entries:
                    names = sorted(
                        e.name
                        for e in entries
                        if e.is_file(follow_symlinks=False)
                        and _DIGEST.fullmatch(e.name)
                        and e.name[:2] == name
                    )
            finally:
                os.close(fd)
            yield from names

    def total_bytes(self) -> int:
        """Stored size of all blobs."""
        total = 0
        for digest in self:
            try:
                total += self.size(digest)
            except FileNotFoundError:
                pass
        return total


class Batch:
    """Blobs written together: each prepared on its own (from any thread), then all committed at once. The
    folders are opened once per batch, each without following a link."""

    def __init__(self, blobs: BlobStore):
        self.blobs = blobs
        self._lock = threading.Lock()
        self._root: int | None = None
        self._shards: dict[str, int] = {}
        self._made = False  # a shard folder was made: the root folder must be fsynced too

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc) -> None:
        for fd in self._shards.values():
            os.close(fd)
        if self._root is not None:
            os.close(self._root)
        self._shards, self._root = {}, None

    def _shard(self, digest: str, create: bool) -> int | None:
        """The digest's shard folder, opened (None when it does not exist and ``create`` is false)."""
        name = digest[:2]
        with self._lock:
            if name in self._shards:
                return self._shards[name]
            if not _DIGEST.fullmatch(digest):
                raise CorruptBlob(f"not a blob digest: {digest!r}")
            if self._root is None:
                try:
                    self._root = open_nofollow(self.blobs.root, os.O_RDONLY | os.O_DIRECTORY)
                except FileNotFoundError:
                    if not create:
                        return None
                    self.blobs.root.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
                    self._root = open_nofollow(self.blobs.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fd = open_nofollow(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=self._root)
            except FileNotFoundError:
                if not create:
                    return None
                os.mkdir(name, FOLDER_MODE, dir_fd=self._root)
                self._made = True
                fd = open_nofollow(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=self._root)
            self._shards[name] = fd
            return fd

    def prepare(self, data: bytes | bytearray | memoryview, digest: str | None = None) -> Pending:
        """Write ``data`` (named ``digest`` when the caller hashed it) to a temporary file, unless a blob of
        that name exists already; nothing is durable or in place before ``commit``."""
        view = memoryview(data).cast("B")
        digest = digest or digest_of(view)
        shard = self._shard(digest, create=False)
        if shard is not None:
            try:
                # Refresh the mtime so a concurrent gc sees the blob as in use again.
                os.utime(digest, dir_fd=shard, follow_symlinks=False)
                st = os.stat(digest, dir_fd=shard, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise UnsafeStore(
                        f"{self.blobs.path(digest)} is not a regular file; flortrace never follows links"
                    )
                return Pending(digest, st.st_size, False)
            except FileNotFoundError:
                pass
        fd, tmp = tempfile.mkstemp(dir=self.blobs.tmpdir, prefix=f".{digest[:16]}-")
        try:
            write_frame(fd, view)
            stored = os.fstat(fd).st_size
        except BaseException:
            _unlink(tmp)
            raise
        finally:
            os.close(fd)
        return Pending(digest, stored, True, tmp)

    def commit(self, pending: list[Pending], map: Callable = map) -> list[Pending]:
        """Make prepared blobs durable and put them in place: every temporary file is fsynced (through
        ``map``, which may run them concurrently: the disk then flushes them together), renamed, and the
        folders that changed are fsynced. On failure no temporary file is left behind."""
        new = [p for p in pending if p.tmp is not None]
        try:
            list(map(_fsync_path, [p.tmp for p in new]))
            changed = {}
            for p in new:
                changed[p.digest[:2]] = shard = self._shard(p.digest, create=True)
                os.replace(p.tmp, p.digest, dst_dir_fd=shard)
                p.tmp = None
            list(map(os.fsync, changed.values()))
            if self._made:
                os.fsync(self._root)
                self._made = False
        except BaseException:
            self.discard(pending)
            raise
        return pending

    def discard(self, pending: Iterable[Pending]) -> None:
        """Remove the temporary files of blobs that will not be committed."""
        for p in pending:
            if p.tmp is not None:
                _unlink(p.tmp)
                p.tmp = None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
