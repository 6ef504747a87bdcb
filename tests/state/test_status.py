"""``reconciler status`` and the state store: what one runner saw, another checkout (a laptop) shows.

Real processes, one state store of each backend shared by two checkouts of the same configurations,
every job of each configuration (the provisioning job and device sync) in the health snapshot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.engine.health import HEALTH_KEY
from reconciler.providers.local import LocalProvider
from reconciler.state import canonical_target, open_url
from reconciler.testing.corpus import write_corpus

DEVICE_SYNC = "AD2AADDeviceSync"


def _run(cwd: Path, url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "GITHUB_"))}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env={**env, "RECONCILER_STATE": url, "NO_COLOR": "1", **extra},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _put(url: str, target: str, key: str, doc: dict[str, object]) -> None:
    """Write status document ``key`` of ``target`` straight into the store, as another runner would."""
    store = open_url(url)
    try:
        store.put_status(canonical_target(target), key, doc)
    finally:
        store.close()


def _lines_of(out: str, name: str) -> list[str]:
    """The line of configuration ``name`` and the lines of its other jobs under it."""
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(name + " "))
    rest = lines[first + 1 :]
    own = [lines[first]]
    for line in rest:
        if not line.startswith("  "):
            break
        own.append(line)
    return own


@pytest.fixture
def checkouts(tmp_path: Path, backend: str) -> tuple[Path, Path, str]:
    """Two checkouts of three configurations, applied to one local tenant: cfg-00000's provisioning job
    quarantined, cfg-00001's device sync job quarantined, cfg-00002 healthy."""
    for name in ("ci", "laptop"):
        (second,) = [p for p in write_corpus(tmp_path / name / "configs", 3, mappings=3) if "00001" in p.name]
        second.write_text(
            second.read_text(encoding="utf-8").replace(
                "  enabled: true\n", "  enabled: true\n  deviceSync: true\n"
            ),
            encoding="utf-8",
        )
    target = f"local:{tmp_path / 'tenant.db'}"
    done = _run(tmp_path / "ci", backend, "apply", "configs", "--auto-approve", "--target", target)
    assert done.returncode == 0, done.stderr
    tenant = LocalProvider(tmp_path / "tenant.db")
    try:
        by_name = {o.name: o for o in tenant.read_all()}
        first = by_name["cfg-00000"]
        job = tenant.store.list_jobs(first.id)[0]
        tenant.store.quarantine(first.id, job["id"], reason="TooManyDeletes")
        second = by_name["cfg-00001"]
        device = next(j for j in tenant.store.list_jobs(second.id) if j["templateId"] == DEVICE_SYNC)
        tenant.store.quarantine(second.id, device["id"], reason="QuarantinedOnDemand")
    finally:
        tenant.close()
    return tmp_path / "ci", tmp_path / "laptop", target


def test_another_checkout_sees_every_job_status_saw_and_who_saw_it(
    checkouts: tuple[Path, Path, str], backend: str
) -> None:
    ci, laptop, target = checkouts
    before = _run(laptop, backend, "status", "--from-state", "--target", target)
    assert before.returncode == 1 and "no health snapshot" in before.stderr, before.stderr
    assert "Traceback" not in before.stderr
    seen = _run(ci, backend, "status", "--target", target, GITHUB_RUN_ID="4242")
    assert seen.returncode == 2 and "TooManyDeletes" in seen.stdout

    shown = _run(laptop, backend, "status", "--from-state", "--target", target)
    assert shown.returncode == 2, shown.stderr
    header, *body = shown.stdout.splitlines()
    assert header.startswith("As seen at ") and "reconciler status" in header
    assert "CI run GITHUB_RUN_ID=4242" in header
    # The same per-job view as status against the target, under the header.
    assert "\n".join(body) + "\n" == seen.stdout
    zero, held = _lines_of(shown.stdout, "cfg-00000")
    assert "UNHEALTHY" in zero and "TooManyDeletes" in zero
    # The provisioning logs list no staged delete of that job: the count is 0, as status read it.
    assert held.startswith("  held deletes: 0 deletes held since ")
    one, *others = _lines_of(shown.stdout, "cfg-00001")
    assert "UNHEALTHY" in one and "quarantine" not in one
    (device,) = [line for line in others if DEVICE_SYNC in line]
    assert (
        device.split()[:3] == [DEVICE_SYNC, "Quarantine", "quarantine:"] and "QuarantinedOnDemand" in device
    )
    (two,) = _lines_of(shown.stdout, "cfg-00002")
    assert " healthy " in two

    doc = json.loads(
        _run(laptop, backend, "status", "--from-state", "--format", "json", "--target", target).stdout
    )
    assert doc["complete"] is True and doc["by"]["ci_run"] == "GITHUB_RUN_ID=4242"
    assert doc["takenAt"] and doc["by"]["command"] == "reconciler status"
    live = json.loads(_run(ci, backend, "status", "--format", "json", "--target", target).stdout)
    assert doc["configurations"] == live  # the rows are what status --format json prints
    by_name = {c["name"]: c for c in doc["configurations"]}
    assert {n: c["healthy"] for n, c in by_name.items()} == {
        "cfg-00000": False,
        "cfg-00001": False,
        "cfg-00002": True,
    }
    jobs = {j["templateId"]: j for j in by_name["cfg-00001"]["jobs"]}
    assert jobs[DEVICE_SYNC]["healthy"] is False
    assert jobs[DEVICE_SYNC]["status"]["quarantineReason"] == "QuarantinedOnDemand"

    only = _run(laptop, backend, "status", "cfg-00002", "--from-state", "--target", target)
    assert only.returncode == 0 and "cfg-00000" not in only.stdout and "cfg-00002" in only.stdout
    missing = _run(laptop, backend, "status", "nope", "--from-state", "--target", target)
    assert missing.returncode == 1 and "nope" in missing.stderr


def test_a_snapshot_of_an_unknown_format_is_not_shown_as_health(
    checkouts: tuple[Path, Path, str], backend: str
) -> None:
    _ci, laptop, target = checkouts
    _put(backend, target, HEALTH_KEY, {"formatVersion": 99, "configurations": "elsewhere"})
    shown = _run(laptop, backend, "status", "--from-state", "--target", target)
    assert shown.returncode == 1 and "no health snapshot this release can read" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_status_shows_the_reconcile_loops_last_pass_from_the_store(
    checkouts: tuple[Path, Path, str], backend: str
) -> None:
    ci, laptop, target = checkouts
    loop = {
        "target": canonical_target(target),
        "source": "https://example.com/entra-config.git",
        "branch": "main",
        "lastResult": {"result": "drift", "at": "2026-12-06T12:00:00+00:00", "message": "drift from abc"},
        "drift": {"cfg-00001": {"fields": ["settings.enabled"]}},
        "runner": {"command": "reconciler reconcile", "host": "runner-7", "pid": 12, "user": "ci"},
    }
    _put(backend, target, "reconcile", loop)
    assert _run(ci, backend, "status", "--target", target).returncode == 2  # records a snapshot
    for args in (("status",), ("status", "--from-state")):
        out = _run(laptop, backend, *args, "--target", target).stdout
        assert "Reconcile loop reconciler reconcile (pid 12 on runner-7, user ci" in out
        assert "last pass drift at 2026-12-06T12:00:00+00:00: drift from abc" in out
        assert "drift in 1 configuration(s): cfg-00001" in out
    doc = json.loads(
        _run(laptop, backend, "status", "--from-state", "--format", "json", "--target", target).stdout
    )
    assert doc["reconcile"]["runner"]["host"] == "runner-7"


def test_an_unreachable_state_store_only_warns_and_the_target_is_shown(
    checkouts: tuple[Path, Path, str], tmp_path: Path
) -> None:
    ci, _laptop, target = checkouts
    gone = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=5"
    shown = _run(ci, gone, "status", "--target", target)
    assert shown.returncode == 2, shown.stderr
    assert "warning: could not use the state store" in shown.stderr and "Traceback" not in shown.stderr
    assert "TooManyDeletes" in shown.stdout
