"""Who a configuration and its jobs are on the synchronization service. Pure: no I/O.

A Cloud Sync configuration is a service principal made from one of two application templates (AD ->
Entra ID, Entra ID -> AD), holding synchronization jobs made from job templates (``graph-sync-api.md``).
This module knows those ids; which principal is one of ours and under what name (our tags, read and
written so that tags we do not own survive); which job is the configuration's own and what its
schedule and status say; the groups assigned to an Entra ID -> AD principal; and the Exchange schema
check of a discovered directory. It is the floor of ``reconciler.graph``: it imports no other module
of the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.model import Direction
from reconciler.core.observed import JobStatus

__all__ = [
    "DEVICE_SYNC_TEMPLATE",
    "EXCHANGE_SCHEMA_ATTRIBUTE",
    "EXCHANGE_WRITEBACK_TEMPLATE",
    "GROUP_PROVISIONING_TEMPLATE",
    "GROUP_TEMPLATE_APP_ID",
    "JSON",
    "MAIN_JOB_TEMPLATES",
    "MANAGED_TAG",
    "PASSWORD_HASH_TEMPLATE",
    "PROVISIONING_TEMPLATE",
    "SELECTED_GROUP_APP_ROLES",
    "TEMPLATE_APP_ID",
    "OwnTags",
    "direction_of",
    "exchange_schema_present",
    "find_job",
    "from_template",
    "group_assignments",
    "job_enabled",
    "job_status",
    "job_template_for",
    "main_job",
    "name_tag",
    "on_demand_subject",
    "parse_tags",
    "selected_group_role",
    "tags_for",
    "template_app_id",
    "with_deletes_approved",
    "with_restart_pending",
]

JSON = dict[str, Any]

# The application template every Cloud Sync configuration is instantiated from.
TEMPLATE_APP_ID = "1a4721b3-e57f-4451-ae87-ef078703ec94"
PROVISIONING_TEMPLATE = "AD2AADProvisioning"
PASSWORD_HASH_TEMPLATE = "AD2AADPasswordHash"
# Add-on jobs on an AD -> Entra ID configuration's principal (cloud-sync-directions.md 3, 6).
EXCHANGE_WRITEBACK_TEMPLATE = "AAD2ADExchangeHybridWriteback"
DEVICE_SYNC_TEMPLATE = "AD2AADDeviceSync"
# Entra ID -> AD group provisioning: the job is documented; the application template id is INFERRED
# (one community script), see docs/graph.md.
GROUP_PROVISIONING_TEMPLATE = "AAD2ADGroupProvisioning"
GROUP_TEMPLATE_APP_ID = "fb81332f-3eca-4ecf-a939-4278e501d330"
# The job a configuration runs, per direction: the first one found is the configuration's own.
MAIN_JOB_TEMPLATES: tuple[str, ...] = (PROVISIONING_TEMPLATE, GROUP_PROVISIONING_TEMPLATE)
# The app role "selected groups" are assigned with, per cloud (cloud-sync-directions.md 1.3, CONFIRMED):
# Public, AzureChinaCloud, AzureUSGovernment, AzureUSNatCloud, AzureUSSecCloud. The one used is always
# one the configuration's principal lists in its appRoles (``selected_group_role``).
SELECTED_GROUP_APP_ROLES: frozenset[str] = frozenset(
    (
        "1a0abf4d-b9fa-4512-a3a2-51ee82c6fd9f",
        "15af7fd5-1a3f-4034-8ea1-1afa3d5ecf63",
        "d8fa317e-0713-4930-91d8-1dbeb150978f",
        "50a55e47-aae2-425c-8dcb-ed711147a39f",
        "52e862b9-0b95-43fe-9340-54f51248314f",
    )
)
# What the Exchange schema's presence is read from: the AD user object of a directory discover lists it.
EXCHANGE_SCHEMA_ATTRIBUTE = "mailNickname"
MANAGED_TAG = "reconciler:managed"
_NAME_PREFIX = "reconciler:name="


def name_tag(name: str) -> str:
    """The tag that names managed configuration ``name`` on its service principal."""
    return _NAME_PREFIX + name


def template_app_id(direction: Direction) -> str:
    """The application template a configuration of ``direction`` is instantiated from."""
    return GROUP_TEMPLATE_APP_ID if direction is Direction.ENTRA_TO_AD else TEMPLATE_APP_ID


def job_template_for(direction: Direction) -> str:
    """The job template of the job a configuration of ``direction`` runs."""
    return GROUP_PROVISIONING_TEMPLATE if direction is Direction.ENTRA_TO_AD else PROVISIONING_TEMPLATE


def from_template(sp: AbcMapping[str, Any], direction: Direction | None = None) -> bool:
    """Whether ``sp`` names a Cloud Sync application template (of ``direction``; None: of either) as
    its own, by ``applicationTemplateId`` or among its ``servicePrincipalNames``."""
    ids = (TEMPLATE_APP_ID, GROUP_TEMPLATE_APP_ID) if direction is None else (template_app_id(direction),)
    names = sp.get("servicePrincipalNames") or []
    return sp.get("applicationTemplateId") in ids or any(i in names for i in ids)


def main_job(jobs: Iterable[AbcMapping[str, Any]]) -> dict[str, Any] | None:
    """The configuration's own job: AD2AADProvisioning or AAD2ADGroupProvisioning (a principal holds one
    of them; should it hold both, the AD -> Entra ID one, as before Entra ID -> AD was read)."""
    jobs = list(jobs)
    for template in MAIN_JOB_TEMPLATES:
        found = find_job(jobs, template)
        if found is not None:
            return found
    return None


def on_demand_subject(job_template: str, subject: str, object_type: str, members: Sequence[str] = ()) -> JSON:
    """The one ``synchronizationJobSubject`` of a ``provisionOnDemand`` request. AD -> Entra ID: the
    object's DN and its type as given. Entra ID -> AD (INFERRED, cloud-sync-directions.md 1.6): the
    Entra object id, its type as Graph names it (``Group``, ``User``), and the members to provision
    with a group as ``links.members`` (each a ``User`` subject)."""
    if job_template != GROUP_PROVISIONING_TEMPLATE:
        return {"objectId": subject, "objectTypeName": object_type}
    found: JSON = {"objectId": subject, "objectTypeName": object_type[:1].upper() + object_type[1:]}
    if members:
        found["links"] = {"members": [{"objectId": m, "objectTypeName": "User"} for m in members]}
    return found


def direction_of(sp: AbcMapping[str, Any], jobs: Iterable[AbcMapping[str, Any]]) -> Direction:
    """The direction of the configuration ``sp`` holds: by its job, else (a create not finished) by the
    template the principal was made from."""
    job = main_job(jobs)
    if job is not None:
        return (
            Direction.ENTRA_TO_AD
            if job.get("templateId") == GROUP_PROVISIONING_TEMPLATE
            else Direction.AD_TO_ENTRA
        )
    return Direction.ENTRA_TO_AD if from_template(sp, Direction.ENTRA_TO_AD) else Direction.AD_TO_ENTRA


def group_assignments(assignments: Iterable[AbcMapping[str, Any]]) -> tuple[str, ...]:
    """The groups assigned to a configuration's principal (``appRoleAssignedTo``): its selected groups."""
    found: dict[str, str] = {}
    for a in assignments:
        principal = a.get("principalId")
        if isinstance(principal, str) and principal and a.get("principalType") in (None, "Group"):
            found.setdefault(principal.casefold(), principal)
    return tuple(found.values())


def selected_group_role(sp: AbcMapping[str, Any], assignments: Iterable[AbcMapping[str, Any]]) -> str | None:
    """The app role id to assign selected groups with, read from the service, never assumed: a role of
    the principal (``appRoles``) that is one of the documented per-cloud ids; else the only enabled role
    it lists; else the one role its group assignments already use. None: not known."""
    roles = [r for r in sp.get("appRoles") or [] if isinstance(r, AbcMapping) and r.get("isEnabled", True)]
    ids = [str(r.get("id")) for r in roles if r.get("id")]
    documented = [i for i in ids if i.casefold() in SELECTED_GROUP_APP_ROLES]
    if len(documented) == 1:
        return documented[0]
    if not documented and len(ids) == 1:
        return ids[0]
    used = {str(a.get("appRoleId")) for a in assignments if a.get("appRoleId")}
    if len(used) == 1 and (not ids or used <= set(ids)):
        return used.pop()
    return None


# --------------------------------------------------------------------------------------------------
# tags

_DELETION_PROTECTION_TAG = "reconciler:deletionProtection"
_RESTART_PREFIX = "reconciler:restartToken="
# Set before a change that needs a restart, cleared by the restart: a crash in between stays visible.
_RESTART_PENDING_TAG = "reconciler:restartPending"
# The start of the TooManyDeletes quarantine whose held deletes an approveDeletes apply released.
_DELETES_APPROVED_PREFIX = "reconciler:deletesApproved="


@dataclass(frozen=True, slots=True)
class OwnTags:
    """What our own service-principal tags say."""

    managed: bool = False
    name: str | None = None
    deletion_protection: bool = False
    restart_token: str | None = None
    restart_pending: bool = False
    deletes_approved: str | None = None


def _is_own_tag(tag: str) -> bool:
    return (
        tag in (MANAGED_TAG, _DELETION_PROTECTION_TAG, _RESTART_PENDING_TAG)
        or tag.startswith(_NAME_PREFIX)
        or tag.startswith(_RESTART_PREFIX)
        or tag.startswith(_DELETES_APPROVED_PREFIX)
    )


def parse_tags(tags: Iterable[str]) -> OwnTags:
    managed = deletion_protection = restart_pending = False
    name: str | None = None
    restart_token: str | None = None
    deletes_approved: str | None = None
    for tag in tags:
        if tag == MANAGED_TAG:
            managed = True
        elif tag == _RESTART_PENDING_TAG:
            restart_pending = True
        elif tag == _DELETION_PROTECTION_TAG:
            deletion_protection = True
        elif tag.startswith(_NAME_PREFIX) and name is None:
            name = tag[len(_NAME_PREFIX) :]
        elif tag.startswith(_RESTART_PREFIX) and restart_token is None:
            restart_token = tag[len(_RESTART_PREFIX) :]
        elif tag.startswith(_DELETES_APPROVED_PREFIX) and deletes_approved is None:
            deletes_approved = tag[len(_DELETES_APPROVED_PREFIX) :]
    return OwnTags(managed, name, deletion_protection, restart_token, restart_pending, deletes_approved)


def tags_for(
    existing: Iterable[str],
    *,
    name: str,
    deletion_protection: bool = False,
    restart_token: str | None = None,
) -> list[str]:
    """``existing`` tags with ours replaced: managed under ``name``. Tags we do not own keep their order,
    and a pending restart stays pending (only ``with_restart_pending`` changes it)."""
    existing = list(existing)
    result = [t for t in existing if not _is_own_tag(t)]
    result.append(MANAGED_TAG)
    result.append(_NAME_PREFIX + name)
    if deletion_protection:
        result.append(_DELETION_PROTECTION_TAG)
    if restart_token is not None:
        result.append(_RESTART_PREFIX + restart_token)
    if _RESTART_PENDING_TAG in existing:
        result.append(_RESTART_PENDING_TAG)
    result += [t for t in existing if t.startswith(_DELETES_APPROVED_PREFIX)][:1]
    return result


def with_deletes_approved(tags: Iterable[str], since: str) -> list[str]:
    """``tags`` recording that the held deletes of the quarantine that began ``since`` were released."""
    kept = [t for t in tags if not t.startswith(_DELETES_APPROVED_PREFIX)]
    return [*kept, _DELETES_APPROVED_PREFIX + since]


def with_restart_pending(tags: Iterable[str], pending: bool) -> list[str]:
    """``tags`` with the pending-restart marker set or cleared; every other tag as it was."""
    result = [t for t in tags if t != _RESTART_PENDING_TAG]
    if pending:
        result.append(_RESTART_PENDING_TAG)
    return result


# --------------------------------------------------------------------------------------------------
# jobs


def find_job(jobs: Iterable[AbcMapping[str, Any]], template_id: str) -> dict[str, Any] | None:
    for job in jobs:
        if job.get("templateId") == template_id:
            return dict(job)
    return None


def job_enabled(job: AbcMapping[str, Any]) -> bool:
    """Enabled means the schedule is active (start sets it, pause clears it)."""
    return bool((job.get("schedule") or {}).get("state") == "Active")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def job_status(job: AbcMapping[str, Any]) -> JobStatus:
    """The job's ``synchronizationStatus`` as a ``JobStatus``."""
    status = job.get("status") or {}
    quarantine = status.get("quarantine") or {}
    last = status.get("lastExecution") or {}
    error = (last.get("error") or {}) or (quarantine.get("error") or {})
    return JobStatus(
        code=str(status.get("code") or "NotRun"),
        quarantine_reason=_opt_str(quarantine.get("reason")),
        quarantine_since=_opt_str(quarantine.get("seriesBegan") or quarantine.get("currentBegan")),
        last_run_state=_opt_str(last.get("state")),
        last_run_end=_opt_str(last.get("timeEnded")),
        last_error=_opt_str(error.get("message") or error.get("code")),
        last_run_counts=tuple(
            (k, v) for k, v in sorted(last.items()) if k.startswith("count") and type(v) is int
        ),
    )


def exchange_schema_present(directory: AbcMapping[str, Any]) -> bool:
    """Whether a discovered AD ``directoryDefinition`` has the Exchange schema: its ``user`` object lists
    ``mailNickname`` (how-to-inbound-synch-ms-graph.md, "Exchange hybrid writeback")."""
    wanted = EXCHANGE_SCHEMA_ATTRIBUTE.casefold()
    for obj in directory.get("objects") or []:
        if isinstance(obj, dict) and str(obj.get("name") or "").casefold() == "user":
            names = {
                str(a.get("name") or "").casefold()
                for a in obj.get("attributes") or []
                if isinstance(a, dict)
            }
            if wanted in names:
                return True
    return False
