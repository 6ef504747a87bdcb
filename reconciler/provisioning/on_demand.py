"""On-demand provisioning in the embedded tenant: one on-premises object through the service's steps.

The Graph ``provisionOnDemand`` action takes one subject (for Cloud Sync, a DN) and answers with a
``stringKeyStringValuePair`` whose two fields are JSON text: ``key`` is ``{"result", "details"}`` and
``value`` the provisioning log (``provisioningSteps``, ``modifiedProperties``, ``action``, ...). This
module gives the same answer for the local tenant, running the steps the service reports:

1. Import: the object is read from the tenant's on-premises directory by DN. A DN that is not there,
   or an object of another type, fails the run here.
2. Scoping: the configuration's scope (OUs, or direct members of groups) is evaluated and reported.
   The service documents that on-demand provisioning does *not* apply scoping ("you can use on-demand
   provisioning on users who are outside the organization units that you specified"), so by default
   an object out of scope is reported as such and provisioned anyway. ``apply_scoping=True`` does what
   a scheduled cycle would do instead: the run stops with result ``Skipped`` (NotEffectivelyEntitled).
3. Matching: the matching mappings (``matchingPriority`` > 0, lowest first; the template matches
   ``onPremisesObjectIdentifier`` on ``objectGUID``) are evaluated and looked up among the tenant's
   cloud objects of the target type. No match means a create; two or more fail the run.
4. Export: the effective mappings, read from the job schema, are evaluated (``evaluate``) as a
   create or an update, the cloud object is written, and every changed target attribute is reported
   with its old and new value. An expression that calls ``Error("...")`` fails the step with that
   message and nothing is written; an update that changes nothing is ``Skipped`` (RedundantExport).

Error codes the service documents are used where they fit (NotEffectivelyEntitled, RedundantExport);
the others (ObjectNotFound, ObjectTypeMismatch, ObjectTypeNotProvisioned, AmbiguousMatch,
ExpressionRaisedError, ExpressionEvaluationFailed) are this tenant's own. Multi-valued values are
reported as a JSON-style list of strings.

I/O: the tenant store only, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.model import OBJECT_TYPES
from reconciler.errors import NotFoundError, ProviderError
from reconciler.graph.identity import PROVISIONING_TEMPLATE, find_job
from reconciler.graph.reading import find_provisioning_rule, read_schema
from reconciler.graph.secrets import secrets_to_settings
from reconciler.provisioning.evaluate import (
    Evaluation,
    MappingEvaluator,
    Outcome,
    OutcomeKind,
    ScopeMatcher,
    SourceValue,
    TargetValue,
    normalize_attributes,
    show_value,
)
from reconciler.tenant.store import TenantStore

__all__ = [
    "FAILURE",
    "SKIPPED",
    "SOURCE_SYSTEM",
    "SUCCESS",
    "TARGET_SYSTEM",
    "Run",
    "fail_on_errors",
    "job_of",
    "provision_on_demand",
    "provision_request",
    "stamp",
    "utc_now",
]

JSON = dict[str, Any]

SOURCE_SYSTEM = "Active Directory"
TARGET_SYSTEM = "Azure Active Directory"

SUCCESS, SKIPPED, FAILURE = "Success", "Skipped", "Failure"

_FOLDED_TYPES = {t.casefold(): t for t in OBJECT_TYPES}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Run:
    """One on-demand run: the steps taken so far and what the response will say."""

    clock: Callable[[], dt.datetime]
    subject: str
    object_type: str
    started: str = ""
    steps: list[JSON] = field(default_factory=list)
    modified: list[JSON] = field(default_factory=list)
    result: str = SUCCESS
    details: JSON = field(default_factory=dict)
    status_info: JSON = field(default_factory=lambda: {"status": SUCCESS})
    action: str = "Other"
    reportable: str = ""
    source_id: str | None = None
    target_id: str | None = None
    target_type: str | None = None
    display_name: str | None = None
    # The two directories, as the response names them (the other direction swaps them).
    source: str = SOURCE_SYSTEM
    target: str = TARGET_SYSTEM

    def step(self, name: str, kind: str, status: str, description: str, details: JSON | None = None) -> None:
        self.steps.append(
            {
                "name": name,
                "type": kind,
                "status": status,
                "description": description,
                "timestamp": stamp(self.clock()),
                "details": details or {},
            }
        )

    def stop(
        self, result: str, code: str, message: str, *, action: str = "Other", more: str | None = None
    ) -> None:
        self.result = result
        self.action = action
        self.details = {"errorCode": code, "errorMessage": message}
        self.status_info = {
            "status": result,
            "errorCode": code,
            "reason": message,
            "additionalDetails": more,
            "errorCategory": "NonServiceFailure" if result == FAILURE else None,
            "recommendedAction": _RECOMMENDED.get(code),
        }

    def response(self) -> JSON:
        log = {
            "action": self.action,
            "changeId": str(uuid.uuid4()),
            "startTime": self.started,
            "endTime": stamp(self.clock()),
            "modifiedProperties": self.modified,
            "provisioningSteps": self.steps,
            "reportableIdentifier": self.reportable or self.subject,
            "sourceIdentity": {
                "id": self.source_id,
                "type": self.object_type,
                "displayName": self.display_name,
                "details": None,
            },
            "sourceSystem": {"id": None, "name": self.source, "details": None},
            "statusInfo": self.status_info,
            "targetIdentity": {
                "id": self.target_id,
                "type": self.target_type,
                "displayName": self.display_name,
                "details": None,
            },
            "targetSystem": {"id": None, "name": self.target, "details": None},
        }
        key = {"result": self.result, "details": self.details}
        return {"key": _dumps(key), "value": _dumps(log)}


_RECOMMENDED = {
    "ObjectNotFound": "Check the distinguished name, or load the object into the on-premises directory.",
    "ObjectTypeMismatch": "Provision the object with its own type (--type).",
    "ExpressionRaisedError": "Give the object the attributes the expression needs, or change the mapping.",
    "ExpressionEvaluationFailed": "Fix the mapping expression, or the attribute values it reads.",
    "AmbiguousMatch": "Remove the duplicate cloud objects, or choose a matching attribute that is unique.",
}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _reportable(attributes: Mapping[str, SourceValue], dn: str) -> str:
    for name in ("userPrincipalName", "displayName", "cn"):
        value = attributes.get(name)
        if isinstance(value, str) and value:
            return value
    return dn


def _object_mapping(schema: Mapping[str, Any], object_type: str) -> JSON | None:
    rule = find_provisioning_rule(schema)
    for om in (rule or {}).get("objectMappings") or []:
        source = om.get("sourceObjectName")
        if isinstance(source, str) and source.casefold() == object_type.casefold():
            return dict(om)
    return None


def _same(a: TargetValue, b: TargetValue) -> bool:
    # Matching values compare as the directory compares them: case-insensitively.
    def folded(value: TargetValue) -> set[str]:
        if value is None:
            return set()
        return {value.casefold()} if isinstance(value, str) else {v.casefold() for v in value}

    return bool(folded(a) & folded(b))


def _error_text(outcome: Outcome) -> str:
    return f"{outcome.target}: {outcome.error}"


def fail_on_errors(run: Run, evaluation: Evaluation, step_name: str, kind: str) -> bool:
    errors = evaluation.errors
    if not errors:
        return False
    first = errors[0]
    code = "ExpressionRaisedError" if first.raised else "ExpressionEvaluationFailed"
    message = first.error or "the expression failed"
    described = f"The mapping of {first.target} failed: {message}"
    run.step(step_name, kind, FAILURE, described, {o.target: o.error or "" for o in errors})
    more = "; ".join(_error_text(o) for o in errors) if len(errors) > 1 else None
    run.stop(FAILURE, code, message, action="Other", more=more)
    return True


def _import(run: Run, store: TenantStore) -> dict[str, SourceValue] | None:
    found = store.get_onprem_object(run.subject)
    if found is None:
        message = f"No object with the distinguished name '{run.subject}' was found in {SOURCE_SYSTEM}"
        run.step("EntryImport", "Import", FAILURE, message)
        run.stop(FAILURE, "ObjectNotFound", message)
        return None
    attributes = normalize_attributes(found["attributes"])
    run.reportable = _reportable(attributes, found["dn"])
    display = attributes.get("displayName")
    run.display_name = display if isinstance(display, str) else run.reportable
    guid = attributes.get("objectGUID")
    run.source_id = guid if isinstance(guid, str) else None
    details = {name: show_value(value) for name, value in attributes.items()}
    if found["objectType"] != run.object_type:
        message = f"'{found['dn']}' is a {found['objectType']}, not a {run.object_type}"
        run.step("EntryImport", "Import", FAILURE, message, details)
        run.stop(FAILURE, "ObjectTypeMismatch", message)
        return None
    run.step(
        "EntryImport",
        "Import",
        SUCCESS,
        f"Retrieved {run.object_type} '{run.reportable}' from {SOURCE_SYSTEM}",
        details,
    )
    return attributes


def _matching(
    run: Run, store: TenantStore, evaluator: MappingEvaluator, attributes: Mapping[str, SourceValue]
) -> tuple[bool, JSON | None]:
    """(go on, matched cloud object)."""
    assert run.target_type is not None
    matchers = sorted(
        (m for m in evaluator.mappings if m.matching_priority > 0), key=lambda m: m.matching_priority
    )
    as_create = evaluator.evaluate(attributes, create=True).by_target()
    candidates = store.list_cloud_objects(run.target_type)
    tried: list[str] = []
    for m in matchers:
        outcome = as_create[m.target]
        if outcome.kind is OutcomeKind.ERROR:
            evaluation = Evaluation((outcome,))
            fail_on_errors(run, evaluation, "EntryImport", "Matching")
            return False, None
        if outcome.value is None:
            tried.append(f"{m.target} (no value)")
            continue
        hits = [c for c in candidates if _same(c["attributes"].get(m.target), outcome.value)]
        shown = show_value(outcome.value)
        if len(hits) > 1:
            ids = ", ".join(h["id"] for h in hits)
            message = (
                f"{len(hits)} {run.target_type} objects in {TARGET_SYSTEM} match on {m.target} = '{shown}'"
            )
            run.step("EntryImport", "Matching", FAILURE, message, {"matchingIds": ids})
            run.stop(FAILURE, "AmbiguousMatch", message)
            return False, None
        if hits:
            hit = hits[0]
            run.target_id = hit["id"]
            details = {name: show_value(value) for name, value in hit["attributes"].items()}
            run.step(
                "EntryImport",
                "Matching",
                SUCCESS,
                f"Retrieved {run.target_type} '{run.reportable}' from {TARGET_SYSTEM}, "
                f"matched on {m.target} = '{shown}'",
                details,
            )
            return True, hit
        tried.append(f"{m.target} = '{shown}'")
    looked = "; ".join(tried) if tried else "no matching attribute is mapped"
    run.step(
        "EntryImport",
        "Matching",
        SUCCESS,
        f"No {run.target_type} in {TARGET_SYSTEM} matches ({looked}); it will be created",
        {"matchingAttributes": ", ".join(m.target for m in matchers)},
    )
    return True, None


def _export(
    run: Run,
    store: TenantStore,
    evaluator: MappingEvaluator,
    attributes: Mapping[str, SourceValue],
    match: JSON | None,
) -> None:
    assert run.target_type is not None
    create = match is None
    name = "EntryExportAdd" if create else "EntryExportUpdate"
    evaluation = evaluator.evaluate(attributes, create=create)
    if fail_on_errors(run, evaluation, name, "Export"):
        run.action = "Create" if create else "Update"
        return
    old: dict[str, Any] = dict(match["attributes"]) if match is not None else {}
    new = dict(old)
    for outcome in evaluation.outcomes:
        if not outcome.flows:
            continue
        if outcome.value is None:
            new.pop(outcome.target, None)
        else:
            new[outcome.target] = outcome.value
    changed = sorted(
        (t for t in set(old) | set(new) if old.get(t) != new.get(t)), key=lambda t: (t.casefold(), t)
    )
    run.modified = [
        {"displayName": t, "oldValue": show_value(old.get(t)), "newValue": show_value(new.get(t))}
        for t in changed
    ]
    noun = run.object_type
    if not create and not changed:
        message = f"The state of the {noun} in both the source and target systems already match."
        run.step(
            "EntrySynchronizationSkip",
            "Export",
            SKIPPED,
            f"{message} No change to the {run.target_type} '{run.reportable}' currently needs to be made.",
            {"SkipReason": "RedundantExport"},
        )
        run.stop(SKIPPED, "RedundantExport", message)
        return
    target_id = run.target_id or str(uuid.uuid4())
    store.put_cloud_object(target_id, run.target_type, new)
    run.target_id = target_id
    run.action = "Create" if create else "Update"
    done = "created" if create else "updated"
    run.step(
        name,
        "Export",
        SUCCESS,
        f"{run.target_type} '{run.reportable}' was {done} in {TARGET_SYSTEM}",
        {"id": target_id},
    )


def _netbios(domain: str) -> str:
    # The service takes DomainNetBios from the agent; a domain's first label, upper-cased, is the
    # usual NetBIOS name and the best the local tenant can do.
    return domain.split(".", 1)[0].upper() if domain else ""


def provision_on_demand(
    store: TenantStore,
    sp_id: str,
    subject: str,
    object_type: str = "user",
    *,
    apply_scoping: bool = False,
    now: Callable[[], dt.datetime] | None = None,
) -> dict[str, str]:
    """Provision ``subject`` (a DN) with configuration ``sp_id``; returns ``{"key": ..., "value": ...}``.

    Problems of the object (not found, out of scope with ``apply_scoping``, an expression error) are
    reported in the response, as the service does. A configuration that does not exist, or has no
    provisioning job, raises ``NotFoundError``; an unknown object type raises ``ProviderError`` (400).
    """
    canonical = _FOLDED_TYPES.get(object_type.casefold())
    if canonical is None:
        raise ProviderError(
            f"objectTypeName {object_type!r} is not one of {', '.join(OBJECT_TYPES)}",
            code="BadRequest",
            status=400,
        )
    clock = now or utc_now
    run = Run(clock=clock, subject=subject, object_type=canonical)
    run.started = stamp(clock())
    with store.transaction():
        job = job_of(store, sp_id, PROVISIONING_TEMPLATE)
        schema = store.get_schema_rules(sp_id, job["id"])
        settings = secrets_to_settings(store.get_secrets(sp_id), enabled=True)
        _run_steps(run, store, schema, settings.domain, apply_scoping, now)
    return run.response()


def job_of(store: TenantStore, sp_id: str, template_id: str) -> dict[str, Any]:
    """Configuration ``sp_id``'s job of ``template_id``; ``NotFoundError`` (404) when it has none."""
    job = find_job(store.list_jobs(sp_id), template_id)
    if job is None:
        raise NotFoundError(f"configuration {sp_id} has no {template_id} job", code="NotFound", status=404)
    return job


def _run_steps(
    run: Run,
    store: TenantStore,
    schema: Mapping[str, Any],
    domain: str,
    apply_scoping: bool,
    now: Callable[[], dt.datetime] | None,
) -> None:
    attributes = _import(run, store)
    if attributes is None:
        return
    object_mapping = _object_mapping(schema, run.object_type)
    if object_mapping is None or object_mapping.get("enabled") is False:
        message = f"The configuration does not provision {run.object_type} objects"
        run.step("EntrySynchronizationScoping", "Scoping", SKIPPED, message)
        run.stop(SKIPPED, "ObjectTypeNotProvisioned", message)
        return
    run.target_type = str(object_mapping.get("targetObjectName") or run.object_type)
    scope, mappings, *_ = read_schema(schema)
    decision = ScopeMatcher(scope).check(run.subject, store.member_of(run.subject))
    scoping_details = {
        "Active in the source system": "True",
        "Scoping filter evaluation passed": "True" if decision.in_scope else "False",
        "Scope": decision.reason,
        "Scoping applied": "True" if apply_scoping else "False (on-demand provisioning ignores scoping)",
    }
    if not decision.in_scope and apply_scoping:
        message = f"The {run.object_type} is not in scope: {decision.reason}"
        run.step("EntrySynchronizationScoping", "Scoping", SKIPPED, message, scoping_details)
        run.stop(SKIPPED, "NotEffectivelyEntitled", message)
        return
    description = (
        f"Determine if {run.object_type} in scope by evaluating against each scoping filter: in scope"
        if decision.in_scope
        else f"The {run.object_type} is out of scope ({decision.reason}); on-demand provisioning "
        "does not apply scoping, so it is provisioned anyway"
    )
    run.step("EntrySynchronizationScoping", "Scoping", SUCCESS, description, scoping_details)
    evaluator = MappingEvaluator(
        mappings,
        object_type=run.object_type,
        parameters={"DomainFQDN": domain, "DomainNetBios": _netbios(domain)},
        now=now,
    )
    go_on, match = _matching(run, store, evaluator, attributes)
    if go_on:
        _export(run, store, evaluator, attributes, match)


def provision_request(store: TenantStore, sp_id: str, job_id: str, body: Mapping[str, Any]) -> dict[str, str]:
    """The Graph action itself: ``POST …/jobs/{jobId}/provisionOnDemand`` with its request ``body``.

    One parameter with one subject is supported (the Cloud Sync form); its ``ruleId`` must be the job
    schema's provisioning rule.
    """
    parameters = body.get("parameters") if isinstance(body, Mapping) else None
    if not isinstance(parameters, list) or len(parameters) != 1 or not isinstance(parameters[0], Mapping):
        raise _bad_request("parameters must hold exactly one synchronizationJobApplicationParameters")
    parameter = parameters[0]
    subjects = parameter.get("subjects")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], Mapping):
        raise _bad_request("subjects must hold exactly one synchronizationJobSubject")
    subject = subjects[0]
    object_id, type_name = subject.get("objectId"), subject.get("objectTypeName")
    if not isinstance(object_id, str) or not object_id:
        raise _bad_request("objectId must be the distinguished name of the object")
    if not isinstance(type_name, str) or not type_name:
        raise _bad_request("objectTypeName is required (user, group, ...)")
    with store.transaction():
        job = store.get_job(sp_id, job_id)
        if job.get("templateId") != PROVISIONING_TEMPLATE:
            raise _bad_request(f"job {job_id} does not support provisioning on demand")
        rule = find_provisioning_rule(store.get_schema_rules(sp_id, job_id))
        rule_id = parameter.get("ruleId")
        if rule is None or rule_id != rule.get("id"):
            raise _bad_request(f"ruleId {rule_id!r} is not a rule of job {job_id}")
        return provision_on_demand(store, sp_id, object_id, type_name)


def _bad_request(message: str) -> ProviderError:
    return ProviderError(message, code="BadRequest", status=400)
