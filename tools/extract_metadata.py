"""Extract the synchronization API's types and actions from a Microsoft Graph CSDL file into package data.

Usage: ``python tools/extract_metadata.py CSDL_FILE [CSDL_FILE...] OUT_JSON --source TEXT [--add-to]``

``CSDL_FILE`` is one of the metadata documents published in microsoftgraph/msgraph-metadata
(``clean_v10_metadata/cleanMetadata.xml``, ``clean_beta_metadata/cleanMetadata.xml``, or a cloud's
``schemas/*.csdl``), or several well-formed fragments of one: their ``microsoft.graph`` schemas are read
as one. A fragment file holds an ``edmx:Edmx`` document or a bare ``Schema`` element with the elements
copied from the published document, which lets the extract be made from the parts of a document too
large to handle whole. The output holds the types reachable from the synchronization entities, the
service principal, the application, its extension properties, app role assignments and the application
template (properties with their type, nullability and whether they are navigation properties; enum
members; base types), and the actions and functions bound to the synchronization types plus
``applicationTemplate: instantiate``: what ``reconciler.graph.metadata`` checks request bodies against
and what the emulator serves. Descriptions and annotations are left out, and so are the types a
navigation property leads to outside the synchronization API, to keep the extract small.

A type the extract needs that the input does not define is an error naming every such type (with
``--partial``, a list on stderr): with fragments, it is the list of what to copy next.

``--add-to``: OUT_JSON is an extract already; its types and actions are kept and only the roots it
lacks (a type added to ``ROOTS``) are read from CSDL_FILE, and the source says where they came from.

I/O: reads each CSDL_FILE (at most 64 MiB), writes OUT_JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
MAX_BYTES = 64 * 1024 * 1024

# Where the walk starts: the types a synchronization client reads and writes.
ROOTS = (
    "synchronization",
    "synchronizationJob",
    "synchronizationSchema",
    "synchronizationTemplate",
    "directoryDefinition",
    "servicePrincipal",
    "application",
    "applicationTemplate",
    "appRoleAssignment",
    "extensionProperty",
    "applicationServicePrincipal",
    "parseExpressionResponse",
    "filterOperatorSchema",
    "attributeMappingFunctionSchema",
    "entity",
    "directoryObject",
    "provisioningObjectSummary",
    "group",
)
# Entity types whose navigation properties are followed: the synchronization API's own. Others (the
# owners of a service principal, its sign-in policies...) keep the property, but its type is left out.
FOLLOW_NAVIGATION = (
    "synchronization",
    "synchronizationJob",
    "synchronizationSchema",
    "synchronizationTemplate",
)
# Actions bound to these are kept (applicationTemplate: instantiate included).
ACTION_BINDINGS_PREFIXES = ("synchronization", "directoryDefinition", "applicationTemplate", "bulkUpload")


def _short(type_name: str) -> str:
    """``microsoft.graph.x`` and ``graph.x`` both become ``graph.x``; ``Collection(...)`` is kept."""
    if type_name.startswith("Collection(") and type_name.endswith(")"):
        return f"Collection({_short(type_name[11:-1])})"
    if type_name.startswith("microsoft.graph."):
        return "graph." + type_name[len("microsoft.graph.") :]
    return type_name


def _inner(type_name: str) -> str:
    if type_name.startswith("Collection(") and type_name.endswith(")"):
        return type_name[11:-1]
    return type_name


def _nullable(element: ET.Element) -> bool:
    return element.get("Nullable", "true").lower() != "false"


def read_schema(path: Path) -> ET.Element:
    if path.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{path}: larger than {MAX_BYTES} bytes; not a metadata document")
    root = ET.parse(path).getroot()
    for schema in root.iter(f"{EDM}Schema"):
        if schema.get("Namespace") == "microsoft.graph":
            return schema
    raise SystemExit(f"{path}: no microsoft.graph schema")


def read_schemas(paths: list[Path]) -> ET.Element:
    """The ``microsoft.graph`` schemas of ``paths`` as one (the first file's, with the others' elements)."""
    schema = read_schema(paths[0])
    names = {(e.tag, e.get("Name")) for e in schema if e.tag != f"{EDM}Action" and e.tag != f"{EDM}Function"}
    for path in paths[1:]:
        for element in read_schema(path):
            key = (element.tag, element.get("Name"))
            # Actions and functions are overloaded by binding, so they are never duplicates by name.
            if key in names and element.tag not in (f"{EDM}Action", f"{EDM}Function"):
                raise SystemExit(f"{path}: {key[1]} is defined twice")
            names.add(key)
            schema.append(element)
    return schema


def _walk(
    elements: dict[str, ET.Element], types: dict[str, Any], pending: list[str], missing: set[str]
) -> None:
    """Add to ``types`` every type named in ``pending`` and those they lead to.

    A name of ``microsoft.graph`` (no further dot) that ``elements`` lacks goes to ``missing``; names of
    the sub-namespaces (``graph.callRecords.x``) are outside the extract."""
    while pending:
        name = pending.pop(0)
        if name in types:
            continue
        if name not in elements:
            if "." not in name:
                missing.add(name)
            continue
        element = elements[name]
        tag = element.tag[len(EDM) :]
        if tag == "EnumType":
            types[name] = {
                "kind": "enum",
                "members": [m.get("Name") for m in element.iter(f"{EDM}Member")],
                "flags": element.get("IsFlags", "false").lower() == "true",
            }
            continue
        base = _short(element.get("BaseType") or "") or None
        properties: dict[str, Any] = {}
        for prop in element:
            kind = prop.tag[len(EDM) :]
            if kind not in ("Property", "NavigationProperty"):
                continue
            type_name = _short(prop.get("Type", ""))
            entry: dict[str, Any] = {
                "type": type_name,
                "nullable": _nullable(prop),
                "navigation": kind == "NavigationProperty",
            }
            if kind == "NavigationProperty" and prop.get("ContainsTarget", "false").lower() == "true":
                entry["containsTarget"] = True
            properties[prop.get("Name", "")] = entry
            target = _inner(type_name)
            if target.startswith("graph.") and (kind == "Property" or name in FOLLOW_NAVIGATION):
                pending.append(target[len("graph.") :])
        types[name] = {"kind": tag, "base": base, "properties": properties}
        if element.get("OpenType", "false").lower() == "true":
            # An open type takes properties its definition does not name (stringKeyObjectValuePair's value).
            types[name]["open"] = True
        if base and base.startswith("graph."):
            pending.append(base[len("graph.") :])


def _actions(schema: ET.Element, types: dict[str, Any]) -> list[dict[str, Any]]:
    """The actions and functions bound to the synchronization types among ``types``."""
    actions = []
    for tag in ("Action", "Function"):
        for element in schema.iter(f"{EDM}{tag}"):
            params = list(element.iter(f"{EDM}Parameter"))
            if element.get("IsBound", "false").lower() != "true" or not params:
                continue
            bound_to = _short(params[0].get("Type", ""))
            bound_name = _inner(bound_to)[len("graph.") :]
            if not bound_name.startswith(ACTION_BINDINGS_PREFIXES) or bound_name not in types:
                continue
            returns = element.find(f"{EDM}ReturnType")
            actions.append(
                {
                    "name": element.get("Name"),
                    "kind": tag,
                    "boundTo": bound_to,
                    "parameters": [
                        {"name": p.get("Name"), "type": _short(p.get("Type", "")), "nullable": _nullable(p)}
                        for p in params[1:]
                    ],
                    "returns": _short(returns.get("Type", "")) if returns is not None else None,
                }
            )
    return actions


def extract(
    schema: ET.Element, source: str, missing: set[str] | None = None, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The extract of ``schema``; the names it needs but ``schema`` lacks are added to ``missing``.

    ``base``: an extract to add to. Its types are kept as they are (``schema`` need not define them)
    and only the roots it lacks, and what they lead to, are read from ``schema``; its actions too."""
    missing = set() if missing is None else missing
    elements: dict[str, ET.Element] = {}
    for tag in ("EntityType", "ComplexType", "EnumType"):
        for element in schema.iter(f"{EDM}{tag}"):
            elements[element.get("Name", "")] = element
    if base is not None:
        types = dict(base["types"])
        _walk(elements, types, [r for r in ROOTS if r not in types], missing)
        added = sorted(set(types) - set(base["types"]))
        return {
            "source": f"{base['source']}; {', '.join(added)} from {source}" if added else base["source"],
            "types": dict(sorted(types.items())),
            "actions": base["actions"],
        }
    types = {}
    pending = list(ROOTS)
    actions: list[dict[str, Any]] = []
    while pending:
        _walk(elements, types, pending, missing)
        # The parameters and results of the actions bound to what was found are part of the extract.
        actions = _actions(schema, types)
        for action in actions:
            used = [p["type"] for p in action["parameters"]] + [action["returns"] or ""]
            names = [t[len("graph.") :] for t in map(_inner, used) if t.startswith("graph.")]
            pending += [n for n in names if n not in types and n not in missing]
    actions.sort(key=lambda a: (a["kind"], a["name"], a["boundTo"]))
    return {"source": source, "types": dict(sorted(types.items())), "actions": actions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csdl", type=Path, nargs="+", help="CSDL documents or fragments, then OUT_JSON")
    parser.add_argument("--source", required=True, help="where CSDL_FILE came from: repository, path, commit")
    parser.add_argument("--partial", action="store_true", help="list the types missing instead of failing")
    parser.add_argument(
        "--add-to",
        action="store_true",
        help="OUT_JSON is an extract already: keep it, and add only the roots it lacks from CSDL_FILE",
    )
    args = parser.parse_args(argv)
    if len(args.csdl) < 2:
        parser.error("give at least one CSDL_FILE and OUT_JSON")
    *inputs, out = args.csdl
    missing: set[str] = set()
    base = None
    if args.add_to:
        if out.stat().st_size > MAX_BYTES:
            raise SystemExit(f"{out}: larger than {MAX_BYTES} bytes; not an extract")
        base = json.loads(out.read_text(encoding="utf-8"))
    data = extract(read_schemas(inputs), args.source, missing, base)
    if missing:
        listed = " ".join(sorted(missing, key=str.lower))
        if not args.partial:
            print(f"types the extract needs that the input does not define: {listed}", file=sys.stderr)
            return 1
        print(f"missing: {listed}", file=sys.stderr)
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{out}: {len(data['types'])} types, {len(data['actions'])} actions and functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
