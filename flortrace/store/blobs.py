"""Content-addressed blob store: each blob is an lz4 frame at ``ROOT/ab/<blake2b-256 hex digest>``.

Blobs are written to a temporary file, fsynced, then renamed into place, so a blob that exists is
complete. Identical data is stored once, across snapshots and runs (a frozen backbone costs nothing
after the first checkpoint). Reads verify the digest, so damage is reported rather than restored.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import lz4.frame

from flortrace.store import CorruptBlob

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 8 << 20  # compress in slices so a huge buffer never has a second full-size copy in memory


def digest_of(data: bytes | bytearray | memoryview) -> str:
    """The blob name of ``data``: hex blake2b-256 of the raw bytes."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


class BlobStore:
    """Blobs under ``root``; temporary files go to ``tmpdir`` (same filesystem), default ``root``."""

    def __init__(self, root: str | os.PathLike, tmpdir: str | os.PathLike | None = None):
        self.root = Path(root)
        self.tmpdir = Path(tmpdir) if tmpdir is not None else self.root

    def path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise CorruptBlob(f"not a blob digest: {digest!r}")
        return self.root / digest[:2] / digest

    def put(self, data: bytes | bytearray | memoryview) -> tuple[str, int, bool]:
        """Store ``data``; return (digest, stored size on disk, whether it was newly written)."""
        view = memoryview(data).cast("B")
        digest = digest_of(view)
        final = self.path(digest)
        try:
            # Refresh the mtime so a concurrent gc sees the blob as in use again.
            os.utime(final)
            return digest, final.stat().st_size, False
        except FileNotFoundError:
            pass
        shard = final.parent
        new_shard = not shard.is_dir()
        if new_shard:
            shard.mkdir(parents=True, exist_ok=True)
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
            os.replace(tmp, final)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_dir(shard)
        if new_shard:
            _fsync_dir(self.root)
        return digest, stored, True

    def get(self, digest: str, mutable: bool = False) -> bytes | bytearray:
        """The verified content of a blob (a bytearray when ``mutable``); CorruptBlob on any damage."""
        path = self.path(digest)
        try:
            packed = path.read_bytes()
        except FileNotFoundError:
            raise CorruptBlob(f"missing blob {digest} (expected at {path})") from None
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
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        """Stored (compressed) size on disk."""
        return self.path(digest).stat().st_size

    def mtime(self, digest: str) -> float:
        """When the blob was last written or re-put."""
        return self.path(digest).stat().st_mtime

    def delete(self, digest: str) -> bool:
        """Remove a blob; False when it was not there."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for shard in sorted(os.scandir(self.root), key=lambda e: e.name):
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for entry in sorted(os.scandir(shard.path), key=lambda e: e.name):
                if _DIGEST.fullmatch(entry.name) and entry.name.startswith(shard.name):
                    yield entry.name

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
