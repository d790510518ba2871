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

from flortrace.exceptions import CorruptBlob, StoreError
from flortrace.store.access import FOLDER_MODE, SUBFOLDERS, check_store, lstat_in_store
from flortrace.store.catalog import Catalog

__all__ = ["Catalog", "CorruptBlob", "Store", "StoreError"]

CATALOG_NAME = "catalog.sqlite"
# Written once the catalog holds its schema: an empty or missing catalog beside it was damaged, not new.
MARKER_NAME = ".flortrace-store"
MARKER_TEXT = "a flortrace store: catalog.sqlite indexes the snapshots in blobs/\n"
GC_CLOCK_SLACK = 0.05  # file times lag time.time() by up to a clock tick: blobs this near a cutoff stay


class Store:
    """One store folder: ``self.catalog`` (runs, logs, snapshot index) and ``self.blobs`` (snapshot data).

    Opening checks that only the current user can change the store (see ``access``), and refuses an empty
    or missing catalog in a store that had one."""

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root).absolute()
        self.tmp = self.root / "tmp"
        if create:
            self._make_folders()
        check_store(self.root)
        path = self.root / CATALOG_NAME
        found = lstat_in_store(path, "catalog file")
        if found is None or found.st_size == 0:  # checked before SQLite (or we) write to it
            self._refuse_if_damaged("missing" if found is None else "empty")
        if found is None and not create:
            raise StoreError(
                f"no flortrace store at {self.root} (record a run first: python -m flortrace script.py)"
            )
        self.catalog = Catalog(path, may_initialize=lambda: self._refuse_if_damaged("empty"))
        self._write_marker()

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
            fresh = not self.root.exists() or (self.root.is_dir() and not any(self.root.iterdir()))
            if not fresh:
                check_store(self.root)  # write nothing into a store that is not safe to use
            self.root.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            if fresh and self.root.stat().st_uid == os.geteuid():  # a folder for the store: private
                os.chmod(self.root, FOLDER_MODE)
            for sub in SUBFOLDERS:
                (self.root / sub).mkdir(mode=FOLDER_MODE, exist_ok=True)
            # Root ignores file modes, and a read-only mount only shows on writing: try a real write.
            fd, probe = tempfile.mkstemp(dir=self.tmp, prefix=".probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(f"cannot write the store at {self.root}: {exc.strerror or exc}") from exc

    def _refuse_if_damaged(self, state: str) -> None:
        """Raise when a catalog that is ``state`` (empty, missing) sits in a store that had one."""
        evidence = []
        if lstat_in_store(self.root / MARKER_NAME, "store marker") is not None:
            evidence.append(f"{MARKER_NAME} says it had one")
        blobs = sum(1 for _ in self.blobs)
        if blobs:
            evidence.append(f"{blobs} snapshot blob(s) are stored beside it")
        if evidence:
            raise StoreError(
                f"the catalog {self.root / CATALOG_NAME} is {state} but this store had one "
                f"({'; '.join(evidence)}): it was damaged (truncated, deleted or replaced). Restore it from "
                "a backup, or move the store away to start a new one"
            )

    def _write_marker(self) -> None:
        path = self.root / MARKER_NAME
        if lstat_in_store(path, "store marker") is not None:
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            return  # a read-only store, or another process wrote it: either way nothing to do
        with os.fdopen(fd, "w") as f:
            f.write(MARKER_TEXT)

    def gc(self, tmp_age: float = 3600.0, dry_run: bool = False) -> tuple[int, int]:
        """Delete blobs no snapshot references, and stale temporary files; return (blobs, bytes) freed
        (with ``dry_run``, what would be freed, deleting nothing).

        A writer commits its blobs to the catalog only after writing them, so blobs written (or re-put)
        since the oldest running run started, or since this gc started, are kept: they may belong to a
        snapshot about to be committed. Links in the store are never followed."""
        began = time.time()
        running = [r["started"] for r in self.catalog.runs() if r["status"] == "running"]
        cutoff = min([*running, began]) - GC_CLOCK_SLACK
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
            if dry_run or self.blobs.delete(digest):
                count += 1
                freed += size
        if dry_run:
            return count, freed
        now = time.time()
        for entry in os.scandir(self.tmp) if self.tmp.is_dir() else ():
            try:
                if (
                    entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > tmp_age
                ):
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
