"""The number of held deletes in ``status``, ``approve-deletes`` and ``history`` (text and JSON), on the
local tenant and the emulator over real HTTP; and an approval whose identity cannot read the
provisioning logs: it still releases the deletes, and says the number is unknown and why."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.providers.local import LocalProvider

Run = Callable[..., Any]
PEOPLE = [{"id": f"CN=user{n},OU=Sales,DC=contoso,DC=com", "displayName": f"user{n}"} for n in range(4)]


def _held(project: Path, run: Run, target: str) -> tuple[LocalProvider, str, str]:
    """contoso applied, then holding four deletes; (tenant, principal id, quarantine start)."""
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    t = LocalProvider(project / ".reconciler" / "tenant.db")
    (o,) = t.read_all()
    job = t.store.list_jobs(o.id)[0]
    since = t.store.hold_deletes(o.id, job["id"], PEOPLE)["status"]["quarantine"]["seriesBegan"]
    return t, o.id, str(since)


def test_status_and_approval_say_how_many_deletes_are_held(project: Path, run: Run, target: str) -> None:
    t, _id, since = _held(project, run, target)
    r = run("status", "--target", target)
    assert r.code == 2 and f"  held deletes: 4 deletes held since {since}" in r.out.splitlines()
    (row,) = json.loads(run("status", "--format", "json", "--target", target).out)
    assert row["heldDeletes"] == {"count": 4, "since": since, "unknown": None}

    r = run("approve-deletes", "contoso", "--allow-delete", "--target", target)
    assert r.code == 0 and f"Approved the held deletes of contoso (4 deletes held since {since})" in r.out
    text = run("history", "--target", target).out
    assert f"approved the held deletes of contoso: 4 deletes held since {since}" in text
    (record,) = [
        x
        for x in json.loads(run("history", "--format", "json", "--target", target).out)
        if x["kind"] == "approve-deletes"
    ]
    assert record["extra"]["held_deletes"] == 4 and record["extra"]["quarantine_since"] == since
    assert record["user"]
    t.close()


@pytest.fixture
def without_audit_logs(project: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An emulator whose token lacks AuditLog.Read.All."""
    db = project / ".reconciler" / "tenant.db"
    db.parent.mkdir(exist_ok=True)
    monkeypatch.setenv("RECONCILER_GRAPH_TOKEN", "held-deletes-token")
    config = EmulatorConfig(token="held-deletes-token", lacking=frozenset({"AuditLog.Read.All"}))
    emulator = Emulator(db, config).start()
    yield emulator.target
    emulator.stop()


def test_an_approval_without_the_logs_says_the_count_is_unknown(
    project: Path, run: Run, without_audit_logs: str
) -> None:
    target = without_audit_logs
    t, sp_id, _since = _held(project, run, target)
    (row,) = json.loads(run("status", "--format", "json", "--target", target).out)
    assert row["heldDeletes"]["count"] is None and "AuditLog.Read.All" in row["heldDeletes"]["unknown"]

    r = run("approve-deletes", "contoso", "--allow-delete", "--target", target)
    assert r.code == 0, r.err
    assert "the number of held deletes is unknown" in r.out and "HTTP 403" in r.out
    restarts = [a.get("body") for a in t.store.actions(sp_id) if a.get("action") == "restart"]
    assert restarts == [{"criteria": {"resetScope": "ForceDeletes"}}]
    (record,) = [
        x
        for x in json.loads(run("history", "--format", "json", "--target", target).out)
        if x["kind"] == "approve-deletes"
    ]
    assert record["extra"]["held_deletes"] is None
    assert "AuditLog.Read.All" in record["extra"]["held_deletes_unknown"]
    t.close()
