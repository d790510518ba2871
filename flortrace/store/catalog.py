"""The SQLite catalog: runs, sources, loops, timings, snapshot index, policy decisions and logs.

This module owns the schema. Each process (the recording process, its writer process, readers)
opens its own connection; WAL mode lets them work at once. A recording process holds an exclusive
``flock`` on ``locks/run-<id>.lock`` while its run is open, so any opener can tell a run whose
process died (SIGKILL, power loss) from one still going, and marks the former ``crashed``.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flortrace.store import StoreError

SCHEMA_VERSION = 2
RUN_STATUSES = ("running", "finished", "failed", "crashed")
SNAPSHOT_KINDS = ("checkpoint", "memo", "start")

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS digest_layouts (
    run INTEGER NOT NULL, layout INTEGER NOT NULL, items TEXT NOT NULL, paths TEXT NOT NULL,
    PRIMARY KEY (run, layout)
);
CREATE TABLE IF NOT EXISTS digests (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, point TEXT NOT NULL, layout INTEGER NOT NULL,
    leaves TEXT NOT NULL, PRIMARY KEY (run, epoch, point)
);
CREATE TABLE IF NOT EXISTS outputs (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL, stream TEXT NOT NULL,
    text TEXT NOT NULL, crc INTEGER NOT NULL, nbytes INTEGER NOT NULL, PRIMARY KEY (run, epoch, seq, stream)
);
"""
# Tables added in schema version 2 (digests and recorded output, for the fidelity check); a version 1 catalog
# gets them when it is opened.
_SCHEMA_2 = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS digest_layouts") :]

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


class Catalog:
    """A connection to the catalog at ``path``; the lock folder is ``path``'s sibling ``locks/``."""

    def __init__(self, path: str | os.PathLike, busy_timeout: float = 10.0):
        self.path = Path(path)
        self.lock_dir = self.path.parent / "locks"
        self._mutex = threading.RLock()
        self._run_locks: dict[int, int] = {}
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the catalog {self.path}: {exc}") from exc
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = OFF")
            self._ensure_schema()
            self._mark_crashed()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"{self.path} is not a usable flortrace catalog ({exc}); "
                "move it away or pick another folder with --store"
            ) from exc

    # -- schema and liveness -------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        tables = self._tables()
        if not tables:
            with self._write() as db:
                if not self._tables():  # another process may have created it meanwhile
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            tables = self._tables()
        row = None
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise StoreError(
                f"{self.path} is an SQLite file but not a flortrace catalog; pick another folder with --store"
            )
        version = int(row[0])
        if version == 1:
            with self._write() as db:
                for statement in _SCHEMA_2.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the catalog {self.path} has schema version {version}, newer than this flortrace "
                f"understands ({SCHEMA_VERSION}); upgrade flortrace or use --store elsewhere"
            )

    def _tables(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _lock_path(self, run_id: int) -> Path:
        return self.lock_dir / f"run-{run_id}.lock"

    def _is_alive(self, run_id: int) -> bool:
        """Whether some process (this one included) holds the run's lock."""
        if run_id in self._run_locks:
            return True
        try:
            fd = os.open(self._lock_path(run_id), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the lock if we took it
        return False

    def _mark_crashed(self) -> None:
        """Set ``crashed`` on every ``running`` run whose process is gone, ended at its last activity."""
        for (run_id,) in self._db.execute("SELECT id FROM runs WHERE status = 'running'").fetchall():
            if not self._is_alive(run_id):
                with self._write() as db:
                    db.execute(
                        "UPDATE runs SET status = 'crashed', ended = active"
                        " WHERE id = ? AND status = 'running'",
                        (run_id,),
                    )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of deadlocking."""
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _touch(self, db: sqlite3.Connection, run_id: int, now: float | None = None) -> None:
        db.execute("UPDATE runs SET active = ? WHERE id = ?", (time.time() if now is None else now, run_id))

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        with self._mutex:
            return [dict(r) for r in self._db.execute(sql, tuple(params))]

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
        self.lock_dir.mkdir(parents=True, exist_ok=True)
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
                fd = os.open(self._lock_path(run_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
            info = json.loads(row[0])
            info.update(fields)
            db.execute("UPDATE runs SET info = ? WHERE id = ?", (json.dumps(info), run_id))
            self._touch(db, run_id)

    def run(self, run_id: int) -> dict | None:
        rows = self._rows(_RUN_SELECT + " WHERE r.id = ?", (run_id,))
        return _run_dict(rows[0]) if rows else None

    def runs(self) -> list[dict]:
        """All runs, newest first, with counts of epochs, checkpoints, memos, logs and stored bytes."""
        return [_run_dict(r) for r in self._rows(_RUN_SELECT + " ORDER BY r.id DESC")]

    def latest_run(self, script: str | None = None) -> int | None:
        """The newest recorded run, of ``script`` (a path, resolved here) when given."""
        if script is None:
            sql, params = "SELECT MAX(id) FROM runs WHERE mode = 'record'", ()
        else:
            real = os.path.realpath(script)
            sql, params = "SELECT MAX(id) FROM runs WHERE mode = 'record' AND script_real = ?", (real,)
        with self._mutex:
            return self._db.execute(sql, params).fetchone()[0]

    def delete_run(self, run_id: int) -> None:
        """Remove a run and everything recorded for it (its blobs stay until a gc)."""
        row = self._rows("SELECT status FROM runs WHERE id = ?", (run_id,))
        if not row:
            raise StoreError(f"no run {run_id} in {self.path}")
        if row[0]["status"] == "running" and self._is_alive(run_id):
            raise StoreError(f"run {run_id} is still running")
        with self._write() as db:
            db.execute(
                "DELETE FROM snapshot_blobs WHERE snapshot IN (SELECT id FROM snapshots WHERE run = ?)",
                (run_id,),
            )
            db.execute("DELETE FROM snapshots WHERE run = ?", (run_id,))
            db.execute("DELETE FROM blob_sizes WHERE digest NOT IN (SELECT digest FROM snapshot_blobs)")
            for table in _RUN_TABLES:
                db.execute(f"DELETE FROM {table} WHERE run = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        try:
            self._lock_path(run_id).unlink()
        except FileNotFoundError:
            pass

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
        log_values = [
            (
                run_id,
                r["name"],
                json.dumps(r["value"]),
                r.get("vtype", type(r["value"]).__name__),
                r.get("epoch"),
                r.get("step"),
                r.get("loop_id"),
                r.get("lineno"),
                r.get("origin", "record"),
                r.get("ts", now),
            )
            for r in logs
        ]
        with self._write() as db:
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
                "INSERT INTO logs (run, name, value, vtype, epoch, step, loop_id, lineno, origin, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        with self._mutex:
            return {r[0] for r in self._db.execute("SELECT DISTINCT digest FROM snapshot_blobs")}

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
        """Log rows, filtered; ``epochs`` is half-open (lo, hi), None for an open end."""
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
        rows = self._rows(sql + " ORDER BY run, epoch, step, seq", params)
        for r in rows:
            r["value"] = json.loads(r["value"])
        return rows

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

    def close(self) -> None:
        """Close the connection; a run still open here loses its lock and will read as crashed."""
        with self._mutex:
            for fd in self._run_locks.values():
                os.close(fd)
            self._run_locks.clear()
            self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_LOG_SELECT = "SELECT run, name, value, vtype, epoch, step, loop_id, lineno, origin, ts FROM logs"


def _run_dict(row: dict) -> dict:
    row = dict(row)
    del row["script_real"]
    for key in ("argv", "env", "versions", "info"):
        row[key] = json.loads(row[key])
    return row
