"""The provisioning logs (``GET /auditLogs/provisioning``, type ``provisioningObjectSummary``): how many
deletes a ``TooManyDeletes`` quarantine holds back, counted one way for every target.

The job status has no field for the number: ``../shared/reference/cloud-sync-directions.md`` section 5
says that when the accidental-delete threshold is exceeded the job is quarantined and the provisioning
logs list ``StagedDelete`` entries. Whether the service logs a held delete once, or once per cycle while
the quarantine lasts, is not documented, so the count is of distinct objects (source identity, else
target identity) with a staged delete of the job since the quarantine began: never more than the
objects held. What a target answers with is read through ``Resources.staged_deletes``; a read that
fails (a 403 when the identity lacks AuditLog.Read.All) makes the count unknown, with the reason, and
never a guess.

Also here: one log entry in the documented shape, for the targets that hold the logs themselves (the
embedded tenant, the emulator, the in-memory provider).

No I/O of its own.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.core.observed import HeldDeletes, quarantine_instant
from reconciler.errors import ProviderError

__all__ = [
    "STAGED_DELETE",
    "count_held_deletes",
    "staged_delete_entry",
    "staged_delete_filter",
    "unknown_held_deletes",
]

JSON = dict[str, Any]

# The provisioningAction member for a delete the threshold held back (v1.0 enum provisioningAction).
STAGED_DELETE = "stagedDelete"
# The permissions "List provisioningObjectSummary" names (application and delegated).
LOG_PERMISSIONS = "AuditLog.Read.All and Directory.Read.All"


def _odata_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def staged_delete_filter(job_id: str, since: str | None) -> str:
    """The ``$filter`` of the staged deletes of job ``job_id`` since ``since``: ``jobId`` and
    ``provisioningAction`` support ``eq``, ``activityDateTime`` supports ``gt`` (the resource's page).
    ``ge`` is not listed, so an entry logged at the very instant the quarantine began is taken by asking
    from one second earlier; the count then drops what came before ``since``."""
    clauses = [f"jobId eq {_odata_text(job_id)}", f"provisioningAction eq {_odata_text(STAGED_DELETE)}"]
    began = quarantine_instant(since)
    if began is not None:
        earlier = began.replace(microsecond=0) - _dt.timedelta(seconds=1)
        stamp = earlier.strftime("%Y-%m-%dT%H:%M:%SZ")
        clauses.append(f"activityDateTime gt {stamp}")
    return " and ".join(clauses)


def _object_key(entry: Mapping[str, Any]) -> str | None:
    for side in ("sourceIdentity", "targetIdentity"):
        identity = entry.get(side)
        if isinstance(identity, Mapping):
            key = identity.get("id")
            if isinstance(key, str) and key:
                return f"{side}:{key.casefold()}"
    return None


def count_held_deletes(entries: Iterable[Mapping[str, Any]], job_id: str, since: str | None) -> HeldDeletes:
    """The distinct objects with a staged delete of job ``job_id`` at or after ``since`` in ``entries``
    (what a target answered, filtered or not: everything else in them is left out here)."""
    began = quarantine_instant(since)
    objects: set[str] = set()
    for entry in entries:
        if entry.get("jobId") != job_id:
            continue
        if str(entry.get("provisioningAction") or "").casefold() != STAGED_DELETE.casefold():
            continue
        when = entry.get("activityDateTime")
        at = quarantine_instant(when if isinstance(when, str) else None)
        if began is not None and (at is None or at < began):
            continue
        key = _object_key(entry) or f"entry:{entry.get('id')}"
        objects.add(key)
    return HeldDeletes(since=since, count=len(objects))


def unknown_held_deletes(since: str | None, exc: ProviderError) -> HeldDeletes:
    """The count when the logs could not be read: unknown, and why (a 403 names the permission)."""
    if exc.status == 403:
        why = f"the provisioning logs cannot be read: the identity lacks {LOG_PERMISSIONS} (HTTP 403)"
    else:
        why = f"the provisioning logs could not be read: {exc}"
    return HeldDeletes(since=since, count=None, unknown=why)


def staged_delete_entry(
    *,
    job_id: str,
    sp: Mapping[str, Any],
    source: Mapping[str, Any],
    at: str,
    cycle_id: str,
) -> JSON:
    """One ``provisioningObjectSummary`` of a delete the threshold held: AD -> Entra ID, the on-premises
    object is the source and its cloud object the target. ``source`` holds ``id``, ``displayName`` and
    ``identityType`` (``user``, ``group``)."""
    identity = {
        "id": str(source.get("id") or ""),
        "displayName": str(source.get("displayName") or ""),
        "identityType": str(source.get("identityType") or "user"),
        "details": None,
    }
    return {
        "id": str(uuid.uuid4()),
        "activityDateTime": at,
        "changeId": str(uuid.uuid4()),
        "cycleId": cycle_id,
        "durationInMilliseconds": 0,
        "initiatedBy": {"id": "", "displayName": "Azure AD Provisioning Service", "initiatorType": "system"},
        "jobId": job_id,
        "modifiedProperties": [],
        "provisioningAction": STAGED_DELETE,
        "provisioningStatusInfo": {"status": "skipped", "errorInformation": None},
        "provisioningSteps": [],
        "servicePrincipal": {"id": str(sp.get("id") or ""), "displayName": str(sp.get("displayName") or "")},
        "sourceIdentity": identity,
        "sourceSystem": {"id": "", "displayName": "Active Directory", "details": None},
        "targetIdentity": {**identity, "id": str(source.get("targetId") or "")},
        "targetSystem": {"id": "", "displayName": "Azure Active Directory", "details": None},
        "tenantId": "",
    }
