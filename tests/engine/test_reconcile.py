"""The reconcile loop against a local tenant, following a real repository: new commits, drift, stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli.errors import error_handler
from reconciler.cli.reconcile_cmd import parse_interval, reconcile
from reconciler.core.plan import PlanOptions
from reconciler.engine.health import read_snapshot
from reconciler.engine.journal import read_runs
from reconciler.engine.reconcile import LEADER_LEASE, LoopOptions, PassResult, Reconciler
from reconciler.errors import LockError
from reconciler.providers.local import LocalProvider
from reconciler.state import open_store
from reconciler.testing.gitrepos import GitRepo, configuration, make_repo


@pytest.fixture
def source(tmp_path: Path, pinned_git: dict[str, str], state_dir: Path) -> GitRepo:
    r = make_repo(tmp_path / "source", pinned_git)
    r.write("configs/a.yaml", configuration("a"))
    r.write("configs/b.yaml", configuration("b"))
    r.write("README.md", "the desired state lives in configs/")
    r.commit("two configurations")
    return r


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[LocalProvider]:
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    yield provider
    provider.close()


def loop(source: GitRepo, provider: LocalProvider, tmp_path: Path, **kw: Any) -> Reconciler:
    options = LoopOptions(
        source=str(source.path),
        paths=("configs",),
        interval=kw.pop("interval", 60.0),
        status_file=tmp_path / "status.json",
        **kw,
    )
    return Reconciler(options, provider)


def status(tmp_path: Path) -> dict[str, Any]:
    data = json.loads((tmp_path / "status.json").read_text())
    assert isinstance(data, dict)
    return data


def names(provider: LocalProvider) -> set[str | None]:
    return {o.name for o in provider.read_all()}


def test_the_loop_applies_each_new_commit(source: GitRepo, tenant: LocalProvider, tmp_path: Path) -> None:
    r = loop(source, tenant, tmp_path)
    assert r.run_pass() is PassResult.APPLIED
    assert names(tenant) == {"a", "b"}
    s = status(tmp_path)
    assert s["lastSeenCommit"] == s["lastAppliedCommit"] == source.shas[-1]
    assert s["lastResult"]["result"] == "applied" and s["lastResult"]["changes"] == 4
    assert s["inSync"] and s["drift"] == {}

    assert r.run_pass() is PassResult.IN_SYNC

    source.write("configs/c.yaml", configuration("c"))
    source.write("configs/a.yaml", configuration("a") + "  restartToken: '1'\n")
    new = source.commit("add c, restart a")
    assert r.run_pass() is PassResult.APPLIED
    assert names(tenant) == {"a", "b", "c"}
    assert status(tmp_path)["lastAppliedCommit"] == new
    runs = read_runs(tenant.target)
    assert [run.kind for run in runs] == ["reconcile", "reconcile"]
    assert runs[-1].commit == new

    # A later loop on the same status file knows that this commit is applied already.
    again = loop(source, tenant, tmp_path)
    assert again.run_pass() is PassResult.IN_SYNC
    assert len(read_runs(tenant.target)) == 2


def test_drift_is_reported_and_healed_with_self_heal(
    source: GitRepo, tenant: LocalProvider, tmp_path: Path
) -> None:
    loop(source, tenant, tmp_path).run_pass()
    a = next(o for o in tenant.read_all() if o.name == "a")
    # Changes made in the portal, behind git's back.
    tenant.pause(a.id)
    tenant.update_settings(
        a.id,
        a.settings.__class__(a.settings.domain, "someone@else.example.com"),
        deletion_protection=False,
        restart_token=None,
    )

    watcher = loop(source, tenant, tmp_path)
    assert watcher.run_pass() is PassResult.DRIFT
    s = status(tmp_path)
    assert not s["inSync"]
    drift = s["drift"]["a"]
    assert drift["actions"] == ["update", "start"] and drift["fields"] == ["settings.notificationEmail"]
    # Each drifted field: its git value, its live value and when the difference was seen.
    (field,) = drift["changes"]
    assert field["field"] == "settings.notificationEmail" and field["git"] == "ops@a.example.com"
    assert field["live"] == "someone@else.example.com" and field["seenAt"].startswith("20")
    assert s["lastResult"]["message"] == f"drift from {source.shas[-1][:12]} in a"
    assert next(o for o in tenant.read_all() if o.name == "a").settings.enabled is False

    healer = loop(source, tenant, tmp_path, self_heal=True)
    assert healer.run_pass() is PassResult.HEALED
    healed = next(o for o in tenant.read_all() if o.name == "a")
    assert healed.settings.enabled and healed.settings.notification_email == "ops@a.example.com"
    assert status(tmp_path)["drift"] == {}
    assert read_runs(tenant.target)[-1].kind == "self-heal"
    assert healer.run_pass() is PassResult.IN_SYNC


def test_each_pass_records_every_jobs_health_and_who_ran_it(
    source: GitRepo, tenant: LocalProvider, tmp_path: Path
) -> None:
    r = loop(source, tenant, tmp_path)
    assert r.run_pass() is PassResult.APPLIED
    # What the apply read came before its writes: not recorded as the target's health.
    assert read_snapshot(tenant.target) is None
    assert r.run_pass() is PassResult.IN_SYNC
    first = read_snapshot(tenant.target)
    assert first is not None and first["by"]["command"] == "reconciler reconcile"
    assert first["complete"] is True
    assert {row["name"] for row in first["configurations"]} == {"a", "b"}
    loop_doc = open_store(tenant.target).get_status(tenant.target, "reconcile")
    assert loop_doc is not None and loop_doc["runner"]["pid"] == os.getpid()

    a = next(o for o in tenant.read_all() if o.name == "a")
    job = tenant.store.list_jobs(a.id)[0]
    tenant.store.quarantine(a.id, job["id"], reason="TooManyDeletes")
    # A looking pass (no lock, no write) records what it read as well.
    assert r.run_pass() is PassResult.IN_SYNC
    rows = {row["name"]: row for row in (read_snapshot(tenant.target) or {})["configurations"]}
    assert rows["a"]["healthy"] is False and rows["b"]["healthy"] is True
    assert rows["a"]["jobs"][0]["status"]["quarantineReason"] == "TooManyDeletes"


def test_deletes_still_need_allow_delete(source: GitRepo, tenant: LocalProvider, tmp_path: Path) -> None:
    loop(source, tenant, tmp_path).run_pass()
    source.remove("configs/b.yaml")
    source.commit("drop b")
    assert loop(source, tenant, tmp_path).run_pass() is PassResult.IN_SYNC
    assert names(tenant) == {"a", "b"}
    assert "b" in status(tmp_path)["held"]
    # Held back is not drift: the next pass is in sync too.
    assert loop(source, tenant, tmp_path, self_heal=True).run_pass() is PassResult.IN_SYNC
    source.write("configs/a.yaml", configuration("a") + "  restartToken: '1'\n")
    source.commit("touch a")
    deleting = loop(source, tenant, tmp_path, plan_options=PlanOptions(allow_delete=True))
    assert deleting.run_pass() is PassResult.APPLIED
    assert names(tenant) == {"a"}


def test_errors_back_off_and_keep_the_status(source: GitRepo, tenant: LocalProvider, tmp_path: Path) -> None:
    r = loop(source, tenant, tmp_path, interval=10.0, jitter=0.0, max_backoff=35.0)
    assert r.run_pass() is PassResult.APPLIED
    assert r.delay() == 10.0
    good = source.shas[-1]
    source.write("configs/a.yaml", "kind: [")
    broken = source.commit("broken")
    assert r.run_pass() is PassResult.ERROR
    s = status(tmp_path)
    assert s["lastSeenCommit"] == broken and s["lastAppliedCommit"] == good
    assert f"the desired state at {broken[:12]} does not load" in s["lastResult"]["message"]
    assert "configs/a.yaml:2:1: YAML syntax error" in s["lastResult"]["message"]
    assert r.delay() == 20.0
    assert r.run_pass() is PassResult.ERROR
    assert r.delay() == 35.0  # capped
    assert status(tmp_path)["consecutiveFailures"] == 2
    missing = loop(source, tenant, tmp_path, branch="nope")
    assert missing.run_pass() is PassResult.ERROR
    assert "cannot fetch branch nope" in status(tmp_path)["lastResult"]["message"]


def test_only_one_loop_per_target(source: GitRepo, tenant: LocalProvider, tmp_path: Path) -> None:
    store = open_store(tenant.target)
    holder = {"command": "another loop", "pid": 1}
    assert store.try_lease(tenant.target, LEADER_LEASE, owner="other", ttl=60, holder=holder) is None
    with pytest.raises(LockError, match=r"another reconcile loop is active .* another loop"):
        loop(source, tenant, tmp_path).run(once=True)


def test_jitter_spreads_passes(source: GitRepo, tenant: LocalProvider, tmp_path: Path) -> None:
    r = loop(source, tenant, tmp_path, interval=100.0, jitter=0.1)
    delays = {r.delay() for _ in range(20)}
    assert all(100.0 <= d <= 110.0 for d in delays) and len(delays) > 1


def test_parse_interval() -> None:
    assert [parse_interval(t) for t in ("90", "30s", "5m", "1.5h")] == [90, 30, 300, 5400]
    with pytest.raises(Exception, match="not a duration"):
        parse_interval("soon")


# --------------------------------------------------------------------------------------------------
# the command: --once exit codes


def invoke(*args: str) -> int:
    try:
        with error_handler():
            reconcile.main(args=list(args), prog_name="reconciler reconcile", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_once_exit_codes(source: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = f"local:{tmp_path / 'tenant.db'}"
    common = ["configs", "--repo", str(source.path), "--target", target, "--once"]
    assert invoke(*common) == 0  # applied the head commit: in sync
    assert invoke(*common) == 0  # nothing to do
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    try:
        provider.pause(next(o.id for o in provider.read_all() if o.name == "b"))
    finally:
        provider.close()
    assert invoke(*common) == 2  # drift found, not healed
    assert "drift from" in capsys.readouterr().err
    assert invoke(*common, "--self-heal") == 0
    assert invoke(*common) == 0
    source.write("configs/b.yaml", "kind: [")
    source.commit("broken")
    assert invoke(*common) == 1
    assert invoke("--repo", str(tmp_path / "nowhere"), "--target", target, "--once") == 1


# --------------------------------------------------------------------------------------------------
# stopping on SIGTERM, in a child process


def child(source: GitRepo, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(source.env, RECONCILER_STATE_DIR=os.environ["RECONCILER_STATE_DIR"], NO_COLOR="1")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "reconcile",
            "configs",
            "--repo",
            str(source.path),
            "--target",
            f"local:{tmp_path / 'tenant.db'}",
            "--status-file",
            str(tmp_path / "status.json"),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def journal_lines(tmp_path: Path) -> list[dict[str, Any]]:
    target = f"local:{tmp_path / 'tenant.db'}"
    return list(open_store(target).entries(target))


@pytest.mark.slow
def test_sigterm_stops_between_changes(source: GitRepo, tmp_path: Path) -> None:
    for i in range(150):
        source.write(f"configs/many/c{i:03d}.yaml", configuration(f"c{i:03d}"))
    head = source.commit("many configurations")
    proc = child(source, tmp_path, "--interval", "1h")
    try:
        wait_for(lambda: sum(e["event"] == "change-end" for e in journal_lines(tmp_path)) >= 5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err

    entries = journal_lines(tmp_path)
    starts = [e for e in entries if e["event"] == "change-start"]
    ends = [e for e in entries if e["event"] == "change-end"]
    # Every change that began was finished; the rest were never started.
    assert len(starts) == len(ends) < 2 * 152
    assert [e["event"] for e in entries][-1] == "run-end"
    runs = read_runs(f"local:{tmp_path / 'tenant.db'}")
    assert runs[-1].result == "failed" and runs[-1].extra["commit"] == head
    s = status(tmp_path)
    assert s["state"] == "stopped" and s["lastResult"]["result"] == "stopped"
    assert s["lastAppliedCommit"] is None and s["lastSeenCommit"] == head
    assert "stopped while applying" in err

    # The next run carries on where the stopped one left off.
    again = child(source, tmp_path, "--once")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert status(tmp_path)["lastAppliedCommit"] == head
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    try:
        assert len(provider.read_all()) == 152
    finally:
        provider.close()


def test_sigterm_while_waiting_ends_at_once(source: GitRepo, tmp_path: Path) -> None:
    proc = child(source, tmp_path, "--interval", "1h")
    try:
        wait_for(
            lambda: (tmp_path / "status.json").exists() and status(tmp_path).get("nextPassAt") is not None
        )
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - began < 10
    s = status(tmp_path)
    assert s["state"] == "stopped" and s["lastResult"]["result"] == "applied" and s["nextPassAt"] is None
