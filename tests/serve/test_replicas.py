"""Replicas on one shared state store, and a Graph target: who reconciles, what each one serves, what
is counted, and that the Graph token shows nowhere."""

from __future__ import annotations

import json
import time
from pathlib import Path

from support.serve import Scene, configuration, new_repo, start, status_count, wait_for

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.testing.commands import find_secret

TOKEN = "serve-graph-token-a3f09c1e7b"


def _sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _passes(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    return sum(v for (name, _), v in samples.items() if name == "reconciler_reconcile_passes_total")


def test_a_second_replica_stands_by_serves_the_same_state_and_passes_pushes_on(
    scene: Scene, tmp_path: Path
) -> None:
    active = scene.served
    standby = start(scene.repo, tmp_path, tenant=active.tenant)
    try:
        wait_for(lambda: "standing by" in standby.stderr(), what="the second replica to stand by")
        mine, theirs = standby.metrics(), active.metrics()
        assert _sample(mine, "reconciler_active_loop") == 0 and _sample(theirs, "reconciler_active_loop") == 1
        for status in ("in_sync", "drifted", "held_delete", "quarantined"):
            assert status_count(standby, status) == status_count(active, status) >= 1
        assert _passes(mine) == 0
        # The same pages from either replica.
        assert "alpha" in standby.get("/configurations/alpha").text
        # A push that reaches the standby starts a pass on the active replica.
        before = _passes(active.metrics())
        body = {"ref": "refs/heads/main", "after": scene.head, "to": "standby", "at": time.time_ns()}
        answer = standby.push(body)
        assert (answer.status_code, answer.json()["result"]) == (202, "accepted")
        wait_for(lambda: _passes(active.metrics()) > before, what="the active replica's pass")
        assert _passes(standby.metrics()) == 0
    finally:
        assert standby.stop() == 0, standby.stderr()


def test_graph_requests_are_counted_and_the_token_shows_nowhere(tmp_path: Path) -> None:
    # Every distinct request is throttled once (429, Retry-After: 0), then answered.
    config = EmulatorConfig(token=TOKEN, throttle_once=True, retry_after=0)
    emulator = Emulator(tmp_path / "graph-tenant.db", config).start()
    try:
        repo = new_repo(tmp_path)
        repo.write("configs/a.yaml", configuration("a"))
        repo.commit("one")
        served = start(repo, tmp_path, target=emulator.target, extra_env={"RECONCILER_GRAPH_TOKEN": TOKEN})
        try:
            wait_for(lambda: status_count(served, "in_sync") == 1, what="the configuration in sync")
            samples = served.metrics()
            assert _sample(samples, "reconciler_graph_requests_total", outcome="success") > 0
            assert _sample(samples, "reconciler_graph_requests_total", outcome="throttled") > 0
            assert _sample(samples, "reconciler_apply_changes_total", outcome="ok") >= 1
            assert served.get("/readyz").status_code == 200
            texts = {
                path: served.get(path).text for path in ("/", "/configurations/a", "/metrics", "/readyz")
            }
            texts["webhook answer"] = json.dumps(served.push({"ref": "refs/heads/other"}).json())
        finally:
            assert served.stop() == 0, served.stderr()
        texts["stderr"] = served.stderr()
        assert find_secret(TOKEN, texts, [tmp_path / "state"]) == []
    finally:
        emulator.stop()
