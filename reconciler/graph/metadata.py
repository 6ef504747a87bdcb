"""Request bodies checked against the Graph metadata (v1.0 and beta) for the synchronization API.

``data/graph-{version}-synchronization.json`` is an extract of Microsoft Graph's CSDL for that version
(made by ``tools/extract_metadata.py``): the entity and complex types, enums and bound actions and
functions of the synchronization API, and the service principal, application and application template
types. ``Metadata.check`` resolves a request
URL segment by segment (entity sets, keys, properties, bound actions) and checks the body against the
type or action it lands on. It reports every violation: an unknown property or parameter, a value of the
wrong type, an enum member that does not exist, an action that is not bound to the type it is called on.

The emulator answers a request with a violation the way the service does (400), and the tests run
every body the provider sends through it. Pure apart from reading the package data file once.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["METADATA_FILE", "VERSIONS", "Metadata", "Target", "metadata"]

METADATA_FILE = "graph-v1.0-synchronization.json"
# The versions of the API with an extract in the package, and the file of each.
VERSIONS = {"v1.0": METADATA_FILE, "beta": "graph-beta-synchronization.json"}

# The entity sets used by the synchronization API, with the type of their members.
ENTITY_SETS: dict[str, str] = {
    "servicePrincipals": "graph.servicePrincipal",
    "applications": "graph.application",
    "applicationTemplates": "graph.applicationTemplate",
}

# Properties the service returns outside its published metadata, and takes back in a PUT of what it
# returned: ``provisioningTaskIdentifier`` is in every real schema GET (``../shared/reference/real/``)
# and a GET written back as it is succeeds (graph-sync-api.md section 3). A body holding them is not
# refused for them; they are not checked, and nothing else about the type changes.
UNPUBLISHED_PROPERTIES: dict[str, frozenset[str]] = {
    "graph.synchronizationSchema": frozenset({"provisioningTaskIdentifier"}),
}

_INT_RANGES = {
    "Edm.Byte": (0, 255),
    "Edm.SByte": (-128, 127),
    "Edm.Int16": (-(2**15), 2**15 - 1),
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_DURATION = re.compile(r"^-?P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY_SEGMENT = re.compile(r"^(?P<name>[A-Za-z]+)\((?P<key>.*)\)$")


@dataclass(frozen=True, slots=True)
class Target:
    """What a URL points at: a (collection of a) type, or a bound action."""

    type: str | None  # qualified type name, e.g. graph.synchronizationJob; None for an action
    collection: bool = False
    action: dict[str, Any] | None = None


def _unwrap(type_name: str) -> tuple[str, bool]:
    if type_name.startswith("Collection(") and type_name.endswith(")"):
        return type_name[len("Collection(") : -1], True
    return type_name, False


def _short(type_name: str) -> str:
    return type_name.split(".", 1)[1] if type_name.startswith("graph.") else type_name


class Metadata:
    """The types and actions of the extract, and checks of request URLs and bodies against them."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.types: dict[str, dict[str, Any]] = {f"graph.{k}": v for k, v in data["types"].items()}
        self.actions: list[dict[str, Any]] = list(data["actions"])
        self._checkers: dict[str, _Checker] = {}
        self._properties: dict[str, dict[str, dict[str, Any]] | None] = {}

    # -- types ---------------------------------------------------------------------------------

    def properties(self, type_name: str) -> dict[str, dict[str, Any]] | None:
        """Every property of ``type_name`` with those of its base types; None for an unknown type.

        The answer is shared (computed once per type): callers must not change it.
        """
        if type_name not in self._properties:
            self._properties[type_name] = self._collect_properties(type_name)
        return self._properties[type_name]

    def _collect_properties(self, type_name: str) -> dict[str, dict[str, Any]] | None:
        result: dict[str, dict[str, Any]] = {}
        seen: set[str] = set()
        current: str | None = type_name
        known = False
        while current and current not in seen:
            seen.add(current)
            definition = self.types.get(current)
            if definition is None:
                # A base outside the extract (graph.directoryObject): every entity derives from entity.
                if known and current != "graph.entity":
                    current = "graph.entity"
                    continue
                break
            known = True
            for name, prop in (definition.get("properties") or {}).items():
                result.setdefault(name, prop)
            current = definition.get("base")
        return result if known else None

    def bound_actions(self, name: str, type_name: str, collection: bool) -> list[dict[str, Any]]:
        binding = f"Collection({type_name})" if collection else type_name
        return [a for a in self.actions if a["name"].lower() == name.lower() and a["boundTo"] == binding]

    # -- URLs ----------------------------------------------------------------------------------

    def resolve(self, path: str) -> tuple[Target | None, str | None]:
        """The target of ``path`` (relative to the version), or a violation saying why it has none."""
        parts = [urllib.parse.unquote(p) for p in path.split("?", 1)[0].strip("/").split("/") if p]
        if parts and parts[0] in ("v1.0", "beta"):
            parts = parts[1:]
        if not parts:
            return None, "empty path"
        first = parts[0]
        keyed = _KEY_SEGMENT.match(first)
        set_name = keyed.group("name") if keyed else first
        # Graph reads segment names case-insensitively.
        sets = {name.lower(): type_name for name, type_name in ENTITY_SETS.items()}
        if set_name.lower() not in sets:
            return None, f"{set_name!r} is not an entity set of the synchronization API"
        current = Target(sets[set_name.lower()], collection=keyed is None)
        for i, seg in enumerate(parts[1:], start=1):
            if current.action is not None or current.type is None:
                return None, f"nothing can follow the action {seg!r}"
            type_name = current.type
            if current.collection:
                actions = self.bound_actions(seg, type_name, True)
                # Not an action bound to the collection: a key, which selects one member.
                current = Target(None, action=actions[0]) if actions else Target(type_name)
                continue
            props = {k.lower(): v for k, v in (self.properties(type_name) or {}).items()}
            if seg.lower() in props:
                inner, many = _unwrap(props[seg.lower()]["type"])
                current = Target(inner, collection=many)
                continue
            actions = self.bound_actions(seg, type_name, False)
            if actions:
                current = Target(None, action=actions[0])
                continue
            other = [a["boundTo"] for a in self.actions if a["name"].lower() == seg.lower()]
            where = "/" + "/".join(parts[: i + 1])
            if other:
                return None, (f"{where}: action {seg!r} is bound to {', '.join(other)}, not to {type_name}")
            return None, f"{where}: {type_name} has no property or bound action {seg!r}"
        return current, None

    # -- bodies --------------------------------------------------------------------------------

    def check(self, method: str, path: str, body: Any) -> list[str]:
        """Every violation in a request: its URL and its JSON ``body`` (None when it has none)."""
        method = method.upper()
        clean = path.split("?", 1)[0].rstrip("/")
        if clean.endswith("$batch"):
            return self._check_batch(body)
        target, problem = self.resolve(clean)
        if target is None:
            return [problem or "unknown path"]
        where = f"{method} {clean}"
        if method in ("GET", "DELETE"):
            return [] if body is None else [f"{where}: a {method} request has no body"]
        if target.action is not None:
            if method != "POST":
                return [f"{where}: an action is called with POST, not {method}"]
            return self._check_action(target.action, body, where)
        assert target.type is not None
        if target.collection and method == "PUT":
            if not isinstance(body, Mapping) or not isinstance(body.get("value"), list):
                return [f'{where}: a collection is replaced with {{"value": [...]}}']
            extra = sorted(k for k in body if k != "value" and "@odata." not in k)
            problems = [f"{where}: unknown property {k!r}" for k in extra]
            for n, item in enumerate(body["value"]):
                problems += self.check_value(item, target.type, False, f"{where} value[{n}]")
            return problems
        if target.collection and method != "POST":
            return [f"{where}: {method} on a collection"]
        return self.check_value(body, target.type, False, where)

    def _check_action(self, action: Mapping[str, Any], body: Any, where: str) -> list[str]:
        params = {p["name"]: p for p in action.get("parameters") or []}
        if body is None:
            return []
        if not isinstance(body, Mapping):
            return [f"{where}: the parameters of {action['name']!r} are a JSON object"]
        problems = []
        for key, value in body.items():
            if "@odata." in key:
                continue
            if key not in params:
                problems.append(f"{where}: {action['name']!r} has no parameter {key!r}")
                continue
            param = params[key]
            problems += self.check_value(
                value, param["type"], bool(param.get("nullable", True)), f"{where} {key}"
            )
        return problems

    def _check_batch(self, body: Any) -> list[str]:
        if not isinstance(body, Mapping) or not isinstance(body.get("requests"), list):
            return ['$batch: the body is {"requests": [...]}']
        requests = body["requests"]
        problems = []
        if len(requests) > 20:
            problems.append(f"$batch: {len(requests)} requests; the limit is 20")
        known = {"id", "method", "url", "headers", "body", "dependsOn"}
        for n, request in enumerate(requests):
            if not isinstance(request, Mapping):
                problems.append(f"$batch requests[{n}]: not an object")
                continue
            problems += [f"$batch requests[{n}]: unknown member {k!r}" for k in sorted(set(request) - known)]
            method, url = request.get("method"), request.get("url")
            if (
                not isinstance(method, str)
                or not isinstance(url, str)
                or not isinstance(request.get("id"), str)
            ):
                problems.append(f"$batch requests[{n}]: id, method and url are strings")
                continue
            if "body" in request and not any(
                str(k).lower() == "content-type" for k in (request.get("headers") or {})
            ):
                problems.append(f"$batch requests[{n}]: a body needs a Content-Type header")
            problems += [f"$batch requests[{n}]: {p}" for p in self.check(method, url, request.get("body"))]
        return problems

    def canonical_enums(self, value: Any, type_name: str) -> Any:
        """``value`` (of ``type_name``) with every enum member spelt as the metadata spells it."""
        inner, many = _unwrap(type_name)
        if many:
            return [self.canonical_enums(v, inner) for v in value] if isinstance(value, list) else value
        definition = self.types.get(inner)
        if definition is None or value is None:
            return value
        if definition["kind"] == "enum":
            if not isinstance(value, str):
                return value
            spelling = {m.lower(): m for m in definition["members"]}
            names = [v.strip() for v in value.split(",")] if definition.get("flags") else [value]
            canonical = [spelling.get(n.lower(), n) for n in names]
            if canonical == names:
                return value  # flags keep the separator they were written with (the service writes ", ")
            return ", ".join(canonical)
        if not isinstance(value, Mapping):
            return value
        props = self.properties(inner) or {}
        return {k: self.canonical_enums(v, props[k]["type"]) if k in props else v for k, v in value.items()}

    def check_value(self, value: Any, type_name: str, nullable: bool, where: str) -> list[str]:
        """Violations of ``value`` against ``type_name`` (an Edm, enum, complex or entity type)."""
        problems: list[str] = []
        if value is None:
            if not nullable:
                problems.append(f"{where}: null is not allowed ({_short(type_name)})")
        else:
            self._checker(type_name)(value, (where,), problems)
        return problems

    # A schema body holds thousands of values, so each type gets a checker function made once, and a
    # value's path is kept as nested tuples that become text only for a violation.
    def _checker(self, type_name: str) -> _Checker:
        found = self._checkers.get(type_name)
        if found is None:
            # Types refer to themselves (a function's parameters are sources): a stand-in first.
            def late(value: Any, path: _Path, problems: list[str]) -> None:
                self._checkers[type_name](value, path, problems)

            self._checkers[type_name] = late
            found = self._checkers[type_name] = self._make_checker(type_name)
        return found

    def _make_checker(self, type_name: str) -> _Checker:
        inner, many = _unwrap(type_name)
        short = _short(inner)
        if many:
            item_check = self._checker(inner)

            def check_list(value: Any, path: _Path, problems: list[str]) -> None:
                if not isinstance(value, list):
                    problems.append(f"{_text(path)}: expected a list of {short}, got {type(value).__name__}")
                    return
                for n, item in enumerate(value):
                    if item is None:
                        problems.append(f"{_text((path, n))}: null is not allowed ({short})")
                    else:
                        item_check(item, (path, n), problems)

            return check_list
        if inner == "Edm.String":

            def check_string(value: Any, path: _Path, problems: list[str]) -> None:
                if not isinstance(value, str):
                    problems.append(_wrong(path, value, inner, "a string"))

            return check_string
        if inner.startswith("Edm."):

            def check_primitive(value: Any, path: _Path, problems: list[str]) -> None:
                expected = _primitive_problem(value, inner)
                if expected:
                    problems.append(_wrong(path, value, inner, expected))

            return check_primitive
        definition = self.types.get(inner)
        if definition is None:
            return _nothing_to_check  # outside the extract
        if definition["kind"] == "enum":
            # Members are matched whatever their case: the documented schema example writes "string"
            # for String (docs/graph.md); ``canonical_enums`` restores the metadata's spelling.
            members = frozenset(m.lower() for m in definition["members"])
            flags = bool(definition.get("flags"))

            def check_enum(value: Any, path: _Path, problems: list[str]) -> None:
                if not isinstance(value, str):
                    problems.append(
                        f"{_text(path)}: expected a {short} member name, got {type(value).__name__}"
                    )
                    return
                names = [v.strip() for v in value.split(",")] if flags else [value]
                problems += [
                    f"{_text(path)}: {n!r} is not a member of {short}"
                    for n in names
                    if n.lower() not in members
                ]

            return check_enum
        fields: dict[str, tuple[_Checker, bool, bool, str]] = {}
        # An open complex type takes any other property; an open directory object only directory
        # extensions (extension_<appId>_<name>), which is what the service stores on it.
        open_type = bool(definition.get("open")) and definition.get("kind") == "ComplexType"
        open_extensions = bool(definition.get("open")) and definition.get("kind") == "EntityType"
        unpublished = UNPUBLISHED_PROPERTIES.get(inner, frozenset())
        for key, prop in (self.properties(inner) or {}).items():
            writable = not prop.get("navigation") or bool(prop.get("containsTarget"))
            fields[key] = (
                self._checker(prop["type"]),
                bool(prop.get("nullable", True)),
                writable,
                prop["type"],
            )

        def check_object(value: Any, path: _Path, problems: list[str]) -> None:
            if not isinstance(value, Mapping):
                problems.append(f"{_text(path)}: expected a {short} object, got {type(value).__name__}")
                return
            for key, item in value.items():
                field = fields.get(key)
                if field is None:
                    extension = open_extensions and key.startswith("extension_")
                    if "@odata." not in key and not open_type and not extension and key not in unpublished:
                        problems.append(f"{_text(path)}: {short} has no property {key!r}")
                    continue
                check, nullable, writable, prop_type = field
                if not writable:
                    problems.append(
                        f"{_text(path)}: {key!r} is a navigation property and cannot be written inline"
                    )
                elif item is None:
                    if not nullable:
                        problems.append(
                            f"{_text((path, '.' + key))}: null is not allowed ({_short(prop_type)})"
                        )
                else:
                    check(item, (path, "." + key), problems)

        return check_object


def _nothing_to_check(value: Any, path: Any, problems: list[str]) -> None:
    return None


_Path = tuple[Any, ...]
_Checker = Callable[[Any, _Path, list[str]], None]


def _text(path: _Path) -> str:
    parts: list[str] = []
    node: Any = path
    while len(node) == 2:
        node, last = node
        parts.append(f"[{last}]" if isinstance(last, int) else str(last))
    parts.append(str(node[0]))
    return "".join(reversed(parts))


def _wrong(path: _Path, value: Any, type_name: str, expected: str) -> str:
    return f"{_text(path)}: expected {expected} ({type_name}), got {type(value).__name__} {value!r}"[:300]


def _primitive_problem(value: Any, type_name: str) -> str | None:
    """What ``value`` should have been, or None when it is a valid ``type_name``."""
    if type_name == "Edm.Untyped":
        return None
    if type_name == "Edm.Boolean":
        return None if isinstance(value, bool) else "true or false"
    if type_name in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            return "an integer"
        low, high = _INT_RANGES[type_name]
        return None if low <= value <= high else f"an integer in {low}..{high}"
    if type_name in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "a number"
    if not isinstance(value, str):
        return "a string"
    if type_name == "Edm.DateTimeOffset" and not _DATETIME.match(value):
        return "an ISO 8601 date and time"
    if type_name == "Edm.Duration" and not _DURATION.match(value):
        return "an ISO 8601 duration"
    if type_name == "Edm.Guid" and not _GUID.match(value):
        return "a GUID"
    return None


@functools.cache
def metadata(version: str = "v1.0") -> Metadata:
    """The packaged extract of ``version`` (``v1.0`` or ``beta``), read once per process."""
    text = resources.files("reconciler").joinpath("data", VERSIONS[version]).read_text(encoding="utf-8")
    return Metadata(json.loads(text))
