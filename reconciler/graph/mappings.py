"""Attribute mappings: one service ``attributeMapping`` <-> one model ``Mapping``. Pure: no I/O.

Reading takes a mapping the service sent as it is (a constant's text is read as the expression parser
reads a string literal, ``expressions.parser.unquote``); writing a changed mapping keeps every field
the model has no word for. Also the password-hash row (``CredentialData <- [PasswordHash]``), and the
one quick look at a mapping that both checks it (``check_attribute_mapping``) and keys the cache of
mappings read (a tenant repeats the same mappings across its configurations).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping as AbcMapping
from typing import Any

from reconciler.core.model import CREDENTIAL_DATA, ApplyMode, Mapping, MappingKind
from reconciler.errors import ExpressionError
from reconciler.graph.fields import as_object, enum, optional, refuse
from reconciler.graph.identity import JSON

__all__ = [
    "FLOW_TYPES",
    "SOURCE_TYPES",
    "UNCOMMON",
    "attribute_mapping_to_model",
    "cached_mapping",
    "check_attribute_mapping",
    "common_key",
    "is_credential_data",
    "is_password_hash",
    "model_to_attribute_mapping",
    "password_hash_attribute_mapping",
    "update_attribute_mapping",
]

# Members of the v1.0 enums read here (attributeMappingSourceType, attributeFlowType).
SOURCE_TYPES = frozenset(("Attribute", "Constant", "Function"))
FLOW_TYPES = frozenset(("Always", "ObjectAddOnly", "MultiValueAddOnly", "ValueAddOnly", "AttributeAddOnly"))

# flowType values the model can express; others (MultiValueAddOnly, ...) read as "always" and are kept
# verbatim on write as long as the mapping is not changed.
_FLOW_ALWAYS = "Always"
_FLOW_ON_CREATE = "ObjectAddOnly"


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
        from reconciler.expressions.parser import unquote

        return MappingKind.CONSTANT, unquote(str(expression or ""))
    # The service echoes the expression text it was given; the tree is only the fallback.
    if isinstance(expression, str) and expression.strip():
        return MappingKind.EXPRESSION, expression
    from reconciler.expressions import from_service_tree

    try:
        return MappingKind.EXPRESSION, from_service_tree(dict(source))
    except ExpressionError as exc:
        # A function the service sent without its text, in a tree that makes no expression.
        raise refuse("a function mapping", f"its tree is not an expression ({exc})") from exc


# Mappings repeat across configurations (template defaults, shared mapping sets): reading a tenant
# builds each distinct one once. Values are immutable, so sharing them is safe.
_MAPPING_CACHE: dict[tuple[Any, ...], Mapping] = {}
_MAPPING_CACHE_MAX = 200_000


def cached_mapping(key: tuple[Any, ...]) -> Mapping | None:
    """The mapping read before under ``common_key`` ``key``, if it is still cached."""
    return _MAPPING_CACHE.get(key)


def attribute_mapping_to_model(object_type: str, data: AbcMapping[str, Any]) -> Mapping:
    """One service ``attributeMapping`` as a model ``Mapping`` of ``object_type``.

    A mapping without a source (the portal's "None" type, filled from ``defaultValue`` only) has no
    model kind of its own; it reads as an empty constant with that default.
    """
    # The key the schema readers look mappings up by: made of exactly typed strings and numbers, so
    # always hashable. None, or not of the common shape: not cached.
    key = common_key(object_type, data)
    if key is UNCOMMON:
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
        from reconciler.expressions.parser import quote

        return {
            "expression": quote(mapping.value),
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


def update_attribute_mapping(existing: AbcMapping[str, Any], current: Mapping, wanted: Mapping) -> JSON:
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


def is_password_hash(am: AbcMapping[str, Any]) -> bool:
    source = am.get("source") or {}
    return source.get("type", "Attribute") == "Attribute" and source.get("name") == "PasswordHash"


_CREDENTIAL_FOLDED = CREDENTIAL_DATA.casefold()


def is_credential_data(target: Any) -> bool:
    """Whether ``target`` names the password-hash row's target, CredentialData (in any case)."""
    return isinstance(target, str) and target.casefold() == _CREDENTIAL_FOLDED


def _attribute_mapping_ok(am: Any) -> bool:
    """The common case, decided with exact type tests only; a schema holds thousands of mappings."""
    return common_key("", am) is not UNCOMMON


def check_attribute_mapping(am: Any, what: str) -> None:
    if _attribute_mapping_ok(am):
        return
    # Something is off: go through it field by field to say what.
    data = as_object(am, what)
    target = data.get("targetAttributeName")
    if not isinstance(target, str):
        raise refuse(what, "an attribute mapping has no target attribute")
    where = f"{what}, mapping of {target}"
    enum(data, "flowType", FLOW_TYPES, where)
    optional(data, "defaultValue", str, where)
    optional(data, "matchingPriority", int, where)
    source = optional(data, "source", AbcMapping, where)
    if source is not None:
        enum(source, "type", SOURCE_TYPES, where)
        optional(source, "name", str, where)
        optional(source, "expression", str, where)
        optional(source, "parameters", list, where)


# What a fast check of an attribute mapping says when the mapping is not of the common shape.
UNCOMMON: tuple[Any, ...] = ("not of the common shape",)


def common_key(object_type: str, am: Any) -> tuple[Any, ...] | None:
    """``_attribute_mapping_ok`` and the ``attribute_mapping_to_model`` cache key, in one look at ``am``.

    ``UNCOMMON`` when ``am`` needs the careful check; else its key, or None for a function given as
    a tree only (read without the cache). Every value in a key has been type-tested exactly, so equal
    keys mean equal mappings.
    """
    if type(am) is not dict:
        return UNCOMMON
    target, flow = am.get("targetAttributeName"), am.get("flowType")
    default, priority = am.get("defaultValue"), am.get("matchingPriority")
    if not (
        type(target) is str
        and (flow is None or (type(flow) is str and flow in FLOW_TYPES))
        and (default is None or type(default) is str)
        and (priority is None or type(priority) is int)
    ):
        return UNCOMMON
    source = am.get("source")
    if source is None:
        return (object_type, target, default, flow, priority, None)
    if type(source) is not dict:
        return UNCOMMON
    kind, name = source.get("type"), source.get("name")
    text, params = source.get("expression"), source.get("parameters")
    if not (
        (kind is None or (type(kind) is str and kind in SOURCE_TYPES))
        and (name is None or type(name) is str)
        and (text is None or type(text) is str)
        and (params is None or type(params) is list)
    ):
        return UNCOMMON
    if not params:
        return (object_type, target, default, flow, priority, (kind, text, name))
    if text is not None:
        return (object_type, target, default, flow, priority, ("Function-expression", kind, text, name))
    return None
