"""The state-store contract, run against both backends (SQLite and a real PostgreSQL server).

Each test opens stores the way separate runs would (separate instances, separate connections), and
processes where a death must release a lock.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.errors import LockError, StateError
from reconciler.state.base import SCHEMA_VERSION, JournalEntry, StateStore, runner_identity

StoreFactory = Callable[[], StateStore]

T = "local:/srv/tenant.db"
OTHER = "graph+http://127.0.0.1:1"


def entry(run: str, event: str, **data: Any) -> JournalEntry:
    return JournalEntry(uuid.uuid4().hex, run, event, "2026-12-06T10:00:00.000+00:00", data)


def test_the_journal_keeps_order_skips_repeated_ids_and_keeps_targets_apart(
    open_backend: StoreFactory,
) -> None:
    store = open_backend()
    first = [entry("r1", "run-start", kind="apply", target=T), entry("r1", "change-start", name="a")]
    store.append(T, first)
    store.append(T, [first[1], entry("r1", "run-end", result="ok")])  # a retried entry is kept once
    store.append(OTHER, [entry("r2", "run-start", kind="apply")])
    events = [(e["run"], e["event"]) for e in open_backend().entries(T)]
    assert events == [("r1", "run-start"), ("r1", "change-start"), ("r1", "run-end")]
    assert [e["run"] for e in store.entries(OTHER)] == ["r2"]
    (start, *_) = store.entries(T)
    assert start["kind"] == "apply" and start["target"] == T and start["time"].startswith("2026-12-06")


def test_appends_from_many_threads_are_all_kept(open_backend: StoreFactory) -> None:
    store = open_backend()

    def write(n: int) -> None:
        for i in range(25):
            store.append(T, [entry(f"r{n}", "change-end", name=f"c{i}", error="x" * 5000)])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(store.entries(T))) == 100


def test_status_documents_are_replaced_whole(open_backend: StoreFactory) -> None:
    store = open_backend()
    assert store.get_status(T, "reconcile") is None
    store.put_status(T, "reconcile", {"state": "running", "drift": {"a": ["update"]}})
    store.put_status(T, "reconcile", {"state": "stopped"})
    assert open_backend().get_status(T, "reconcile") == {"state": "stopped"}
    assert store.get_status(OTHER, "reconcile") is None


def test_a_held_lock_makes_the_next_wait_then_fail_naming_the_holder(open_backend: StoreFactory) -> None:
    one, two = open_backend(), open_backend()
    with one.lock(T, "apply", timeout=0, holder=runner_identity("reconciler apply")) as previous:
        assert previous is None
        assert two.lock_holder(T, "apply") is not None
        began = time.monotonic()
        second = two.lock(T, "apply", timeout=0.5, holder=runner_identity("second"))
        with pytest.raises(LockError, match=r"locked by reconciler apply \(pid \d+ on .*user"), second:
            pass
        assert time.monotonic() - began >= 0.5
        # Another target's lock is independent.
        with two.lock(OTHER, "apply", timeout=0, holder=runner_identity("other")):
            pass
    assert two.lock_holder(T, "apply") is None
    with two.lock(T, "apply", timeout=0, holder=runner_identity("second")) as previous:
        assert previous is None


def test_a_waiter_gets_the_lock_when_the_holder_releases_it(open_backend: StoreFactory) -> None:
    one, two = open_backend(), open_backend()
    got = threading.Event()

    def wait_for_it() -> None:
        with two.lock(T, "apply", timeout=60, holder=runner_identity("waiter")):
            got.set()

    with one.lock(T, "apply", timeout=0, holder=runner_identity("first")):
        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        assert not got.wait(0.3)
    waiter.join(60)
    assert got.is_set()


def _hold_and_die(url: str, ready: Any) -> None:
    from reconciler.state import open_url

    store = open_url(url)
    with store.lock(T, "apply", timeout=0, holder=runner_identity("doomed")):
        ready.set()
        time.sleep(600)


def test_a_holder_killed_with_sigkill_releases_the_lock(backend: str) -> None:
    from reconciler.state import open_url

    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_and_die, args=(backend, ready))
    proc.start()
    try:
        assert ready.wait(120)
        store = open_url(backend)
        with pytest.raises(LockError, match="doomed"), store.lock(T, "apply", timeout=0, holder={}):
            pass
        os.kill(proc.pid, 9)
        proc.join(60)
        with store.lock(T, "apply", timeout=30, holder=runner_identity("next")) as previous:
            assert previous is not None and previous["pid"] == proc.pid and previous["command"] == "doomed"
        store.close()
    finally:
        proc.kill()


def test_a_lease_has_one_owner_until_it_expires_or_is_released(open_backend: StoreFactory) -> None:
    one, two = open_backend(), open_backend()
    a, b = {"command": "loop a"}, {"command": "loop b"}
    assert one.try_lease(T, "leader", owner="a", ttl=1.0, holder=a) is None
    held = two.try_lease(T, "leader", owner="b", ttl=1.0, holder=b)
    assert held is not None and held["command"] == "loop a" and 0 < held["expires_in"] <= 1.0
    assert one.try_lease(T, "leader", owner="a", ttl=1.0, holder=a) is None  # renewal
    deadline = time.monotonic() + 30
    while two.try_lease(T, "leader", owner="b", ttl=60, holder=b) is not None:
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.1)
    assert one.try_lease(T, "leader", owner="a", ttl=1.0, holder=a) is not None  # a lost it
    two.release_lease(T, "leader", owner="b")
    assert one.try_lease(T, "leader", owner="a", ttl=1.0, holder=a) is None


def test_the_schema_is_versioned_and_a_newer_one_is_refused(open_backend: StoreFactory) -> None:
    store = open_backend()
    assert store.schema_version() == SCHEMA_VERSION
    store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(StateError, match="upgrade reconciler"):
        open_backend()


def test_opening_again_keeps_everything(open_backend: StoreFactory) -> None:
    store = open_backend()
    store.append(T, [entry("r1", "run-start")])
    store.close()
    again: StateStore = open_backend()
    assert [e["run"] for e in again.entries(T)] == ["r1"]
