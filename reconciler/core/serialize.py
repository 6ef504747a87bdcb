"""The plan as a JSON document, and back. Pure: callers read and write the files.

One document serves both as the saved plan file (``plan --out``) and as the JSON rendering
(``plan --format json``); its schema is ``schemas/plan.schema.json``. It carries a checksum over its own
canonical form, so a plan edited by hand is refused rather than applied. No secret is ever part of a plan:
the desired state holds none, and providers never put credentials in observed values.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reconciler.core.diff import FieldChange
from reconciler.core.model import (
    ApplyMode,
    Direction,
    DirectoryExtension,
    FilterClause,
    Mapping,
    MappingKind,
    Scope,
    ScopeKind,
    Settings,
)
from reconciler.core.observed import JobStatus
from reconciler.core.onprem import OnPremisesAttribute
from reconciler.core.plan import (
    FORMAT_VERSION,
    Action,
    Change,
    Held,
    Plan,
    PlanOptions,
    Provenance,
    Spec,
)
from reconciler.errors import PlanFileError

__all__ = ["DOCUMENT_KIND", "change_document", "from_document", "to_document"]

DOCUMENT_KIND = "reconciler-plan"


def _mapping_to(m: Mapping) -> dict[str, Any]:
    data: dict[str, Any] = {"object": m.object, "target": m.target}
    data.update(m.as_dict())
    return data


def _mapping_from(d: dict[str, Any]) -> Mapping:
    return Mapping(
        object=str(d["object"]),
        target=str(d["target"]),
        kind=MappingKind(d["kind"]),
        value=str(d["value"]),
        default=d.get("default"),
        apply=ApplyMode(d.get("apply", ApplyMode.ALWAYS.value)),
        matching_priority=int(d.get("matchingPriority", 0)),
    )


def _spec_to(s: Spec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "settings": s.settings.as_dict(),
        "scope": _scope_to(s.scope),
        "mappings": [_mapping_to(m) for m in s.mappings],
        "removals": [{"object": o, "target": t} for o, t in s.removals],
        "deletionProtection": s.deletion_protection,
        "restartToken": s.restart_token,
    }
    # Only when there are any, so that other plans read as before.
    if s.extensions:
        data["directoryExtensions"] = [{"name": e.name, **e.as_dict()} for e in s.extensions]
    if s.extension_removals:
        data["extensionRemovals"] = list(s.extension_removals)
    if s.onprem_attributes:
        data["onPremisesAttributes"] = [
            {"name": a.name, "objects": list(a.objects)} for a in s.onprem_attributes
        ]
    return data


def _scope_to(scope: Scope) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": scope.kind.value, "entries": list(scope.entries)}
    if scope.filters:
        data["filters"] = scope.filters_as_list()
    return data


def _scope_from(d: dict[str, Any]) -> Scope:
    filters = tuple(
        tuple(FilterClause(str(c["attribute"]), str(c["operator"]), c.get("value")) for c in f)
        for f in d.get("filters") or ()
    )
    return Scope(ScopeKind(d["kind"]), tuple(str(e) for e in d["entries"]), filters)


def _settings_from(d: dict[str, Any]) -> Settings:
    ad = d.get("accidentalDeletes") or {}
    return Settings(
        domain=str(d["domain"]),
        notification_email=str(d["notificationEmail"]),
        enabled=bool(d["enabled"]),
        password_hash_sync=bool(d["passwordHashSync"]),
        accidental_deletes_enabled=bool(ad.get("enabled", True)),
        accidental_deletes_threshold=int(ad.get("threshold", 500)),
        direction=Direction(d.get("direction", Direction.AD_TO_ENTRA.value)),
        exchange_hybrid_writeback=bool(d.get("exchangeHybridWriteback", False)),
        device_sync=bool(d.get("deviceSync", False)),
        preview_users=bool(d.get("previewUsers", False)),
    )


def _spec_from(d: dict[str, Any]) -> Spec:
    return Spec(
        settings=_settings_from(d["settings"]),
        scope=_scope_from(d["scope"]),
        mappings=tuple(_mapping_from(m) for m in d["mappings"]),
        deletion_protection=bool(d["deletionProtection"]),
        restart_token=d.get("restartToken"),
        removals=tuple((str(r["object"]), str(r["target"])) for r in d["removals"]),
        extensions=tuple(
            DirectoryExtension(
                name=str(e["name"]),
                data_type=str(e["dataType"]),
                target_objects=tuple(str(t) for t in e["targetObjects"]),
                multi_valued=bool(e["isMultiValued"]),
            )
            for e in d.get("directoryExtensions") or ()
        ),
        extension_removals=tuple(str(n) for n in d.get("extensionRemovals") or ()),
        onprem_attributes=tuple(
            OnPremisesAttribute(str(a["name"]), tuple(str(o) for o in a["objects"]))
            for a in d.get("onPremisesAttributes") or ()
        ),
    )


def change_document(c: Change) -> dict[str, Any]:
    """One change as the plan file holds it (also what apply compares a saved change with)."""
    data: dict[str, Any] = {
        "address": c.address,
        "name": c.name,
        "action": c.action.value,
        "target_id": c.target_id,
        "reasons": list(c.reasons),
        "before": {f.path: f.before for f in c.fields},
        "after": {f.path: f.after for f in c.fields},
        "write_settings": c.write_settings,
        "write_schema": c.write_schema,
        "reset_scope": c.reset_scope,
        "spec": _spec_to(c.spec) if c.spec is not None else None,
    }
    if c.moved_from is not None:
        # Only on a rename, so that every other change reads as in plans made before renames existed.
        data["moved_from"] = c.moved_from
    if c.quarantine_since is not None:
        data["quarantine_since"] = c.quarantine_since
    if c.held_deletes is not None:
        data["held_deletes"] = c.held_deletes
    return data


def _change_from(d: dict[str, Any]) -> Change:
    before = d.get("before") or {}
    after = d.get("after") or {}
    fields = tuple(FieldChange(p, before.get(p), after.get(p)) for p in after if p in before)
    return Change(
        name=str(d["name"]),
        action=Action(d["action"]),
        target_id=d.get("target_id"),
        reasons=tuple(d.get("reasons") or ()),
        fields=fields,
        spec=_spec_from(d["spec"]) if d.get("spec") else None,
        write_settings=bool(d.get("write_settings")),
        write_schema=bool(d.get("write_schema")),
        reset_scope=d.get("reset_scope"),
        moved_from=d.get("moved_from"),
        quarantine_since=d.get("quarantine_since"),
        held_deletes=d.get("held_deletes"),
    )


def _status_to(name: str, s: JobStatus) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name}
    data.update(s.as_dict())
    return data


def _status_from(d: dict[str, Any]) -> tuple[str, JobStatus]:
    return str(d["name"]), JobStatus(
        code=str(d.get("code", "NotRun")),
        quarantine_reason=d.get("quarantineReason"),
        quarantine_since=d.get("quarantineSince"),
        last_run_state=d.get("lastRunState"),
        last_run_end=d.get("lastRunEnd"),
        last_error=d.get("lastError"),
    )


def _checksum(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def to_document(plan: Plan, *, tool_version: str = "") -> dict[str, Any]:
    p = plan.provenance
    doc: dict[str, Any] = {
        "kind": DOCUMENT_KIND,
        "format_version": plan.format_version,
        "tool_version": tool_version,
        "target": plan.target,
        "created_at": p.created_at,
        "commit": p.commit,
        "dirty": p.dirty,
        "user": p.user,
        "paths": list(p.paths),
        "ref": p.ref,
        "options": {
            "allow_delete": plan.options.allow_delete,
            "allow_mass_delete": plan.options.allow_mass_delete,
            "max_deletes": plan.options.max_deletes,
            "only": sorted(plan.options.only) if plan.options.only is not None else None,
        },
        "summary": plan.summary(),
        # A plan of some configurations only (--changed-since): options.only names them.
        "partial": plan.options.only is not None,
        "changes": [change_document(c) for c in plan.changes],
        "held": [
            {
                "address": h.address,
                "name": h.name,
                "action": h.action.value,
                "target_id": h.target_id,
                "reasons": list(h.reasons),
                "override": h.override,
            }
            for h in plan.held
        ],
        "warnings": list(plan.warnings),
        "unmanaged": list(plan.unmanaged),
        # Only when there are any, so that plans without them read as they always did.
        **({"unmanaged_scoping_filters": list(plan.unmanaged_scoping)} if plan.unmanaged_scoping else {}),
        "statuses": [_status_to(n, s) for n, s in plan.statuses],
        "fingerprints": dict(plan.fingerprints),
        "desired_digest": plan.desired_digest,
    }
    doc["checksum"] = _checksum(doc)
    return doc


def from_document(doc: object) -> Plan:
    """Rebuild a plan from its document; refuse anything but an unedited plan of a known version."""
    if not isinstance(doc, dict) or doc.get("kind") != DOCUMENT_KIND:
        raise PlanFileError("this is not a reconciler plan file")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"plan format version {version!r} is not supported by this version of reconciler "
            f"(it reads version {FORMAT_VERSION}); make the plan again with this version"
        )
    if doc.get("checksum") != _checksum(doc):
        raise PlanFileError(
            "the plan file was changed after it was made (checksum mismatch); make a new plan"
        )
    try:
        opts = doc["options"]
        only = opts.get("only")
        return Plan(
            target=str(doc["target"]),
            changes=tuple(_change_from(c) for c in doc["changes"]),
            held=tuple(
                Held(
                    name=str(h["name"]),
                    action=Action(h["action"]),
                    target_id=h.get("target_id"),
                    reasons=tuple(h.get("reasons") or ()),
                    override=h.get("override"),
                )
                for h in doc["held"]
            ),
            warnings=tuple(str(w) for w in doc["warnings"]),
            unmanaged=tuple(str(u) for u in doc["unmanaged"]),
            # Absent from plans made before it was shown.
            unmanaged_scoping=tuple(str(u) for u in doc.get("unmanaged_scoping_filters") or ()),
            statuses=tuple(_status_from(s) for s in doc["statuses"]),
            fingerprints=tuple(sorted((str(k), str(v)) for k, v in doc["fingerprints"].items())),
            desired_digest=str(doc["desired_digest"]),
            options=PlanOptions(
                allow_delete=bool(opts["allow_delete"]),
                allow_mass_delete=bool(opts["allow_mass_delete"]),
                max_deletes=int(opts["max_deletes"]),
                only=frozenset(only) if only is not None else None,
            ),
            provenance=Provenance(
                created_at=str(doc.get("created_at") or ""),
                commit=doc.get("commit"),
                dirty=bool(doc.get("dirty")),
                paths=tuple(doc.get("paths") or ()),
                user=doc.get("user"),
                ref=doc.get("ref"),
            ),
            format_version=int(version),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(f"the plan file is malformed: {exc!r}") from exc
