"""The on-disk store of recorded runs: a SQLite catalog next to a content-addressed blob store.

Layout under ROOT (default ``./.flortrace``): ``catalog.sqlite``, ``blobs/ab/<digest>``,
``locks/run-<id>.lock`` and ``tmp/`` (temporary files, renamed into ``blobs/`` once durable).
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path


class StoreError(Exception):
    """A problem with the store that the user can act on; the message says what and where."""


class CorruptBlob(StoreError):
    """A blob is missing, truncated or does not match its digest."""


from flortrace.store.catalog import Catalog  # noqa: E402

__all__ = ["Catalog", "CorruptBlob", "Store", "StoreError"]

CATALOG_NAME = "catalog.sqlite"


class Store:
    """One store folder: ``self.catalog`` (runs, logs, snapshot index) and ``self.blobs`` (snapshot data)."""

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root).absolute()
        self.tmp = self.root / "tmp"
        if create:
            self._make_folders()
        elif not (self.root / CATALOG_NAME).is_file():
            raise StoreError(
                f"no flortrace store at {self.root} (record a run first: python -m flortrace script.py)"
            )
        self.catalog = Catalog(self.root / CATALOG_NAME)

    @functools.cached_property
    def blobs(self):
        """The blob store, made on first use: recording never reads or writes blobs itself (the writer
        process does), so it does not pay for importing hashlib and lz4."""
        from flortrace.store.blobs import BlobStore

        return BlobStore(self.root / "blobs", tmpdir=self.tmp)

    @classmethod
    def open_existing(cls, root: str | os.PathLike) -> Store:
        """Open a store that must already hold a catalog (for replay and the read-only verbs)."""
        return cls(root, create=False)

    def _make_folders(self) -> None:
        try:
            for sub in ("blobs", "locks", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            # Root ignores file modes, and a read-only mount only shows on writing: try a real write.
            fd, probe = tempfile.mkstemp(dir=self.tmp, prefix=".probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(f"cannot write the store at {self.root}: {exc.strerror or exc}") from exc

    def gc(self, tmp_age: float = 3600.0) -> tuple[int, int]:
        """Delete blobs no snapshot references, and stale temporary files; return (blobs, bytes) freed.

        A writer commits its blobs to the catalog only after writing them, so while any run is
        running, blobs newer than the oldest running run's start are kept.
        """
        running = [r["started"] for r in self.catalog.runs() if r["status"] == "running"]
        cutoff = min(running) if running else float("inf")
        referenced = self.catalog.referenced_blobs()
        count = freed = 0
        for digest in list(self.blobs):
            if digest in referenced:
                continue
            try:
                if self.blobs.mtime(digest) >= cutoff:
                    continue
                size = self.blobs.size(digest)
            except FileNotFoundError:
                continue
            if self.blobs.delete(digest):
                count += 1
                freed += size
        now = time.time()
        for entry in os.scandir(self.tmp) if self.tmp.is_dir() else ():
            try:
                if entry.is_file() and now - entry.stat().st_mtime > tmp_age:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass
        return count, freed

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"
