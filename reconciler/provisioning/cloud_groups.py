"""``cloudGroups`` of a directory file: the Entra ID security groups the local tenant holds in the cloud.

An Entra ID -> AD configuration provisions cloud groups into AD; on the local tenant those groups, and
their member lists, come from the directory file::

    cloudGroups:
      - id: 0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b      # the group's object id
        displayName: Finance Approvers
        description: Approve invoices above the limit  # optional
        mailNickname: finance-approvers                 # optional, as are mail, classification,
        isAssignableToRole: false                       # visibility and onPremisesSyncEnabled
        members:                                        # optional: object ids of users or groups
          - 9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f

The optional group properties are those a scoping filter of the "all groups" scope can test; a group
with ``onPremisesSyncEnabled: true`` is one synced from AD (Graph's ``group`` properties of those
names, stored with the group as they are written). A key ``extension_<appId without hyphens>_<name>``
gives the group a directory extension's value (text, number, true or false, or a list of texts or
numbers), which such a filter may test too.

Ids are GUIDs, compared without case and kept in lowercase, as Microsoft Graph writes object ids. A
member need not be an object of the file (a cloud user has no place in it), and the member list has no
bound of its own: the service documents limits of 50,000 members per group and 250,000 direct-member
links over a configuration's selected groups (``../shared/reference/cloud-sync-directions.md`` 1.1,
1.3), and a file must be able to go over them for a check of those limits to be tried. The file's size bound
(``directory.MAX_DIRECTORY_BYTES``) is the bound.

I/O: none; the entries are checked with their positions, and ``CloudGroup.attributes`` is the record
``load_into`` writes into the tenant store (``DirectoryObjects.put_cloud_object``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.config.yamlio import Locator
from reconciler.core.model import Origin
from reconciler.errors import Diagnostic
from reconciler.provisioning.wording import hint, what

__all__ = ["FIELD", "CloudGroup", "duplicate_groups", "read_cloud_groups"]

FIELD = "cloudGroups"
# Optional group properties (Graph's names): text, and true or false.
_TEXTS = ("mailNickname", "mail", "classification", "visibility")
_FLAGS = ("isAssignableToRole", "onPremisesSyncEnabled")
_KEYS = ("id", "displayName", "description", *_TEXTS, *_FLAGS, "members")
# A directory extension property, as Graph and the job schema name it: extension_<appId>_<name>.
_EXTENSION = re.compile(r"extension_[0-9A-Fa-f]{32}_[A-Za-z0-9_]+")
# An optional group property or directory extension: (Graph's name, value; bool is an int here).
Property = tuple[str, str | int | list[str | int]]
# An object id as Graph writes it (any case accepted here): 8-4-4-4-12 hexadecimal digits.
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


@dataclass(frozen=True, slots=True)
class CloudGroup:
    """One cloud security group: its object id, names and direct members (object ids, in file order)."""

    id: str
    display_name: str
    description: str | None = None
    members: tuple[str, ...] = ()
    origin: Origin | None = field(default=None, compare=False)
    properties: tuple[Property, ...] = ()  # the optional group properties written

    def attributes(self) -> dict[str, Any]:
        """The group as the tenant store keeps a cloud ``Group``."""
        found: dict[str, Any] = {"displayName": self.display_name}
        if self.description is not None:
            found["description"] = self.description
        found.update(self.properties)
        found.update(securityEnabled=True, mailEnabled=False, members=list(self.members))
        return found


Report = Callable[[Locator, str], None]


def _guid(value: object) -> str | None:
    return value.lower() if isinstance(value, str) and _GUID.fullmatch(value) else None


def _members(value: object, loc: Locator, error: Report) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list):
        error(loc, f"{FIELD}: members must be a list of object ids, not {what(value)}")
        return None
    found: list[str] = []
    first: dict[str, int] = {}
    ok = True
    for i, item in enumerate(value):
        # Positions are looked up only for a problem: a list may hold 50,000 ids and more.
        member = _guid(item)
        if member is None:
            error(loc.child(i) or loc, f"{FIELD}: members[{i}] is not an object id (a GUID): {what(item)}")
            ok = False
        elif member in first:
            where = loc.child(first[member]) or loc
            first_at = f"line {where.line}, column {where.col}"
            error(loc.child(i) or loc, f"{FIELD}: member {item} is listed twice (first at {first_at})")
            ok = False
        else:
            first[member] = i
            found.append(member)
    return tuple(found) if ok else None


def _group(item: object, loc: Locator, error: Report, file: str) -> CloudGroup | None:
    if not isinstance(item, dict):
        error(loc, f"a {FIELD} entry is a mapping with id, displayName and members, not {what(item)}")
        return None
    ok = True
    for key in item:
        if key not in _KEYS and not _is_extension(key):
            error(loc.find((key,), key=True), f"unknown field '{key}' of a cloud group{hint(key, _KEYS)}")
            ok = False
    group_id = _guid(item.get("id"))
    if group_id is None:
        where = loc.find(("id",)) if "id" in item else loc
        error(where, f"{FIELD}: id must be the group's object id (a GUID), not {what(item.get('id'))}")
        ok = False
    name = item.get("displayName")
    if not isinstance(name, str) or not name.strip():
        where = loc.find(("displayName",)) if "displayName" in item else loc
        error(where, f"{FIELD}: displayName must be a non-empty text, not {what(name)}")
        ok = False
    description = item.get("description")
    if description is not None and not isinstance(description, str):
        error(loc.find(("description",)), f"{FIELD}: description must be a text, not {what(description)}")
        ok = False
    properties = _properties(item, loc, error)
    members = _members(item.get("members"), loc.find(("members",)), error)
    if not ok or members is None or properties is None:
        return None
    assert group_id is not None and isinstance(name, str)
    return CloudGroup(group_id, name, description, members, loc.origin(file), properties)


def _is_extension(key: object) -> bool:
    return isinstance(key, str) and _EXTENSION.fullmatch(key) is not None


def _extension_value(value: object) -> bool:
    """Whether ``value`` is one a directory extension holds: text, a number, true or false, or a list
    of texts or numbers (a multi-valued extension)."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)
    return isinstance(value, (str, int))


def _properties(item: dict[Any, Any], loc: Locator, error: Report) -> tuple[Property, ...] | None:
    """The optional group properties ``item`` writes, in ``_KEYS`` order, then its directory
    extensions in file order; None after a problem."""
    found: list[Property] = []
    ok = True
    for key in (*_TEXTS, *_FLAGS):
        if key not in item:
            continue
        value = item[key]
        if key in _TEXTS and not isinstance(value, str):
            error(loc.find((key,)), f"{FIELD}: {key} must be a text, not {what(value)}")
            ok = False
        elif key in _FLAGS and not isinstance(value, bool):
            error(loc.find((key,)), f"{FIELD}: {key} must be true or false, not {what(value)}")
            ok = False
        else:
            found.append((key, value))
    for key, value in item.items():
        if not _is_extension(key):
            continue
        if not _extension_value(value):
            what_is = "a text, a number, true or false, or a list of texts or numbers"
            error(loc.find((key,)), f"{FIELD}: {key} must be {what_is}, not {what(value)}")
            ok = False
        else:
            found.append((key, value))
    return tuple(found) if ok else None


def read_cloud_groups(value: object, loc: Locator, error: Report, file: str) -> list[CloudGroup]:
    """The groups of ``cloudGroups`` in ``file``; each problem is reported through ``error`` and its
    group left out. Ids listed twice are found by ``duplicate_groups``, across files."""
    if not isinstance(value, list):
        error(loc, f"{FIELD} must be a list of {{id, displayName, members}}, not {what(value)}")
        return []
    found: list[CloudGroup] = []
    for item, where in zip(value, loc.items(), strict=False):
        group = _group(item, where, error, file)
        if group is not None:
            found.append(group)
    return found


def duplicate_groups(groups: Sequence[CloudGroup]) -> list[Diagnostic]:
    """A problem for every group whose id an earlier group has (ids are kept in lowercase)."""
    problems: list[Diagnostic] = []
    first: dict[str, CloudGroup] = {}
    for group in groups:
        earlier = first.setdefault(group.id, group)
        if earlier is not group:
            at = group.origin or Origin("", 1)
            message = f"{FIELD}: the group {group.id} is listed twice (first at {earlier.origin or 'before'})"
            problems.append(Diagnostic(at.file, at.line, at.col, message))
    return problems
