"""Content-addressed blob store: each blob is an lz4 frame at ``ROOT/ab/<blake2b-256 hex digest>``.

Blobs are written to a temporary file, fsynced, then renamed into place, so a blob that exists is
complete. Identical data is stored once, across snapshots and runs (a frozen backbone costs nothing
after the first checkpoint). Reads verify the digest, so damage is reported rather than restored.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import lz4.frame

from flortrace.store import CorruptBlob
from flortrace.store.access import FOLDER_MODE, UnsafeStore, check_owned, open_nofollow

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 8 << 20  # compress in slices so a huge buffer never has a second full-size copy in memory


def digest_of(data: bytes | bytearray | memoryview) -> str:
    """The blob name of ``data``: hex blake2b-256 of the raw bytes."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


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

    def _shard(self, digest: str, create: bool = False) -> tuple[int, bool]:
        """An open descriptor of the digest's shard folder, and whether it was just made."""
        self.path(digest)  # validates the digest
        made = False
        if create:
            self.root.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        root = open_nofollow(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if create:
                try:
                    os.mkdir(digest[:2], FOLDER_MODE, dir_fd=root)
                    made = True
                except FileExistsError:
                    pass
            return open_nofollow(self.root / digest[:2], os.O_RDONLY | os.O_DIRECTORY), made
        finally:
            os.close(root)

    def _lstat(self, digest: str) -> os.stat_result:
        """The blob file's own stat (FileNotFoundError when absent); a link in its place is refused."""
        shard, _ = self._shard(digest)
        try:
            st = os.stat(digest, dir_fd=shard, follow_symlinks=False)
        finally:
            os.close(shard)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeStore(f"{self.path(digest)} is not a regular file; flortrace never follows links")
        return st

    def put(self, data: bytes | bytearray | memoryview) -> tuple[str, int, bool]:
        """Store ``data``; return (digest, stored size on disk, whether it was newly written)."""
        view = memoryview(data).cast("B")
        digest = digest_of(view)
        shard, new_shard = self._shard(digest, create=True)
        try:
            try:
                # Refresh the mtime so a concurrent gc sees the blob as in use again.
                os.utime(digest, dir_fd=shard, follow_symlinks=False)
                st = os.stat(digest, dir_fd=shard, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise UnsafeStore(
                        f"{self.path(digest)} is not a regular file; flortrace never follows links"
                    )
                return digest, st.st_size, False
            except FileNotFoundError:
                pass
            fd, tmp = tempfile.mkstemp(dir=self.tmpdir, prefix=f".{digest[:16]}-")
            try:
                with os.fdopen(fd, "wb") as out:
                    comp = lz4.frame.LZ4FrameCompressor(content_checksum=True, compression_level=0)
                    out.write(comp.begin(len(view)))
                    for start in range(0, len(view), _CHUNK):
                        out.write(comp.compress(view[start : start + _CHUNK]))
                    out.write(comp.flush())
                    out.flush()
                    os.fsync(out.fileno())
                stored = os.stat(tmp).st_size
                os.replace(tmp, digest, dst_dir_fd=shard)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            os.fsync(shard)
        finally:
            os.close(shard)
        if new_shard:
            _fsync_dir(self.root)
        return digest, stored, True

    def get(self, digest: str, mutable: bool = False) -> bytes | bytearray:
        """The verified content of a blob (a bytearray when ``mutable``); CorruptBlob on any damage.

        A blob someone else could have written is treated as damaged too (CorruptBlob, never read): blobs
        are unpickled."""
        path = self.path(digest)
        try:
            shard, _ = self._shard(digest)
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
        if digest_of(data) != digest:
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
            shard, _ = self._shard(digest)
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
