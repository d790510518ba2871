"""The SQLite catalog: runs, sources, loops, timings, snapshot index, policy decisions and logs.

This module owns the schema. Each process (the recording process, its writer process, readers)
opens its own connection; WAL mode lets them work at once. A recording process holds an exclusive
``flock`` on ``locks/run-<id>.lock`` while its run is open, so any opener can tell a run whose
process died (SIGKILL, power loss) from one still going, and marks the former ``crashed``. Replays
and consoles hold a shared ``flock`` on ``locks/use-<id>.lock``, so a run in use is not removed.

The schema is versioned (``meta.schema_version``): a new catalog is the version 1 schema plus every
migration in ``MIGRATIONS``, and an older catalog is upgraded in place by the same migrations, all in
one transaction. Every failure of SQLite surfaces as a ``StoreError`` that says what happened (a full
disk, a damaged catalog), and log rows carry a checksum so an edited value is reported, not shown.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
import stat
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flortrace.exceptions import StoreError
from flortrace.store.access import FILE_MODE, UnsafeStore, open_nofollow

RUN_STATUSES = ("running", "finished", "failed", "crashed")
SNAPSHOT_KINDS = ("checkpoint", "memo", "start")

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    script TEXT NOT NULL, script_real TEXT NOT NULL, argv TEXT NOT NULL, cwd TEXT NOT NULL,
    env TEXT NOT NULL, versions TEXT NOT NULL, git TEXT, name TEXT,
    mode TEXT NOT NULL, parent INTEGER, status TEXT NOT NULL,
    started REAL NOT NULL, ended REAL, active REAL NOT NULL, exit_code INTEGER, note TEXT,
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_script ON runs (script_real, mode);
CREATE TABLE sources (
    run INTEGER NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (run, path)
);
CREATE TABLE loops (
    run INTEGER NOT NULL, loop_id TEXT NOT NULL, file TEXT, qualname TEXT, ordinal INTEGER,
    lineno INTEGER, kind TEXT, parent TEXT, PRIMARY KEY (run, loop_id)
);
CREATE TABLE epochs (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, loop_id TEXT, idx INTEGER,
    started REAL, seconds REAL, PRIMARY KEY (run, epoch)
);
CREATE TABLE blocks (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, loop_id TEXT, seq INTEGER NOT NULL,
    steps INTEGER, seconds REAL, PRIMARY KEY (run, epoch, seq)
);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER NOT NULL, epoch INTEGER NOT NULL,
    kind TEXT NOT NULL, loop_id TEXT, seq INTEGER, manifest TEXT NOT NULL, nbytes INTEGER NOT NULL,
    stored INTEGER NOT NULL, stall REAL, reason TEXT, created REAL NOT NULL
);
CREATE INDEX snapshots_run ON snapshots (run, epoch);
CREATE TABLE snapshot_blobs (snapshot INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (snapshot, digest));
CREATE INDEX snapshot_blobs_digest ON snapshot_blobs (digest);
CREATE TABLE blob_sizes (digest TEXT PRIMARY KEY, stored INTEGER NOT NULL);
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER NOT NULL, epoch INTEGER, kind TEXT,
    loop_id TEXT, action TEXT NOT NULL, reason TEXT, ts REAL NOT NULL
);
CREATE INDEX decisions_run ON decisions (run);
CREATE TABLE changesets (
    run INTEGER NOT NULL, loop_id TEXT NOT NULL, ord INTEGER NOT NULL, name TEXT NOT NULL, reason TEXT,
    PRIMARY KEY (run, loop_id, ord)
);
CREATE TABLE logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER NOT NULL, name TEXT NOT NULL, value TEXT,
    vtype TEXT, epoch INTEGER, step INTEGER, loop_id TEXT, lineno INTEGER, origin TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX logs_run ON logs (run, origin, epoch);
"""
_FIDELITY_TABLES = """
CREATE TABLE digest_layouts (
    run INTEGER NOT NULL, layout INTEGER NOT NULL, items TEXT NOT NULL, paths TEXT NOT NULL,
    PRIMARY KEY (run, layout)
);
CREATE TABLE digests (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, point TEXT NOT NULL, layout INTEGER NOT NULL,
    leaves TEXT NOT NULL, PRIMARY KEY (run, epoch, point)
);
CREATE TABLE outputs (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL, stream TEXT NOT NULL,
    text TEXT NOT NULL, crc INTEGER NOT NULL, nbytes INTEGER NOT NULL, PRIMARY KEY (run, epoch, seq, stream)
);
"""


def _add_fidelity_tables(db: sqlite3.Connection) -> None:
    """Version 2: state digests and what epochs printed, for the fidelity check."""
    for statement in _FIDELITY_TABLES.split(";"):
        if statement.strip():
            db.execute(statement)


def _add_log_checksums(db: sqlite3.Connection) -> None:
    """Version 3: every log row carries a checksum of its fields (rows already there are trusted)."""
    db.execute("ALTER TABLE logs ADD COLUMN checksum INTEGER")
    rows = db.execute(f"SELECT seq, {_LOG_FIELDS} FROM logs").fetchall()
    db.executemany("UPDATE logs SET checksum = ? WHERE seq = ?", [(_checksum(r[1:]), r[0]) for r in rows])


# The migration to each schema version. To change the schema, add one under the next number, and add new
# tables to TABLES: a new catalog runs all of them, in order, after the version 1 schema; an older one those
# above its version.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    2: _add_fidelity_tables,
    3: _add_log_checksums,
}
SCHEMA_VERSION = max(MIGRATIONS)
TABLES = frozenset(re.findall(r"CREATE TABLE (\w+)", _SCHEMA_V1 + _FIDELITY_TABLES))

_RUN_TABLES = (
    "sources",
    "loops",
    "epochs",
    "blocks",
    "decisions",
    "changesets",
    "logs",
    "digest_layouts",
    "digests",
    "outputs",
)

_RUN_SELECT = """
SELECT r.*,
    (SELECT COUNT(*) FROM epochs e WHERE e.run = r.id) AS epochs,
    (SELECT COUNT(*) FROM snapshots s WHERE s.run = r.id AND s.kind = 'checkpoint') AS checkpoints,
    (SELECT COUNT(*) FROM snapshots s WHERE s.run = r.id AND s.kind = 'memo') AS memos,
    (SELECT COALESCE(SUM(b.stored), 0) FROM blob_sizes b WHERE b.digest IN (
        SELECT sb.digest FROM snapshot_blobs sb JOIN snapshots s ON s.id = sb.snapshot WHERE s.run = r.id
    )) AS bytes,
    (SELECT COUNT(*) FROM logs l WHERE l.run = r.id) AS logs
FROM runs r
"""


_LOG_KEYS = ("run", "name", "value", "vtype", "epoch", "step", "loop_id", "lineno", "origin", "ts")
_LOG_FIELDS = ", ".join(_LOG_KEYS)
_LOG_SELECT = f"SELECT {_LOG_FIELDS}, checksum FROM logs"


class CatalogDamaged(StoreError):
    """The catalog was changed outside flortrace (an edited value, a dropped table, a truncated file)."""


class StoreFull(StoreError):
    """The disk holding the store is full."""


def _checksum(fields: Iterable[Any]) -> int:
    """The checksum a log row carries: CRC-32 of its fields as stored."""
    return zlib.crc32(repr(tuple(fields)).encode("utf-8", "surrogatepass"))


# SQLite text must be valid Unicode; a file name with undecodable bytes (read by Python as surrogates) is not.
# Such text, and text that starts like the escape, is stored escaped and read back as the same str.
_ESCAPE = "\x1bflortrace-text:"
_SURROGATES = re.compile("[\ud800-\udfff]")


def _to_db(value: Any) -> Any:
    if type(value) is not str or (value[:1] != "\x1b" and (value.isascii() or not _SURROGATES.search(value))):
        return value
    return _ESCAPE + value.encode("utf-8", "surrogatepass").hex()


def _from_db(value: Any) -> Any:
    if type(value) is str and value.startswith(_ESCAPE):
        return bytes.fromhex(value[len(_ESCAPE) :]).decode("utf-8", "surrogatepass")
    return value


class _Connection(sqlite3.Connection):
    """Escapes text parameters that SQLite cannot store (see ``_to_db``)."""

    def execute(self, sql, params=()):
        return super().execute(sql, tuple(map(_to_db, params)))

    def executemany(self, sql, rows):
        return super().executemany(sql, (tuple(map(_to_db, row)) for row in rows))


def _row(cursor: sqlite3.Cursor, values: tuple) -> sqlite3.Row:
    if any(type(v) is str and v[:1] == "\x1b" for v in values):
        values = tuple(map(_from_db, values))
    return sqlite3.Row(cursor, values)


class Catalog:
    """A connection to the catalog at ``path``; the lock folder is ``path``'s sibling ``locks/``.

    ``may_initialize`` is called before an empty catalog gets its schema, and raises when an empty one
    means damage (``Store`` knows whether the store had a catalog before)."""

    def __init__(
        self,
        path: str | os.PathLike,
        busy_timeout: float = 10.0,
        may_initialize: Callable[[], None] | None = None,
    ):
        self.path = Path(path)
        self.lock_dir = self.path.parent / "locks"
        self.damaged_logs = 0  # log rows left out of answers because they failed their checksum
        self._mutex = threading.RLock()
        self._run_locks: dict[int, int] = {}
        self._holds: dict[int, int] = {}
        self._dead: set[int] = set()  # runs found crashed that the catalog could not be told about
        self._pid = os.getpid()  # SQLite connections must not be used across a fork
        self._create_private()
        try:
            self._db = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            self._db.row_factory = _row
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._db.execute("PRAGMA trusted_schema = OFF")  # an edited schema runs no functions
            if may_initialize is not None and not self._tables():
                may_initialize()  # before anything is written: the journal mode writes a header
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = OFF")
            self._ensure_schema()
            self._mark_crashed()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error(exc) from exc
        except BaseException:
            self._db.close()
            raise

    def _create_private(self) -> None:
        """Create the catalog file readable by its owner only (SQLite gives its -wal and -shm that mode)."""
        try:
            os.close(open_nofollow(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot create the catalog {self.path}: {exc.strerror or exc}") from exc

    def _error(self, exc: Exception) -> StoreError:
        """The StoreError that says what an SQLite failure means for the user."""
        text = str(exc)
        if "full" in text or ("I/O error" in text and _no_space_left(self.path.parent)):  # SQLITE_FULL
            return StoreFull(
                f"the store at {self.path.parent} is full ({text}); free space, e.g. remove runs "
                "(python -m flortrace rm RUN, then gc --yes)"
            )
        if "readonly" in text or "read-only" in text:
            return StoreError(f"cannot write the catalog {self.path}: {text}")
        if "locked" in text or "busy" in text:
            return StoreError(f"the catalog {self.path} stayed locked by another process ({text}); try again")
        damaged = ("malformed", "not a database", "no such", "has no column", "constraint", "mismatch")
        if any(word in text for word in damaged) or type(exc) is sqlite3.DatabaseError:
            return CatalogDamaged(
                f"the catalog {self.path} is damaged ({text}); restore it from a backup, "
                "or move the store away to start a new one"
            )
        return StoreError(f"cannot use the catalog {self.path}: {text}")

    # -- schema and liveness -------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Create the schema in an empty catalog, upgrade an older one, refuse a newer or damaged one."""
        if not self._tables():
            with self._write() as db:
                if not self._tables():  # another process may have created it meanwhile
                    for statement in _SCHEMA_V1.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
                    self._migrate(db, 1)
        version = self._version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the catalog {self.path} has schema version {version}, newer than this flortrace "
                f"understands ({SCHEMA_VERSION}); upgrade flortrace or use --store elsewhere"
            )
        if version < SCHEMA_VERSION:
            with self._write() as db:
                self._migrate(db, self._version())  # read again: another process may have upgraded it
        missing = TABLES - self._tables()
        if missing:
            raise CatalogDamaged(
                f"the catalog {self.path} is damaged: table {', '.join(sorted(missing))} is missing; "
                "restore it from a backup, or move the store away to start a new one"
            )

    def _version(self) -> int:
        if "meta" not in self._tables():
            raise StoreError(
                f"{self.path} is an SQLite file but not a flortrace catalog; pick another folder with --store"
            )
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise StoreError(
                f"{self.path} is an SQLite file but not a flortrace catalog; pick another folder with --store"
            )
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            version = 0
        if version < 1:
            raise CatalogDamaged(
                f"the catalog {self.path} is damaged: its schema_version is {row[0]!r}, not a version "
                "number; restore it from a backup, or move the store away to start a new one"
            )
        return version

    def _migrate(self, db: sqlite3.Connection, version: int) -> None:
        """Upgrade from ``version`` to SCHEMA_VERSION inside the caller's transaction."""
        for target in sorted(MIGRATIONS):
            if target > version:
                MIGRATIONS[target](db)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def _tables(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _lock_path(self, run_id: int) -> Path:
        return self.lock_dir / f"run-{run_id}.lock"

    def _use_path(self, run_id: int) -> Path:
        return self.lock_dir / f"use-{run_id}.lock"

    def _open_lock(self, path: Path) -> int:
        """Open (creating) a lock file; a link or anything but a regular file there is refused."""
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = open_nofollow(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK)
        except UnsafeStore:
            raise
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafeStore(f"the lock file {path} is not a regular file")
        return fd

    def _is_alive(self, run_id: int) -> bool:
        """Whether some process (this one included) holds the run's lock."""
        if run_id in self._run_locks:
            return True
        try:
            fd = open_nofollow(self._lock_path(run_id), os.O_RDWR | os.O_NONBLOCK)
        except (OSError, UnsafeStore):  # absent, or a link no recording process would have made
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the lock if we took it
        return False

    def _mark_crashed(self) -> None:
        """Set ``crashed`` on every ``running`` run whose process is gone, ended at its last activity.

        When the store cannot be written (a full disk), such runs only read as crashed here."""
        for row in self._rows("SELECT id FROM runs WHERE status = 'running'"):
            if not self._is_alive(row["id"]):
                try:
                    with self._write() as db:
                        db.execute(
                            "UPDATE runs SET status = 'crashed', ended = active"
                            " WHERE id = ? AND status = 'running'",
                            (row["id"],),
                        )
                except StoreError:
                    self._dead.add(row["id"])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of deadlocking.

        Any SQLite failure (a full disk, a damaged file) rolls back and raises a StoreError, and so does
        writing from a child the opening process forked."""
        if os.getpid() != self._pid:
            raise StoreError("a process forked from the one that opened the catalog never writes to it")
        with self._mutex:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolled back already (it does on a full disk)
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise

    def _touch(self, db: sqlite3.Connection, run_id: int, now: float | None = None) -> None:
        db.execute("UPDATE runs SET active = ? WHERE id = ?", (time.time() if now is None else now, run_id))

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        with self._mutex:
            try:
                return [dict(r) for r in self._db.execute(sql, tuple(params))]
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _json(self, text: Any, what: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            raise CatalogDamaged(
                f"the catalog {self.path} is damaged: {what} is not valid JSON; restore it from a backup, "
                "or remove that run (python -m flortrace rm RUN)"
            ) from None

    # -- runs ----------------------------------------------------------------------------------------

    def begin_run(
        self,
        script: str,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        versions: dict[str, str],
        git: str | None = None,
        name: str | None = None,
        mode: str = "record",
        parent: int | None = None,
    ) -> int:
        """Add a ``running`` run and hold its liveness lock until :meth:`end_run`; return its id."""
        now = time.time()
        real = os.path.realpath(os.path.join(cwd, script))
        fd = None
        try:
            with self._write() as db:
                cur = db.execute(
                    "INSERT INTO runs (script, script_real, argv, cwd, env, versions, git, name, mode,"
                    " parent, status, started, active)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                    (
                        script,
                        real,
                        json.dumps(list(argv)),
                        cwd,
                        json.dumps(dict(env)),
                        json.dumps(dict(versions)),
                        git,
                        name,
                        mode,
                        parent,
                        now,
                        now,
                    ),
                )
                run_id = cur.lastrowid
                # Lock before the row becomes visible, so no opener can take the run for crashed.
                fd = self._open_lock(self._lock_path(run_id))
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        self._run_locks[run_id] = fd
        return run_id

    def end_run(self, run_id: int, status: str, exit_code: int | None, note: str | None = None) -> None:
        """Record how the run ended and release its liveness lock (kept when status is ``running``)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
        now = time.time()
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status = ?, exit_code = ?, note = ?, ended = ?, active = ? WHERE id = ?",
                (status, exit_code, note, None if status == "running" else now, now, run_id),
            )
        if status != "running" and run_id in self._run_locks:
            try:
                self._lock_path(run_id).unlink()
            except FileNotFoundError:
                pass
            os.close(self._run_locks.pop(run_id))

    def set_run_info(self, run_id: int, **fields: Any) -> None:
        """Merge ``fields`` into the run's JSON ``info`` (torch settings, warnings, main loop ids...)."""
        with self._write() as db:
            row = db.execute("SELECT info FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id} in {self.path}")
            info = self._json(row[0], f"the info of run {run_id}")
            info.update(fields)
            db.execute("UPDATE runs SET info = ? WHERE id = ?", (json.dumps(info), run_id))
            self._touch(db, run_id)

    def run(self, run_id: int) -> dict | None:
        rows = self._rows(_RUN_SELECT + " WHERE r.id = ?", (run_id,))
        return self._run_dict(rows[0]) if rows else None

    def runs(self) -> list[dict]:
        """All runs, newest first, with counts of epochs, checkpoints, memos, logs and stored bytes."""
        return [self._run_dict(r) for r in self._rows(_RUN_SELECT + " ORDER BY r.id DESC")]

    def _run_dict(self, row: dict) -> dict:
        del row["script_real"]
        if row["id"] in self._dead and row["status"] == "running":
            row.update(status="crashed", ended=row["active"])
        for key in ("argv", "env", "versions", "info"):
            row[key] = self._json(row[key], f"the {key} of run {row['id']}")
        return row

    def latest_run(self, script: str | None = None) -> int | None:
        """The newest recorded run, of ``script`` (a path, resolved here) when given."""
        if script is None:
            sql, params = "SELECT MAX(id) FROM runs WHERE mode = 'record'", ()
        else:
            real = os.path.realpath(script)
            sql, params = "SELECT MAX(id) FROM runs WHERE mode = 'record' AND script_real = ?", (real,)
        return self._rows(sql, params)[0]["MAX(id)"]

    def hold_run(self, run_id: int) -> None:
        """Hold a run while replaying it or travelling in it, until :meth:`close`, so ``rm`` refuses it.

        StoreError when the run is not there (any more) or is being removed."""
        if run_id in self._holds:
            return
        fd = self._open_lock(self._use_path(run_id))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            if not self._rows("SELECT id FROM runs WHERE id = ?", (run_id,)):  # checked once held
                raise StoreError(f"no run {run_id} in this store (see python -m flortrace runs)")
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"run {run_id} is being removed") from None
        except BaseException:
            os.close(fd)
            raise
        self._holds[run_id] = fd

    def delete_run(self, run_id: int) -> None:
        """Remove a run and everything recorded for it (its blobs stay until a gc)."""
        self.delete_runs([run_id])

    def delete_runs(self, run_ids: Iterable[int]) -> None:
        """Remove runs and everything recorded for them (their blobs stay until a gc): all or none.

        Each must exist and be neither recording nor held by a replay or console."""
        ids = list(dict.fromkeys(run_ids))
        locks = []
        try:
            for run_id in ids:
                row = self._rows("SELECT status FROM runs WHERE id = ?", (run_id,))
                if not row:
                    raise StoreError(f"no run {run_id} in this store (see python -m flortrace runs)")
                if row[0]["status"] == "running" and self._is_alive(run_id):
                    raise StoreError(
                        f"run {run_id} is still running (being recorded); remove it once it ended"
                    )
                fd = self._open_lock(self._use_path(run_id))
                locks.append(fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise StoreError(
                        f"run {run_id} is in use by a replay or console; remove it once that has ended"
                    ) from None
            with self._write() as db:
                for run_id in ids:
                    snapshots = "SELECT id FROM snapshots WHERE run = ?"
                    db.execute(f"DELETE FROM snapshot_blobs WHERE snapshot IN ({snapshots})", (run_id,))
                    db.execute("DELETE FROM snapshots WHERE run = ?", (run_id,))
                    for table in _RUN_TABLES:
                        db.execute(f"DELETE FROM {table} WHERE run = ?", (run_id,))
                    db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
                db.execute("DELETE FROM blob_sizes WHERE digest NOT IN (SELECT digest FROM snapshot_blobs)")
            for run_id in ids:
                for path in (self._lock_path(run_id), self._use_path(run_id)):
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        pass
        finally:
            for fd in locks:
                os.close(fd)

    # -- what a recording learns about the script ------------------------------------------------------

    def add_source(self, run_id: int, path: str, source: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?)", (run_id, path, source))
            self._touch(db, run_id)

    def sources(self, run_id: int) -> dict[str, str]:
        return {r["path"]: r["source"] for r in self._rows("SELECT * FROM sources WHERE run = ?", (run_id,))}

    def add_loops(self, run_id: int, rows: list[dict]) -> None:
        """Add or update loops, keyed by ``loop_id``."""
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO loops VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        r["loop_id"],
                        r.get("file"),
                        r.get("qualname"),
                        r.get("ordinal"),
                        r.get("lineno"),
                        r.get("kind"),
                        r.get("parent"),
                    )
                    for r in rows
                ],
            )
            self._touch(db, run_id)

    def loops(self, run_id: int) -> list[dict]:
        return self._rows("SELECT * FROM loops WHERE run = ? ORDER BY file, qualname, ordinal", (run_id,))

    def add_progress(
        self,
        run_id: int,
        epochs: Iterable[tuple] = (),
        blocks: Iterable[tuple] = (),
        decisions: Iterable[tuple] = (),
        logs: Iterable[dict] = (),
        layouts: Iterable[tuple] = (),
        digests: Iterable[tuple] = (),
        outputs: Iterable[tuple] = (),
    ) -> None:
        """Write what a recording accumulated, in one transaction.

        epochs: (epoch, loop_id, index, started, seconds); blocks: (epoch, loop_id, seq, steps, seconds);
        decisions: (epoch, kind, loop_id, action, reason); logs: rows as for ``add_logs``;
        layouts: (layout, items, paths); digests: (epoch, point, layout, leaves); outputs: (epoch, seq,
        stream, text, crc, nbytes), seq -1 for what the epoch printed outside its blocks."""
        now = time.time()
        log_values = [(*fields, _checksum(fields)) for fields in (_log_fields(run_id, r, now) for r in logs)]
        with self._write() as db:
            if log_values and not db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                raise StoreError(f"run {run_id} was removed from the store; its new log rows were not saved")
            db.executemany(
                "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?)", [(run_id, *e) for e in epochs]
            )
            db.executemany(
                "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?, ?, ?)", [(run_id, *b) for b in blocks]
            )
            db.executemany(
                "INSERT INTO decisions (run, epoch, kind, loop_id, action, reason, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *d, now) for d in decisions],
            )
            db.executemany(
                f"INSERT INTO logs ({_LOG_FIELDS}, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                log_values,
            )
            db.executemany(
                "INSERT OR REPLACE INTO digest_layouts VALUES (?, ?, ?, ?)",
                [(run_id, n, json.dumps(items), json.dumps(paths)) for n, items, paths in layouts],
            )
            db.executemany(
                "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)",
                [(run_id, e, point, n, json.dumps(leaves)) for e, point, n, leaves in digests],
            )
            db.executemany(
                "INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?)", [(run_id, *o) for o in outputs]
            )
            self._touch(db, run_id, now)

    def add_epoch(
        self, run_id: int, epoch: int, loop_id: str, index: int, started: float, seconds: float
    ) -> None:
        self.add_progress(run_id, epochs=[(epoch, loop_id, index, started, seconds)])

    def epochs(self, run_id: int) -> list[dict]:
        return self._rows(
            'SELECT run, epoch, loop_id, idx AS "index", started, seconds FROM epochs WHERE run = ? '
            "ORDER BY epoch",
            (run_id,),
        )

    def add_block(self, run_id: int, epoch: int, loop_id: str, seq: int, steps: int, seconds: float) -> None:
        """Time one execution of a block; ``seq`` counts block executions within the epoch from 0."""
        self.add_progress(run_id, blocks=[(epoch, loop_id, seq, steps, seconds)])

    def blocks(self, run_id: int, epoch: int | None = None) -> list[dict]:
        if epoch is None:
            return self._rows("SELECT * FROM blocks WHERE run = ? ORDER BY epoch, seq", (run_id,))
        return self._rows("SELECT * FROM blocks WHERE run = ? AND epoch = ? ORDER BY seq", (run_id, epoch))

    def set_changeset(self, run_id: int, loop_id: str, items: list[tuple[str, str]]) -> None:
        """Replace the changeset of a loop: (name, why it is in it) pairs."""
        with self._write() as db:
            db.execute("DELETE FROM changesets WHERE run = ? AND loop_id = ?", (run_id, loop_id))
            db.executemany(
                "INSERT INTO changesets VALUES (?, ?, ?, ?, ?)",
                [(run_id, loop_id, i, name, reason) for i, (name, reason) in enumerate(items)],
            )
            self._touch(db, run_id)

    def changesets(self, run_id: int) -> dict[str, list[tuple[str, str]]]:
        result: dict[str, list[tuple[str, str]]] = {}
        for r in self._rows("SELECT * FROM changesets WHERE run = ? ORDER BY loop_id, ord", (run_id,)):
            result.setdefault(r["loop_id"], []).append((r["name"], r["reason"]))
        return result

    def digests(self, run_id: int) -> dict[tuple[int, str], dict]:
        """(epoch, point) -> {"items": [(scope, name), ...], "leaves": {path: leaf}}; point 'start' or
        'end'."""
        layouts = {
            r["layout"]: (json.loads(r["items"]), json.loads(r["paths"]))
            for r in self._rows("SELECT * FROM digest_layouts WHERE run = ?", (run_id,))
        }
        out = {}
        for r in self._rows("SELECT * FROM digests WHERE run = ? ORDER BY epoch", (run_id,)):
            items, paths = layouts[r["layout"]]
            leaves = dict(zip(paths, json.loads(r["leaves"]), strict=True))
            out[(r["epoch"], r["point"])] = {"items": [tuple(i) for i in items], "leaves": leaves}
        return out

    def outputs(self, run_id: int) -> dict[tuple[int, int, str], dict]:
        """(epoch, seq, stream) -> {"text": first part, "crc": of all of it, "nbytes": its length}."""
        return {
            (r["epoch"], r["seq"], r["stream"]): {"text": r["text"], "crc": r["crc"], "nbytes": r["nbytes"]}
            for r in self._rows("SELECT * FROM outputs WHERE run = ? ORDER BY epoch, seq", (run_id,))
        }

    # -- snapshots and the policy's decisions --------------------------------------------------------

    def add_snapshot(
        self,
        run_id: int,
        epoch: int,
        kind: str,
        loop_id: str | None,
        seq: int | None,
        manifest: str,
        nbytes: int,
        stored: int,
        stall: float,
        reason: str,
        blobs: list[str],
        blob_sizes: dict[str, int] | None = None,
    ) -> int:
        """Index a durable snapshot; ``blobs`` (the manifest is added) are the digests it references,
        ``blob_sizes`` their stored sizes for the per-run byte count. Returns the snapshot id."""
        if kind not in SNAPSHOT_KINDS:
            raise ValueError(f"snapshot kind must be one of {SNAPSHOT_KINDS}, not {kind!r}")
        now = time.time()
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO snapshots (run, epoch, kind, loop_id, seq, manifest, nbytes, stored, stall,"
                " reason, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, epoch, kind, loop_id, seq, manifest, nbytes, stored, stall, reason, now),
            )
            snapshot = cur.lastrowid
            db.executemany(
                "INSERT OR IGNORE INTO snapshot_blobs VALUES (?, ?)",
                [(snapshot, d) for d in {manifest, *blobs}],
            )
            sizes = list((blob_sizes or {}).items())
            db.executemany("INSERT OR REPLACE INTO blob_sizes VALUES (?, ?)", sizes)
            self._touch(db, run_id, now)
        return snapshot

    def snapshots(self, run_id: int, kind: str | None = None, epoch: int | None = None) -> list[dict]:
        sql, params = "SELECT * FROM snapshots WHERE run = ?", [run_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if epoch is not None:
            sql += " AND epoch = ?"
            params.append(epoch)
        return self._rows(sql + " ORDER BY epoch, seq, id", params)

    def referenced_blobs(self) -> set[str]:
        """Digests referenced by any snapshot of any run (what gc must keep)."""
        return {r["digest"] for r in self._rows("SELECT DISTINCT digest FROM snapshot_blobs")}

    def add_decision(
        self, run_id: int, epoch: int, kind: str, loop_id: str | None, action: str, reason: str
    ) -> None:
        """Record one take/skip decision of the adaptive policy and why."""
        self.add_progress(run_id, decisions=[(epoch, kind, loop_id, action, reason)])

    def decisions(self, run_id: int) -> list[dict]:
        return self._rows("SELECT * FROM decisions WHERE run = ? ORDER BY id", (run_id,))

    # -- logs ----------------------------------------------------------------------------------------

    def add_logs(self, run_id: int, rows: list[dict]) -> None:
        """Append log rows (``value`` any JSON-able) in one transaction."""
        self.add_progress(run_id, logs=rows)

    def logs(
        self,
        run_ids: list[int] | None = None,
        names: list[str] | None = None,
        origin: str | None = None,
        epochs: tuple[int | None, int | None] | None = None,
    ) -> list[dict]:
        """Log rows, filtered; ``epochs`` is half-open (lo, hi), None for an open end.

        Rows that fail their checksum (or hold no valid JSON) were changed outside flortrace: they are left
        out, counted in ``damaged_logs`` and named in one warning on stderr."""
        sql, params = _LOG_SELECT + " WHERE 1", []
        if run_ids is not None:
            sql += f" AND run IN ({','.join('?' * len(run_ids))})"
            params += run_ids
        if names is not None:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            params += names
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin)
        if epochs is not None:
            lo, hi = epochs
            sql += " AND epoch IS NOT NULL"
            if lo is not None:
                sql += " AND epoch >= ?"
                params.append(lo)
            if hi is not None:
                sql += " AND epoch < ?"
                params.append(hi)
        good, damaged = [], []
        for r in self._rows(sql + " ORDER BY run, epoch, step, seq", params):
            try:
                if r.pop("checksum") != _checksum(r[k] for k in _LOG_KEYS):
                    raise ValueError("checksum")
                r["value"] = json.loads(r["value"])
            except (TypeError, ValueError):
                damaged.append(r)
                continue
            good.append(r)
        if damaged:
            self._report_damaged(damaged)
        return good

    def _report_damaged(self, rows: list[dict]) -> None:
        self.damaged_logs += len(rows)
        first = rows[0]
        print(
            f"flortrace: warning: {len(rows)} logged value(s) in {self.path} fail their checksum and are "
            f"left out (first: run {first['run']}, {first['name']!r}, epoch {first['epoch']}, step "
            f"{first['step']}): the catalog was changed outside flortrace",
            file=sys.stderr,
        )

    def delete_logs(
        self,
        run_id: int,
        origin: str = "replay",
        epochs: list[int] | None = None,
        names: list[str] | None = None,
    ) -> None:
        """Delete a run's logs of one origin (all, or of some epochs; None in ``epochs`` means rows logged
        outside any epoch; only ``names`` when given), e.g. when a new replay replaces them."""
        sql, params = "DELETE FROM logs WHERE run = ? AND origin = ?", [run_id, origin]
        if names is not None:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            params += names
        if epochs is not None:
            numbered = [e for e in epochs if e is not None]
            test = f"epoch IN ({','.join('?' * len(numbered))})"
            if None in epochs:
                test += " OR epoch IS NULL"
            sql += f" AND ({test})"
            params += numbered
        with self._write() as db:
            db.execute(sql, params)

    # -- lifetime ------------------------------------------------------------------------------------

    def query(self, sql: str) -> list[dict]:
        """Rows of a read-only query over documented views (see ``python -m flortrace query --help``):
        runs, args (each run's arguments parsed argparse-style) and logs. ValueError for bad SQL or a
        statement that would write."""
        from flortrace.scriptargs import values

        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            db.row_factory = sqlite3.Row
            db.execute(
                "CREATE TEMP VIEW runs AS SELECT id, script, name, status, started, ended, exit_code, argv"
                " FROM main.runs WHERE mode = 'record'"
            )
            db.execute("CREATE TEMP TABLE args (run INTEGER, name TEXT, value)")
            rows = db.execute("SELECT id, argv FROM main.runs").fetchall()
            db.executemany(
                "INSERT INTO args VALUES (?, ?, ?)",
                [(r[0], k, v) for r in rows for k, v in values(json.loads(r[1])).items()],
            )
            db.execute(
                "CREATE TEMP VIEW logs AS SELECT run, name, json_extract(value, '$') AS value, epoch, step,"
                " origin FROM main.logs"
            )
            db.execute("PRAGMA query_only = ON")
            try:
                return [dict(r) for r in db.execute(sql)]
            except sqlite3.Error as exc:
                raise ValueError(str(exc)) from None
        finally:
            db.close()

    def close(self) -> None:
        """Close the connection; a run still open here loses its lock and will read as crashed."""
        with self._mutex:
            for fd in [*self._run_locks.values(), *self._holds.values()]:
                os.close(fd)
            self._run_locks.clear()
            self._holds.clear()
            self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _no_space_left(folder: Path) -> bool:
    """Whether the disk holding ``folder`` is full (SQLite reports some writes that fail so as I/O errors)."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _log_fields(run_id: int, row: dict, now: float) -> tuple:
    """A log row's stored fields (in _LOG_KEYS order) as SQLite gives them back, so checksums match.

    A value that is not JSON-able is stored as its repr rather than failing the write."""

    def number(key):
        value = row.get(key)
        return None if value is None else int(value)

    value = row["value"]
    return (
        run_id,
        str(row["name"]),
        json.dumps(value, default=repr),
        row.get("vtype", type(value).__name__),
        number("epoch"),
        number("step"),
        row.get("loop_id"),
        number("lineno"),
        row.get("origin", "record"),
        float(row.get("ts", now)),
    )
