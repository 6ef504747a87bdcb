"""``reconciler apply`` killed with SIGKILL: after a write and before its journal entry, in the middle of
a Graph write, or at a random moment; once, or again while recovering. The next apply recovers the
lock and says so, ``history`` shows the interrupted runs, and the tenant converges to exactly the
desired state (``benchmarks.reliability.crash_run``)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from benchmarks.reliability import (
    child_env,
    cli,
    crash_run,
    make_scenario,
    write_desired,
)
from reconciler.providers import KILL_ENV


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
    assert not list((tmp_path / "state" / "locks").glob("*.holder.json"))
    history = cli(tmp_path, "history", env=env)
    assert "interrupted" in history.out and "interrupted during start" in history.out
