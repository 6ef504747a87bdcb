"""The SQLite file of an embedded tenant: connections, transactions, tables and the JSON codec.

I/O: one SQLite database file (WAL mode), opened per thread and per process. Every write runs in a
transaction (``BEGIN IMMEDIATE``, so that read-modify-write sequences of several processes serialize
instead of failing on lock upgrade); ``transaction()`` groups several operations into one, and nests
through savepoints. The write transactions of one process's threads take turns in the order they
asked (``_WriterQueue``), and ``busy_timeout`` makes writers of other processes wait rather than fail.
SQLite errors become ``ProviderError`` (``TransientProviderError`` when the file is busy).

``Database`` is the base of ``store.TenantStore``; the operations in Graph terms live there and in
``objects``.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from reconciler.errors import ProviderError, TransientProviderError

__all__ = ["FORMAT_VERSION", "JSON", "Database", "dumps", "loads", "now"]

JSON = dict[str, Any]

FORMAT_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    data TEXT NOT NULL
);
-- Directory extensions: the extension properties of an application (by its object id).
CREATE TABLE IF NOT EXISTS extension_properties (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_object_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS service_principals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    sp_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sp_id TEXT NOT NULL,
    id TEXT NOT NULL,
    template_id TEXT NOT NULL,
    data TEXT NOT NULL,
    schema TEXT NOT NULL,
    UNIQUE (sp_id, id)
);
-- Entra ID -> AD "selected groups": app-role assignments of groups to a configuration's principal.
CREATE TABLE IF NOT EXISTS app_role_assignments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    resource_id TEXT NOT NULL,
    data TEXT NOT NULL
);
-- Large immutable JSON parts (a schema's directory definitions) stored once, by content hash.
CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sp_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT,
    at TEXT NOT NULL
);
-- The provisioning logs (provisioningObjectSummary entries), kept when their job is deleted.
CREATE TABLE IF NOT EXISTS provisioning_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS onprem_objects (
    dn TEXT PRIMARY KEY COLLATE NOCASE,
    object_type TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS onprem_members (
    group_dn TEXT NOT NULL COLLATE NOCASE,
    member_dn TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (group_dn, member_dn)
);
CREATE TABLE IF NOT EXISTS cloud_objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    object_type TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);
-- The cloud objects a directory load wrote (by id), which the next load may replace or remove. The
-- others (written by on-demand provisioning) a load never touches. A table of its own, so that files
-- made before it simply gain it. (No semicolons in these comments: the text is split at them.)
CREATE TABLE IF NOT EXISTS directory_cloud_objects (id TEXT PRIMARY KEY);
"""


def now() -> str:
    """The current time as the service writes it (UTC, microseconds, ``Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(value: Any) -> str:
    # orjson writes the same compact text several times faster; what it will not take (integers
    # beyond 64 bits, non-string keys) goes through the json module as before.
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> Any:
    # orjson decodes the large schema documents several times faster than the json module.
    return orjson.loads(text)


class _WriterQueue:
    """One write transaction of this process at a time, granted in the order they were asked for.

    SQLite's busy handler polls: a waiting connection sleeps and tries again, so a thread that commits
    and begins its next write at once takes the file again before a sleeping waiter looks. With ten
    threads writing back to back under load (an apply at parallelism 10), one of them could wait out the
    whole busy timeout and fail with "database is locked". Here the releasing thread hands the turn to
    the longest waiter, which is woken at once; only other processes still meet SQLite's busy wait.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()
        self._pid = os.getpid()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if self._pid != os.getpid():  # a forked child: the parent's threads are not here
                self._held, self._waiters, self._pid = False, collections.deque(), os.getpid()
            if not self._held:
                self._held = True
                return True
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append(gate)
        if gate.acquire(timeout=timeout):
            return True  # handed over by release()
        with self._mutex:
            if gate in self._waiters:
                self._waiters.remove(gate)
                return False
        return True  # handed over just as the wait ran out: the turn is this thread's

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # still held: by the next in line
            else:
                self._held = False


class _ThreadState(threading.local):
    conn: sqlite3.Connection | None = None
    pid: int = 0
    depth: int = 0
    write: bool = False


class Database:
    """One tenant's SQLite file. Safe to share between threads; each process opens its own."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._busy_ms = int(busy_timeout * 1000)
        self._state = _ThreadState()
        self._writers = _WriterQueue()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)  # private: it holds the tenant
        self._initialize()

    # ----------------------------------------------------------------------------------------------
    # connections and transactions

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_ms / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL with NORMAL survives a crash of the process; only a power loss may drop the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise _translate(exc, f"cannot open tenant database {self.path}") from exc
        with self._lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        state = self._state
        # A connection must not cross a fork: the child opens its own.
        if state.conn is None or state.pid != os.getpid():
            state.conn = self._connect()
            state.pid = os.getpid()
            state.depth = 0
            state.write = False
        return state.conn

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        """Run the enclosed operations as one transaction; nested calls use savepoints.

        ``write=False`` opens a read transaction (a consistent snapshot); writing inside it is an error.
        """
        conn = self._conn()
        state = self._state
        if state.depth:
            if write and not state.write:
                raise RuntimeError("a write transaction cannot be nested in a read transaction")
            name = f"sp{state.depth}"
            self._exec(conn, f"SAVEPOINT {name}")
            state.depth += 1
            try:
                yield
            except BaseException:
                state.depth -= 1
                self._exec(conn, f"ROLLBACK TO {name}")
                self._exec(conn, f"RELEASE {name}")
                raise
            state.depth -= 1
            self._exec(conn, f"RELEASE {name}")
            return
        if not write:
            with self._outermost(conn, "BEGIN"):
                yield
            return
        if not self._writers.acquire(self._busy_ms / 1000):
            raise TransientProviderError(
                f"tenant database {self.path} is busy: this process's other writers held it for more "
                f"than {self._busy_ms / 1000:g}s",
                code="Busy",
            )
        try:
            with self._outermost(conn, "BEGIN IMMEDIATE"):
                yield
        finally:
            self._writers.release()

    @contextlib.contextmanager
    def _outermost(self, conn: sqlite3.Connection, begin: str) -> Iterator[None]:
        """The outermost transaction of this thread, begun with ``begin`` and committed at the end."""
        state = self._state
        self._exec(conn, begin)
        state.depth, state.write = 1, begin != "BEGIN"
        try:
            yield
        except BaseException:
            state.depth, state.write = 0, False
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        state.depth, state.write = 0, False
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise _translate(exc, "cannot commit to the tenant database") from exc

    def _exec(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc, "tenant database error") from exc

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self._exec(self._conn(), sql, params)
        return list(cursor.fetchall())

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._q(sql, params)
        return rows[0] if rows else None

    def _q_where(self, sql: str, column: str, value: str | None, order: str) -> list[Any]:
        """The rows of ``sql`` (a SELECT without WHERE) whose ``column`` is ``value``, or every row when
        ``value`` is empty; ordered by ``order``. Column and order are the code's, never input."""
        if value:
            return self._q(f"{sql} WHERE {column} = ? ORDER BY {order}", (value,))
        return self._q(f"{sql} ORDER BY {order}")

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._state = _ThreadState()

    def _initialize(self) -> None:
        conn = self._conn()
        with self.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._exec(conn, statement)
            row = self._one("SELECT value FROM meta WHERE key = 'format_version'")
            if row is None:
                self._exec(conn, "INSERT INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
                self._exec(conn, "INSERT INTO meta VALUES ('tenant_id', ?)", (str(uuid.uuid4()),))
            elif int(row[0]) > FORMAT_VERSION:
                raise ProviderError(
                    f"tenant database {self.path} has format {row[0]}; "
                    f"this version reads formats up to {FORMAT_VERSION}"
                )

    @property
    def tenant_id(self) -> str:
        return str(self._one("SELECT value FROM meta WHERE key = 'tenant_id'")[0])

    @property
    def format_version(self) -> int:
        return int(self._one("SELECT value FROM meta WHERE key = 'format_version'")[0])


def _translate(exc: sqlite3.Error, message: str) -> ProviderError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return TransientProviderError(f"{message}: {text}", code="Busy")
    return ProviderError(f"{message}: {text}")
