"""``reconciler approve-deletes`` and ``reconciler status`` with every job: on the local tenant, through
the real CLI entry point, with the tenant's job action log as the witness of what was done."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.providers.local import LocalProvider

Run = Callable[..., Any]


def tenant(project: Path) -> LocalProvider:
    return LocalProvider(project / ".reconciler" / "tenant.db")


def restarts(t: LocalProvider, sp_id: str) -> list[object]:
    return [a.get("body") for a in t.store.actions(sp_id) if a.get("action") == "restart"]


def test_approving_held_deletes_needs_the_flag_and_a_delete_quarantine(project: Path, run: Run) -> None:
    assert run("apply", "configs", "--auto-approve").code == 0
    t = tenant(project)
    (o,) = t.read_all()
    job = t.store.list_jobs(o.id)[0]

    # Nothing held: refused, and nothing restarted.
    r = run("approve-deletes", "contoso", "--allow-delete")
    assert (
        r.code == 1
        and "holds no deletes to approve" in r.err
        and "not in quarantine for TooManyDeletes" in r.err
    )
    assert restarts(t, o.id) == []

    t.store.quarantine(
        o.id, job["id"], reason="TooManyDeletes", message="612 deletes held", code="TooManyDeletes"
    )
    since = t.read_all()[0].status.quarantine_since
    # Without the flag: refused like a delete, naming the flag; nothing restarted.
    r = run("approve-deletes", "contoso")
    assert r.code == 1 and "--allow-delete" in r.err
    assert restarts(t, o.id) == []

    r = run("approve-deletes", "contoso", "--allow-delete")
    # The provisioning logs list no staged delete of this job: the count says so, it is not guessed.
    assert r.code == 0 and "ForceDeletes" in r.out and f"(0 deletes held since {since})" in r.out
    assert restarts(t, o.id) == [{"criteria": {"resetScope": "ForceDeletes"}}]

    # History says who approved, what the service held, and when.
    r = run("history")
    first = r.out.splitlines()[:2]
    assert "approve-deletes" in first[0]
    assert f"approved the held deletes of contoso: 0 deletes held since {since}" in first[1]
    assert "the service said: 612 deletes held" in first[1]
    (record,) = [
        x for x in json.loads(run("history", "--format", "json").out) if x["kind"] == "approve-deletes"
    ]
    assert record["extra"]["configuration"] == "contoso" and record["extra"]["reset_scope"] == "ForceDeletes"
    assert record["extra"]["quarantine_since"] == since and record["result"] == "ok"
    assert record["extra"]["held_deletes"] == 0

    assert run("approve-deletes", "nope", "--allow-delete").code == 1


def test_status_shows_every_job_of_a_configuration(project: Path, run: Run) -> None:
    assert run("apply", "configs", "--auto-approve").code == 0
    t = tenant(project)
    (o,) = t.read_all()
    jobs = {j["templateId"]: j["id"] for j in t.store.list_jobs(o.id)}
    assert set(jobs) == {"AD2AADProvisioning", "AD2AADPasswordHash"}
    t.store.set_status(
        o.id,
        jobs["AD2AADPasswordHash"],
        lastExecution={
            "state": "Succeeded",
            "timeEnded": "2026-12-06T10:00:00Z",
            "countExported": 7,
            "countEscrowed": 0,
        },
    )
    r = run("status")
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0].startswith("contoso") and "healthy" in lines[0]
    assert "AD2AADPasswordHash" in lines[1] and "(7 exported, 0 escrowed)" in lines[1]
    # A quarantined companion job makes the configuration unhealthy (exit 2).
    t.store.quarantine(o.id, jobs["AD2AADPasswordHash"], reason="EncounteredQuarantineException")
    r = run("status", "--format", "json")
    assert r.code == 2
    (entry,) = json.loads(r.out)
    assert entry["healthy"] is False and entry["status"]["code"] != "Quarantine"
    by_job = {j["templateId"]: j for j in entry["jobs"]}
    assert by_job["AD2AADPasswordHash"]["status"]["quarantineReason"] == "EncounteredQuarantineException"
