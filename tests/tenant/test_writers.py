"""Write transactions of many threads on one tenant file: each waits its turn, none waits out the busy
timeout while others take turn after turn.

SQLite's busy handler polls (it sleeps and tries again), so a thread that commits and begins its next
write at once takes the file again before a sleeping waiter looks: under load (an apply of 1,000
configurations at parallelism 10) a waiter could wait out the whole busy timeout and fail with
"database is locked". The writers of one process now queue in the order they asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler.errors import TransientProviderError
from reconciler.tenant.database import Database

# How long the busy thread holds the file per transaction, and how many it runs back to back.
HOLD = 0.02
TURNS = 1000
BUSY_TIMEOUT = 5.0


def _write(db: Database, key: str, value: str) -> None:
    db._exec(db._conn(), "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def test_a_writer_gets_its_turn_while_another_thread_writes_back_to_back(tmp_path: Path) -> None:
    db = Database(tmp_path / "tenant.db", busy_timeout=BUSY_TIMEOUT)
    started, done = threading.Event(), threading.Event()
    outcome: list[BaseException | float] = []

    def busy() -> None:
        for turn in range(TURNS):
            with db.transaction():
                _write(db, "busy", str(turn))
                started.set()
                time.sleep(HOLD)  # work done while the write lock is held
            if done.is_set():
                return

    def waiter() -> None:
        assert started.wait(60)
        began = time.monotonic()
        try:
            with db.transaction():
                _write(db, "waiter", "in")
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(time.monotonic() - began)
        finally:
            done.set()

    threads = [threading.Thread(target=busy), threading.Thread(target=waiter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    db.close()
    (result,) = outcome
    assert not isinstance(result, BaseException), f"the waiting writer failed: {result}"
    # Its turn came after the transaction under way (and not after the busy thread's whole run).
    assert result < BUSY_TIMEOUT
    check = Database(tmp_path / "tenant.db")
    try:
        assert check._one("SELECT value FROM meta WHERE key = 'waiter'")[0] == "in"
    finally:
        check.close()


@contextmanager
def _held_by_another_thread(db: Database) -> Iterator[None]:
    """For the block, another thread of this process is inside a write transaction of ``db``."""
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with db.transaction():
            _write(db, "holder", "1")
            holding.set()
            release.wait(60)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert holding.wait(60)
        yield
    finally:
        release.set()
        t.join(60)


def test_a_writer_that_waits_longer_than_the_busy_timeout_fails_as_busy(tmp_path: Path) -> None:
    db = Database(tmp_path / "tenant.db", busy_timeout=0.2)
    with (
        _held_by_another_thread(db),
        pytest.raises(TransientProviderError, match=r"busy|locked"),
        db.transaction(),
    ):
        _write(db, "late", "1")
    # The queue is free again: the next writer goes straight in, and nested transactions still work.
    with db.transaction():
        _write(db, "after", "1")
        with db.transaction():
            _write(db, "nested", "1")
    assert db._one("SELECT value FROM meta WHERE key = 'nested'")[0] == "1"
    db.close()


def test_reads_do_not_wait_for_writers(tmp_path: Path) -> None:
    db = Database(tmp_path / "tenant.db", busy_timeout=0.2)
    with _held_by_another_thread(db), db.transaction(write=False):
        assert db._one("SELECT value FROM meta WHERE key = 'format_version'") is not None
    db.close()
