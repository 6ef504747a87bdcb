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
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import msgspec
import orjson

from reconciler.core.model import (
    CREDENTIAL_DATA,
    DEFAULT_DELETE_THRESHOLD,
    OBJECT_TYPES,
    PHS_OBJECTS,
    ApplyMode,
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
    "DOMAIN",
    "JSON",
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
    "find_job",
    "find_provisioning_rule",
    "job_enabled",
    "job_status",
    "model_to_attribute_mapping",
    "parse_tags",
    "password_hash_attribute_mapping",
    "read_schema",
    "secrets_to_settings",
    "set_password_hash_mappings",
    "settings_to_secrets",
    "tags_for",
    "write_schema",
]

JSON = dict[str, Any]

# The application template every Cloud Sync configuration is instantiated from.
TEMPLATE_APP_ID = "1a4721b3-e57f-4451-ae87-ef078703ec94"
PROVISIONING_TEMPLATE = "AD2AADProvisioning"
PASSWORD_HASH_TEMPLATE = "AD2AADPasswordHash"
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


_DELETION_PROTECTION_TAG = "reconciler:deletionProtection"
_RESTART_PREFIX = "reconciler:restartToken="
# Set before a change that needs a restart, cleared by the restart: a crash in between stays visible.
_RESTART_PENDING_TAG = "reconciler:restartPending"

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
        if key not in written:
            result.append({"key": key, "value": _dump(ours[key])})
    return result


def secrets_to_settings(
    secrets: Iterable[AbcMapping[str, Any]],
    *,
    enabled: bool,
    password_hash_job: bool = False,
) -> Settings:
    """``Settings`` from the secret set. ``enabled`` comes from the job schedule, not from secrets.

    Password hash sync is what ``AppKey`` says; without an ``AppKey`` it is whether the configuration
    has an ``AD2AADPasswordHash`` job (``password_hash_job``).
    """
    values: dict[str, str | None] = {}
    for item in secrets:
        key = item.get("key")
        if isinstance(key, str) and key not in values:
            values[key] = item.get("value")
    domain = _secret_object(values.get(DOMAIN)) or {}
    app_key = _secret_object(values.get(APP_KEY))
    notify = _secret_object(values.get(SYNC_NOTIFICATION_SETTINGS)) or {}
    phs = password_hash_job if app_key is None else app_key.get("appKeyScenario") == PASSWORD_HASH_TEMPLATE
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
        if name == PROVISIONING_TEMPLATE:
            return rule
    return rules[0] if rules else None


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


def _read_scope(rule: AbcMapping[str, Any]) -> Scope:
    containers = list((rule.get("containerFilter") or {}).get("includedContainers") or [])
    groups = list((rule.get("groupFilter") or {}).get("includedGroups") or [])
    # The service treats the two as mutually exclusive; should both be set, groups are reported and
    # the next write settles it.
    if groups:
        return Scope(ScopeKind.GROUPS, tuple(str(g) for g in groups))
    if containers:
        return Scope(ScopeKind.ORGANIZATIONAL_UNITS, tuple(str(c) for c in containers))
    return Scope.all()


def read_schema(schema: AbcMapping[str, Any]) -> tuple[Scope, tuple[Mapping, ...], dict[str, int]]:
    """Scope, effective mappings (without CredentialData) and CredentialData count per PHS object.

    The count is given for every PHS object type and for any other object type that has one.
    """
    rule = find_provisioning_rule(schema)
    if rule is None:
        return Scope.all(), (), dict.fromkeys(PHS_OBJECTS, 0)
    mappings: list[Mapping] = []
    counts: dict[str, int] = dict.fromkeys(PHS_OBJECTS, 0)
    for obj, om in _managed_object_mappings(rule).items():
        for am in om.get("attributeMappings") or []:
            if am.get("targetAttributeName") == CREDENTIAL_DATA:
                counts[obj] = counts.get(obj, 0) + 1
            else:
                mappings.append(attribute_mapping_to_model(obj, am))
    return _read_scope(rule), tuple(mappings), counts


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

Reading = tuple[Scope, tuple[Mapping, ...], dict[str, int]]


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


def _read_lists(rule: AbcMapping[str, Any], reads: list[_ListRead]) -> Reading:
    """Make what the checked lists hold; lists with a key go into the list cache."""
    global _list_cache_bytes
    mappings: list[Mapping] = []
    counts: dict[str, int] = dict.fromkeys(PHS_OBJECTS, 0)
    for read in reads:
        if read.cached is not None:
            read_mappings, credentials = read.cached
        else:
            made: list[Mapping] = []
            credentials = 0
            for item in read.items:
                if isinstance(item, Mapping):
                    made.append(item)
                elif item.get("targetAttributeName") == CREDENTIAL_DATA:
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
    return _read_scope(rule), tuple(mappings), counts


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
    for om in _optional(rule, "objectMappings", list, what) or []:
        _object(om, what)
        obj = _object_type(om)
        if obj is None:
            continue  # not an object type we manage: left as it is
        read = _mapping_list(obj, _optional(om, "attributeMappings", list, what) or [], obj not in seen, what)
        seen.add(obj)
        if read is not None:
            reads.append(read)
    return _read_lists(rule, reads)


# Reading a schema from its JSON text: only the parts read are decoded; the rest (directories, other
# rules, object mappings of other types) is passed over without making a Python object of it, and the
# attribute mappings of an object mapping stay text until the list cache has not seen that text.
class _RuleText(msgspec.Struct):
    id: Any = None
    name: Any = None
    containerFilter: msgspec.Raw = msgspec.Raw()
    groupFilter: msgspec.Raw = msgspec.Raw()
    objectMappings: msgspec.Raw = msgspec.Raw()


class _SchemaText(msgspec.Struct):
    synchronizationRules: list[_RuleText] | None = None


class _ObjectMappingText(msgspec.Struct):
    sourceObjectName: Any = None
    attributeMappings: msgspec.Raw = msgspec.Raw()


_SCHEMA_TEXT = msgspec.json.Decoder(_SchemaText)
_OBJECT_MAPPINGS_TEXT = msgspec.json.Decoder(list[_ObjectMappingText] | None)


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


def _read_schema_text(text: bytes, what: str) -> Reading:
    try:
        schema: _SchemaText = _SCHEMA_TEXT.decode(text)
        rules = schema.synchronizationRules or []
        rule = _pick_rule(rules, [r.id for r in rules], [r.name for r in rules])
        if rule is None:
            return read_schema({})
        filters = {"containerFilter": _loads(rule.containerFilter), "groupFilter": _loads(rule.groupFilter)}
        object_mappings: list[_ObjectMappingText] | None = _OBJECT_MAPPINGS_TEXT.decode(
            rule.objectMappings or b"null"
        )
    except (msgspec.MsgspecError, ValueError, RecursionError) as exc:
        # msgspec's errors, UnicodeDecodeError and orjson's JSONDecodeError (both ValueErrors), and
        # nesting deeper than msgspec follows (it counts the interpreter's recursion limit).
        raise _Unusual from exc
    _check_filters(filters, what)
    reads: list[_ListRead] = []
    seen: set[str] = set()
    for om in object_mappings or []:
        name = om.sourceObjectName
        obj = _OBJECT_BY_FOLDED.get(name.casefold()) if isinstance(name, str) else None
        if obj is None:
            continue  # not an object type we manage: left as it is
        first = obj not in seen
        seen.add(obj)
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
    return _read_lists(filters, reads)


def _with_password_hash(obj: str, attribute_mappings: list[dict[str, Any]], on: bool) -> list[dict[str, Any]]:
    # The service does not de-duplicate: a second CredentialData row makes the job fail, so keep one.
    want = on and obj in PHS_OBJECTS
    result: list[dict[str, Any]] = []
    have = False
    for am in attribute_mappings:
        if am.get("targetAttributeName") != CREDENTIAL_DATA:
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


def set_password_hash_mappings(schema: AbcMapping[str, Any], on: bool) -> JSON:
    """A copy of ``schema`` with exactly one CredentialData row per PHS object mapping (none when off)."""
    new: JSON = _copy_json(schema)
    rule = find_provisioning_rule(new)
    if rule is None:
        raise ProviderError("the job schema has no AD2AADProvisioning rule")
    for obj, om in _managed_object_mappings(rule).items():
        om["attributeMappings"] = _with_password_hash(obj, list(om.get("attributeMappings") or []), on)
    return new


def _set_scope(rule: dict[str, Any], scope: Scope) -> None:
    containers = list(scope.entries) if scope.kind is ScopeKind.ORGANIZATIONAL_UNITS else []
    groups = list(scope.entries) if scope.kind is ScopeKind.GROUPS else []
    container_filter = dict(rule.get("containerFilter") or {})
    container_filter["includedContainers"] = containers
    group_filter = dict(rule.get("groupFilter") or {})
    group_filter["includedGroups"] = groups
    rule["containerFilter"] = container_filter
    rule["groupFilter"] = group_filter


def _replace_attribute_mappings(
    obj: str, existing: Sequence[dict[str, Any]], wanted: Sequence[Mapping]
) -> list[dict[str, Any]]:
    wanted_by_target = {m.target: m for m in wanted}
    result: list[dict[str, Any]] = []
    emitted: set[str] = set()
    for am in existing:
        target = am.get("targetAttributeName")
        if target == CREDENTIAL_DATA:
            result.append(am)  # settled by _with_password_hash
            continue
        if not isinstance(target, str) or target not in wanted_by_target or target in emitted:
            continue  # removed, or a duplicate row for a target already written
        want = wanted_by_target[target]
        current = attribute_mapping_to_model(obj, am)
        result.append(am if current == want else _update_attribute_mapping(am, current, want))
        emitted.add(target)
    for m in wanted:
        if m.target not in emitted:
            result.append(model_to_attribute_mapping(wanted_by_target[m.target]))
            emitted.add(m.target)
    return result


def write_schema(
    schema: AbcMapping[str, Any],
    scope: Scope,
    mappings: Iterable[Mapping],
    password_hash_sync: bool,
) -> JSON:
    """A new schema: scope and the full mapping set written into a copy of ``schema``.

    The attribute mappings of each object mapping we manage become exactly ``mappings`` of that object
    type (plus CredentialData when ``password_hash_sync``). An existing row whose model value is unchanged
    is kept as it is, so fields we do not model survive. Everything else is left alone.
    """
    new: JSON = _copy_json(schema)
    rule = find_provisioning_rule(new)
    if rule is None:
        raise ProviderError("the job schema has no AD2AADProvisioning rule")
    by_object: dict[str, list[Mapping]] = {}
    for m in mappings:
        if m.target == CREDENTIAL_DATA:
            continue  # follows password_hash_sync, never the mapping list
        by_object.setdefault(m.object, []).append(m)
    object_mappings = _managed_object_mappings(rule)
    missing = sorted(set(by_object) - set(object_mappings))
    if missing:
        raise ProviderError(f"the job schema has no object mapping for {', '.join(missing)}")
    _set_scope(rule, scope)
    for obj, om in object_mappings.items():
        rows = _replace_attribute_mappings(
            obj, list(om.get("attributeMappings") or []), by_object.get(obj, [])
        )
        om["attributeMappings"] = _with_password_hash(obj, rows, password_hash_sync)
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


def _is_own_tag(tag: str) -> bool:
    return (
        tag in (MANAGED_TAG, _DELETION_PROTECTION_TAG, _RESTART_PENDING_TAG)
        or tag.startswith(_NAME_PREFIX)
        or tag.startswith(_RESTART_PREFIX)
    )


def parse_tags(tags: Iterable[str]) -> OwnTags:
    managed = deletion_protection = restart_pending = False
    name: str | None = None
    restart_token: str | None = None
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
    return OwnTags(managed, name, deletion_protection, restart_token, restart_pending)


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
    return result


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
    )


def observe(
    sp: JSON,
    jobs: list[JSON],
    secrets: list[JSON],
    schema: JSON | None,
    *,
    reading: tuple[Scope, tuple[Mapping, ...], dict[str, int]] | None = None,
) -> Observed | None:
    """The configuration ``sp`` holds, given its jobs, secrets and provisioning schema; None when ``sp``
    is not one. The one reading of a configuration, shared by every target that stores Graph shapes.

    ``reading``: ``read_schema(schema)``, when the caller has it already (``schema`` may then be None).
    """
    tags = parse_tags(sp.get("tags") or [])
    provisioning = find_job(jobs, PROVISIONING_TEMPLATE)
    if provisioning is None and not tags.managed:
        return None
    settings = secrets_to_settings(
        secrets,
        enabled=provisioning is not None and job_enabled(provisioning),
        password_hash_job=find_job(jobs, PASSWORD_HASH_TEMPLATE) is not None,
    )
    scope: Scope = Scope.all()
    mappings: tuple[Mapping, ...] = ()
    counts: dict[str, int] = {}
    if reading is None and schema is not None:
        reading = read_schema(schema)
    if provisioning is None or reading is None:
        status = JobStatus(code="NotConfigured") if provisioning is None else job_status(provisioning)
    else:
        scope, mappings, counts = reading
        status = job_status(provisioning)
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
    )
