"""Real processes against one target, with the state in SQLite and in PostgreSQL.

N applies from N checkouts at once: exactly one runs at a time, the others wait and then find nothing
to do; a holder killed with SIGKILL: the next run from another checkout takes over, says so, and
converges; the journal loses and repeats nothing. Two reconcile loops: one is active, the other stands
by and takes over within the lease time once the active one is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.engine.journal import read_runs
from reconciler.state import canonical_target, open_url
from reconciler.testing.appliers import concurrent_applies, journal_problems, run_intervals
from reconciler.testing.commands import command
from reconciler.testing.corpus import write_corpus
from reconciler.testing.gitrepos import configuration, git_env, make_repo
from reconciler.testing.killswitch import KILL_ENV

pytestmark = pytest.mark.slow


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    return {**env, "RECONCILER_STATE": url, "NO_COLOR": "1", **extra}


def _run(cwd: Path, url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = _env(url, **extra)
    return subprocess.run(
        command(args, env),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_applies_from_many_checkouts_take_turns(tmp_path: Path, backend: str) -> None:
    report = concurrent_applies(tmp_path, backend, appliers=6, configs=8)
    assert report.failed == 0, report.outputs
    assert report.overlaps == 0 and report.problems == []
    # One of them made the changes; the others, once they had the lock, found nothing left to do.
    assert report.runs == 1
    assert sum("Nothing to apply" in o or "No changes" in o for o in report.outputs) == 5


def test_a_killed_holder_is_taken_over_from_another_checkout(tmp_path: Path, backend: str) -> None:
    for name in ("first", "second"):
        write_corpus(tmp_path / name / "configs", 4, mappings=5)
    target = f"local:{tmp_path / 'tenant.db'}"
    apply = ("apply", "configs", "--auto-approve", "--parallelism", "1", "--target", target)
    killed = _run(tmp_path / "first", backend, *apply, **{KILL_ENV: "3"})
    assert killed.returncode == -signal.SIGKILL
    again = _run(tmp_path / "second", backend, *apply)
    assert again.returncode == 0, again.stderr
    assert "ended without releasing its lock; it was recovered" in again.stderr
    done = _run(tmp_path / "second", backend, "plan", "configs", "--detailed-exitcode", "--target", target)
    assert done.returncode == 0, done.stdout
    store = open_url(backend)
    try:
        entries = list(store.entries(canonical_target(target)))
        runs = read_runs(target, store)
    finally:
        store.close()
    assert [r.result for r in runs] == ["interrupted", "ok"]
    assert journal_problems(entries, interrupted_ok=1) == []
    assert runs[1].extra["recovered_lock"]["pid"] == runs[0].extra["pid"]
    # The laptop's view: history from a third folder shows what both runners did.
    history = _run(tmp_path, backend, "history", "--target", target)
    assert history.stdout.count("interrupted") >= 1 and history.stdout.count(" ok ") == 1


def _wait(check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_standby_loop_takes_over_when_the_active_one_is_killed(tmp_path: Path, backend: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    genv = git_env(home)
    repo = make_repo(tmp_path / "repo", genv)
    repo.write("configs/a.yaml", configuration("a"))
    repo.commit("a")
    target = f"local:{tmp_path / 'tenant.db'}"
    ttl = 3.0
    env = {**_env(backend), **{k: v for k, v in genv.items() if k.startswith("GIT_") or k == "HOME"}}
    args = ["reconcile", "configs", "--repo", str(repo.path), "--target", target, "--interval", "1s"]
    args += ["--lease-ttl", str(ttl)]
    logs = [tmp_path / f"loop-{i}.log" for i in range(2)]
    procs = []
    for i, log in enumerate(logs):
        with open(log, "w") as fh:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "reconciler", *args],
                    cwd=tmp_path,
                    env={**env, "RECONCILER_STATE_DIR": str(tmp_path / f"state-{i}")},
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )
            )
    store = open_url(backend)
    key = canonical_target(target)
    try:

        def active() -> int | None:
            doc = store.get_status(key, "reconcile")
            return (
                int(doc["pid"]) if doc and doc.get("state") == "running" and doc.get("lastResult") else None
            )

        _wait(lambda: active() is not None)
        leader = active()
        standby = next(p for p in procs if p.pid != leader)
        _wait(lambda: "standing by" in logs[procs.index(standby)].read_text())
        killed_at = time.monotonic()
        os.kill(leader, signal.SIGKILL)
        _wait(lambda: active() == standby.pid)
        handover = time.monotonic() - killed_at
        # Within the lease time, plus one pass and the generous margin a loaded machine needs.
        assert handover < ttl + 30, handover
        assert "took over as the active loop" in logs[procs.index(standby)].read_text()
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(60) == 0
        entries = list(store.entries(key))
        assert journal_problems(entries) == [] and len(run_intervals(entries)) == 1
    finally:
        store.close()
        for p in procs:
            p.kill()
            p.wait(30)
