"""``reconciler apply`` killed with SIGKILL: after a write and before its journal entry, in the middle of
a Graph write, or at a random moment; once, or again while recovering. The next apply recovers the
lock and says so, ``history`` shows the interrupted runs, and the tenant converges to exactly the
desired state (``reconciler.testing.scenarios.crash_run``)."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import pytest

from reconciler.engine.lock import APPLY_LOCK
from reconciler.state import canonical_target
from reconciler.testing.commands import child_env, cli
from reconciler.testing.desired_states import make_scenario, write_desired
from reconciler.testing.killswitch import KILL_ENV
from reconciler.testing.scenarios import crash_run, state_store
from reconciler.testing.tenant_checks import check_tenant, plant


@pytest.mark.slow
@pytest.mark.parametrize(
    ("graph", "mode", "kills"),
    [
        (False, "write", 1),
        (False, "write", 2),
        (False, "timer", 1),
        (True, "write", 1),
        (True, "http", 1),
        (True, "http", 2),
    ],
)
def test_a_killed_apply_is_recovered_and_converges(
    tmp_path: Path, graph: bool, mode: str, kills: int
) -> None:
    report = crash_run(11, tmp_path, graph=graph, modes=(mode,), kills=kills)
    if mode != "timer":
        assert report.crashes == kills, report.summary()
    assert report.converged, report.summary()
    assert report.leaks == []


def test_a_restart_left_undone_by_a_killed_run_is_made_by_the_next_apply(tmp_path: Path) -> None:
    spec = make_scenario(4).before[0]
    ou = f"DC={spec.name},DC=contoso,DC=com"
    moved = dataclasses.replace(
        spec, enabled=True, scope_kind="organizationalUnits", scope=(f"OU=Moved,{ou}",)
    )
    first = dataclasses.replace(moved, scope=(f"OU=First,{ou}",))
    db = tmp_path / "tenant.db"
    planted = plant(db)
    env = child_env(tmp_path)
    apply = ("apply", "configs", "--auto-approve", "--target", f"local:{db}")
    write_desired(tmp_path / "configs", [first])
    assert cli(tmp_path, *apply, env=env).code == 0
    write_desired(tmp_path / "configs", [moved])
    # The plan is an update then a restart; the run dies after the update.
    assert cli(tmp_path, *apply, env={**env, KILL_ENV: "1"}).code == -signal.SIGKILL
    assert cli(tmp_path, *apply, env=env).code == 0
    assert check_tenant(db, [moved], planted).restarts_lost == []


def test_the_next_apply_says_it_recovered_the_lock_even_with_nothing_left_to_do(tmp_path: Path) -> None:
    # Killed after its last write: the target is done, only the lock holder and the journal remember.
    write_desired(tmp_path / "configs", make_scenario(4).before[:1])
    env = child_env(tmp_path)
    target = f"local:{tmp_path / 'tenant.db'}"
    apply = ("apply", "configs", "--auto-approve", "--target", target)
    killed = cli(tmp_path, *apply, env={**env, KILL_ENV: "2"})  # create, then start
    assert killed.code == -signal.SIGKILL
    again = cli(tmp_path, *apply, env=env)
    assert again.code == 0 and "No changes" in again.out
    assert "ended without releasing its lock; it was recovered" in again.err
    assert state_store(tmp_path, target).lock_holder(canonical_target(target), APPLY_LOCK) is None
    history = cli(tmp_path, "history", "--target", target, env=env)
    assert "interrupted" in history.out and "interrupted during start" in history.out
