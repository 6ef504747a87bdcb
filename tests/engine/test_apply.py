"""Apply against a real provider: every action, idempotency, stale plans, locks, journal, partial failure."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.model import (
    Desired,
    DesiredState,
    Mapping,
    MappingKind,
    MappingOverride,
    Scope,
    ScopeKind,
    Settings,
)
from reconciler.core.observed import Observed
from reconciler.core.plan import Plan, PlanOptions, Provenance
from reconciler.engine.journal import read_runs
from reconciler.engine.lock import target_lock
from reconciler.engine.operations import apply_saved_plan, make_plan, plan_and_apply
from reconciler.errors import LockError, StalePlanError
from reconciler.providers import open_target
from reconciler.providers.base import Provider
from reconciler.providers.local import LocalProvider


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture(params=["memory", "local"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    if request.param == "memory":
        p = open_target(f"memory:{uuid.uuid4().hex}")
    else:
        p = LocalProvider(str(tmp_path / "tenant.db"))
    yield p
    p.close()


def cfg(name: str, domain: str | None = None, **kw: Any) -> Desired:
    settings = Settings(domain=domain or f"{name}.example.com", notification_email=f"ops@{name}.example.com")
    base: dict[str, Any] = {
        "name": name,
        "settings": settings,
        "scope": Scope(ScopeKind.ORGANIZATIONAL_UNITS, (f"OU=Sales,DC={name},DC=example,DC=com",)),
    }
    base.update(kw)
    return Desired(**base)


def state(*configs: Desired) -> DesiredState:
    return DesiredState(tuple(configs))


def plan(provider: Provider, desired: DesiredState, **opts: Any) -> Plan:
    return make_plan(desired, provider, PlanOptions(**opts), Provenance())


def converge(provider: Provider, desired: DesiredState, **opts: Any) -> None:
    run = plan_and_apply(desired, provider, PlanOptions(**opts), Provenance())
    assert run.result.ok, [o.error for o in run.result.outcomes]


DEPT = MappingOverride("user", "department", Mapping("user", "department", MappingKind.DIRECT, "department"))


def test_create_then_noop(provider: Provider) -> None:
    desired = state(cfg("a"), cfg("b", settings=Settings("b.example.com", "x@b.example.com", enabled=False)))
    converge(provider, desired)
    after = {o.name: o for o in provider.read_all()}
    assert set(after) == {"a", "b"}
    assert after["a"].managed and after["a"].settings.enabled and not after["b"].settings.enabled
    # idempotent: the next plan has nothing to do
    assert plan(provider, desired).changes == ()


def test_update_restart_pause_start_delete(provider: Provider) -> None:
    converge(provider, state(cfg("a")))
    changed = cfg("a", overrides=(DEPT,), scope=Scope.all())
    p = plan(provider, state(changed))
    assert [c.action.value for c in p.changes] == ["update", "restart"]
    converge(provider, state(changed))
    (o,) = provider.read_all()
    assert ("user", "department") in {m.folded_key for m in o.mappings}
    assert o.scope.kind is ScopeKind.ALL
    assert plan(provider, state(changed)).changes == ()

    paused = replace(changed, settings=replace(changed.settings, enabled=False))
    converge(provider, state(paused))
    assert not provider.read_all()[0].settings.enabled
    converge(provider, state(changed))
    assert provider.read_all()[0].settings.enabled

    held = plan(provider, state())
    assert held.changes == () and held.held[0].override == "--allow-delete"
    converge(provider, state(), allow_delete=True)
    assert provider.read_all() == ()


def test_saved_plan_is_refused_when_the_target_changed(provider: Provider) -> None:
    converge(provider, state(cfg("a")))
    stale = plan(provider, state(cfg("a", overrides=(DEPT,))))
    # someone else changes the target between plan and apply
    converge(provider, state(cfg("a", restart_token="x")))
    with pytest.raises(StalePlanError, match="changed on the target"):
        apply_saved_plan(stale, provider, check_desired=False)


def test_saved_plan_is_refused_on_another_target(provider: Provider, tmp_path: Path) -> None:
    other = LocalProvider(str(tmp_path / "other.db"))
    p = plan(other, state(cfg("a")))
    with pytest.raises(StalePlanError, match="made for target"):
        apply_saved_plan(p, provider, check_desired=False)
    other.close()


def test_password_hash_sync_toggles_credential_data(provider: Provider) -> None:
    converge(provider, state(cfg("a")))
    (o,) = provider.read_all()
    assert o.settings.password_hash_sync
    assert all(n == 1 for n in o.credential_data_count.values())
    off = cfg("a", settings=replace(cfg("a").settings, password_hash_sync=False))
    converge(provider, state(off))
    (o,) = provider.read_all()
    assert not o.settings.password_hash_sync
    assert all(n == 0 for n in o.credential_data_count.values())
    assert plan(provider, state(off)).changes == ()


class Flaky:
    """Wraps a provider and fails the given configuration's writes (a fault at one edge of apply)."""

    def __init__(self, inner: Provider, fail_domain: str) -> None:
        self._inner = inner
        self._fail = fail_domain
        self.target = inner.target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create(self, name: str, settings: Settings, *args: Any, **kw: Any) -> str:
        if settings.domain == self._fail:
            raise RuntimeError("connection reset by peer")
        return self._inner.create(name, settings, *args, **kw)


def test_a_failure_does_not_stop_the_others_and_the_next_run_converges(provider: Provider) -> None:
    desired = state(cfg("a"), cfg("b"), cfg("c"))
    run = plan_and_apply(desired, Flaky(provider, "b.example.com"), PlanOptions(), Provenance())  # type: ignore[arg-type]
    statuses = {(o.change.name, o.change.action.value): o.status for o in run.result.outcomes}
    assert statuses[("b", "create")] == "failed" and statuses[("b", "start")] == "skipped"
    assert statuses[("a", "start")] == "ok" and statuses[("c", "start")] == "ok"
    left = plan(provider, desired)
    assert [(c.action.value, c.name) for c in left.changes] == [("create", "b"), ("start", "b")]
    converge(provider, desired)
    assert plan(provider, desired).changes == ()
    runs = read_runs(provider.target)
    assert [r.result for r in runs] == ["failed", "ok"]


def test_second_apply_waits_then_fails_naming_the_holder(provider: Provider) -> None:
    with target_lock(provider.target, timeout=0, command="reconciler apply"):
        started = time.monotonic()
        with pytest.raises(LockError, match=r"locked by reconciler apply \(pid \d+"):
            plan_and_apply(state(cfg("a")), provider, PlanOptions(), Provenance(), lock_timeout=0.3)
        assert time.monotonic() - started >= 0.3


def _hold_lock_and_die(target: str, state_dir: str) -> None:
    os.environ["RECONCILER_STATE_DIR"] = state_dir
    with target_lock(target, timeout=0, command="reconciler apply"):
        os.kill(os.getpid(), 9)


def test_lock_of_a_killed_process_is_recovered(provider: Provider, state_dir: Path) -> None:
    proc = multiprocessing.get_context("fork").Process(
        target=_hold_lock_and_die, args=(provider.target, str(state_dir))
    )
    proc.start()
    proc.join(10)
    assert proc.exitcode == -9
    run = plan_and_apply(state(cfg("a")), provider, PlanOptions(), Provenance(), lock_timeout=0)
    assert run.recovered_lock is not None and run.recovered_lock["pid"] == proc.pid


def test_journal_records_every_change(provider: Provider) -> None:
    converge(provider, state(cfg("a")))
    (run,) = read_runs(provider.target)
    assert run.kind == "apply" and run.result == "ok" and run.target == provider.target
    assert [(c["action"], c["name"], c["outcome"]) for c in run.changes] == [
        ("create", "a", "ok"),
        ("start", "a", "ok"),
    ]


class RestartLost:
    """Wraps a provider; its restarts fail, as when the apply process dies just before one."""

    def __init__(self, inner: Provider) -> None:
        self._inner = inner
        self.target = inner.target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def restart(self, id: str, reset_scope: str = "Full") -> None:
        raise RuntimeError("killed before the restart")


def test_a_restart_lost_after_its_update_is_planned_again(provider: Provider) -> None:
    converge(provider, state(cfg("a")))
    changed = state(cfg("a", overrides=(DEPT,)))
    run = plan_and_apply(changed, RestartLost(provider), PlanOptions(), Provenance())  # type: ignore[arg-type]
    assert [(o.change.action.value, o.status) for o in run.result.outcomes] == [
        ("update", "ok"),
        ("restart", "failed"),
    ]
    # the update itself is in place, yet the restart it needs is still owed
    left = plan(provider, changed)
    assert [c.action.value for c in left.changes] == ["restart"]
    assert "restart did not happen" in left.changes[0].reasons[0]
    converge(provider, changed)
    assert plan(provider, changed).changes == ()


class ForgetsOnce:
    """A target whose first read loses every configuration (an answer cut short), then reads true."""

    def __init__(self, inner: Provider) -> None:
        self._inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def read_all(self) -> tuple[Observed, ...]:
        self.reads += 1
        return () if self.reads == 1 else self._inner.read_all()


def test_one_inconsistent_read_under_the_lock_causes_no_write(provider: Provider) -> None:
    desired = state(cfg("a"))
    converge(provider, desired)
    before = provider.read_all()
    flaky = ForgetsOnce(provider)
    shown: list[Plan] = []

    def approve(p: Plan) -> bool:
        shown.append(p)
        return p.has_changes

    run = plan_and_apply(desired, flaky, PlanOptions(), Provenance(), approve=approve)  # type: ignore[arg-type]
    # The first read planned a second "a"; the read that checks it disagreed, so it was planned again.
    assert flaky.reads == 3 and not run.applied and [p.has_changes for p in shown] == [False]
    assert provider.read_all() == before
