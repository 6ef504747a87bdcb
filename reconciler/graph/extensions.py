"""Directory extensions in Graph terms: the Cloud Sync extensions application, extension properties, and
the job schema's attribute definitions of extension attributes.

Cloud Sync maps only the directory extensions of the application whose identifier URI is
``api://<tenantId>/CloudSyncCustomExtensionsApp`` (ED ``custom-attribute-mapping.md``). An extension
property ``Name`` of that application is the attribute ``extension_<appId without hyphens>_<Name>``;
the desired state names it ``ext:Name`` and the write resolves it once it knows the application
(``reconciler.core.model.resolve_extensions``). Before a mapping can set it, the Entra ID directory
of the job schema needs its attribute definition (the Graph recipe "Configure synchronization with
directory extension attributes": GET the schema, append the definition, PUT the whole schema back):
``with_definitions`` adds it next to the object's other attributes, ``without_definitions`` takes it
out again.

I/O: none; pure functions over JSON values as Graph returns them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.core.model import (
    EXTENSION_REF,
    DirectoryExtension,
    ExtensionsSeen,
    extension_attribute,
)
from reconciler.core.model import Mapping as AttributeMapping

__all__ = [
    "EXTENSIONS_APP_NAME",
    "identifier_uri",
    "property_body",
    "read_properties",
    "short_name",
    "unknown_extensions",
    "with_definitions",
    "without_definitions",
]

JSON = dict[str, Any]

EXTENSIONS_APP_NAME = "CloudSyncCustomExtensionsApp"
_FULL_NAME = re.compile(r"^extension_([0-9a-fA-F]{32})_(.+)$")
# The Entra ID object each object mapping of an AD -> Entra ID configuration writes to.
_ENTRA_OBJECT = {"user": "User", "inetOrgPerson": "User", "group": "Group", "contact": "Contact"}
# The job schema's attribute types; extension data types without one of their own are written as the
# nearest (INFERRED: the recipe shows String only; see docs/graph.md).
_ATTRIBUTE_TYPE = {
    "String": "String",
    "Boolean": "Boolean",
    "Integer": "Integer",
    "LargeInteger": "Integer",
    "DateTime": "DateTime",
    "Binary": "Binary",
}


def identifier_uri(tenant_id: str) -> str:
    return f"api://{tenant_id}/{EXTENSIONS_APP_NAME}"


def short_name(full: str, app_id: str) -> str | None:
    """``Name`` of ``extension_<appId>_Name`` when it is ``app_id``'s, else None."""
    match = _FULL_NAME.match(full)
    if match is None or match.group(1).lower() != app_id.replace("-", "").lower():
        return None
    return match.group(2)


def property_body(extension: DirectoryExtension) -> JSON:
    """``POST /applications/{id}/extensionProperties``: the documented request body."""
    return {
        "name": extension.name,
        "dataType": extension.data_type,
        "isMultiValued": extension.multi_valued,
        "targetObjects": list(extension.target_objects),
    }


def read_properties(app: Mapping[str, Any], properties: Iterable[Any]) -> ExtensionsSeen:
    """The extensions application ``app`` and its extension properties as the planner sees them."""
    app_id = str(app.get("appId") or "")
    seen: list[DirectoryExtension] = []
    ids: list[tuple[str, str]] = []
    for p in properties:
        if not isinstance(p, Mapping) or not isinstance(p.get("name"), str):
            continue
        name = short_name(p["name"], app_id)
        if name is None:
            continue
        targets = p.get("targetObjects")
        seen.append(
            DirectoryExtension(
                name=name,
                data_type=str(p.get("dataType") or ""),
                target_objects=tuple(str(t) for t in targets) if isinstance(targets, list) else (),
                multi_valued=bool(p.get("isMultiValued")),
            )
        )
        ids.append((name.casefold(), str(p.get("id") or "")))
    return ExtensionsSeen(app_id=app_id, properties=tuple(seen), property_ids=tuple(ids))


def _entra_directory(schema: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The directory the provisioning rule writes to, and each of our object types' object name in it."""
    rules = [r for r in schema.get("synchronizationRules") or [] if isinstance(r, dict)]
    rule = rules[0] if rules else {}
    target_name = rule.get("targetDirectoryName")
    objects = {
        str(om.get("sourceObjectName")): str(om.get("targetObjectName"))
        for om in rule.get("objectMappings") or []
        if isinstance(om, dict)
    }
    directory = next(
        (d for d in schema.get("directories") or [] if isinstance(d, dict) and d.get("name") == target_name),
        None,
    )
    return directory, objects


def _definition(full: str, extension: DirectoryExtension, like: Mapping[str, Any] | None) -> JSON:
    """An attribute definition shaped like its neighbours (``like``), as the service hands them out."""
    base: JSON = {k: copy.deepcopy(v) for k, v in (like or {}).items()}
    base.update(
        {
            "anchor": False,
            "caseExact": False,
            "defaultValue": None,
            "multivalued": extension.multi_valued,
            "mutability": "ReadWrite",
            "name": full,
            "required": False,
            "type": _ATTRIBUTE_TYPE.get(extension.data_type, "String"),
        }
    )
    for key in ("apiExpressions", "metadata", "referencedObjects"):
        base[key] = []
    return base


def with_definitions(
    schema: JSON, mappings: Sequence[AttributeMapping], extensions: Sequence[DirectoryExtension], app_id: str
) -> JSON:
    """``schema`` (a writable copy) with an attribute definition, in the directory the rule writes to, for
    each extension attribute ``mappings`` set that the object there does not define yet."""
    declared = {e.name.casefold(): e for e in extensions}
    directory, objects = _entra_directory(schema)
    if directory is None:
        return schema
    by_name = {str(o.get("name")): o for o in directory.get("objects") or [] if isinstance(o, dict)}
    for m in mappings:
        name = short_name(m.target, app_id)
        extension = declared.get(name.casefold()) if name is not None else None
        if extension is None:
            continue
        target_object = by_name.get(objects.get(m.object) or _ENTRA_OBJECT.get(m.object, ""))
        if target_object is None:
            continue
        attributes = target_object.setdefault("attributes", [])
        if any(str(a.get("name", "")).casefold() == m.target.casefold() for a in attributes):
            continue
        attributes.append(_definition(m.target, extension, attributes[0] if attributes else None))
    return schema


def without_definitions(schema: JSON, names: Iterable[str], app_id: str) -> JSON:
    """``schema`` without the attribute definitions (and the rows that set them) of extensions ``names``."""
    gone = {extension_attribute(app_id, n).casefold() for n in names}
    if not gone:
        return schema
    directory, _objects = _entra_directory(schema)
    for obj in (directory or {}).get("objects") or []:
        if isinstance(obj, dict) and isinstance(obj.get("attributes"), list):
            obj["attributes"] = [
                a for a in obj["attributes"] if str(a.get("name", "")).casefold() not in gone
            ]
    for rule in schema.get("synchronizationRules") or []:
        for om in rule.get("objectMappings") or []:
            if isinstance(om, dict) and isinstance(om.get("attributeMappings"), list):
                om["attributeMappings"] = [
                    am
                    for am in om["attributeMappings"]
                    if str(am.get("targetAttributeName", "")).casefold() not in gone
                ]
    return schema


def unknown_extensions(
    mappings: Sequence[AttributeMapping], extensions: Sequence[DirectoryExtension]
) -> list[str]:
    """``ext:`` names ``mappings`` use that ``extensions`` does not declare."""
    declared = {e.name.casefold() for e in extensions}
    out = []
    for m in mappings:
        for text in (m.target, m.value if m.kind.value == "direct" else ""):
            if text.startswith(EXTENSION_REF) and text[len(EXTENSION_REF) :].casefold() not in declared:
                out.append(text)
    return out
