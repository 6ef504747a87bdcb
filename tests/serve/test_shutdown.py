"""``reconciler serve`` and SIGTERM: mid-apply it stops at a safe point, releases the lock and the leader
lease, exits 0, and the next run converges; how it starts and fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from support.serve import WAIT, configuration, new_repo, start, wait_for

from reconciler.engine.journal import read_runs
from reconciler.engine.reconcile import LEADER_LEASE
from reconciler.providers.local import LocalProvider
from reconciler.state import open_store

MANY = 30


def _journal(target: str) -> list[dict[str, Any]]:
    return list(open_store(target).entries(target))


def test_sigterm_mid_apply_stops_at_a_safe_point_and_the_next_run_converges(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    for i in range(MANY):
        repo.write(f"configs/c{i:03d}.yaml", configuration(f"c{i:03d}"))
    head = repo.commit("many configurations")
    served = start(repo, tmp_path)
    target = served.target
    wait_for(
        lambda: sum(e["event"] == "change-end" for e in _journal(target)) >= 5, what="the apply to begin"
    )
    assert served.get("/healthz").status_code == 200
    assert served.stop() == 0, served.stderr()
    assert "SIGTERM: stopping at the next safe point" in served.stderr()

    entries = _journal(target)
    starts = [e for e in entries if e["event"] == "change-start"]
    ends = [e for e in entries if e["event"] == "change-end"]
    # Every change begun was finished; the rest of the apply was never started.
    assert len(starts) == len(ends) < 2 * MANY
    assert entries[-1]["event"] == "run-end"
    assert read_runs(target)[-1].result == "failed"
    store = open_store(target)
    # The lease is free at once (a new owner takes it), and the apply lock too.
    assert store.try_lease(target, LEADER_LEASE, owner="next", ttl=5, holder={}) is None
    store.release_lease(target, LEADER_LEASE, owner="next")
    with store.lock(target, "apply", timeout=0, holder={"command": "test"}):
        pass

    # The next run carries on from where the stopped one left off.
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "reconcile",
            "configs",
            "--repo",
            str(repo.path),
            "--target",
            target,
            "--once",
        ],
        env=dict(repo.env, RECONCILER_STATE_DIR=str(tmp_path / "state")),
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
    )
    assert again.returncode == 0, again.stderr
    provider = LocalProvider(str(served.tenant))
    try:
        assert len(provider.read_all()) == MANY
    finally:
        provider.close()
    assert read_runs(target)[-1].commit == head


def test_sigterm_while_waiting_exits_0_at_once(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    repo.write("configs/a.yaml", configuration("a"))
    repo.commit("one")
    served = start(repo, tmp_path, secret=None)
    wait_for(lambda: "applied:" in served.stderr(), what="the first pass")
    assert served.stop() == 0, served.stderr()
    assert "the webhook /hooks/git is off" in served.stderr()


def test_serve_help_loads_no_web_library() -> None:
    code = (
        "import sys\n"
        "from reconciler.cli.main import main\n"
        "code = main(['serve', '--help'])\n"
        "heavy = [m for m in ('starlette', 'uvicorn', 'jinja2', 'prometheus_client') if m in sys.modules]\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT)
    assert done.stdout.strip().endswith("0 []"), done.stdout + done.stderr
    assert "--listen" in done.stdout
