"""A real PostgreSQL server for the state-store tests, started by the tests themselves.

One server per test process (each xdist worker starts its own, on a free port of 127.0.0.1, in a
temporary folder), and a fresh database per test. ``initdb`` refuses to run as root, so as root the
server runs as the ``postgres`` user. Without the binaries the PostgreSQL tests are skipped with a
reason that says so; under CI (``CI`` set) their absence fails the run instead, so it cannot go unseen.

The binaries are looked up in ``RECONCILER_PG_BIN``, then ``/usr/lib/postgresql/*/bin``, then ``PATH``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.state.base import StateStore
from reconciler.state.sqlite import SqliteStore

START_TIMEOUT = 120.0


def _find_bin() -> Path | None:
    candidates = [os.environ.get("RECONCILER_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(str(Path(found).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        self.data = self.folder / "data"
        self.port = 0
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self) -> None:
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        done = self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-2000:]}")
        for _attempt in range(5):  # a port taken between choosing and binding: choose again
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            )
            started = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.folder / "log"),
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "start",
            )
            if started.returncode == 0:
                return
        log = (self.folder / "log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the PostgreSQL server did not start: {started.stderr.strip()} {log}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _find_bin()
    if bindir is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl) found; install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install '.[test]')")
    assert bindir is not None
    if os.geteuid() == 0 and not shutil.which("runuser"):
        _unavailable("running as root needs runuser to start PostgreSQL as the postgres user")
    server = PgServer(bindir)
    try:
        server.start()
    except (RuntimeError, KeyError, subprocess.TimeoutExpired) as exc:
        server.stop()
        _unavailable(f"could not start a PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database of the test process's server."""
    return pg_server.new_database()


StoreFactory = Callable[[], StateStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The state URL of an empty store of each backend (the contract suite runs against both)."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def open_backend(backend: str) -> Iterator[StoreFactory]:
    """Opens stores on ``backend``: each call is a separate instance, as another process would have."""
    opened: list[StateStore] = []

    def make() -> StateStore:
        store: StateStore
        if backend.startswith("sqlite:"):
            store = SqliteStore(backend[len("sqlite:") :])
        else:
            from reconciler.state.postgres import PostgresStore

            store = PostgresStore(backend)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
