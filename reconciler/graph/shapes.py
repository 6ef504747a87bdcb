"""Conversions between the domain model and the synchronization service's JSON shapes. Pure: no I/O.

The local provider, the Graph provider and the Graph emulator all hold a configuration the way the
service does (``graph-sync-api.md``): a service principal made from the AD2AAD template, its jobs, its
secrets and the provisioning job's schema. This module is the one place that knows how those shapes
map onto ``Settings``, ``Scope``, ``Mapping`` and ``JobStatus``.

Writes are read-modify-write: every function that produces a service document takes the current one
and changes only what the model manages, so fields, keys, rules and tags we do not know survive.
Nothing here mutates its arguments.

The ``check_*`` functions refuse a document from the service that the rest of this module would
misread: a missing id, a field of the wrong type, or a member of an enum it interprets (schedule
state, mapping source type, flow type) that the v1.0 metadata does not list. Guessing there could
mean overwriting a mapping we do not understand, or a second configuration.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar

import msgspec
import orjson

from reconciler.core.model import (
    CREDENTIAL_DATA,
    DEFAULT_DELETE_THRESHOLD,
    OBJECT_TYPES,
    PHS_OBJECTS,
    UNARY_OPERATORS,
    ApplyMode,
    Direction,
    FilterClause,
    JobStatus,
    Mapping,
    MappingKind,
    Observed,
    Scope,
    ScopeKind,
    Settings,
)
from reconciler.errors import ExpressionError, ProviderError

__all__ = [
    "APP_KEY",
    "DEVICE_SYNC_TEMPLATE",
    "DOMAIN",
    "EXCHANGE_SCHEMA_ATTRIBUTE",
    "EXCHANGE_WRITEBACK_TEMPLATE",
    "GROUP_PROVISIONING_TEMPLATE",
    "GROUP_TEMPLATE_APP_ID",
    "JSON",
    "MAIN_JOB_TEMPLATES",
    "MANAGED_SECRET_KEYS",
    "MANAGED_TAG",
    "PASSWORD_HASH_TEMPLATE",
    "PROVISIONING_RULE_ID",
    "PROVISIONING_TEMPLATE",
    "SYNC_NOTIFICATION_SETTINGS",
    "TEMPLATE_APP_ID",
    "OwnTags",
    "attribute_mapping_to_model",
    "check_and_read_schema",
    "check_and_read_schema_text",
    "check_job",
    "check_schema",
    "check_secrets",
    "check_service_principal",
    "direction_of",
    "edit_schema",
    "exchange_schema_present",
    "find_job",
    "find_provisioning_rule",
    "from_template",
    "group_assignments",
    "job_enabled",
    "job_status",
    "job_template_for",
    "main_job",
    "missing_object_mappings",
    "model_to_attribute_mapping",
    "on_demand_subject",
    "parse_tags",
    "password_hash_attribute_mapping",
    "read_schema",
    "secrets_to_settings",
    "selected_group_role",
    "set_password_hash_mappings",
    "settings_to_secrets",
    "tags_for",
    "template_app_id",
    "unmanaged_scoping_filters",
    "without_annotations",
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
# The AD -> Entra rule's id is the same in every tenant (official provisionOnDemand example, 2020 dumps).
PROVISIONING_RULE_ID = "6c409270-f78a-4bc6-af23-7cf3ab6482fe"

DOMAIN = "Domain"
APP_KEY = "AppKey"
SYNC_NOTIFICATION_SETTINGS = "SyncNotificationSettings"
MANAGED_SECRET_KEYS: tuple[str, ...] = (DOMAIN, APP_KEY, SYNC_NOTIFICATION_SETTINGS)

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


_DELETION_PROTECTION_TAG = "reconciler:deletionProtection"
_RESTART_PREFIX = "reconciler:restartToken="
# Set before a change that needs a restart, cleared by the restart: a crash in between stays visible.
_RESTART_PENDING_TAG = "reconciler:restartPending"
# The start of the TooManyDeletes quarantine whose held deletes an approveDeletes apply released.
_DELETES_APPROVED_PREFIX = "reconciler:deletesApproved="

# flowType values the model can express; others (MultiValueAddOnly, ...) read as "always" and are kept
# verbatim on write as long as the mapping is not changed.
_FLOW_ALWAYS = "Always"
_FLOW_ON_CREATE = "ObjectAddOnly"


# --------------------------------------------------------------------------------------------------
# attribute mappings


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    inner = text.strip()
    if len(inner) >= 2 and inner[0] == inner[-1] == '"':
        inner = inner[1:-1]
    out: list[str] = []
    escaped = False
    for ch in inner:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    if escaped:
        out.append("\\")
    return "".join(out)


def _source_to_kind_value(source: AbcMapping[str, Any]) -> tuple[MappingKind, str]:
    kind = source.get("type") or "Attribute"
    expression = source.get("expression")
    name = source.get("name")
    if kind == "Attribute":
        if name:
            return MappingKind.DIRECT, str(name)
        text = str(expression or "").strip()
        return MappingKind.DIRECT, text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if kind == "Constant":
        # Special constants such as %DomainFQDN% come with a name and a null expression.
        if name is not None:
            return MappingKind.CONSTANT, str(name)
        return MappingKind.CONSTANT, _unquote(str(expression or ""))
    # The service echoes the expression text it was given; the tree is only the fallback.
    if isinstance(expression, str) and expression.strip():
        return MappingKind.EXPRESSION, expression
    from reconciler.expressions import from_service_tree

    try:
        return MappingKind.EXPRESSION, from_service_tree(dict(source))
    except ExpressionError as exc:
        # A function the service sent without its text, in a tree that makes no expression.
        raise _refuse("a function mapping", f"its tree is not an expression ({exc})") from exc


# Mappings repeat across configurations (template defaults, shared mapping sets): reading a tenant
# builds each distinct one once. Values are immutable, so sharing them is safe.
_MAPPING_CACHE: dict[tuple[Any, ...], Mapping] = {}
_MAPPING_CACHE_MAX = 200_000


def attribute_mapping_to_model(object_type: str, data: AbcMapping[str, Any]) -> Mapping:
    """One service ``attributeMapping`` as a model ``Mapping`` of ``object_type``.

    A mapping without a source (the portal's "None" type, filled from ``defaultValue`` only) has no
    model kind of its own; it reads as an empty constant with that default.
    """
    # The key the schema readers look mappings up by: made of exactly typed strings and numbers, so
    # always hashable. None, or not of the common shape: not cached.
    key = _common_key(object_type, data)
    if key is _UNCOMMON:
        key = None
    if key is not None:
        cached = _MAPPING_CACHE.get(key)
        if cached is not None:
            return cached
    mapping = _attribute_mapping_to_model(object_type, data)
    if key is not None and len(_MAPPING_CACHE) < _MAPPING_CACHE_MAX:
        _MAPPING_CACHE[key] = mapping
    return mapping


def _attribute_mapping_to_model(object_type: str, data: AbcMapping[str, Any]) -> Mapping:
    source = data.get("source")
    if source is None:
        kind, value = MappingKind.CONSTANT, ""
    else:
        kind, value = _source_to_kind_value(source)
    default = data.get("defaultValue")
    return Mapping(
        object=object_type,
        target=str(data.get("targetAttributeName") or ""),
        kind=kind,
        value=value,
        default=None if default is None else str(default),
        apply=ApplyMode.ON_CREATE if data.get("flowType") == _FLOW_ON_CREATE else ApplyMode.ALWAYS,
        matching_priority=int(data.get("matchingPriority") or 0),
    )


def _model_source(mapping: Mapping) -> JSON:
    if mapping.kind is MappingKind.DIRECT:
        return {
            "expression": f"[{mapping.value}]",
            "name": mapping.value,
            "type": "Attribute",
            "parameters": [],
        }
    if mapping.kind is MappingKind.CONSTANT:
        return {
            "expression": _quote(mapping.value),
            "name": mapping.value,
            "type": "Constant",
            "parameters": [],
        }
    from reconciler.expressions import to_service_tree

    tree = dict(to_service_tree(mapping.value))
    # Keep the text as written so that reading it back gives the same value.
    tree["expression"] = mapping.value
    return tree


def model_to_attribute_mapping(mapping: Mapping) -> JSON:
    """A model ``Mapping`` as a full service ``attributeMapping``."""
    return {
        "defaultValue": mapping.default,
        "exportMissingReferences": False,
        "flowBehavior": "FlowWhenChanged",
        "flowType": _FLOW_ON_CREATE if mapping.apply is ApplyMode.ON_CREATE else _FLOW_ALWAYS,
        "matchingPriority": mapping.matching_priority,
        "targetAttributeName": mapping.target,
        "source": _model_source(mapping),
    }


def _update_attribute_mapping(existing: AbcMapping[str, Any], current: Mapping, wanted: Mapping) -> JSON:
    """``existing`` changed to say ``wanted``; fields the model does not cover are kept."""
    new = model_to_attribute_mapping(wanted)
    result = copy.deepcopy(dict(existing))
    result["source"] = new["source"]
    result["defaultValue"] = new["defaultValue"]
    result["matchingPriority"] = new["matchingPriority"]
    result["targetAttributeName"] = new["targetAttributeName"]
    if current.apply is not wanted.apply or "flowType" not in result:
        result["flowType"] = new["flowType"]
    result.setdefault("flowBehavior", new["flowBehavior"])
    result.setdefault("exportMissingReferences", False)
    return result


def password_hash_attribute_mapping() -> JSON:
    """``CredentialData <- [PasswordHash]`` exactly as the cloud-sync docs give it."""
    return {
        "defaultValue": None,
        "exportMissingReferences": False,
        "flowBehavior": "FlowWhenChanged",
        "flowType": "Always",
        "matchingPriority": 0,
        "targetAttributeName": CREDENTIAL_DATA,
        "source": {
            "expression": "[PasswordHash]",
            "name": "PasswordHash",
            "type": "Attribute",
            "parameters": [],
        },
    }


def _is_password_hash(am: AbcMapping[str, Any]) -> bool:
    source = am.get("source") or {}
    return source.get("type", "Attribute") == "Attribute" and source.get("name") == "PasswordHash"


# --------------------------------------------------------------------------------------------------
# secrets


def _secret_object(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _dump(data: AbcMapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _merged_secret(existing: str | None, ours: AbcMapping[str, Any]) -> str:
    """Our fields set into the existing JSON object; the original text is kept when nothing changes."""
    current = _secret_object(existing)
    merged = dict(current or {})
    merged.update(ours)
    if current is not None and merged == current and existing is not None:
        return existing
    return _dump(merged)


def settings_to_secrets(settings: Settings, existing: Sequence[AbcMapping[str, Any]]) -> list[JSON]:
    """The full secret set to PUT: ``existing`` with our three keys set; every other key kept in order."""
    ours: dict[str, dict[str, Any]] = {
        DOMAIN: {"domain": settings.domain},
        APP_KEY: {
            "appKeyScenario": PASSWORD_HASH_TEMPLATE if settings.password_hash_sync else PROVISIONING_TEMPLATE
        },
        SYNC_NOTIFICATION_SETTINGS: {
            "Enabled": bool(settings.notification_email),
            "Recipients": settings.notification_email,
            "DeleteThresholdEnabled": settings.accidental_deletes_enabled,
            "DeleteThresholdValue": settings.accidental_deletes_threshold,
        },
    }
    if settings.direction is Direction.ENTRA_TO_AD:
        # No AppKey seen on an Entra ID -> AD configuration (cloud-sync-directions.md 1.2, INFERRED):
        # its flags are about AD -> Entra ID sync. One already there is kept as it is.
        del ours[APP_KEY]
    elif not settings.password_hash_sync and any(item.get("key") == APP_KEY for item in existing):
        # AppKey sets tenant-wide flags (graph-sync-api.md 1d): one configuration turning password hash
        # sync off must not lower them for the tenant, so an AppKey already there is kept as it is.
        del ours[APP_KEY]
    result: list[JSON] = []
    written: set[str] = set()
    for item in existing:
        key = item.get("key")
        if key in ours and key not in written:
            assert isinstance(key, str)
            new = dict(item)
            new["value"] = _merged_secret(item.get("value"), ours[key])
            result.append(new)
            written.add(key)
        elif key in ours:
            continue  # a duplicate of a key we manage: the first copy is the one that counts
        else:
            result.append(copy.deepcopy(dict(item)))
    for key in MANAGED_SECRET_KEYS:
        if key not in written and key in ours:
            result.append({"key": key, "value": _dump(ours[key])})
    return result


def secrets_to_settings(
    secrets: Iterable[AbcMapping[str, Any]],
    *,
    enabled: bool,
    password_hash_job: bool = False,
) -> Settings:
    """``Settings`` from the secret set. ``enabled`` comes from the job schedule, not from secrets.

    Password hash sync is the configuration's own: whether it has an ``AD2AADPasswordHash`` job
    (``password_hash_job``, given by the caller); its CredentialData rows are checked by the planner
    (``Observed.credential_data_count``). ``AppKey`` is not read for it: it sets tenant-wide flags and
    is never lowered for one configuration (``settings_to_secrets``).
    """
    values: dict[str, str | None] = {}
    for item in secrets:
        key = item.get("key")
        if isinstance(key, str) and key not in values:
            values[key] = item.get("value")
    domain = _secret_object(values.get(DOMAIN)) or {}
    notify = _secret_object(values.get(SYNC_NOTIFICATION_SETTINGS)) or {}
    phs = password_hash_job
    threshold = notify.get("DeleteThresholdValue", DEFAULT_DELETE_THRESHOLD)
    try:
        threshold_value = int(threshold)
    except (TypeError, ValueError):
        threshold_value = DEFAULT_DELETE_THRESHOLD
    return Settings(
        domain=str(domain.get("domain") or ""),
        notification_email=str(notify.get("Recipients") or ""),
        enabled=enabled,
        password_hash_sync=bool(phs),
        accidental_deletes_enabled=bool(notify.get("DeleteThresholdEnabled", True)),
        accidental_deletes_threshold=threshold_value,
    )


# --------------------------------------------------------------------------------------------------
# schema


_T = TypeVar("_T")


def find_provisioning_rule(schema: AbcMapping[str, Any]) -> dict[str, Any] | None:
    """The AD2AAD provisioning rule: by its well-known id, else by name, else the first rule."""
    rules: list[dict[str, Any]] = [r for r in schema.get("synchronizationRules") or [] if isinstance(r, dict)]
    return _pick_rule(rules, [r.get("id") for r in rules], [r.get("name") for r in rules])


def _pick_rule(rules: Sequence[_T], ids: Sequence[Any], names: Sequence[Any]) -> _T | None:
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


def _object_type(object_mapping: AbcMapping[str, Any]) -> str | None:
    # Matched on the source object name: display names of object mappings differ between tenants.
    name = object_mapping.get("sourceObjectName")
    return _OBJECT_BY_FOLDED.get(name.casefold()) if isinstance(name, str) else None


def _managed_object_mappings(rule: AbcMapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The first object mapping of each object type we manage, by object type."""
    found: dict[str, dict[str, Any]] = {}
    for om in rule.get("objectMappings") or []:
        obj = _object_type(om)
        if obj is not None and obj not in found:
            found[obj] = om
    return found


def _disabled(om: AbcMapping[str, Any], to_ad: bool) -> bool:
    """An Entra ID -> AD object mapping switched off (users, while that preview is not asked for) is
    not read: it provisions nothing. AD -> Entra ID ones are read as they are."""
    return to_ad and om.get("enabled") is False


def _read_object_mappings(rule: AbcMapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The object mappings read for scope and mappings: ``_managed_object_mappings`` but the disabled."""
    to_ad = to_ad_rule(rule)
    return {obj: om for obj, om in _managed_object_mappings(rule).items() if not _disabled(om, to_ad)}


# The organizational-unit scope as the portal wrote it before containerFilter existed (and as a real
# 2020 schema holds it): an input-filter group of the object mapping named like
# "DefaultUserExclusions.0.UX-OrganizationalGroup-Scope", whose clauses are the default exclusions plus
# one "distinguishedName ENDS_WITH <OU>". Clauses of one group must all hold and any one group may
# match, so each OU has a group of its own.
OU_SCOPE_GROUP_SUFFIX = "UX-OrganizationalGroup-Scope"
_OU_OPERATOR = "ENDS_WITH"
_OU_ATTRIBUTE = "distinguishedname"


def _is_credential_data(target: Any) -> bool:
    return isinstance(target, str) and target.casefold() == _CREDENTIAL_FOLDED


_CREDENTIAL_FOLDED = CREDENTIAL_DATA.casefold()


def _is_ou_group(group: Any) -> bool:
    return isinstance(group, AbcMapping) and str(group.get("name") or "").endswith(OU_SCOPE_GROUP_SUFFIX)


def _is_ou_clause(clause: Any) -> bool:
    return (
        isinstance(clause, AbcMapping)
        and clause.get("operatorName") == _OU_OPERATOR
        and str(clause.get("sourceOperandName") or "").casefold() == _OU_ATTRIBUTE
    )


def _clause_ous(scope: Any) -> list[str]:
    """The OUs an object mapping's scope names in the clause form, in order."""
    if not isinstance(scope, AbcMapping):
        return []
    found: list[str] = []
    for group in scope.get("inputFilterGroups") or []:
        if not _is_ou_group(group):
            continue
        for clause in group.get("clauses") or []:
            if _is_ou_clause(clause):
                found += [str(v) for v in _operand_values(clause)]
    return found


def _default_clauses() -> frozenset[tuple[str, str, str, tuple[str, ...]]]:
    """The default exclusion clauses of the embedded template (built from a real schema), per object
    type: the clauses every configuration holds, which the plan does not list."""
    global _DEFAULT_CLAUSES
    if _DEFAULT_CLAUSES is None:
        from reconciler.graph.template import template_schema  # the template reads through this module

        rule = find_provisioning_rule(template_schema())
        found: set[tuple[str, str, str, tuple[str, ...]]] = set()
        for obj, om in _managed_object_mappings(rule or {}).items():
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
            ou_group = _is_ou_group(group)
            for clause in group.get("clauses") or []:
                if not isinstance(clause, AbcMapping) or (ou_group and _is_ou_clause(clause)):
                    continue
                key = _clause_key(obj, clause)
                if key in defaults:
                    continue
                values = " ".join(json.dumps(v, ensure_ascii=False) for v in key[3])
                text = f"{obj}: {clause.get('sourceOperandName')} {key[1]}" + (f" {values}" if values else "")
                if text not in found:
                    found.append(text)
    return tuple(found)


def _scopes_of(object_mappings: Iterable[tuple[str, AbcMapping[str, Any]]]) -> list[Any]:
    return [om.get("scope") for _, om in object_mappings]


def _read_scope(rule: AbcMapping[str, Any], scopes: Iterable[Any] = ()) -> Scope:
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
    clause_ous: dict[str, str] = {}
    for scope in scopes:
        for ou in _clause_ous(scope):
            clause_ous.setdefault(ou.casefold(), ou)
    if clause_ous:
        return Scope(ScopeKind.ORGANIZATIONAL_UNITS, tuple(clause_ous.values()))
    return Scope.all()


def _read_filters(scope: Any) -> tuple[tuple[FilterClause, ...], ...]:
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


def _reading_scope(
    rule: AbcMapping[str, Any], named: Sequence[tuple[str, Any]]
) -> tuple[Scope, tuple[str, ...]]:
    """The scope a schema holds and its scoping clauses the tool does not manage. An Entra ID -> AD
    rule holds only the attribute filters (of its group object mapping): its selected groups are
    app-role assignments, read apart (``group_assignments``)."""
    if to_ad_rule(rule):
        group = next((scope for obj, scope in named if obj == "group"), None)
        return Scope(ScopeKind.ALL, (), _read_filters(group)), ()
    return _read_scope(rule, [scope for _, scope in named]), unmanaged_scoping_filters(named)


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
            if _is_credential_data(am.get("targetAttributeName")):
                counts[obj] = counts.get(obj, 0) + 1
            else:
                mappings.append(attribute_mapping_to_model(obj, am))
    named = [(obj, om.get("scope")) for obj, om in managed.items()]
    scope, unmanaged = _reading_scope(rule, named)
    return scope, tuple(mappings), counts, unmanaged


# --------------------------------------------------------------------------------------------------
# checking what the service sent

# Members of the v1.0 enums read here (synchronizationScheduleState, attributeMappingSourceType,
# attributeFlowType).
SCHEDULE_STATES = frozenset(("Active", "Disabled", "Paused"))
SOURCE_TYPES = frozenset(("Attribute", "Constant", "Function"))
FLOW_TYPES = frozenset(("Always", "ObjectAddOnly", "MultiValueAddOnly", "ValueAddOnly", "AttributeAddOnly"))


def _refuse(what: str, problem: str) -> ProviderError:
    return ProviderError(f"{what}: the service's answer cannot be read: {problem}")


def _optional(data: AbcMapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(key)
    # Exact types first: the common case, without the slower isinstance against an ABC.
    if value is None or type(value) is kind or (type(value) is dict and kind is AbcMapping):
        return value
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise _refuse(what, f"{key} is a {type(value).__name__}")
    return value


def _object(value: Any, what: str) -> AbcMapping[str, Any]:
    if type(value) is not dict and not isinstance(value, AbcMapping):
        raise _refuse(what, f"expected an object, got a {type(value).__name__}")
    return value


def _strings(data: AbcMapping[str, Any], key: str, what: str) -> None:
    value = _optional(data, key, list, what)
    if value is not None and not all(isinstance(v, str) for v in value):
        raise _refuse(what, f"{key} is not a list of strings")


def _enum(data: AbcMapping[str, Any], key: str, members: frozenset[str], what: str) -> None:
    value = _optional(data, key, str, what)
    if value is not None and value not in members:
        raise _refuse(what, f"{key} {value!r} is not one this version knows ({', '.join(sorted(members))})")


def check_service_principal(sp: Any) -> JSON:
    """``sp`` as a service principal with what this module reads of one well-typed; else ProviderError."""
    data = _object(sp, "a service principal")
    id = data.get("id")
    if not isinstance(id, str) or not id:
        raise _refuse("a service principal", "it has no id")
    what = f"service principal {id}"
    for key in ("appId", "displayName", "applicationTemplateId"):
        _optional(data, key, str, what)
    _strings(data, "tags", what)
    _strings(data, "servicePrincipalNames", what)
    return dict(data)


def check_job(job: Any, sp_id: str) -> JSON:
    """A synchronization job of ``sp_id`` with what ``find_job``/``job_enabled``/``job_status`` read."""
    data = _object(job, f"a job of {sp_id}")
    id = data.get("id")
    if not isinstance(id, str) or not id:
        raise _refuse(f"a job of {sp_id}", "it has no id")
    what = f"job {id} of {sp_id}"
    _optional(data, "templateId", str, what)
    schedule = _optional(data, "schedule", AbcMapping, what)
    if schedule is not None:
        _enum(schedule, "state", SCHEDULE_STATES, what)
    status = _optional(data, "status", AbcMapping, what)
    if status is not None:
        for key in ("quarantine", "lastExecution"):
            part = _optional(status, key, AbcMapping, what)
            if part is not None:
                _optional(part, "error", AbcMapping, what)
    return dict(data)


def check_secrets(items: Sequence[Any], sp_id: str) -> list[JSON]:
    """The secret set of ``sp_id``: ``{key, value}`` objects with a string key and a string or null value."""
    what = f"the secrets of {sp_id}"
    checked: list[JSON] = []
    for item in items:
        data = _object(item, what)
        if not isinstance(data.get("key"), str):
            raise _refuse(what, "a secret has no key")
        _optional(data, "value", str, what)
        checked.append(dict(data))
    return checked


def _checked_rule(schema: Any, what: str) -> tuple[AbcMapping[str, Any], dict[str, Any] | None]:
    """The schema as an object, and its provisioning rule with the scope filters checked."""
    data = _object(schema, what)
    rules = _optional(data, "synchronizationRules", list, what)
    for rule in rules or []:
        _object(rule, what)
    found = find_provisioning_rule(data)
    if found is not None:
        _check_filters(found, what)
    return data, found


def check_schema(schema: Any, what: str) -> JSON:
    """A job schema with the parts ``read_schema`` and ``write_schema`` use well-typed."""
    data, rule = _checked_rule(schema, what)
    if rule is None:
        return dict(data)
    for om in _optional(rule, "objectMappings", list, what) or []:
        _object(om, what)
        if _object_type(om) is None:
            continue  # not an object type we manage: left as it is
        for am in _optional(om, "attributeMappings", list, what) or []:
            _check_attribute_mapping(am, what)
    return dict(data)


def _attribute_mapping_ok(am: Any) -> bool:
    """The common case, decided with exact type tests only; a schema holds thousands of mappings."""
    return _common_key("", am) is not _UNCOMMON


def _check_attribute_mapping(am: Any, what: str) -> None:
    if _attribute_mapping_ok(am):
        return
    # Something is off: go through it field by field to say what.
    data = _object(am, what)
    target = data.get("targetAttributeName")
    if not isinstance(target, str):
        raise _refuse(what, "an attribute mapping has no target attribute")
    where = f"{what}, mapping of {target}"
    _enum(data, "flowType", FLOW_TYPES, where)
    _optional(data, "defaultValue", str, where)
    _optional(data, "matchingPriority", int, where)
    source = _optional(data, "source", AbcMapping, where)
    if source is not None:
        _enum(source, "type", SOURCE_TYPES, where)
        _optional(source, "name", str, where)
        _optional(source, "expression", str, where)
        _optional(source, "parameters", list, where)


# What a fast check of an attribute mapping says when the mapping is not of the common shape.
_UNCOMMON: tuple[Any, ...] = ("not of the common shape",)


def _common_key(object_type: str, am: Any) -> tuple[Any, ...] | None:
    """``_attribute_mapping_ok`` and the ``attribute_mapping_to_model`` cache key, in one look at ``am``.

    ``_UNCOMMON`` when ``am`` needs the careful check; else its key, or None for a function given as
    a tree only (read without the cache). Every value in a key has been type-tested exactly, so equal
    keys mean equal mappings.
    """
    if type(am) is not dict:
        return _UNCOMMON
    target, flow = am.get("targetAttributeName"), am.get("flowType")
    default, priority = am.get("defaultValue"), am.get("matchingPriority")
    if not (
        type(target) is str
        and (flow is None or (type(flow) is str and flow in FLOW_TYPES))
        and (default is None or type(default) is str)
        and (priority is None or type(priority) is int)
    ):
        return _UNCOMMON
    source = am.get("source")
    if source is None:
        return (object_type, target, default, flow, priority, None)
    if type(source) is not dict:
        return _UNCOMMON
    kind, name = source.get("type"), source.get("name")
    text, params = source.get("expression"), source.get("parameters")
    if not (
        (kind is None or (type(kind) is str and kind in SOURCE_TYPES))
        and (name is None or type(name) is str)
        and (text is None or type(text) is str)
        and (params is None or type(params) is list)
    ):
        return _UNCOMMON
    if not params:
        return (object_type, target, default, flow, priority, (kind, text, name))
    if text is not None:
        return (object_type, target, default, flow, priority, ("Function-expression", kind, text, name))
    return None


# Whole lists of attribute mappings repeat as well (every configuration made from one mapping set).
# In a schema read from JSON text, equal text of two lists means equal lists: a list read before is
# neither decoded, checked nor read again. Bounded by the bytes of the text kept.
_LIST_CACHE: dict[tuple[str, bytes], tuple[tuple[Mapping, ...], int]] = {}
_LIST_CACHE_MAX_BYTES = 16 * 1024 * 1024
_list_cache_bytes = 0

# Scope, effective mappings, CredentialData counts, and the scoping clauses the tool does not manage.
Reading = tuple[Scope, tuple[Mapping, ...], dict[str, int], tuple[str, ...]]


class _ListRead(NamedTuple):
    """The attribute mappings of one object mapping to read: from the list cache, or one by one."""

    obj: str
    key: tuple[str, bytes] | None
    items: list[Any]  # a Mapping from the mapping cache, or an attribute mapping to read
    cached: tuple[tuple[Mapping, ...], int] | None = None


def _check_filters(rule: AbcMapping[str, Any], what: str) -> None:
    for key, entries in (("containerFilter", "includedContainers"), ("groupFilter", "includedGroups")):
        part = _optional(rule, key, AbcMapping, what)
        if part is not None:
            _strings(part, entries, what)


def _mapping_list(
    obj: str, ams: list[Any], first: bool, what: str, key: tuple[str, bytes] | None = None
) -> _ListRead | None:
    """Check every attribute mapping of one object mapping; for the first of its type, what to read
    (``key``: the list's list-cache key, when it has one)."""
    items: list[Any] = []
    for am in ams:
        cache_key = _common_key(obj, am)
        if cache_key is _UNCOMMON:
            _check_attribute_mapping(am, what)
        if not first:
            continue
        if cache_key is not _UNCOMMON and cache_key is not None and cache_key[1] != CREDENTIAL_DATA:
            found = _MAPPING_CACHE.get(cache_key)
            if found is not None:
                items.append(found)
                continue
        items.append(am)
    return _ListRead(obj, key, items) if first else None


def _read_lists(
    rule: AbcMapping[str, Any], reads: list[_ListRead], scopes: Sequence[tuple[str, Any]] = ()
) -> Reading:
    """Make what the checked lists hold; lists with a key go into the list cache."""
    global _list_cache_bytes
    mappings: list[Mapping] = []
    counts: dict[str, int] = {read.obj: 0 for read in reads if read.obj in PHS_OBJECTS}
    for read in reads:
        if read.cached is not None:
            read_mappings, credentials = read.cached
        else:
            made: list[Mapping] = []
            credentials = 0
            for item in read.items:
                if isinstance(item, Mapping):
                    made.append(item)
                elif _is_credential_data(item.get("targetAttributeName")):
                    credentials += 1
                else:
                    made.append(attribute_mapping_to_model(read.obj, item))
            read_mappings = tuple(made)
            if read.key is not None and _list_cache_bytes + len(read.key[1]) <= _LIST_CACHE_MAX_BYTES:
                _LIST_CACHE[read.key] = (read_mappings, credentials)
                _list_cache_bytes += len(read.key[1])
        mappings.extend(read_mappings)
        if credentials:
            counts[read.obj] = counts.get(read.obj, 0) + credentials
    scope, unmanaged = _reading_scope(rule, scopes)
    return scope, tuple(mappings), counts, unmanaged


def check_and_read_schema(schema: Any, what: str) -> Reading:
    """``read_schema`` of a schema from the service, refused as ``check_schema`` refuses one.

    The same checks and the same reading, with one look at each attribute mapping instead of two; a
    schema holds about a hundred of them, and a tenant may hold thousands of schemas.
    """
    data, rule = _checked_rule(schema, what)
    if rule is None:
        return read_schema(data)
    # Everything is checked before anything new is made, as check_schema then read_schema would.
    reads: list[_ListRead] = []
    seen: set[str] = set()
    scopes: list[tuple[str, Any]] = []
    to_ad = to_ad_rule(rule)
    for om in _optional(rule, "objectMappings", list, what) or []:
        _object(om, what)
        obj = _object_type(om)
        if obj is None or (obj not in seen and _disabled(om, to_ad)):
            continue  # not an object type we manage (or, to AD, switched off): left as it is
        read = _mapping_list(obj, _optional(om, "attributeMappings", list, what) or [], obj not in seen, what)
        if obj not in seen:
            scopes.append((obj, om.get("scope")))
        seen.add(obj)
        if read is not None:
            reads.append(read)
    return _read_lists(rule, reads, scopes)


# Reading a schema from its JSON text: only the parts read are decoded; the rest (directories, other
# rules, object mappings of other types) is passed over without making a Python object of it, and the
# attribute mappings of an object mapping stay text until the list cache has not seen that text.
class _RuleText(msgspec.Struct):
    id: Any = None
    name: Any = None
    targetDirectoryName: Any = None
    containerFilter: msgspec.Raw = msgspec.Raw()
    groupFilter: msgspec.Raw = msgspec.Raw()
    objectMappings: msgspec.Raw = msgspec.Raw()


class _SchemaText(msgspec.Struct):
    synchronizationRules: list[_RuleText] | None = None


class _ObjectMappingText(msgspec.Struct):
    sourceObjectName: Any = None
    enabled: Any = None
    attributeMappings: msgspec.Raw = msgspec.Raw()
    scope: msgspec.Raw = msgspec.Raw()


_SCHEMA_TEXT = msgspec.json.Decoder(_SchemaText)
_OBJECT_MAPPINGS_TEXT = msgspec.json.Decoder(list[_ObjectMappingText] | None)


# The common case in one pass over the text: every rule's object mappings decoded with the rule. Text
# where some rule's objectMappings is not a list of objects (even a rule that is not the one read) is
# read in two passes instead, as _SchemaText and then the picked rule's objectMappings.
class _RuleMappingsText(msgspec.Struct):
    id: Any = None
    name: Any = None
    targetDirectoryName: Any = None
    containerFilter: msgspec.Raw = msgspec.Raw()
    groupFilter: msgspec.Raw = msgspec.Raw()
    objectMappings: list[_ObjectMappingText] | None = None


class _SchemaMappingsText(msgspec.Struct):
    synchronizationRules: list[_RuleMappingsText] | None = None


_SCHEMA_MAPPINGS_TEXT = msgspec.json.Decoder(_SchemaMappingsText)


class _Unusual(Exception):
    """The fast reading of a schema's text met something it leaves to the plain one."""


def _loads(text: msgspec.Raw) -> Any:
    return orjson.loads(memoryview(text)) if len(text) else None


def check_and_read_schema_text(text: Any, what: str) -> Reading:
    """``check_and_read_schema`` of the schema whose JSON text is ``text`` (bytes): the same refusals
    and the same reading, without decoding what is not read. Anything else is read as it is.

    Text the fast reading does not take as it is (bytes that are not UTF-8, nesting deeper than
    msgspec follows, numbers out of range, duplicate keys, a part of the wrong type) is parsed whole
    and read the plain way, so that it is refused, or read, exactly as the plain way does.
    """
    if not isinstance(text, bytes):
        return check_and_read_schema(text, what)
    try:
        return _read_schema_text(text, what)
    except _Unusual:
        pass
    try:
        schema = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _refuse(what, f"it is not JSON ({exc})") from exc
    return check_and_read_schema(schema, what)


_PickedRule = tuple[_RuleText | _RuleMappingsText, list[_ObjectMappingText] | None]


def _picked_rule_text(text: bytes) -> _PickedRule | None:
    """The rule ``_pick_rule`` picks from the schema text, with its object mappings; None: no rule."""
    try:
        whole: _SchemaMappingsText = _SCHEMA_MAPPINGS_TEXT.decode(text)
    except msgspec.ValidationError:
        pass
    else:
        rules = whole.synchronizationRules or []
        found = _pick_rule(rules, [r.id for r in rules], [r.name for r in rules])
        return None if found is None else (found, found.objectMappings)
    schema: _SchemaText = _SCHEMA_TEXT.decode(text)
    parts = schema.synchronizationRules or []
    rule = _pick_rule(parts, [r.id for r in parts], [r.name for r in parts])
    if rule is None:
        return None
    object_mappings: list[_ObjectMappingText] | None = _OBJECT_MAPPINGS_TEXT.decode(
        rule.objectMappings or b"null"
    )
    return rule, object_mappings


def _read_schema_text(text: bytes, what: str) -> Reading:
    try:
        picked = _picked_rule_text(text)
        if picked is None:
            return read_schema({})
        rule, object_mappings = picked
        filters = {
            "id": rule.id,
            "name": rule.name,
            "targetDirectoryName": rule.targetDirectoryName,
            "containerFilter": _loads(rule.containerFilter),
            "groupFilter": _loads(rule.groupFilter),
        }
    except (msgspec.MsgspecError, ValueError, RecursionError) as exc:
        # msgspec's errors, UnicodeDecodeError and orjson's JSONDecodeError (both ValueErrors), and
        # nesting deeper than msgspec follows (it counts the interpreter's recursion limit).
        raise _Unusual from exc
    _check_filters(filters, what)
    reads: list[_ListRead] = []
    seen: set[str] = set()
    scopes: list[tuple[str, Any]] = []
    to_ad = to_ad_rule(filters)
    for om in object_mappings or []:
        name = om.sourceObjectName
        obj = _OBJECT_BY_FOLDED.get(name.casefold()) if isinstance(name, str) else None
        if obj is None or (obj not in seen and to_ad and om.enabled is False):
            continue  # not an object type we manage (or, to AD, switched off): left as it is
        first = obj not in seen
        seen.add(obj)
        if first:
            try:
                scopes.append((obj, _loads(om.scope)))
            except ValueError as exc:
                raise _Unusual from exc
        key = (obj, bytes(om.attributeMappings))
        cached = _LIST_CACHE.get(key)
        if cached is not None:
            if first:
                reads.append(_ListRead(obj, None, [], cached))
            continue
        try:
            ams = _loads(om.attributeMappings)
        except ValueError as exc:
            raise _Unusual from exc
        if ams is not None and type(ams) is not list:
            raise _refuse(what, f"attributeMappings is a {type(ams).__name__}")
        read = _mapping_list(obj, ams or [], first, what, key)
        if read is not None:
            reads.append(read)
    return _read_lists(filters, reads, scopes)


def _with_password_hash(obj: str, attribute_mappings: list[dict[str, Any]], on: bool) -> list[dict[str, Any]]:
    # The service does not de-duplicate: a second CredentialData row makes the job fail, so keep one.
    # A row already there stays exactly as read.
    want = on and obj in PHS_OBJECTS
    result: list[dict[str, Any]] = []
    have = False
    for am in attribute_mappings:
        if not _is_credential_data(am.get("targetAttributeName")):
            result.append(am)
        elif want and not have:
            result.append(am if _is_password_hash(am) else password_hash_attribute_mapping())
            have = True
    if want and not have:
        result.append(password_hash_attribute_mapping())
    return result


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON data (mappings, lists and scalars); about 3x faster than ``copy.deepcopy``,
    which matters when a schema is rewritten for each of many configurations."""
    kind = type(value)
    if kind is dict:
        return {k: _copy_json(v) for k, v in value.items()}
    if kind is list:
        return [_copy_json(v) for v in value]
    if kind in _JSON_SCALARS:
        return value
    if isinstance(value, AbcMapping):
        return {k: _copy_json(v) for k, v in value.items()}
    return copy.deepcopy(value)


_JSON_SCALARS = (str, int, float, bool, type(None))


def without_annotations(value: Any) -> Any:
    """A copy of JSON ``value`` without ``@odata.*`` annotations (``@odata.context``,
    ``directories@odata.context``, ...) at any depth: they describe a response, never a request."""
    kind = type(value)
    if kind is dict:
        return {k: without_annotations(v) for k, v in value.items() if "@odata." not in k}
    if kind is list:
        return [without_annotations(v) for v in value]
    return _copy_json(value)


def _writable_copy(schema: AbcMapping[str, Any]) -> tuple[JSON, dict[str, Any]]:
    new: JSON = without_annotations(dict(schema))
    rule = find_provisioning_rule(new)
    if rule is None:
        raise ProviderError("the job schema has no AD2AADProvisioning rule")
    return new, rule


def set_password_hash_mappings(schema: AbcMapping[str, Any], on: bool) -> JSON:
    """A copy of ``schema`` with exactly one CredentialData row per PHS object mapping it has (none when
    off); nothing else changes."""
    new, rule = _writable_copy(schema)
    for obj, om in _managed_object_mappings(rule).items():
        om["attributeMappings"] = _with_password_hash(obj, list(om.get("attributeMappings") or []), on)
    return new


def _ou_clause(like: AbcMapping[str, Any] | None, ou: str) -> JSON:
    clause = _copy_json(dict(like)) if like is not None else {"sourceOperandName": "distinguishedName"}
    clause["operatorName"] = _OU_OPERATOR
    clause["targetOperand"] = {"values": [ou]}
    return clause


def _numbered(name: str, index: int) -> str:
    """``DefaultUserExclusions.0.UX-...`` as the group of the ``index``-th OU."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[-2].isdigit():
        parts[-2] = str(index)
        return ".".join(parts)
    return name if index == 0 else f"{name}.{index}"


def _set_clause_scope(scope: dict[str, Any], ous: Sequence[str]) -> None:
    """The OU groups of one object mapping's scope made to say ``ous`` (none: no OU clause at all).

    The first OU group is the pattern: its other clauses (the default exclusions) go into every OU
    group. Groups that are not OU groups stay where and as they are.
    """
    groups = list(scope.get("inputFilterGroups") or [])
    ou_groups = [g for g in groups if _is_ou_group(g)]
    if not ou_groups:
        return
    pattern = ou_groups[0]
    like = next((c for c in pattern.get("clauses") or [] if _is_ou_clause(c)), None)
    base = [c for c in pattern.get("clauses") or [] if not _is_ou_clause(c)]
    made: list[JSON] = []
    for index, ou in enumerate(ous or [None]):
        group = _copy_json(dict(pattern))
        group["name"] = _numbered(str(pattern.get("name")), index)
        group["clauses"] = _copy_json(base) + ([_ou_clause(like, ou)] if ou is not None else [])
        made.append(group)
    at = groups.index(pattern)
    rest = [g for g in groups if not _is_ou_group(g)]
    scope["inputFilterGroups"] = rest[:at] + made + rest[at:]


def _set_scope(rule: dict[str, Any], object_mappings: AbcMapping[str, dict[str, Any]], scope: Scope) -> None:
    """``scope`` written in the form the schema already uses; never two forms at once.

    The clause form is kept when the schema holds its OU scope that way and the new scope is OUs or
    everything; otherwise the documented ``containerFilter``/``groupFilter`` are used, and any OU
    clauses are taken out. A filter property the schema does not have is only added to hold entries.
    """
    uses_clauses = any(_clause_ous(om.get("scope")) for om in object_mappings.values())
    if uses_clauses and scope.kind is not ScopeKind.GROUPS:
        for om in object_mappings.values():
            if isinstance(om.get("scope"), dict):
                _set_clause_scope(om["scope"], list(scope.entries))
        containers: list[str] = []
        groups: list[str] = []
    else:
        for om in object_mappings.values():
            if isinstance(om.get("scope"), dict) and _clause_ous(om["scope"]):
                _set_clause_scope(om["scope"], [])
        containers = list(scope.entries) if scope.kind is ScopeKind.ORGANIZATIONAL_UNITS else []
        groups = list(scope.entries) if scope.kind is ScopeKind.GROUPS else []
    for key, entries_key, entries in (
        ("containerFilter", "includedContainers", containers),
        ("groupFilter", "includedGroups", groups),
    ):
        if entries or isinstance(rule.get(key), dict):
            part = dict(rule.get(key) or {})
            part[entries_key] = entries
            rule[key] = part


def _filter_clause(like: Any, clause: FilterClause) -> JSON:
    """``clause`` as a service filter clause; ``like`` (the clause in its place) is kept as it is when it
    says the same, so that fields the model has no word for survive."""
    values = [] if clause.value is None else [clause.value]
    if isinstance(like, AbcMapping) and _read_filters({"inputFilterGroups": [{"clauses": [like]}]}) == (
        (clause,),
    ):
        kept: JSON = _copy_json(dict(like))
        return kept
    return {
        "operatorName": clause.operator,
        "sourceOperandName": clause.attribute,
        "targetOperand": {"values": values},
    }


def _set_filters(om: dict[str, Any], filters: Sequence[Sequence[FilterClause]]) -> None:
    """The Entra ID -> AD object mapping ``om`` made to hold ``filters`` (one input-filter group each);
    its other filter groups (category filters) stay as they are."""
    current = om.get("scope")
    if _read_filters(current) == tuple(tuple(f) for f in filters):
        return
    scope: dict[str, Any] = dict(current) if isinstance(current, AbcMapping) else {}
    old = [g for g in scope.get("inputFilterGroups") or [] if isinstance(g, AbcMapping)]
    groups: list[JSON] = []
    for index, clauses in enumerate(filters):
        like = old[index] if index < len(old) else {}
        old_clauses = list(like.get("clauses") or [])
        groups.append(
            {
                **_copy_json(dict(like)),
                "name": str(like.get("name") or f"Filter{index + 1}"),
                "clauses": [
                    _filter_clause(old_clauses[i] if i < len(old_clauses) else None, c)
                    for i, c in enumerate(clauses)
                ],
            }
        )
    scope["inputFilterGroups"] = groups
    om["scope"] = scope


def _edit_rows(
    obj: str,
    existing: Sequence[dict[str, Any]],
    sets: AbcMapping[str, Mapping],
    gone: set[str],
) -> list[dict[str, Any]]:
    """One object mapping's rows with ``sets`` (by folded target) set and ``gone`` taken out.

    Every other row is the service's and stays exactly as read, in its place. A row set keeps the
    service's spelling of its target and its matching priority, and every field the model has no
    word for. A second row for a target that is set is dropped (the service does not de-duplicate).
    """
    result: list[dict[str, Any]] = []
    done: set[str] = set()
    for am in existing:
        target = am.get("targetAttributeName")
        if not isinstance(target, str) or _is_credential_data(target):
            result.append(am)  # CredentialData: settled by _with_password_hash
            continue
        key = target.casefold()
        if key in gone:
            continue
        want = sets.get(key)
        if want is None:
            result.append(am)
            continue
        if key in done:
            continue
        done.add(key)
        current = attribute_mapping_to_model(obj, am)
        wanted = replace(want, target=target, matching_priority=current.matching_priority)
        result.append(am if current == wanted else _update_attribute_mapping(am, current, wanted))
    result += [model_to_attribute_mapping(m) for key, m in sets.items() if key not in done]
    return result


def missing_object_mappings(schema: AbcMapping[str, Any], objects: Iterable[str]) -> list[str]:
    """The object types among ``objects`` that ``schema`` has no object mapping for."""
    rule = find_provisioning_rule(schema)
    have = set(_managed_object_mappings(rule)) if rule is not None else set()
    return sorted(set(objects) - have)


def edit_schema(
    schema: AbcMapping[str, Any],
    *,
    scope: Scope | None,
    mappings: Iterable[Mapping] = (),
    removals: Iterable[tuple[str, str]] = (),
    password_hash_sync: bool | None = None,
    preview_users: bool | None = None,
) -> JSON:
    """A copy of ``schema`` (as the service returned it) with the smallest edits that make it say what
    the desired state says; everything else is written back exactly as read, minus ``@odata.*``.

    ``mappings`` are set and ``removals`` (object, target) taken out, matched case-insensitively;
    ``scope`` (None: left as it is) is written in the form the schema uses; ``password_hash_sync``
    (None: left as it is) settles the CredentialData rows of the PHS object mappings the schema has.
    A mapping or removal for an object type the schema has no object mapping for is refused, before
    anything is written.

    An Entra ID -> AD schema holds of ``scope`` only its attribute filters (on the group object
    mapping; the selected groups are app-role assignments), and ``preview_users`` (None: left as it
    is) switches its user object mapping on or off.
    """
    new, rule = _writable_copy(schema)
    object_mappings = _managed_object_mappings(rule)
    sets: dict[str, dict[str, Mapping]] = {}
    for m in mappings:
        if not _is_credential_data(m.target):  # follows password_hash_sync, never the mapping list
            sets.setdefault(m.object, {})[m.target.casefold()] = m
    gone: dict[str, set[str]] = {}
    for obj, target in removals:
        gone.setdefault(obj, set()).add(target.casefold())
    missing = sorted((set(sets) | set(gone)) - set(object_mappings))
    if missing:
        raise ProviderError(f"the job schema has no object mapping for {', '.join(missing)}")
    if to_ad_rule(rule):
        if scope is not None and "group" in object_mappings:
            _set_filters(object_mappings["group"], scope.filters)
        users = object_mappings.get("user")
        if preview_users is not None and users is not None and users.get("enabled") is not preview_users:
            users["enabled"] = preview_users
    elif (
        scope is not None
        and _read_scope(rule, _scopes_of(object_mappings.items())).normalized() != scope.normalized()
    ):
        _set_scope(rule, object_mappings, scope)
    for obj, om in object_mappings.items():
        rows = list(om.get("attributeMappings") or [])
        if obj in sets or obj in gone:
            rows = _edit_rows(obj, rows, sets.get(obj, {}), gone.get(obj, set()))
        if password_hash_sync is not None:
            rows = _with_password_hash(obj, rows, password_hash_sync)
        om["attributeMappings"] = rows
    return new


# --------------------------------------------------------------------------------------------------
# tags


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
