"""Reading a configuration from the service's documents: its job schema, and ``observe``. Pure: no I/O
but the embedded template schema (``template``), read once.

A job schema holds the configuration's scope and mappings in its provisioning rule: picked by its
well-known id or name; read per object type we manage, by source object name; its scope in whichever
form the schema holds it (``groupFilter``, ``containerFilter``, or the organizational-unit clauses of
the object mappings' scoping filters the portal wrote before containerFilter existed); an Entra ID ->
AD rule's attribute filters; and the scoping clauses the tool does not manage, which the plan lists.
``observe`` puts a principal, its jobs, secrets and schema together as one ``Observed``: the one
reading of a configuration, shared by every target that stores Graph shapes. The default mappings of
the embedded templates are read here too (``template_defaults``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import replace
from typing import Any, TypeVar

from reconciler.core.model import (
    OBJECT_TYPES,
    PHS_OBJECTS,
    UNARY_OPERATORS,
    Direction,
    FilterClause,
    Mapping,
    Scope,
    ScopeKind,
)
from reconciler.core.observed import JobStatus, Observed
from reconciler.graph.identity import (
    DEVICE_SYNC_TEMPLATE,
    EXCHANGE_WRITEBACK_TEMPLATE,
    GROUP_PROVISIONING_TEMPLATE,
    JSON,
    MAIN_JOB_TEMPLATES,
    PASSWORD_HASH_TEMPLATE,
    direction_of,
    find_job,
    group_assignments,
    job_enabled,
    job_status,
    main_job,
    parse_tags,
)
from reconciler.graph.mappings import attribute_mapping_to_model, is_credential_data
from reconciler.graph.secrets import DOMAIN, secrets_to_settings
from reconciler.graph.template import group_template_schema, template_schema

__all__ = [
    "OU_OPERATOR",
    "OU_SCOPE_GROUP_SUFFIX",
    "PROVISIONING_RULE_ID",
    "Reading",
    "clause_ous",
    "find_provisioning_rule",
    "is_ou_clause",
    "is_ou_group",
    "managed_object_mappings",
    "object_type",
    "object_type_named",
    "observe",
    "pick_rule",
    "read_filters",
    "read_schema",
    "read_scope",
    "reading_scope",
    "switched_off",
    "template_defaults",
    "template_defaults_for",
    "to_ad_rule",
    "unmanaged_scoping_filters",
]

# The AD -> Entra rule's id is the same in every tenant (official provisionOnDemand example, 2020 dumps).
PROVISIONING_RULE_ID = "6c409270-f78a-4bc6-af23-7cf3ab6482fe"


# Scope, effective mappings, CredentialData counts, and the scoping clauses the tool does not manage.
Reading = tuple[Scope, tuple[Mapping, ...], dict[str, int], tuple[str, ...]]

_T = TypeVar("_T")


def find_provisioning_rule(schema: AbcMapping[str, Any]) -> dict[str, Any] | None:
    """The AD2AAD provisioning rule: by its well-known id, else by name, else the first rule."""
    rules: list[dict[str, Any]] = [r for r in schema.get("synchronizationRules") or [] if isinstance(r, dict)]
    return pick_rule(rules, [r.get("id") for r in rules], [r.get("name") for r in rules])


def pick_rule(rules: Sequence[_T], ids: Sequence[Any], names: Sequence[Any]) -> _T | None:
    for rule, id in zip(rules, ids, strict=True):
        if id == PROVISIONING_RULE_ID:
            return rule
    for rule, name in zip(rules, names, strict=True):
        if name in MAIN_JOB_TEMPLATES:
            return rule
    return rules[0] if rules else None


# The directory an Entra ID -> AD rule writes to (INFERRED, cloud-sync-directions.md 1.5: no real
# schema of the job is public; the rule is also known by the job template's name).
_AD_DIRECTORY_NAME = "active directory"


def to_ad_rule(rule: AbcMapping[str, Any]) -> bool:
    """Whether ``rule`` provisions Entra ID -> AD: named after the AAD2ADGroupProvisioning job, or
    writing to the "Active Directory" directory."""
    target = rule.get("targetDirectoryName")
    return GROUP_PROVISIONING_TEMPLATE in (rule.get("id"), rule.get("name")) or (
        isinstance(target, str) and target.casefold() == _AD_DIRECTORY_NAME
    )


_OBJECT_BY_FOLDED = {o.casefold(): o for o in OBJECT_TYPES}


def object_type_named(name: Any) -> str | None:
    """The object type we manage that source object name ``name`` names (in any case); else None."""
    return _OBJECT_BY_FOLDED.get(name.casefold()) if isinstance(name, str) else None


def object_type(object_mapping: AbcMapping[str, Any]) -> str | None:
    """The object type we manage that ``object_mapping`` maps; else None."""
    # Matched on the source object name: display names of object mappings differ between tenants.
    return object_type_named(object_mapping.get("sourceObjectName"))


def managed_object_mappings(rule: AbcMapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The first object mapping of each object type we manage, by object type."""
    found: dict[str, dict[str, Any]] = {}
    for om in rule.get("objectMappings") or []:
        obj = object_type(om)
        if obj is not None and obj not in found:
            found[obj] = om
    return found


def switched_off(om: AbcMapping[str, Any], to_ad: bool) -> bool:
    """An Entra ID -> AD object mapping switched off (users, while that preview is not asked for) is
    not read: it provisions nothing. AD -> Entra ID ones are read as they are."""
    return to_ad and om.get("enabled") is False


def _read_object_mappings(rule: AbcMapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The object mappings read for scope and mappings: ``managed_object_mappings`` but the disabled."""
    to_ad = to_ad_rule(rule)
    return {obj: om for obj, om in managed_object_mappings(rule).items() if not switched_off(om, to_ad)}


# The organizational-unit scope as the portal wrote it before containerFilter existed (and as a real
# 2020 schema holds it): an input-filter group of the object mapping named like
# "DefaultUserExclusions.0.UX-OrganizationalGroup-Scope", whose clauses are the default exclusions plus
# one "distinguishedName ENDS_WITH <OU>". Clauses of one group must all hold and any one group may
# match, so each OU has a group of its own.
OU_SCOPE_GROUP_SUFFIX = "UX-OrganizationalGroup-Scope"
OU_OPERATOR = "ENDS_WITH"
_OU_ATTRIBUTE = "distinguishedname"


def is_ou_group(group: Any) -> bool:
    return isinstance(group, AbcMapping) and str(group.get("name") or "").endswith(OU_SCOPE_GROUP_SUFFIX)


def is_ou_clause(clause: Any) -> bool:
    return (
        isinstance(clause, AbcMapping)
        and clause.get("operatorName") == OU_OPERATOR
        and str(clause.get("sourceOperandName") or "").casefold() == _OU_ATTRIBUTE
    )


def clause_ous(scope: Any) -> list[str]:
    """The OUs an object mapping's scope names in the clause form, in order."""
    if not isinstance(scope, AbcMapping):
        return []
    found: list[str] = []
    for group in scope.get("inputFilterGroups") or []:
        if not is_ou_group(group):
            continue
        for clause in group.get("clauses") or []:
            if is_ou_clause(clause):
                found += [str(v) for v in _operand_values(clause)]
    return found


def _default_clauses() -> frozenset[tuple[str, str, str, tuple[str, ...]]]:
    """The default exclusion clauses of the embedded template (built from a real schema), per object
    type: the clauses every configuration holds, which the plan does not list."""
    global _DEFAULT_CLAUSES
    if _DEFAULT_CLAUSES is None:
        rule = find_provisioning_rule(template_schema())
        found: set[tuple[str, str, str, tuple[str, ...]]] = set()
        for obj, om in managed_object_mappings(rule or {}).items():
            for group in (om.get("scope") or {}).get("inputFilterGroups") or []:
                found.update(
                    _clause_key(obj, c) for c in group.get("clauses") or [] if isinstance(c, AbcMapping)
                )
        _DEFAULT_CLAUSES = frozenset(found)
    return _DEFAULT_CLAUSES


_DEFAULT_CLAUSES: frozenset[tuple[str, str, str, tuple[str, ...]]] | None = None


def _operand_values(clause: AbcMapping[str, Any]) -> list[Any]:
    """A filter clause's ``targetOperand.values``; none when the service sent something else there."""
    operand = clause.get("targetOperand")
    values = operand.get("values") if isinstance(operand, AbcMapping) else None
    return values if isinstance(values, list) else []


def _clause_key(obj: str, clause: AbcMapping[str, Any]) -> tuple[str, str, str, tuple[str, ...]]:
    # A clause the service or a hand edit wrote oddly (an operand that is not an object, values that are
    # not a list) is still a clause the tool does not manage; it must be listed, not crash the read.
    values = _operand_values(clause)
    return (
        obj,
        str(clause.get("operatorName") or ""),
        str(clause.get("sourceOperandName") or "").casefold(),
        tuple(str(v) for v in values),
    )


def unmanaged_scoping_filters(scopes: Iterable[tuple[str, Any]]) -> tuple[str, ...]:
    """The scoping-filter clauses of the object mappings ``scopes`` (object type, ``scope``) that the
    tool does not manage, as text (``user: department EQUALS "Sales"``): every input-filter clause but
    the OU clauses of the scope and the template's default exclusions. They are kept as they are on
    every write; the plan shows them so that a reviewer knows they narrow the scope too."""
    defaults = _default_clauses()
    found: list[str] = []
    for obj, scope in scopes:
        if not isinstance(scope, AbcMapping):
            continue
        for group in scope.get("inputFilterGroups") or []:
            if not isinstance(group, AbcMapping):
                continue
            ou_group = is_ou_group(group)
            for clause in group.get("clauses") or []:
                if not isinstance(clause, AbcMapping) or (ou_group and is_ou_clause(clause)):
                    continue
                key = _clause_key(obj, clause)
                if key in defaults:
                    continue
                values = " ".join(json.dumps(v, ensure_ascii=False) for v in key[3])
                text = f"{obj}: {clause.get('sourceOperandName')} {key[1]}" + (f" {values}" if values else "")
                if text not in found:
                    found.append(text)
    return tuple(found)


def read_scope(rule: AbcMapping[str, Any], scopes: Iterable[Any] = ()) -> Scope:
    """The scope in whichever form the schema holds it: ``groupFilter``, ``containerFilter``, or the
    OU clauses of the object mappings' scoping filters (``scopes``)."""
    containers = list((rule.get("containerFilter") or {}).get("includedContainers") or [])
    groups = list((rule.get("groupFilter") or {}).get("includedGroups") or [])
    # The service treats the two as mutually exclusive; should both be set, groups are reported and
    # the next write settles it.
    if groups:
        return Scope(ScopeKind.GROUPS, tuple(str(g) for g in groups))
    if containers:
        return Scope(ScopeKind.ORGANIZATIONAL_UNITS, tuple(str(c) for c in containers))
    named: dict[str, str] = {}
    for scope in scopes:
        for ou in clause_ous(scope):
            named.setdefault(ou.casefold(), ou)
    if named:
        return Scope(ScopeKind.ORGANIZATIONAL_UNITS, tuple(named.values()))
    return Scope.all()


def read_filters(scope: Any) -> tuple[tuple[FilterClause, ...], ...]:
    """An Entra ID -> AD object mapping's scoping filters: one filter per input-filter group, one
    clause per filter clause (the first value is the clause's; a unary operator has none)."""
    if not isinstance(scope, AbcMapping):
        return ()
    filters: list[tuple[FilterClause, ...]] = []
    for group in scope.get("inputFilterGroups") or []:
        if not isinstance(group, AbcMapping):
            continue
        clauses: list[FilterClause] = []
        for clause in group.get("clauses") or []:
            if not isinstance(clause, AbcMapping):
                continue
            operator = str(clause.get("operatorName") or "")
            values = _operand_values(clause)
            value = None if operator in UNARY_OPERATORS or not values else str(values[0])
            clauses.append(FilterClause(str(clause.get("sourceOperandName") or ""), operator, value))
        if clauses:
            filters.append(tuple(clauses))
    return tuple(filters)


def reading_scope(
    rule: AbcMapping[str, Any], named: Sequence[tuple[str, Any]]
) -> tuple[Scope, tuple[str, ...]]:
    """The scope a schema holds and its scoping clauses the tool does not manage. An Entra ID -> AD
    rule holds only the attribute filters (of its group object mapping): its selected groups are
    app-role assignments, read apart (``group_assignments``)."""
    if to_ad_rule(rule):
        group = next((scope for obj, scope in named if obj == "group"), None)
        return Scope(ScopeKind.ALL, (), read_filters(group)), ()
    return read_scope(rule, [scope for _, scope in named]), unmanaged_scoping_filters(named)


def read_schema(schema: AbcMapping[str, Any]) -> Reading:
    """Scope, effective mappings (without CredentialData), CredentialData count per PHS object, and
    the scoping clauses the tool does not manage (``unmanaged_scoping_filters``).

    The count is given for every PHS object type and for any other object type that has one.
    """
    rule = find_provisioning_rule(schema)
    if rule is None:
        return Scope.all(), (), {}, ()
    mappings: list[Mapping] = []
    managed = _read_object_mappings(rule)
    # Only object mappings the schema has can hold the password-hash row.
    counts: dict[str, int] = {obj: 0 for obj in PHS_OBJECTS if obj in managed}
    for obj, om in managed.items():
        for am in om.get("attributeMappings") or []:
            if is_credential_data(am.get("targetAttributeName")):
                counts[obj] = counts.get(obj, 0) + 1
            else:
                mappings.append(attribute_mapping_to_model(obj, am))
    named = [(obj, om.get("scope")) for obj, om in managed.items()]
    scope, unmanaged = reading_scope(rule, named)
    return scope, tuple(mappings), counts, unmanaged


@functools.cache
def template_defaults() -> tuple[Mapping, ...]:
    """The AD2AADProvisioning template's default mappings, without CredentialData."""
    return read_schema(template_schema())[1]


@functools.cache
def template_defaults_for(direction: Direction) -> tuple[Mapping, ...]:
    """The default mappings of the job a configuration of ``direction`` runs."""
    if direction is Direction.AD_TO_ENTRA:
        return template_defaults()
    # Every object type's rows, users' (preview) too: a job's user object mapping starts switched off,
    # and is not read while it is, but a configuration that asks for users gets these rows.
    schema = group_template_schema()
    for rule in schema.get("synchronizationRules") or []:
        for om in rule.get("objectMappings") or []:
            om["enabled"] = True
    return read_schema(schema)[1]


def observe(
    sp: JSON,
    jobs: list[JSON],
    secrets: list[JSON],
    schema: JSON | None,
    *,
    reading: Reading | None = None,
    assignments: Sequence[AbcMapping[str, Any]] = (),
) -> Observed | None:
    """The configuration ``sp`` holds, given its jobs, secrets and provisioning schema; None when ``sp``
    is not one. The one reading of a configuration, shared by every target that stores Graph shapes.

    ``reading``: ``read_schema(schema)``, when the caller has it already (``schema`` may then be None).
    ``assignments``: an Entra ID -> AD principal's ``appRoleAssignedTo`` (its selected groups).
    """
    tags = parse_tags(sp.get("tags") or [])
    provisioning = main_job(jobs)
    if provisioning is None and not tags.managed:
        return None
    direction = direction_of(sp, jobs)
    scope: Scope = Scope.all()
    mappings: tuple[Mapping, ...] = ()
    counts: dict[str, int] = {}
    scoping_filters: tuple[str, ...] = ()
    if reading is None and schema is not None:
        reading = read_schema(schema)
    settings = replace(
        secrets_to_settings(
            secrets,
            enabled=provisioning is not None and job_enabled(provisioning),
            password_hash_job=find_job(jobs, PASSWORD_HASH_TEMPLATE) is not None,
        ),
        # An add-on job is on when it exists on the principal (off deletes it, as for password hash sync).
        exchange_hybrid_writeback=find_job(jobs, EXCHANGE_WRITEBACK_TEMPLATE) is not None,
        device_sync=find_job(jobs, DEVICE_SYNC_TEMPLATE) is not None,
    )
    if provisioning is None or reading is None:
        status = JobStatus(code="NotConfigured") if provisioning is None else job_status(provisioning)
    else:
        scope, mappings, counts, scoping_filters = reading
        status = job_status(provisioning)
    if direction is Direction.ENTRA_TO_AD:
        selected = group_assignments(assignments)
        if selected:
            scope = Scope(ScopeKind.SELECTED_GROUPS, selected, scope.filters)
        settings = replace(
            settings,
            direction=direction,
            # The user object mapping is read only while it is switched on (users to AD, preview).
            preview_users=any(m.object == "user" for m in mappings),
        )
    # create writes the Domain secret last: without it the create did not finish.
    complete = provisioning is not None and any(s.get("key") == DOMAIN for s in secrets)
    return Observed(
        id=str(sp["id"]),
        name=tags.name if tags.managed else None,
        managed=tags.managed,
        settings=settings,
        scope=scope,
        mappings=mappings,
        status=status,
        deletion_protection=tags.managed and tags.deletion_protection,
        restart_token=tags.restart_token if tags.managed else None,
        credential_data_count=counts,
        complete=complete or not tags.managed,
        restart_pending=tags.managed and tags.restart_pending,
        deletes_approved=tags.deletes_approved if tags.managed else None,
        jobs=tuple((str(job.get("templateId") or job.get("id")), job_status(job)) for job in jobs),
        unmanaged_scoping=scoping_filters,
    )
