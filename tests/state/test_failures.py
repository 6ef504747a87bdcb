"""When the state store fails: unreachable before an apply, lost during one, and a role with only the
rights docs/ci.md lists."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reconciler.core.plan import PlanOptions, Provenance
from reconciler.engine.journal import read_runs
from reconciler.engine.operations import load_desired, plan_and_apply
from reconciler.errors import StateError
from reconciler.providers.base import Provider
from reconciler.providers.local import LocalProvider
from reconciler.state import canonical_target, configure, open_url, reset_stores
from reconciler.state.base import runner_identity
from reconciler.testing.corpus import write_corpus


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_store_stops_the_apply_before_any_change(tmp_path: Path) -> None:
    write_corpus(tmp_path / "configs", 3, mappings=5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    url = f"postgresql://reconciler:hunter2-secret@127.0.0.1:{_closed_port()}/state"
    target = f"local:{tmp_path / 'tenant.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "apply", "configs", "--auto-approve", "--target", target],
        cwd=tmp_path,
        env={**env, "RECONCILER_STATE": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "error: cannot reach the state store postgresql://reconciler:***@127.0.0.1" in done.stderr
    assert "hunter2-secret" not in done.stdout + done.stderr and "Traceback" not in done.stderr
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    try:
        assert provider.read_all() == ()
    finally:
        provider.close()


def test_plan_needs_no_state_store_and_apply_always_takes_the_lock(tmp_path: Path) -> None:
    """``plan`` writes nothing, so it neither locks nor journals: the store is not reached and its driver
    is not even imported (a stand-in ``psycopg`` that fails on import is first on the path). ``apply``
    takes the lock even with nothing to do (it is what finds and clears a killed run's lock), so it
    needs the store, and says so before anything is read or written."""
    write_corpus(tmp_path / "configs", 3, mappings=5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    target = f"local:{tmp_path / 'tenant.db'}"
    command = [sys.executable, "-m", "reconciler"]
    done = subprocess.run(
        [*command, "apply", "configs", "--auto-approve", "--target", target],
        cwd=tmp_path,
        env={**env, "RECONCILER_STATE": f"sqlite:{tmp_path / 'state.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    stand_in = tmp_path / "no-driver" / "psycopg"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("raise ImportError('the state store was used')\n", encoding="utf-8")
    gone = {
        **env,
        "RECONCILER_STATE": f"postgresql://reconciler:hunter2-secret@127.0.0.1:{_closed_port()}/state",
        "PYTHONPATH": os.pathsep.join([str(stand_in.parent), env.get("PYTHONPATH", "")]),
    }
    planned = subprocess.run(
        [*command, "plan", "configs", "--detailed-exitcode", "--target", target],
        cwd=tmp_path,
        env=gone,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert planned.returncode == 0, planned.stderr
    assert "No changes" in planned.stdout and "state store" not in planned.stderr
    applied = subprocess.run(
        [*command, "apply", "configs", "--auto-approve", "--target", target],
        cwd=tmp_path,
        env={**gone, "PYTHONPATH": env.get("PYTHONPATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 1 and "error: cannot reach the state store" in applied.stderr
    assert "hunter2-secret" not in applied.stderr and "Traceback" not in applied.stderr


class _CutsTheStore:
    """Wraps a provider; its first write ends the state store's connections, as a network cut would."""

    def __init__(self, inner: Provider, admin_url: str) -> None:
        self._inner = inner
        self._admin = admin_url
        self.target = inner.target
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create(self, *args: Any, **kw: Any) -> str:
        self.writes += 1
        if self.writes == 1:
            with psycopg.connect(self._admin, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'reconciler' AND pid <> pg_backend_pid()"
                )
        created: str = self._inner.create(*args, **kw)
        return created


def test_a_connection_lost_mid_apply_stops_it_at_the_next_change(tmp_path: Path, pg_url: str) -> None:
    write_corpus(tmp_path / "configs", 5, mappings=5)
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    configure(pg_url)
    try:
        state = load_desired([str(tmp_path / "configs")]).state
        cut = _CutsTheStore(provider, pg_url)
        with pytest.raises(StateError, match=r"connection .* failed.*stopped before its next change"):
            plan_and_apply(state, cut, PlanOptions(), Provenance(), parallelism=1)  # type: ignore[arg-type]
        # It stopped: the change under way finished, no other was started.
        assert cut.writes == 1 and len(provider.read_all()) == 1
        reset_stores()
        (run,) = read_runs(provider.target)
        assert run.result == "interrupted"
        # The lock went with the connection: the next run takes it, says so, and converges.
        again = plan_and_apply(state, provider, PlanOptions(), Provenance(), parallelism=1)
        assert again.result.ok and again.recovered_lock is not None
        assert len(provider.read_all()) == 5
    finally:
        configure(None)
        provider.close()


# The rights docs/ci.md gives runners, once the tables exist (made by their owner's first run).
RUNNER_GRANTS = """
CREATE ROLE runner LOGIN;
GRANT USAGE ON SCHEMA public TO runner;
GRANT SELECT, INSERT ON reconciler_journal TO runner;
GRANT USAGE ON SEQUENCE reconciler_journal_seq_seq TO runner;
GRANT SELECT, INSERT, UPDATE ON reconciler_meta, reconciler_status TO runner;
GRANT SELECT, INSERT, UPDATE, DELETE ON reconciler_locks, reconciler_leases TO runner;
"""


def test_a_runner_needs_only_the_documented_rights(pg_url: str) -> None:
    open_url(pg_url).close()  # the owner's first run makes the tables
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS runner")
        for statement in filter(str.strip, RUNNER_GRANTS.split(";")):
            admin.execute(statement)  # type: ignore[call-overload]
    runner_url = pg_url.replace("postgresql://postgres@", "postgresql://runner@")
    store = open_url(runner_url)
    target = canonical_target("local:/srv/tenant.db")
    try:
        from reconciler.state.base import JournalEntry

        with store.lock(target, "apply", timeout=0, holder=runner_identity("apply")):
            store.append(target, [JournalEntry("e1", "r1", "run-start", "t", {})])
        store.put_status(target, "reconcile", {"state": "running"})
        store.put_status(target, "reconcile", {"state": "stopped"})
        assert store.try_lease(target, "leader", owner="a", ttl=5, holder={}) is None
        store.release_lease(target, "leader", owner="a")
        assert [e["run"] for e in store.entries(target)] == ["r1"]
        store.set_meta("imported:x", "1")
        store.set_meta("imported:x", "2")
    finally:
        store.close()
    # The journal is append-only for runners: rewriting history is refused.
    with (
        psycopg.connect(runner_url, autocommit=True) as runner,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        runner.execute("DELETE FROM reconciler_journal")


def test_a_store_opened_early_is_the_one_the_lock_uses_and_its_failure_is_raised_there(
    tmp_path: Path, pg_url: str
) -> None:
    from reconciler.state import open_early, open_store

    target = f"local:{tmp_path / 'tenant.db'}"
    try:
        configure(pg_url)
        open_early(target)
        store = open_store(target)  # waits for the opening under way, if it is still under way
        assert store is open_store(target)
        with store.lock(target, "apply", timeout=10, holder=runner_identity("test")) as previous:
            assert previous is None
        reset_stores()
        configure(f"postgresql://reconciler:hunter2-secret@127.0.0.1:{_closed_port()}/state")
        open_early(target)
        for _attempt in range(2):  # the early failure, then an opening of its own: the same error
            with pytest.raises(StateError, match=r"cannot reach the state store") as failed:
                open_store(target)
            assert "hunter2-secret" not in str(failed.value)
    finally:
        configure(None)
        reset_stores()
