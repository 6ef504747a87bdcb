"""The embedded state store: one SQLite file, the default (nothing to install or run).

Journal, status documents, lock holders and leases are tables in the file (WAL mode, so readers never
wait for a writer). The lock itself is an OS file lock (``flock`` through ``filelock``) on a file next to
the database, one per target and lock name: the kernel drops it when its holder dies, even on SIGKILL, so
a killed run never leaves the target locked. A holder row in the ``locks`` table names the holder for
the error message and, still present when the next run takes the lock, says that run ended without
releasing it.

I/O: the database file, its WAL files and the lock files in ``<database>.locks/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock

from reconciler.errors import LockError, StateError, StateFileError
from reconciler.state.base import SCHEMA_VERSION, JournalEntry, StateStore, describe_holder, json_object

__all__ = ["SqliteStore"]

# Each step takes the schema from the version before it to its own number.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
        " target TEXT NOT NULL, run TEXT NOT NULL, event TEXT NOT NULL, time TEXT NOT NULL,"
        " data TEXT NOT NULL)",
        "CREATE INDEX journal_by_target ON journal (target, seq)",
        "CREATE TABLE status (target TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,"
        " updated REAL NOT NULL, PRIMARY KEY (target, key))",
        "CREATE TABLE locks (target TEXT NOT NULL, name TEXT NOT NULL, holder TEXT NOT NULL,"
        " PRIMARY KEY (target, name))",
        "CREATE TABLE leases (target TEXT NOT NULL, name TEXT NOT NULL, owner TEXT NOT NULL,"
        " holder TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (target, name))",
    ),
}


def _key(target: str, name: str) -> str:
    return hashlib.sha256(f"{target}\0{name}".encode()).hexdigest()[:24]


class SqliteStore(StateStore):
    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 60.0) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.location = self.path
        self._mutex = threading.RLock()
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            # Private to its owner whatever the umask (SQLite gives its WAL files the same mode), and
            # never a link, a pipe or a device planted where the store belongs.
            fd = os.open(
                self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600
            )
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise StateFileError(
                        f"{self.path} is not a regular file; the state store cannot be kept there"
                    )
            finally:
                os.close(fd)
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # Durable against a killed process (what the lock and journal must survive); an OS crash
            # may lose the last transactions, never half of one.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state store {self.path}: {exc}") from exc
        except OSError as exc:
            raise StateError(f"cannot open the state store {self.path}: {exc.strerror}") from exc

    # -- plumbing ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken up front, so two writers queue instead of deadlocking)."""
        with self._mutex:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"the state store {self.path} failed: {exc}") from exc

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._mutex:
            try:
                return self._db.execute(sql, tuple(args)).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"the state store {self.path} failed: {exc}") from exc

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"the state store {self.path} has schema version {version}; this release reads "
                    f"up to {SCHEMA_VERSION}: upgrade reconciler"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    db.execute(statement)
            if version < SCHEMA_VERSION:
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )

    # -- the interface -------------------------------------------------------------------------------

    def schema_version(self) -> int:
        rows = self._read("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0][0]) if rows else 0

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def lock_holder(self, target: str, name: str) -> dict[str, Any] | None:
        rows = self._read("SELECT holder FROM locks WHERE target = ? AND name = ?", (target, name))
        return json_object(rows[0][0]) if rows else None

    @contextlib.contextmanager
    def lock(
        self, target: str, name: str, *, timeout: float, holder: dict[str, Any]
    ) -> Iterator[dict[str, Any] | None]:
        folder = Path(self.path + ".locks")
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the lock folder {folder}: {exc.strerror}") from exc
        flock = filelock.FileLock(
            str(folder / f"{_key(target, name)}.lock"), timeout=timeout, thread_local=False
        )
        try:
            flock.acquire()
        except filelock.Timeout:
            raise LockError(
                f"the target {target} is locked by {describe_holder(self.lock_holder(target, name))}; "
                f"gave up after waiting {timeout:g}s (--lock-timeout)"
            ) from None
        try:
            with self._tx() as db:
                row = db.execute(
                    "SELECT holder FROM locks WHERE target = ? AND name = ?", (target, name)
                ).fetchone()
                # A holder row still present means its run never reached release: it was killed.
                previous = json_object(row[0]) if row else None
                db.execute(
                    "INSERT OR REPLACE INTO locks (target, name, holder) VALUES (?, ?, ?)",
                    (target, name, json.dumps(holder, default=str)),
                )
            try:
                yield previous
            finally:
                with self._tx() as db:
                    db.execute("DELETE FROM locks WHERE target = ? AND name = ?", (target, name))
        finally:
            flock.release()

    def append(self, target: str, entries: Sequence[JournalEntry]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO journal (id, target, run, event, time, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(e.id, target, e.run, e.event, e.time, e.data_json()) for e in entries],
            )

    def entries(self, target: str) -> Iterator[dict[str, Any]]:
        rows = self._read(
            "SELECT run, event, time, data FROM journal WHERE target = ? ORDER BY seq", (target,)
        )
        for run, event, at, data in rows:
            yield {"time": at, "run": run, "event": event, **(json_object(data) or {})}

    def put_status(self, target: str, key: str, doc: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO status (target, key, doc, updated) VALUES (?, ?, ?, ?)",
                (target, key, json.dumps(doc, ensure_ascii=False, default=str), time.time()),
            )

    def get_status(self, target: str, key: str) -> dict[str, Any] | None:
        rows = self._read("SELECT doc FROM status WHERE target = ? AND key = ?", (target, key))
        return json_object(rows[0][0]) if rows else None

    def try_lease(
        self, target: str, name: str, *, owner: str, ttl: float, holder: dict[str, Any]
    ) -> dict[str, Any] | None:
        now = time.time()
        with self._tx() as db:
            row = db.execute(
                "SELECT owner, holder, expires FROM leases WHERE target = ? AND name = ?", (target, name)
            ).fetchone()
            if row is not None and row[0] != owner and row[2] > now:
                current = json_object(row[1]) or {}
                return {**current, "expires_in": round(row[2] - now, 1)}
            db.execute(
                "INSERT OR REPLACE INTO leases (target, name, owner, holder, expires) VALUES (?, ?, ?, ?, ?)",
                (target, name, owner, json.dumps(holder, default=str), now + ttl),
            )
        return None

    def release_lease(self, target: str, name: str, *, owner: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM leases WHERE target = ? AND name = ? AND owner = ?", (target, name, owner)
            )

    def close(self) -> None:
        with self._mutex, contextlib.suppress(sqlite3.Error):
            self._db.close()
