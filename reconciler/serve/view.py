"""What the pages and metrics show, read from the target's shared state store; the one place that reads it.

Four documents make the view: the reconcile loop's status (``reconciler.engine.reconcile.STATUS_KEY``:
last result, drift field by field, next pass), the health snapshot (``reconciler.engine.health``, read
there as ``reconciler status --from-state`` reads it: every job of every configuration), the serve
snapshot (``reconciler.serve.snapshot``: per configuration the pending plan) and the journal (recent
runs). Every
replica reads the same store, so every replica shows the same thing whichever one is the active loop.

Each configuration gets one status, the first that holds of: ``quarantined`` (the service quarantined
one of its jobs), ``error`` (a job's last run failed or reported an error), ``held delete`` (the plan holds a
delete back), ``drifted`` (the target changed behind git's back since the commit was applied),
``changes pending`` (the plan has changes, e.g. a commit not applied yet), ``in sync``. A configuration
this tool does not manage is ``unmanaged``.

I/O: reads the state store (status documents and journal); nothing is written.
"""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.health import read_snapshot
from reconciler.engine.journal import ChangeOutcome, read_runs
from reconciler.engine.reconcile import STATUS_KEY
from reconciler.graph.identity import PROVISIONING_TEMPLATE
from reconciler.serve.snapshot import SNAPSHOT_KEY
from reconciler.state import open_store

__all__ = [
    "STATUSES",
    "ConfigStatus",
    "ConfigView",
    "Overview",
    "RunView",
    "classify",
    "read_overview",
    "timestamp",
]


class ConfigStatus(enum.StrEnum):
    """A configuration's one status, in the order the pages list them; the metric label is the value
    with "_" for " "."""

    IN_SYNC = "in sync"
    DRIFTED = "drifted"
    CHANGES_PENDING = "changes pending"
    HELD_DELETE = "held delete"
    QUARANTINED = "quarantined"
    ERROR = "error"
    UNMANAGED = "unmanaged"


STATUSES = tuple(ConfigStatus)
# How many of the journal's latest runs the pages show.
RECENT_RUNS = 20


@dataclass(frozen=True, slots=True)
class RunView:
    run: str
    started: str
    ended: str | None
    kind: str
    result: str
    commit: str | None
    user: str | None
    changes: tuple[dict[str, Any], ...]

    @property
    def failed(self) -> int:
        return sum(1 for c in self.changes if c.get("outcome") == ChangeOutcome.FAILED)


@dataclass(frozen=True, slots=True)
class ConfigView:
    name: str
    id: str | None
    managed: bool
    domain: str
    enabled: bool | None
    scope: dict[str, Any]
    health: dict[str, Any] | None  # the provisioning job's status and last-run counts
    status: ConfigStatus
    drift: tuple[dict[str, Any], ...]
    pending: dict[str, Any]
    jobs: tuple[dict[str, Any], ...] = ()  # every other job's, with its templateId
    runs: tuple[tuple[RunView, dict[str, Any]], ...] = ()

    @property
    def pending_changes(self) -> int:
        return int(self.pending.get("changes", 0))

    @property
    def held_deletes(self) -> int:
        return int(self.pending.get("heldDeletes", 0))


@dataclass(frozen=True, slots=True)
class Overview:
    target: str
    loop: dict[str, Any]
    snapshot_at: str | None
    snapshot_commit: str | None
    plan_error: str | None
    last_success_at: str | None
    configurations: tuple[ConfigView, ...] = ()
    runs: tuple[RunView, ...] = ()
    counts: dict[ConfigStatus, int] = field(default_factory=dict)

    def configuration(self, name: str) -> ConfigView | None:
        return next((c for c in self.configurations if c.name == name), None)


def classify(entry: dict[str, Any], drifted: bool) -> ConfigStatus:
    """The one status of a snapshot entry (see the module docstring for the order): ``health`` is its
    provisioning job's, ``jobs`` its other jobs'."""
    if not entry.get("managed", True):
        return ConfigStatus.UNMANAGED
    jobs = [entry.get("health") or {}, *(entry.get("jobs") or ())]
    pending = entry.get("pending") or {}
    if any(job.get("code") == "Quarantine" for job in jobs):
        return ConfigStatus.QUARANTINED
    if any(job.get("lastRunState") == "Failed" or job.get("lastError") for job in jobs):
        return ConfigStatus.ERROR
    if pending.get("heldDeletes"):
        return ConfigStatus.HELD_DELETE
    if drifted:
        return ConfigStatus.DRIFTED
    if pending.get("changes") or pending.get("held"):
        return ConfigStatus.CHANGES_PENDING
    return ConfigStatus.IN_SYNC


def _runs(target: str) -> tuple[RunView, ...]:
    records = read_runs(target, open_store(target))[-RECENT_RUNS:]
    return tuple(
        RunView(
            run=r.run,
            started=r.started,
            ended=r.ended,
            kind=r.kind,
            result=r.result,
            commit=r.commit,
            user=r.user,
            changes=tuple(r.changes),
        )
        for r in reversed(records)
    )


def _job(row: dict[str, Any]) -> dict[str, Any]:
    """One job of a health snapshot row as the pages show it: its status and last-run counts."""
    return {"templateId": row.get("templateId"), **row["status"], **(row.get("lastRunCounts") or {})}


def _health(target: str) -> dict[str, tuple[dict[str, Any], tuple[dict[str, Any], ...]]]:
    """Per service principal id: its provisioning job and its other jobs, from the health snapshot."""
    snapshot = read_snapshot(target) or {"configurations": []}
    out = {}
    for row in snapshot["configurations"]:
        jobs = [_job(j) for j in row.get("jobs") or ()]
        main = next((j for j in jobs if j["templateId"] == PROVISIONING_TEMPLATE), None)
        others = tuple(j for j in jobs if j is not main)
        out[str(row.get("id"))] = (main or dict(row["status"]), others)
    return out


def read_overview(target: str) -> Overview:
    """Everything the pages and metrics show for ``target``, from its state store."""
    store = open_store(target)
    loop = store.get_status(target, STATUS_KEY) or {}
    snap = store.get_status(target, SNAPSHOT_KEY) or {}
    health = _health(target)
    runs = _runs(target)
    drift: dict[str, Any] = loop.get("drift") or {}
    since: dict[str, dict[str, str]] = snap.get("driftSince") or {}
    configurations = []
    for entry in snap.get("configurations") or []:
        name = str(entry.get("name"))
        # Not in the health snapshot: not on the target yet (the plan creates it).
        main, jobs = health.get(str(entry.get("id")), (None, ())) if entry.get("id") else (None, ())
        entry = {**entry, "health": main, "jobs": jobs}
        own = drift.get(name) or {}
        mine = tuple((r, c) for r in runs for c in r.changes if c.get("name") == name)
        configurations.append(
            ConfigView(
                name=name,
                id=entry.get("id"),
                managed=bool(entry.get("managed", True)),
                domain=str(entry.get("domain", "")),
                enabled=entry.get("enabled"),
                scope=entry.get("scope") or {"kind": "all", "count": 0, "entries": []},
                health=main,
                jobs=jobs,
                status=classify(entry, bool(own)),
                drift=tuple(
                    {**c, "since": (since.get(name) or {}).get(str(c.get("field"))) or c.get("seenAt")}
                    for c in own.get("changes") or ()
                ),
                pending=entry.get("pending") or {},
                runs=mine,
            )
        )
    counts = dict.fromkeys(STATUSES, 0)
    for c in configurations:
        counts[c.status] += 1
    return Overview(
        target=target,
        loop=loop,
        snapshot_at=snap.get("at"),
        snapshot_commit=snap.get("commit"),
        plan_error=snap.get("planError"),
        last_success_at=snap.get("lastSuccessAt"),
        configurations=tuple(configurations),
        runs=runs,
        counts=counts,
    )


def timestamp(value: str | None) -> float | None:
    """An ISO 8601 time of the documents as seconds since the epoch (None when absent or unreadable)."""
    if not value:
        return None
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.timestamp()
