"""The health snapshot of a target's configurations, kept in the target's state store; its one reader.

Per configuration, every job the service runs for it (the provisioning job, Exchange hybrid writeback,
device sync): its state, quarantine, last run and last-run counts, in the shape ``reconciler status
--format json`` prints. ``reconciler status`` records every configuration it read, the reconcile loop
records what each pass read, and ``serve``'s loop what it read after each pass, with who recorded it
(host, user, pid, CI run) and when. ``reconciler status --from-state`` on any machine that shares the
state store, and ``serve``'s pages on every replica, read it back here without reading the target.
The reconcile loop's own document (its last pass) is read from the same store.

I/O: one status document of the target's state store (``HEALTH_KEY``), and reading the loop's.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any

from reconciler.core.observed import JobStatus, Observed
from reconciler.state import open_store
from reconciler.state.base import runner_identity

__all__ = [
    "HEALTH_KEY",
    "LOOP_KEY",
    "Snapshot",
    "healthy",
    "job_row",
    "loop_document",
    "observed_row",
    "read_snapshot",
    "record_observed",
    "record_snapshot",
]

HEALTH_KEY = "health"
# The reconcile loop's document (``reconciler.engine.reconcile.STATUS_KEY``).
LOOP_KEY = "reconcile"
FORMAT_VERSION = 1

# A snapshot document: formatVersion, takenAt, by (runner identity), complete, configurations (rows).
Snapshot = dict[str, Any]


def healthy(o: Observed) -> bool:
    """A configuration is healthy when every one of its jobs is."""
    return o.status.healthy and all(job.healthy for _, job in o.jobs)


def job_row(template: str, job: JobStatus) -> dict[str, Any]:
    return {
        "templateId": template,
        "healthy": job.healthy,
        "status": job.as_dict(),
        "lastRunCounts": dict(job.last_run_counts),
    }


def observed_row(o: Observed) -> dict[str, Any]:
    """One configuration as ``status`` shows it (and its JSON output lists it): ``status`` is the
    provisioning job's, ``jobs`` every job's (the provisioning job's among them)."""
    row: dict[str, Any] = {
        "name": o.name,
        "id": o.id,
        "managed": o.managed,
        "domain": o.settings.domain,
        "enabled": o.settings.enabled,
        "healthy": healthy(o),
        "status": o.status.as_dict(),
        "jobs": [job_row(template, job) for template, job in o.jobs],
    }
    if o.held_deletes is not None:
        # Only where it was looked up (a TooManyDeletes quarantine, by ``status``).
        row["heldDeletes"] = o.held_deletes.as_dict()
    return row


def record_snapshot(target: str, rows: Sequence[dict[str, Any]], *, complete: bool, command: str) -> None:
    """Replace the target's health snapshot. ``complete``: every configuration on the target is in
    ``rows``; else only those a narrowed read saw."""
    doc: Snapshot = {
        "formatVersion": FORMAT_VERSION,
        "takenAt": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "by": runner_identity(command),
        "complete": complete,
        "configurations": list(rows),
    }
    open_store(target).put_status(target, HEALTH_KEY, doc)


def record_observed(target: str, observed: Iterable[Observed], *, complete: bool, command: str) -> None:
    """``record_snapshot`` of what was read from the target."""
    record_snapshot(target, [observed_row(o) for o in observed], complete=complete, command=command)


def _readable_row(row: Any) -> bool:
    return (
        isinstance(row, dict)
        and isinstance(row.get("status"), dict)
        and isinstance(row.get("jobs", []), list)
        and all(isinstance(j, dict) and isinstance(j.get("status"), dict) for j in row.get("jobs", []))
    )


def read_snapshot(target: str) -> Snapshot | None:
    """The target's last health snapshot, or None when there is none this release can read (another
    runner's newer format, or a document damaged by hand)."""
    doc = open_store(target).get_status(target, HEALTH_KEY)
    if not isinstance(doc, dict) or doc.get("formatVersion") != FORMAT_VERSION:
        return None
    rows = doc.get("configurations")
    if not isinstance(rows, list) or not all(_readable_row(row) for row in rows):
        return None
    return doc


def loop_document(target: str) -> dict[str, Any] | None:
    """The reconcile loop's last document for the target (see ``reconciler.engine.reconcile.Status``)."""
    doc = open_store(target).get_status(target, LOOP_KEY)
    return doc if isinstance(doc, dict) else None
