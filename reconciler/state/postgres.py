"""The shared state store: a PostgreSQL database (psycopg 3), for teams whose runners are many machines.

* The lock is a session-level advisory lock on a connection of its own, held for the whole apply. The
  server drops it when that connection ends, so a killed or cut-off runner releases it by itself. While
  a lock is held, journal entries of its target are written over the lock's own connection: an entry
  that was written proves the lock was still held, and a lost connection stops the apply before its
  next change to the target.
* Journal, status documents, lock holders and leases are tables (``reconciler_*``) in the connection's
  schema (``search_path``); every write is one transaction. Lease expiry uses the server's clock, so the
  runners' clocks need not agree.
* ``reconciler_meta`` holds the schema version; a run of a newer release migrates the tables under a
  transaction-level advisory lock, so two runners starting together migrate once.

I/O: connections to the PostgreSQL server named by the URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import psycopg.errors

from reconciler.errors import LockError, StateError
from reconciler.state.base import SCHEMA_VERSION, JournalEntry, StateStore, describe_holder, json_object

__all__ = ["PostgresStore"]

# Each step takes the schema from the version before it to its own number.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE reconciler_journal (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE,"
        " target text NOT NULL, run text NOT NULL, event text NOT NULL, time text NOT NULL,"
        " data jsonb NOT NULL)",
        "CREATE INDEX reconciler_journal_by_target ON reconciler_journal (target, seq)",
        "CREATE TABLE reconciler_status (target text NOT NULL, key text NOT NULL, doc jsonb NOT NULL,"
        " updated timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target, key))",
        "CREATE TABLE reconciler_locks (target text NOT NULL, name text NOT NULL, holder jsonb NOT NULL,"
        " PRIMARY KEY (target, name))",
        "CREATE TABLE reconciler_leases (target text NOT NULL, name text NOT NULL, owner text NOT NULL,"
        " holder jsonb NOT NULL, expires timestamptz NOT NULL, PRIMARY KEY (target, name))",
    ),
}

# The advisory lock key under which schema migrations run (any constant no lock key collides with
# in practice: lock keys are digests).
_MIGRATION_KEY = 0x7265636F6E63696C  # "reconcil"


def _advisory_key(target: str, name: str) -> int:
    digest = hashlib.sha256(f"reconciler\0{target}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, default=str)


class _Conn:
    """One connection and the mutex that makes each use of it (a transaction) exclusive."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.mutex = threading.Lock()


class PostgresStore(StateStore):
    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        self.url = url
        parts = urllib.parse.urlsplit(url)
        self._password = parts.password
        self.location = self._redact(url)
        self._connect_timeout = connect_timeout
        self._data_lock = threading.Lock()
        self._data: _Conn | None = None
        # The connection of each lock this process holds, by target: that target's journal goes over it.
        self._held: dict[str, _Conn] = {}
        self._held_lock = threading.Lock()
        self._migrate()

    # -- plumbing ------------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
            text = text.replace(urllib.parse.quote(self._password, safe=""), "***")
        return text

    def _connect(self) -> _Conn:
        kwargs: dict[str, Any] = {"autocommit": True, "application_name": "reconciler"}
        if "connect_timeout" not in self.url:
            kwargs["connect_timeout"] = max(1, int(self._connect_timeout))
        try:
            return _Conn(psycopg.connect(self.url, **kwargs))
        except psycopg.Error as exc:
            raise StateError(
                f"cannot reach the state store {self.location}: {self._redact(str(exc))}"
            ) from None

    def _data_conn(self) -> _Conn:
        with self._data_lock:
            if self._data is None or self._data.conn.closed:
                self._data = self._connect()
            return self._data

    @contextlib.contextmanager
    def _use(self, conn: _Conn | None = None) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on ``conn`` (the data connection by default); errors become ``StateError``."""
        c = conn or self._data_conn()
        with c.mutex:
            try:
                with c.conn.transaction():
                    yield c.conn
            except psycopg.OperationalError as exc:
                if c is self._data:
                    with contextlib.suppress(psycopg.Error):
                        c.conn.close()
                lost = "the connection to the state store" if conn is None else "the lock's connection"
                raise StateError(f"{lost} {self.location} failed: {self._redact(str(exc)).strip()}") from None
            except psycopg.Error as exc:
                raise StateError(
                    f"the state store {self.location} failed: {self._redact(str(exc)).strip()}"
                ) from None

    def _version(self, db: psycopg.Connection[Any]) -> int:
        row = db.execute("SELECT to_regclass('reconciler_meta') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        found = db.execute("SELECT value FROM reconciler_meta WHERE key = 'schema_version'").fetchone()
        return int(found[0]) if found else 0

    def _migrate(self) -> None:
        with self._use() as db:
            version = self._version(db)
        if version == SCHEMA_VERSION:
            return
        # A session lock taken before the transaction that migrates: a transaction that waited for a lock
        # inside itself would still look tables up in the catalog as it was before the wait.
        c = self._data_conn()
        with c.mutex:
            try:
                c.conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_KEY,))
            except psycopg.Error as exc:
                raise StateError(
                    f"the state store {self.location} failed: {self._redact(str(exc))}"
                ) from None
        try:
            self._migrate_locked()
        finally:
            with c.mutex, contextlib.suppress(psycopg.Error):
                c.conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_KEY,))

    def _migrate_locked(self) -> None:
        with self._use() as db:
            version = self._version(db)  # another runner may have migrated while this one waited
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"the state store {self.location} has schema version {version}; this release reads "
                    f"up to {SCHEMA_VERSION}: upgrade reconciler"
                )
            db.execute(
                "CREATE TABLE IF NOT EXISTS reconciler_meta (key text PRIMARY KEY, value text NOT NULL)"
            )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    db.execute(statement)
            db.execute(
                "INSERT INTO reconciler_meta (key, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def _value(self, sql: str, params: tuple[str, ...]) -> Any:
        """The one column of the first row ``sql`` selects; None when it selects no row."""
        with self._use() as db:
            row = db.execute(sql, params).fetchone()
        return row[0] if row else None

    # -- the interface -------------------------------------------------------------------------------

    def schema_version(self) -> int:
        with self._use() as db:
            return self._version(db)

    def get_meta(self, key: str) -> str | None:
        value = self._value("SELECT value FROM reconciler_meta WHERE key = %s", (key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self._use() as db:
            db.execute(
                "INSERT INTO reconciler_meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def lock_holder(self, target: str, name: str) -> dict[str, Any] | None:
        return json_object(
            self._value("SELECT holder FROM reconciler_locks WHERE target = %s AND name = %s", (target, name))
        )

    def _take(self, c: _Conn, key: int, timeout: float) -> bool:
        db = c.conn
        try:
            if timeout <= 0:
                row = db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                return bool(row and row[0])
            # The server queues the waiters (first come, first served) and gives up after lock_timeout.
            db.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
            try:
                db.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg.errors.LockNotAvailable:
                return False
            db.execute("SET lock_timeout = 0")
            return True
        except psycopg.Error as exc:
            raise StateError(
                f"the state store {self.location} failed: {self._redact(str(exc)).strip()}"
            ) from None

    @contextlib.contextmanager
    def lock(
        self, target: str, name: str, *, timeout: float, holder: dict[str, Any]
    ) -> Iterator[dict[str, Any] | None]:
        c = self._connect()
        try:
            if not self._take(c, _advisory_key(target, name), timeout):
                raise LockError(
                    f"the target {target} is locked by {describe_holder(self.lock_holder(target, name))}; "
                    f"gave up after waiting {timeout:g}s (--lock-timeout)"
                )
            with self._use(c) as db:
                row = db.execute(
                    "SELECT holder FROM reconciler_locks WHERE target = %s AND name = %s", (target, name)
                ).fetchone()
                # A holder row still present means its run never reached release: it was killed.
                previous = json_object(row[0]) if row else None
                db.execute(
                    "INSERT INTO reconciler_locks (target, name, holder) VALUES (%s, %s, %s::jsonb)"
                    " ON CONFLICT (target, name) DO UPDATE SET holder = excluded.holder",
                    (target, name, _dump(holder)),
                )
            with self._held_lock:
                self._held[target] = c
            try:
                yield previous
            finally:
                with self._held_lock:
                    self._held.pop(target, None)
                # A lost connection has released the lock already; its holder row then stays, and the
                # next run reports this one as ended without releasing.
                with contextlib.suppress(StateError), self._use(c) as db:
                    db.execute("DELETE FROM reconciler_locks WHERE target = %s AND name = %s", (target, name))
        finally:
            with contextlib.suppress(psycopg.Error):
                c.conn.close()  # ends the session, which releases its advisory locks

    def append(self, target: str, entries: Sequence[JournalEntry]) -> None:
        with self._held_lock:
            conn = self._held.get(target)
        with self._use(conn) as db, db.cursor() as cur:
            cur.executemany(
                "INSERT INTO reconciler_journal (id, target, run, event, time, data)"
                " VALUES (%s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (id) DO NOTHING",
                [(e.id, target, e.run, e.event, e.time, e.data_json()) for e in entries],
            )

    def entries(self, target: str) -> Iterator[dict[str, Any]]:
        with self._use() as db:
            rows = db.execute(
                "SELECT run, event, time, data FROM reconciler_journal WHERE target = %s ORDER BY seq",
                (target,),
            ).fetchall()
        for run, event, at, data in rows:
            yield {"time": at, "run": run, "event": event, **(json_object(data) or {})}

    def put_status(self, target: str, key: str, doc: dict[str, Any]) -> None:
        with self._use() as db:
            db.execute(
                "INSERT INTO reconciler_status (target, key, doc, updated) VALUES (%s, %s, %s::jsonb, now())"
                " ON CONFLICT (target, key) DO UPDATE SET doc = excluded.doc, updated = excluded.updated",
                (target, key, _dump(doc)),
            )

    def get_status(self, target: str, key: str) -> dict[str, Any] | None:
        return json_object(
            self._value("SELECT doc FROM reconciler_status WHERE target = %s AND key = %s", (target, key))
        )

    def try_lease(
        self, target: str, name: str, *, owner: str, ttl: float, holder: dict[str, Any]
    ) -> dict[str, Any] | None:
        with self._use() as db:
            won = db.execute(
                "INSERT INTO reconciler_leases AS l (target, name, owner, holder, expires)"
                " VALUES (%s, %s, %s, %s::jsonb, now() + make_interval(secs => %s))"
                " ON CONFLICT (target, name) DO UPDATE SET owner = excluded.owner,"
                " holder = excluded.holder, expires = excluded.expires"
                " WHERE l.owner = excluded.owner OR l.expires < now() RETURNING owner",
                (target, name, owner, _dump(holder), float(ttl)),
            ).fetchone()
            if won:
                return None
            row = db.execute(
                "SELECT holder, extract(epoch FROM expires - now()) FROM reconciler_leases"
                " WHERE target = %s AND name = %s",
                (target, name),
            ).fetchone()
        current = (json_object(row[0]) if row else None) or {}
        return {**current, "expires_in": round(float(row[1]), 1) if row else 0.0}

    def release_lease(self, target: str, name: str, *, owner: str) -> None:
        with self._use() as db:
            db.execute(
                "DELETE FROM reconciler_leases WHERE target = %s AND name = %s AND owner = %s",
                (target, name, owner),
            )

    def close(self) -> None:
        with self._data_lock:
            if self._data is not None:
                with contextlib.suppress(psycopg.Error):
                    self._data.conn.close()
                self._data = None
