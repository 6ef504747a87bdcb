"""``approveDeletes`` in git: the real CLI against the local tenant and against the emulator over real HTTP
on 127.0.0.1, with the tenant's job action log as the witness of what was restarted and how."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.providers.local import LocalProvider

Run = Callable[..., Any]


def _git(project: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _commit(project: Path, message: str) -> str:
    _git(project, "add", "-A", "--", ".")
    _git(project, "commit", "-q", "-m", message)
    return _git(project, "rev-parse", "HEAD")


def _approve(project: Path, since: str) -> None:
    path = project / "configs" / "contoso.yaml"
    text = path.read_text().replace(
        "spec:\n", f'spec:\n  approveDeletes: {{quarantinedSince: "{since}"}}\n', 1
    )
    path.write_text(text)


def _applied_and_quarantined(project: Path, run: Run, target: str) -> tuple[LocalProvider, Any, Any, Any]:
    """contoso applied, and its provisioning job then quarantined for too many deletes."""
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    t = LocalProvider(project / ".reconciler" / "tenant.db")
    (o,) = t.read_all()
    job = t.store.list_jobs(o.id)[0]
    held = t.store.quarantine(o.id, job["id"], reason="TooManyDeletes", code="TooManyDeletes")
    return t, o, job, held


def _restarts(t: LocalProvider, sp_id: str) -> list[object]:
    return [a.get("body") for a in t.store.actions(sp_id) if a.get("action") == "restart"]


def test_an_approval_in_git_releases_only_the_quarantine_it_names(
    project: Path, run: Run, target: str
) -> None:
    (project / ".gitignore").write_text(".reconciler/\n")
    _git(project, "init", "-q")
    _commit(project, "contoso")
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    t = LocalProvider(project / ".reconciler" / "tenant.db")
    (o,) = t.read_all()
    job = t.store.list_jobs(o.id)[0]
    people = [{"id": f"CN=user{n},OU=Sales,DC=contoso,DC=com", "displayName": f"user{n}"} for n in range(3)]
    held = t.store.hold_deletes(o.id, job["id"], people)
    since = held["status"]["quarantine"]["seriesBegan"]

    # An approval of another quarantine (an earlier one) approves nothing, and says so.
    _approve(project, "2026-01-02T03:04:05Z")
    r = run("apply", "configs", "--auto-approve", "--allow-delete", "--target", target)
    assert r.code == 0 and "approveDeletes names the TooManyDeletes quarantine that began 2026-01-02" in r.out
    assert "nothing is approved" in r.out
    assert _restarts(t, o.id) == []

    _git(project, "checkout", "-q", "--", "configs")
    _approve(project, since)
    commit = _commit(project, "approve the held deletes")
    r = run("plan", "configs", "--target", target)
    # The plan says how many deletes the approval releases, from the provisioning logs.
    assert f"approve held deletes (quarantined since {since}): 3 deletes held since {since}" in r.out
    assert "--allow-delete" in r.out
    # Held like a delete: without the flag nothing is restarted.
    r = run("apply", "configs", "--auto-approve", "--target", target)
    assert r.code == 0 and _restarts(t, o.id) == []

    r = run("plan", "configs", "--allow-delete", "--target", target, "--format", "json")
    doc = json.loads(r.out)
    (change,) = doc["changes"]
    assert change["action"] == "approveDeletes" and change["quarantine_since"] == since
    assert change["held_deletes"] == 3
    assert doc["summary"]["approveDeletes"] == 1
    md = run("plan", "configs", "--allow-delete", "--target", target, "--format", "markdown").out
    assert "| Approve held deletes | 1 |" in md and "held deletes approved" in md

    r = run("apply", "configs", "--auto-approve", "--allow-delete", "--target", target)
    assert r.code == 0, r.out + r.err
    assert _restarts(t, o.id) == [{"criteria": {"resetScope": "ForceDeletes"}}]
    # The target records which quarantine's deletes were released: while the service still reports that
    # quarantine, the field approves nothing more, and the plan is empty.
    r = run("plan", "configs", "--allow-delete", "--detailed-exitcode", "--target", target)
    assert r.code == 0 and "were approved already; remove approveDeletes" in r.out
    assert run("apply", "configs", "--auto-approve", "--allow-delete", "--target", target).code == 0
    assert len(_restarts(t, o.id)) == 1

    # History: who approved which quarantine, from which commit.
    (record,) = [
        x
        for x in json.loads(run("history", "--format", "json", "--target", target).out)
        if any(c["action"] == "approveDeletes" for c in x["changes"])
    ]
    assert record["commit"] == commit and record["result"] == "ok"
    (approved,) = [c for c in record["changes"] if c["action"] == "approveDeletes"]
    assert approved["quarantine_since"] == since and approved["outcome"] == "ok"
    assert approved["held_deletes"] == 3
    text = run("history", "--target", target).out
    assert f"of contoso in git (commit {commit[:10]}): 3 deletes held since {since}" in text

    # A later quarantine is not approved by the field that named the earlier one.
    later = t.store.quarantine(o.id, job["id"], reason="TooManyDeletes", code="TooManyDeletes")
    later["status"]["quarantine"]["seriesBegan"] = "2099-01-01T00:00:00Z"
    t.store.set_status(o.id, job["id"], quarantine=later["status"]["quarantine"])
    r = run("apply", "configs", "--auto-approve", "--allow-delete", "--target", target)
    assert r.code == 0 and "nothing is approved" in r.out
    assert len(_restarts(t, o.id)) == 1


def test_a_saved_approval_is_refused_once_its_quarantine_is_gone(
    project: Path, run: Run, target: str
) -> None:
    t, o, job, held = _applied_and_quarantined(project, run, target)
    _approve(project, held["status"]["quarantine"]["seriesBegan"])
    assert run("plan", "configs", "--allow-delete", "--out", "plan.json", "--target", target).code == 0
    # Someone restarts the job in the portal: that quarantine is over before the saved plan runs.
    t.store.restart_job(o.id, job["id"], {"resetScope": "Full"})
    r = run("apply", "plan.json", "--target", target)
    assert r.code != 0 and "approveDeletes" in r.out + r.err
    assert [b for b in _restarts(t, o.id) if b != {"criteria": {"resetScope": "Full"}}] == []


def test_a_bad_approval_time_is_an_error_with_file_and_line(project: Path, run: Run) -> None:
    _approve(project, "last tuesday")
    r = run("plan", "configs")
    assert r.code == 1
    assert "configs/contoso.yaml:6:38" in r.err and "is not a time with its zone" in r.err
    r = run("validate", "configs")
    assert r.code == 1 and "approveDeletes" in r.err


def test_a_quarantine_approved_from_the_command_line_is_not_approved_again_from_git(
    project: Path, run: Run, target: str
) -> None:
    t, o, _job, held = _applied_and_quarantined(project, run, target)
    assert run("approve-deletes", "contoso", "--allow-delete", "--target", target).code == 0
    _approve(project, held["status"]["quarantine"]["seriesBegan"])
    r = run("apply", "configs", "--auto-approve", "--allow-delete", "--target", target)
    assert r.code == 0 and "were approved already" in r.out
    assert _restarts(t, o.id) == [{"criteria": {"resetScope": "ForceDeletes"}}]


def test_a_saved_approval_is_refused_when_more_deletes_are_held_by_apply_time(
    project: Path, run: Run, target: str
) -> None:
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    t = LocalProvider(project / ".reconciler" / "tenant.db")
    (o,) = t.read_all()
    job = t.store.list_jobs(o.id)[0]
    people = [{"id": f"CN=user{n},OU=Sales,DC=contoso,DC=com", "displayName": f"user{n}"} for n in range(3)]
    since = t.store.hold_deletes(o.id, job["id"], people[:2])["status"]["quarantine"]["seriesBegan"]
    _approve(project, since)
    assert run("plan", "configs", "--allow-delete", "--out", "plan.json", "--target", target).code == 0
    # A later cycle of the same quarantine holds one more: what was reviewed is no longer what would go.
    t.store.hold_deletes(o.id, job["id"], people)
    r = run("apply", "plan.json", "--target", target)
    assert r.code != 0 and "held_deletes" in r.out + r.err and "make a new plan" in r.out + r.err
    assert _restarts(t, o.id) == []
