"""A small on-premises directory written in YAML: read it, check it, load it into a local tenant.

The local tenant's on-demand provisioning needs the objects an AD domain would hold; ``preview`` needs
sample objects. Both are written in one format (documented in ``docs/provisioning.md``)::

    kind: Directory
    domain: contoso.com                    # optional: every DN must then lie in this domain
    objects:
      - dn: OU=Sales,DC=contoso,DC=com
        type: organizationalUnit
      - dn: CN=Adele Vance,OU=Sales,DC=contoso,DC=com
        type: user                         # or objectClass: [top, person, organizationalPerson, user]
        attributes:
          sAMAccountName: adelev
          userAccountControl: 512
          proxyAddresses: [SMTP:adelev@contoso.com, smtp:adele@contoso.com]
        memberOf: ["CN=Pilot,OU=Groups,DC=contoso,DC=com"]   # quoted: in [..] commas split items
      - dn: CN=Sales Team,OU=Groups,DC=contoso,DC=com
        type: group
        members:
          - CN=Adele Vance,OU=Sales,DC=contoso,DC=com
    cloudGroups:                           # optional: Entra ID security groups (``cloud_groups``)
      - {id: 0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b, displayName: Finance Approvers, members: []}

DNs follow RFC 4514 and compare case-insensitively. Every object gets ``distinguishedName`` (its DN),
``objectGUID`` (when not written: a GUID derived from the DN, so reloading gives the same one) and, for
a ``CN=`` name, ``cn``. Group membership may be written on either side; when a whole directory is
read, every member and group must be an object of the files. Every problem is reported, with its line.

I/O: ``read_directory`` and ``read_objects`` read the files they are given; ``load_into`` writes the
objects and the cloud groups into a ``TenantStore``. YAML is parsed by ``reconciler.config.yamlio``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.config.dn import DNError, dn_domain, parse_dn
from reconciler.config.files import read_bounded
from reconciler.config.yamlio import Document, Locator, parse_documents
from reconciler.core.model import OBJECT_TYPES, Origin
from reconciler.errors import Diagnostic, FileReadError, LoadError
from reconciler.provisioning.ad_schema import FIELD as SCHEMA_FIELD
from reconciler.provisioning.ad_schema import read_schema_extensions
from reconciler.provisioning.cloud_groups import FIELD as CLOUD_FIELD
from reconciler.provisioning.cloud_groups import CloudGroup, duplicate_groups, read_cloud_groups
from reconciler.provisioning.evaluate import SourceValue, dn_compare_key, normalize_attributes
from reconciler.provisioning.wording import hint as _hint
from reconciler.provisioning.wording import what as _what
from reconciler.tenant.store import TenantStore

__all__ = [
    "DIRECTORY_KIND",
    "OBJECT_CLASSES",
    "Directory",
    "DirectoryObject",
    "LoadSummary",
    "load_into",
    "parse_directory",
    "read_directory",
    "read_objects",
]

DIRECTORY_KIND = "Directory"
# A directory dump of a few thousand objects is a few MiB; the limit keeps a wrong path (a device, a
# disk image) from being read into memory.
MAX_DIRECTORY_BYTES = 64 * 1024 * 1024
CONTAINER_TYPES: tuple[str, ...] = ("organizationalUnit", "container")
OBJECT_CLASSES: tuple[str, ...] = (*OBJECT_TYPES, *CONTAINER_TYPES)
_CLASS_BY_FOLDED = {c.casefold(): c for c in OBJECT_CLASSES}
# AD writes objectClass from the most general to the most specific class; these say nothing about it.
_GENERAL_CLASSES = frozenset(("top", "person", "organizationalperson"))

_OBJECT_KEYS = ("dn", "type", "objectClass", "attributes", "members", "memberOf")
_TOP_KEYS = ("apiVersion", "kind", "domain", "objects", SCHEMA_FIELD, CLOUD_FIELD)
# Objects without a written objectGUID get one derived from their DN in this namespace.
_GUID_NAMESPACE = uuid.UUID("0d5a6f43-3c0e-4d7b-9a55-6f0b6b2f6a10")


@dataclass(frozen=True, slots=True)
class DirectoryObject:
    """One on-premises object: its DN, type, source attributes and written group memberships."""

    dn: str
    object_type: str
    attributes: dict[str, SourceValue]
    members: tuple[str, ...] = ()
    member_of: tuple[str, ...] = ()
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Directory:
    """On-premises objects, in the order they were written, and the cloud groups."""

    objects: tuple[DirectoryObject, ...]
    # The AD schema extensions the agent has found (``schemaExtensions``; ``ad_schema``).
    schema_extensions: tuple[dict[str, Any], ...] = ()
    # Entra ID security groups (``cloudGroups``; ``cloud_groups``).
    cloud_groups: tuple[CloudGroup, ...] = ()

    def memberships(self) -> list[tuple[str, str]]:
        """Every (group DN, member DN) pair, from both ``members`` and ``memberOf``, without repeats.

        DNs are given as the referenced object writes them when it is in the file.
        """
        written = {dn_compare_key(o.dn): o.dn for o in self.objects}
        pairs: dict[tuple[Any, Any], tuple[str, str]] = {}

        def add(group: str, member: str) -> None:
            gk, mk = dn_compare_key(group), dn_compare_key(member)
            pairs.setdefault((gk, mk), (written.get(gk, group), written.get(mk, member)))

        for obj in self.objects:
            for member in obj.members:
                add(obj.dn, member)
            for group in obj.member_of:
                add(group, obj.dn)
        return list(pairs.values())

    def member_of(self, dn: str) -> list[str]:
        """The groups ``dn`` is a direct member of."""
        key = dn_compare_key(dn)
        return [g for g, m in self.memberships() if dn_compare_key(m) == key]


# -- parsing -----------------------------------------------------------------------------------------


class _Reader:
    """Reads the objects of one file, collecting every problem with its position."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Diagnostic] = []
        self.schema_extensions: list[dict[str, Any]] = []
        self.cloud_groups: list[CloudGroup] = []
        self.objects_read: list[DirectoryObject] = []

    def error(self, loc: Locator, message: str) -> None:
        self.problems.append(Diagnostic(self.file, loc.line, loc.col, message))

    def dn(self, value: object, loc: Locator, what: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.error(loc, f"{what} must be a distinguished name such as CN=Name,OU=Unit,DC=contoso,DC=com")
            return None
        try:
            parse_dn(value)
        except DNError as exc:
            # The offending character's column is known only for a scalar written on one line.
            col = loc.col + exc.offset + (1 if loc.quoted else 0) if loc.single_line else loc.col
            self.problems.append(
                Diagnostic(self.file, loc.line, col, f"{what} is not a valid DN: {exc.message}")
            )
            return None
        return value

    def dn_list(self, value: object, loc: Locator, what: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.error(loc, f"{what} must be a list of DNs, not {_what(value)}")
            return ()
        items = loc.items()
        found: list[str] = []
        for i, item in enumerate(value):
            where = items[i] if i < len(items) else loc
            dn = self.dn(item, where, f"{what}[{i}]")
            if dn is None:
                continue
            if len(value) > 1 and len(parse_dn(dn)) == 1:
                # In a flow list ([a, b]) an unquoted DN is cut at its commas into one-RDN pieces.
                self.error(where, f"{what}[{i}] '{dn}' looks like part of a DN: quote DNs in a [..] list")
                continue
            found.append(dn)
        return tuple(found)

    def object_type(self, value: dict[str, Any], loc: Locator) -> str | None:
        if "type" in value:
            written = value["type"]
            where = loc.find(("type",))
            if isinstance(written, str) and written.casefold() in _CLASS_BY_FOLDED:
                return _CLASS_BY_FOLDED[written.casefold()]
            hint = _hint(written, OBJECT_CLASSES) if isinstance(written, str) else ""
            self.error(where, f"type must be one of {', '.join(OBJECT_CLASSES)}, not {_what(written)}{hint}")
            return None
        if "objectClass" in value:
            classes = value["objectClass"]
            where = loc.find(("objectClass",))
            names = [classes] if isinstance(classes, str) else classes
            if isinstance(names, list) and names and all(isinstance(c, str) for c in names):
                for name in reversed(names):
                    if name.casefold() in _CLASS_BY_FOLDED:
                        return _CLASS_BY_FOLDED[name.casefold()]
                    if name.casefold() not in _GENERAL_CLASSES:
                        break
            self.error(
                where,
                f"objectClass must name one of {', '.join(OBJECT_CLASSES)} (the most specific class last)",
            )
            return None
        self.error(loc, f"an object needs 'type' (one of {', '.join(OBJECT_CLASSES)}) or 'objectClass'")
        return None

    def attributes(self, value: object, loc: Locator) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(loc, f"attributes must be a mapping of attribute names to values, not {_what(value)}")
            return {}
        good: dict[str, Any] = {}
        for name, item in value.items():
            items = item if isinstance(item, list) else [item]
            if any(isinstance(v, dict | list) for v in items):
                self.error(
                    loc.find((name,)),
                    f"attribute '{name}' must be a value or a list of values, not a nested structure",
                )
                continue
            good[name] = item
        return good

    def one(self, value: object, loc: Locator) -> DirectoryObject | None:
        if not isinstance(value, dict):
            self.error(loc, f"an object must be a mapping with dn, type and attributes, not {_what(value)}")
            return None
        for key in value:
            if key not in _OBJECT_KEYS:
                self.error(
                    loc.find((key,), key=True),
                    f"unknown field '{key}' of an object{_hint(key, _OBJECT_KEYS)}",
                )
        dn = self.dn(value.get("dn"), loc.find(("dn",)) if "dn" in value else loc, "dn")
        object_type = self.object_type(value, loc)
        attributes = self.attributes(value.get("attributes"), loc.find(("attributes",)))
        members: tuple[str, ...] = ()
        if "members" in value:
            members = self.dn_list(value["members"], loc.find(("members",)), "members")
            if object_type is not None and object_type != "group":
                self.error(loc.find(("members",), key=True), "only a group has members")
        member_of = (
            self.dn_list(value["memberOf"], loc.find(("memberOf",)), "memberOf")
            if "memberOf" in value
            else ()
        )
        if dn is None or object_type is None:
            return None
        return DirectoryObject(
            dn=dn,
            object_type=object_type,
            attributes=_with_implied(dn, normalize_attributes(attributes)),
            members=members,
            member_of=member_of,
            origin=loc.origin(self.file),
        )

    def objects(self, value: object, loc: Locator) -> list[DirectoryObject]:
        if not isinstance(value, list):
            self.error(loc, f"objects must be a list, not {_what(value)}")
            return []
        items = loc.items()
        found: list[DirectoryObject] = []
        for i, item in enumerate(value):
            obj = self.one(item, items[i] if i < len(items) else loc)
            if obj is not None:
                found.append(obj)
        return found


def _with_implied(dn: str, attributes: dict[str, SourceValue]) -> dict[str, SourceValue]:
    result = dict(attributes)
    folded = {k.casefold() for k in result}
    if "distinguishedname" not in folded:
        result["distinguishedName"] = dn
    if "objectguid" not in folded:
        canonical = ",".join("+".join(f"{a}={v}" for a, v in rdn) for rdn in dn_compare_key(dn))
        result["objectGUID"] = str(uuid.uuid5(_GUID_NAMESPACE, canonical))
    first = parse_dn(dn)[0]
    if "cn" not in folded and len(first) == 1 and first[0][0].casefold() == "cn":
        result["cn"] = first[0][1]
    return result


def _document_objects(reader: _Reader, doc: Document, standalone: bool) -> tuple[list[DirectoryObject], Any]:
    value, root = doc.value, doc.root
    if standalone and isinstance(value, list):
        return reader.objects(value, root), None
    if standalone and isinstance(value, dict) and "dn" in value:
        obj = reader.one(value, root)
        return ([obj] if obj is not None else []), None
    if not isinstance(value, dict):
        reader.error(root, f"a directory file is a mapping with 'kind: {DIRECTORY_KIND}' and 'objects'")
        return [], None
    for key in value:
        if key not in _TOP_KEYS:
            reader.error(root.find((key,), key=True), f"unknown field '{key}'{_hint(key, _TOP_KEYS)}")
    if value.get("kind") != DIRECTORY_KIND:
        where = root.find(("kind",)) if "kind" in value else root
        reader.error(where, f"expected 'kind: {DIRECTORY_KIND}', found {_what(value.get('kind'))}")
    domain = value.get("domain")
    if domain is not None and not isinstance(domain, str):
        reader.error(root.find(("domain",)), "domain must be a DNS name such as contoso.com")
        domain = None
    if SCHEMA_FIELD in value:
        found = read_schema_extensions(value[SCHEMA_FIELD], root.find((SCHEMA_FIELD,)), reader.error)
        reader.schema_extensions.extend(found)
    if CLOUD_FIELD in value:
        groups = read_cloud_groups(value[CLOUD_FIELD], root.find((CLOUD_FIELD,)), reader.error, reader.file)
        reader.cloud_groups.extend(groups)
    if "objects" not in value:
        if CLOUD_FIELD not in value:  # a file of cloud groups only needs no on-premises objects
            reader.error(root, "missing field 'objects'")
        return [], domain
    return reader.objects(value["objects"], root.find(("objects",))), domain


def _parse_with(file: str, data: bytes | str, standalone: bool) -> _Reader:
    docs, problems = parse_documents(file, data)
    reader = _Reader(file)
    reader.problems.extend(problems)
    objects: list[DirectoryObject] = []
    for doc in docs:
        found, domain = _document_objects(reader, doc, standalone)
        objects.extend(found)
        for obj in found:
            if domain and dn_domain(parse_dn(obj.dn)).casefold() != domain.casefold():
                reader.problems.append(_at(obj, f"{obj.dn} is not in the domain {domain}"))
    if not docs and not problems:
        reader.problems.append(Diagnostic(file, 1, 1, "the file holds no objects"))
    reader.objects_read = objects
    return reader


def _check_objects(objects: Sequence[DirectoryObject], *, check_references: bool) -> list[Diagnostic]:
    """Duplicate DNs, and (with ``check_references``) members and groups that are not objects."""
    problems: list[Diagnostic] = []
    by_key: dict[Any, DirectoryObject] = {}
    for obj in objects:
        first = by_key.setdefault(dn_compare_key(obj.dn), obj)
        if first is not obj:
            where = str(first.origin) if first.origin else "before"
            problems.append(_at(obj, f"duplicate object {obj.dn} (first given at {where})"))
    if not check_references:
        return problems
    for obj in objects:
        for member in obj.members:
            if dn_compare_key(member) not in by_key:
                problems.append(_at(obj, f"member {member} is not an object of the directory"))
        for group in obj.member_of:
            target = by_key.get(dn_compare_key(group))
            if target is None:
                problems.append(_at(obj, f"group {group} is not an object of the directory"))
            elif target.object_type != "group":
                problems.append(_at(obj, f"{group} is a {target.object_type}, not a group"))
    return problems


def parse_directory(
    file: str, data: bytes | str, *, standalone: bool = False, check_references: bool = True
) -> Directory:
    """The objects of one file's text; raises ``LoadError`` listing every problem.

    ``standalone`` also accepts a single object or a bare list of objects (sample objects for
    ``preview``). ``check_references`` requires every member and group to be an object of the file.
    """
    reader = _parse_with(file, data, standalone)
    objects, problems = reader.objects_read, reader.problems
    # An object that failed to read would show up again as a missing member: references wait.
    problems.extend(_check_objects(objects, check_references=check_references and not problems))
    problems.extend(duplicate_groups(reader.cloud_groups))
    if problems:
        raise LoadError(problems)
    return Directory(tuple(objects), cloud_groups=tuple(reader.cloud_groups))


def _at(obj: DirectoryObject, message: str) -> Diagnostic:
    origin = obj.origin
    if origin is None:
        return Diagnostic("", 1, 1, message)
    return Diagnostic(origin.file, origin.line, origin.col, message)


def _read(path: str | Path) -> tuple[str, bytes]:
    shown = str(path)
    try:
        return shown, read_bounded(shown, MAX_DIRECTORY_BYTES)
    except FileReadError as exc:
        raise LoadError([exc.diagnostic()]) from exc


def read_directory(*paths: str | Path) -> Directory:
    """Whole directory files (``kind: Directory``), one directory together: a DN or a cloud group's id
    may appear once, and every member and group must be an object of one of the files."""
    objects: list[DirectoryObject] = []
    groups: list[CloudGroup] = []
    problems: list[Diagnostic] = []
    extensions: dict[str, dict[str, Any]] = {}
    for path in paths:
        file, data = _read(path)
        reader = _parse_with(file, data, False)
        objects.extend(reader.objects_read)
        groups.extend(reader.cloud_groups)
        problems.extend(reader.problems)
        for extension in reader.schema_extensions:
            extensions[extension["name"].casefold()] = extension  # a later file's entry wins
    problems.extend(_check_objects(objects, check_references=not problems))
    problems.extend(duplicate_groups(groups))
    if problems:
        raise LoadError(problems)
    return Directory(tuple(objects), tuple(extensions.values()), tuple(groups))


def read_objects(path: str | Path) -> Directory:
    """Sample objects: a directory file, one object, or a list of objects; references unchecked."""
    file, data = _read(path)
    return parse_directory(file, data, standalone=True, check_references=False)


# -- loading into a tenant -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What ``load_into`` did."""

    objects: int
    memberships: int
    removed: int
    by_type: tuple[tuple[str, int], ...]
    schema_extensions: int = 0
    cloud_groups: int = 0
    cloud_members: int = 0  # direct-member links of those groups
    removed_cloud_groups: int = 0


def load_into(store: TenantStore, directory: Directory, *, replace: bool = True) -> LoadSummary:
    """Write ``directory`` into the tenant's on-premises directory and its cloud groups, in one
    transaction.

    ``replace`` makes the tenant's directory exactly the file's (objects not in it are removed, and the
    cloud groups an earlier load wrote that it does not list); otherwise objects and cloud groups are
    added or replaced, and the groups of the file get exactly its members. Cloud objects that on-demand
    provisioning wrote are never removed.
    """
    pairs = directory.memberships()
    counts: dict[str, int] = {}
    removed = 0
    with store.transaction():
        if replace:
            keep = {dn_compare_key(o.dn) for o in directory.objects}
            for existing in store.list_onprem_objects():
                store.delete_onprem_object(existing["dn"])
                if dn_compare_key(existing["dn"]) not in keep:
                    removed += 1
        else:
            for obj in directory.objects:
                if obj.object_type == "group":
                    for member in store.list_members(obj.dn):
                        store.remove_member(obj.dn, member)
        for obj in directory.objects:
            store.put_onprem_object(obj.dn, obj.object_type, obj.attributes)
            counts[obj.object_type] = counts.get(obj.object_type, 0) + 1
        for group, member in pairs:
            store.add_member(group, member)
        store.set_schema_extensions(directory.schema_extensions, replace=replace)
        removed_groups = _put_cloud_groups(store, directory.cloud_groups, replace=replace)
    return LoadSummary(
        objects=len(directory.objects),
        memberships=len(pairs),
        removed=removed,
        by_type=tuple(sorted(counts.items())),
        schema_extensions=len(directory.schema_extensions),
        cloud_groups=len(directory.cloud_groups),
        cloud_members=sum(len(g.members) for g in directory.cloud_groups),
        removed_cloud_groups=removed_groups,
    )


def _put_cloud_groups(store: TenantStore, groups: Sequence[CloudGroup], *, replace: bool) -> int:
    """Write ``groups`` as cloud objects a directory load wrote; with ``replace``, remove the ones an
    earlier load wrote that are not among them. Returns how many were removed."""
    removed = 0
    if replace:
        keep = {g.id for g in groups}
        for existing in store.directory_cloud_ids():
            if existing not in keep:
                store.delete_cloud_object(existing)
                removed += 1
    for group in groups:
        store.put_cloud_object(group.id, "Group", group.attributes(), from_directory=True)
    return removed
