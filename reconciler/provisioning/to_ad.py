"""On-demand provisioning Entra ID -> AD on the embedded tenant: one cloud group (or, in preview, user)
and up to five of its members, run through an AAD2ADGroupProvisioning job's mappings into the tenant's
on-premises directory, as the service's ``provisionOnDemand`` does for that job.

The service's documented rules (cloud-sync-directions.md 1.6): one group and at most five members per
request; members are not provisioned with it unless they are named; only members that have an AD
account are written (on-demand provisioning ignores scoping, as in the other direction). The steps
reported are the service's four: import, scoping, matching, export. The member's AD account is found
as the service finds it, by the ``msDS-ExternalDirectoryObjectId`` this direction stamps
(``User_<id>``/``Group_<id>``), or by the cloud object's ``onPremisesDistinguishedName``.

I/O: the tenant database (reads the cloud objects, writes the on-premises group and its members).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.errors import ProviderError
from reconciler.graph.identity import GROUP_PROVISIONING_TEMPLATE
from reconciler.graph.reading import read_schema
from reconciler.graph.secrets import secrets_to_settings
from reconciler.provisioning.evaluate import MappingEvaluator, SourceValue, normalize_attributes, show_value
from reconciler.provisioning.on_demand import (
    FAILURE,
    SKIPPED,
    SUCCESS,
    Run,
    fail_on_errors,
    job_of,
    stamp,
    utc_now,
)
from reconciler.tenant.store import TenantStore

__all__ = ["MAX_MEMBERS", "provision_to_ad"]

JSON = dict[str, Any]

# "one group and up to 5 members per request" (how-to-on-demand-provision-entra-to-active-directory.md)
MAX_MEMBERS = 5
ENTRA = "Microsoft Entra ID"
AD = "Active Directory"
_TYPES = {"group": "Group", "user": "User"}
_JOIN = "msDS-ExternalDirectoryObjectId"


def _domain_dn(domain: str) -> str:
    return ",".join(f"DC={part}" for part in domain.split(".") if part)


def _rdn_value(text: str) -> str:
    # The characters a DN's attribute value escapes (RFC 4514).
    out = "".join("\\" + c if c in ',+"\\<>;=' else c for c in text)
    return ("\\" + out) if out.startswith(("#", " ")) else out


def _ad_account(store: TenantStore, member_id: str) -> str | None:
    """The AD DN of cloud object ``member_id``: its stamped join value in AD, or the DN it carries."""
    for prefix in ("User_", "Group_"):
        for found in store.list_onprem_objects():
            if str(found["attributes"].get(_JOIN) or "").casefold() == (prefix + member_id).casefold():
                return str(found["dn"])
    cloud = store.get_cloud_object(member_id)
    dn = (cloud or {}).get("attributes", {}).get("onPremisesDistinguishedName")
    if isinstance(dn, str) and store.get_onprem_object(dn) is not None:
        return dn
    return None


def provision_to_ad(
    store: TenantStore,
    sp_id: str,
    subject: str,
    object_type: str = "group",
    members: Sequence[str] = (),
    *,
    now: Callable[[], dt.datetime] | None = None,
) -> dict[str, str]:
    """Provision cloud object ``subject`` (an object id) with the Entra ID -> AD configuration ``sp_id``,
    with ``members`` (object ids, at most ``MAX_MEMBERS``); returns ``{"key": ..., "value": ...}``."""
    kind = object_type.casefold()
    if kind not in _TYPES:
        raise ProviderError(
            f"objectTypeName {object_type!r}: Entra ID -> AD provisions Group (and, in preview, User)",
            code="BadRequest",
            status=400,
        )
    if len(members) > MAX_MEMBERS:
        raise ProviderError(
            f"{len(members)} members: provisioning on demand takes one group and at most {MAX_MEMBERS} "
            "of its members per request",
            code="BadRequest",
            status=400,
        )
    if members and kind != "group":
        raise ProviderError("members are provisioned with a group only", code="BadRequest", status=400)
    clock = now or utc_now
    run = Run(clock=clock, subject=subject, object_type=kind, source=ENTRA, target=AD)
    run.started = stamp(clock())
    with store.transaction():
        job = job_of(store, sp_id, GROUP_PROVISIONING_TEMPLATE)
        _, mappings, *_ = read_schema(store.get_schema_rules(sp_id, job["id"]))
        domain = secrets_to_settings(store.get_secrets(sp_id), enabled=True).domain
        assigned = {str(a.get("principalId")).casefold() for a in store.list_app_role_assignments(sp_id)}
        _run(
            run,
            store,
            [m for m in mappings if m.object == kind],
            domain,
            subject.casefold() in assigned,
            members,
        )
    return run.response()


def _run(
    run: Run,
    store: TenantStore,
    mappings: Sequence[Any],
    domain: str,
    assigned: bool,
    members: Sequence[str],
) -> None:
    # Import: the cloud object and the AD accounts of the members named.
    cloud = store.get_cloud_object(run.subject)
    if cloud is None or str(cloud["objectType"]).casefold() != run.object_type:
        message = (
            f"No {_TYPES[run.object_type].lower()} with the object id '{run.subject}' was found in {ENTRA}"
        )
        run.step("EntryImport", "Import", FAILURE, message)
        run.stop(FAILURE, "ObjectNotFound", message)
        return
    # As text, as the evaluator takes them: a group a directory load wrote has securityEnabled: true.
    attributes: dict[str, SourceValue] = {
        **normalize_attributes(cloud["attributes"]),
        "objectId": run.subject,
    }
    display = attributes.get("displayName")
    run.display_name = display if isinstance(display, str) else run.subject
    run.source_id = run.subject
    run.reportable = run.display_name
    found = {m: _ad_account(store, m) for m in members}
    written = [dn for dn in found.values() if dn is not None]
    skipped = [m for m, dn in found.items() if dn is None]
    attributes["members"] = written
    details = {name: show_value(value) for name, value in attributes.items()}
    if skipped:
        details["membersWithoutAnADAccount"] = ", ".join(skipped)
    run.step(
        "EntryImport",
        "Import",
        SUCCESS,
        f"Retrieved {run.object_type} '{run.reportable}' from {ENTRA}",
        details,
    )
    # Scoping: reported, not applied (provisioning on demand ignores it).
    scoping = {
        "Assigned to the configuration": "True" if assigned else "False",
        "Scoping applied": "False (on-demand provisioning ignores scoping)",
    }
    run.step(
        "EntrySynchronizationScoping", "Scoping", SUCCESS, f"Determine if {run.object_type} in scope", scoping
    )
    # Matching, on the join attribute this direction stamps.
    evaluator = MappingEvaluator(mappings, parameters={"DomainFQDN": domain, "DomainDN": _domain_dn(domain)})
    evaluation = evaluator.evaluate(attributes, create=True)
    if fail_on_errors(run, evaluation, "EntryExportAdd", "Export"):
        return
    values = evaluation.attributes
    join = values.get(_JOIN)
    match = next(
        (
            o
            for o in store.list_onprem_objects(run.object_type)
            if join is not None and str(o["attributes"].get(_JOIN) or "").casefold() == str(join).casefold()
        ),
        None,
    )
    run.target_type = run.object_type
    if match is None:
        run.step(
            "EntryImport",
            "Matching",
            SUCCESS,
            f"No {run.object_type} in {AD} matches on {_JOIN}; it will be created",
        )
    else:
        run.step("EntryImport", "Matching", SUCCESS, f"Matched {match['dn']} in {AD} on {_JOIN} = '{join}'")
    # Export: the object where the target container says (a new one), or where it is (a match).
    parent = str(values.pop("parentDistinguishedName", "") or f"CN=Users,{_domain_dn(domain)}")
    parent = parent.replace("%DomainDN%", _domain_dn(domain))
    new = {k: v for k, v in values.items() if v is not None and k != "member"}
    if match is None:
        dn = f"CN={_rdn_value(str(new.get('cn') or run.display_name))},{parent}"
        old: dict[str, Any] = {}
    else:
        dn = str(match["dn"])
        old = dict(match["attributes"])
    merged = {**old, **new}
    before = set(store.list_members(dn)) if match is not None else set()
    changed = sorted(t for t in set(old) | set(merged) if old.get(t) != merged.get(t))
    run.modified = [
        {"displayName": t, "oldValue": show_value(old.get(t)), "newValue": show_value(merged.get(t))}
        for t in changed
    ]
    added = [m for m in written if m.casefold() not in {b.casefold() for b in before}]
    if added:
        run.modified.append({"displayName": "member", "oldValue": None, "newValue": "; ".join(added)})
    if match is not None and not changed and not added:
        message = f"The state of the {run.object_type} in both the source and target systems already match."
        run.step("EntrySynchronizationSkip", "Export", SKIPPED, message, {"SkipReason": "RedundantExport"})
        run.stop(SKIPPED, "RedundantExport", message)
        return
    store.put_onprem_object(dn, run.object_type, merged)
    for member in added:
        store.add_member(dn, member)
    run.target_id = dn
    run.action = "Create" if match is None else "Update"
    done = "created" if match is None else "updated"
    run.step(
        "EntryExportAdd" if match is None else "EntryExportUpdate",
        "Export",
        SUCCESS,
        f"{run.object_type} '{run.reportable}' was {done} in {AD}",
        {"distinguishedName": dn, "membersWritten": str(len(added))},
    )
