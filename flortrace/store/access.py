"""Who may use a store: only its owner, and nothing inside it is followed through a symbolic link.

Snapshots are pickles, and loading one runs code. Whoever can write to a store can make its owner's next
replay run their code, so before anything in a store is read, the store folder, its catalog and its
sub-folders must belong to the current user and be writable by nobody else. A link inside the store could
lead a write (a lock file), a read (a blob) or a delete (gc) outside it, so links there are refused too.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from flortrace.exceptions import StoreError

FOLDER_MODE = 0o700
FILE_MODE = 0o600
SUBFOLDERS = ("blobs", "locks", "tmp")
CATALOG_FILES = ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm")


class UnsafeStore(StoreError):
    """The store could be changed by someone else, or holds a link: it is not opened."""


def check_owned(path: Path | str, st: os.stat_result, what: str) -> None:
    """Refuse ``path`` (with its stat ``st``) unless the current user owns it and only they may write it."""
    uid = os.geteuid()
    if st.st_uid != uid:
        raise UnsafeStore(
            f"the {what} {path} belongs to user {st.st_uid}, not to you (user {uid}); flortrace only opens "
            "stores of their own user, since loading a snapshot runs code (use a store of your own)"
        )
    if st.st_mode & 0o022:
        raise UnsafeStore(
            f"the {what} {path} is writable by {'group and others' if st.st_mode & 0o002 else 'its group'} "
            f"(mode {stat.S_IMODE(st.st_mode):o}): someone else could plant code in it, since loading a "
            f"snapshot runs code; if only you ever had access, fix it with: chmod -R go-w {path}"
        )


def lstat_in_store(path: Path, what: str) -> os.stat_result | None:
    """The lstat of an entry inside a store (None when absent); a symbolic link there is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeStore(
            f"the {what} {path} is a symbolic link; flortrace never follows links inside a store"
        )
    return st


def check_store(root: Path) -> None:
    """Refuse a store that someone other than the current user could change, or that holds links."""
    try:
        st = os.stat(root)  # the store folder itself may be a link (a store on another disk)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read the store {root}: {exc.strerror or exc}") from exc
    check_owned(root, st, "store folder")
    for sub in SUBFOLDERS:
        st = lstat_in_store(root / sub, "store folder")
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                raise StoreError(f"{root / sub} should be a folder of the store but is not")
            check_owned(root / sub, st, "store folder")
    for name in CATALOG_FILES:
        path = root / name
        st = lstat_in_store(path, "catalog file")
        if st is None:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"the catalog file {path} is not a regular file")
        check_owned(path, st, "catalog file")
        if st.st_mode & 0o077:  # made by an older flortrace: script sources and values were readable
            try:
                os.chmod(path, FILE_MODE)
            except OSError:
                pass  # a read-only store: reading it is still safe


def open_nofollow(path: Path | str, flags: int, mode: int = FILE_MODE, dir_fd: int | None = None) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (ELOOP becomes UnsafeStore)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a link
            raise UnsafeStore(
                f"{path} is a symbolic link; flortrace never follows links inside a store"
            ) from None
        raise
