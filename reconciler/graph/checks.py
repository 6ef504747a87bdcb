"""Checking what the service sent before anything reads it, and reading a schema so checked. Pure: no I/O.

The ``check_*`` functions refuse a document from the service that the readers would misread: a
missing id, a field of the wrong type, or a member of an enum they interpret (schedule state, mapping
source type, flow type) that the v1.0 metadata does not list. Guessing there could mean overwriting a
mapping we do not understand, or a second configuration.

``check_and_read_schema`` checks and reads a job schema with one look at each attribute mapping, and
``check_and_read_schema_text`` does the same from the schema's JSON text, decoding only the parts it
reads (``msgspec``); a tenant may hold thousands of schemas of about a hundred mappings each, most of
them alike, so lists of mappings read before are taken from a cache keyed by their text.
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import orjson

from reconciler.core.model import CREDENTIAL_DATA, PHS_OBJECTS, Mapping
from reconciler.graph.fields import Unusual, as_object, enum, fast_or_plain, optional, refuse, strings
from reconciler.graph.identity import JSON
from reconciler.graph.mappings import (
    UNCOMMON,
    attribute_mapping_to_model,
    cached_mapping,
    check_attribute_mapping,
    common_key,
    is_credential_data,
)
from reconciler.graph.reading import (
    Reading,
    find_provisioning_rule,
    object_type,
    object_type_named,
    pick_rule,
    read_schema,
    reading_scope,
    switched_off,
    to_ad_rule,
)

__all__ = [
    "SCHEDULE_STATES",
    "check_and_read_schema",
    "check_and_read_schema_text",
    "check_job",
    "check_schema",
    "check_secrets",
    "check_service_principal",
]

# Members of the v1.0 enum read here (synchronizationScheduleState).
SCHEDULE_STATES = frozenset(("Active", "Disabled", "Paused"))


def check_service_principal(sp: Any) -> JSON:
    """``sp`` as a service principal with what this module reads of one well-typed; else ProviderError."""
    data = as_object(sp, "a service principal")
    id = data.get("id")
    if not isinstance(id, str) or not id:
        raise refuse("a service principal", "it has no id")
    what = f"service principal {id}"
    for key in ("appId", "displayName", "applicationTemplateId"):
        optional(data, key, str, what)
    strings(data, "tags", what)
    strings(data, "servicePrincipalNames", what)
    return dict(data)


def check_job(job: Any, sp_id: str) -> JSON:
    """A synchronization job of ``sp_id`` with what ``find_job``/``job_enabled``/``job_status`` read."""
    data = as_object(job, f"a job of {sp_id}")
    id = data.get("id")
    if not isinstance(id, str) or not id:
        raise refuse(f"a job of {sp_id}", "it has no id")
    what = f"job {id} of {sp_id}"
    optional(data, "templateId", str, what)
    schedule = optional(data, "schedule", AbcMapping, what)
    if schedule is not None:
        enum(schedule, "state", SCHEDULE_STATES, what)
    status = optional(data, "status", AbcMapping, what)
    if status is not None:
        for key in ("quarantine", "lastExecution"):
            part = optional(status, key, AbcMapping, what)
            if part is not None:
                optional(part, "error", AbcMapping, what)
    return dict(data)


def check_secrets(items: Sequence[Any], sp_id: str) -> list[JSON]:
    """The secret set of ``sp_id``: ``{key, value}`` objects with a string key and a string or null value."""
    what = f"the secrets of {sp_id}"
    checked: list[JSON] = []
    for item in items:
        data = as_object(item, what)
        if not isinstance(data.get("key"), str):
            raise refuse(what, "a secret has no key")
        optional(data, "value", str, what)
        checked.append(dict(data))
    return checked


def _checked_rule(schema: Any, what: str) -> tuple[AbcMapping[str, Any], dict[str, Any] | None]:
    """The schema as an object, and its provisioning rule with the scope filters checked."""
    data = as_object(schema, what)
    rules = optional(data, "synchronizationRules", list, what)
    for rule in rules or []:
        as_object(rule, what)
    found = find_provisioning_rule(data)
    if found is not None:
        _check_filters(found, what)
    return data, found


def check_schema(schema: Any, what: str) -> JSON:
    """A job schema with the parts ``read_schema`` and ``write_schema`` use well-typed."""
    data, rule = _checked_rule(schema, what)
    if rule is None:
        return dict(data)
    for om in optional(rule, "objectMappings", list, what) or []:
        as_object(om, what)
        if object_type(om) is None:
            continue  # not an object type we manage: left as it is
        for am in optional(om, "attributeMappings", list, what) or []:
            check_attribute_mapping(am, what)
    return dict(data)


# Whole lists of attribute mappings repeat as well (every configuration made from one mapping set).
# In a schema read from JSON text, equal text of two lists means equal lists: a list read before is
# neither decoded, checked nor read again. Bounded by the bytes of the text kept.
_LIST_CACHE: dict[tuple[str, bytes], tuple[tuple[Mapping, ...], int]] = {}
_LIST_CACHE_MAX_BYTES = 16 * 1024 * 1024
_list_cache_bytes = 0


class _ListRead(NamedTuple):
    """The attribute mappings of one object mapping to read: from the list cache, or one by one."""

    obj: str
    key: tuple[str, bytes] | None
    items: list[Any]  # a Mapping from the mapping cache, or an attribute mapping to read
    cached: tuple[tuple[Mapping, ...], int] | None = None


def _check_filters(rule: AbcMapping[str, Any], what: str) -> None:
    for key, entries in (("containerFilter", "includedContainers"), ("groupFilter", "includedGroups")):
        part = optional(rule, key, AbcMapping, what)
        if part is not None:
            strings(part, entries, what)


def _mapping_list(
    obj: str, ams: list[Any], first: bool, what: str, key: tuple[str, bytes] | None = None
) -> _ListRead | None:
    """Check every attribute mapping of one object mapping; for the first of its type, what to read
    (``key``: the list's list-cache key, when it has one)."""
    items: list[Any] = []
    for am in ams:
        cache_key = common_key(obj, am)
        if cache_key is UNCOMMON:
            check_attribute_mapping(am, what)
        if not first:
            continue
        if cache_key is not UNCOMMON and cache_key is not None and cache_key[1] != CREDENTIAL_DATA:
            found = cached_mapping(cache_key)
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
                elif is_credential_data(item.get("targetAttributeName")):
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
    scope, unmanaged = reading_scope(rule, scopes)
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
    for om in optional(rule, "objectMappings", list, what) or []:
        as_object(om, what)
        obj = object_type(om)
        if obj is None or (obj not in seen and switched_off(om, to_ad)):
            continue  # not an object type we manage (or, to AD, switched off): left as it is
        read = _mapping_list(obj, optional(om, "attributeMappings", list, what) or [], obj not in seen, what)
        if obj not in seen:
            scopes.append((obj, om.get("scope")))
        seen.add(obj)
        if read is not None:
            reads.append(read)
    return _read_lists(rule, reads, scopes)


# Reading a schema from its JSON text: only the parts read are decoded; the rest (directories, other
# rules, object mappings of other types) is passed over without making a Python object of it, and the
# attribute mappings of an object mapping stay text until the list cache has not seen that text.
class _RuleHead(msgspec.Struct):
    """What is read of a rule besides its object mappings."""

    id: Any = None
    name: Any = None
    targetDirectoryName: Any = None
    containerFilter: msgspec.Raw = msgspec.Raw()
    groupFilter: msgspec.Raw = msgspec.Raw()


class _RuleText(_RuleHead):
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
class _RuleMappingsText(_RuleHead):
    objectMappings: list[_ObjectMappingText] | None = None


class _SchemaMappingsText(msgspec.Struct):
    synchronizationRules: list[_RuleMappingsText] | None = None


_SCHEMA_MAPPINGS_TEXT = msgspec.json.Decoder(_SchemaMappingsText)


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
    return fast_or_plain(
        text,
        lambda t: _read_schema_text(t, what),
        lambda schema: check_and_read_schema(schema, what),
        lambda exc: refuse(what, f"it is not JSON ({exc})"),
    )


_PickedRule = tuple[_RuleText | _RuleMappingsText, list[_ObjectMappingText] | None]


def _picked_rule_text(text: bytes) -> _PickedRule | None:
    """The rule ``pick_rule`` picks from the schema text, with its object mappings; None: no rule."""
    try:
        whole: _SchemaMappingsText = _SCHEMA_MAPPINGS_TEXT.decode(text)
    except msgspec.ValidationError:
        pass
    else:
        rules = whole.synchronizationRules or []
        found = pick_rule(rules, [r.id for r in rules], [r.name for r in rules])
        return None if found is None else (found, found.objectMappings)
    schema: _SchemaText = _SCHEMA_TEXT.decode(text)
    parts = schema.synchronizationRules or []
    rule = pick_rule(parts, [r.id for r in parts], [r.name for r in parts])
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
        raise Unusual from exc
    _check_filters(filters, what)
    reads: list[_ListRead] = []
    seen: set[str] = set()
    scopes: list[tuple[str, Any]] = []
    to_ad = to_ad_rule(filters)
    for om in object_mappings or []:
        obj = object_type_named(om.sourceObjectName)
        if obj is None or (obj not in seen and to_ad and om.enabled is False):
            continue  # not an object type we manage (or, to AD, switched off): left as it is
        first = obj not in seen
        seen.add(obj)
        if first:
            try:
                scopes.append((obj, _loads(om.scope)))
            except ValueError as exc:
                raise Unusual from exc
        key = (obj, bytes(om.attributeMappings))
        cached = _LIST_CACHE.get(key)
        if cached is not None:
            if first:
                reads.append(_ListRead(obj, None, [], cached))
            continue
        try:
            ams = _loads(om.attributeMappings)
        except ValueError as exc:
            raise Unusual from exc
        if ams is not None and type(ams) is not list:
            raise refuse(what, f"attributeMappings is a {type(ams).__name__}")
        read = _mapping_list(obj, ams or [], first, what, key)
        if read is not None:
            reads.append(read)
    return _read_lists(filters, reads, scopes)
