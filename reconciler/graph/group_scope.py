"""Which cloud groups an Entra ID -> AD configuration that scopes all groups selects: its attribute
filters evaluated on the groups Graph lists, as Microsoft's how-to describes the service doing it.

From "Provision groups from Microsoft Entra ID to Active Directory" (the how-to of the Entra ID -> AD
configuration, see cloud-sync-directions.md §1.3): a default clause is always applied first,
``securityEnabled IS TRUE AND dirSyncEnabled IS FALSE AND mailEnabled IS FALSE``; the clauses of one
filter must all hold, and a group passes when any filter holds. The operators: EQUALS and NOT EQUALS
compare text exactly (case sensitive); IS TRUE / IS FALSE need a Boolean; IS NULL / IS NOT NULL test for
an empty value; REGEX MATCH matches a (case-sensitive, .NET) regular expression, and NOT REGEX MATCH is
false for an empty value; GREATER_THAN and GREATER_THAN_OR_EQUALS compare integers.

Attribute names are those of the job schema's Azure Active Directory ``Group`` object, which the docs
write in Azure AD's spelling (``dirSyncEnabled``); Graph's group calls two of them otherwise (``objectId``
is ``id``, ``dirSyncEnabled`` is ``onPremisesSyncEnabled``). A directory extension
(``extension_<appId without hyphens>_<name>``, the documented "WritebackEnabled" recipe) has the same
name in both and is selected by it. Only those attributes are read from Graph: a filter on any other
leaves the selection unknown, never guessed.

I/O: none; pure values. Regular expressions run with a time limit (``expressions.netregex``, imported
only when a filter needs it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.core.group_limits import FilterSelection
from reconciler.core.model import FilterClause

if TYPE_CHECKING:
    from reconciler.expressions.netregex import Compiled

__all__ = [
    "EVALUATION_SECONDS",
    "GROUP_ATTRIBUTES",
    "GROUP_FILTER",
    "GROUP_SELECT",
    "extension_names",
    "group_select",
    "select_groups",
]

# Attribute name (without case) -> the property of Graph's group that holds it.
GROUP_ATTRIBUTES: dict[str, str] = {
    "objectid": "id",
    "displayname": "displayName",
    "description": "description",
    "mailnickname": "mailNickname",
    "mail": "mail",
    "classification": "classification",
    "visibility": "visibility",
    "isassignabletorole": "isAssignableToRole",
    "securityenabled": "securityEnabled",
    "mailenabled": "mailEnabled",
    "dirsyncenabled": "onPremisesSyncEnabled",
}
GROUP_SELECT = ",".join(sorted(set(GROUP_ATTRIBUTES.values())))
# A directory extension property's name, as Graph and the job schema both write it.
_EXTENSION = re.compile(r"extension_[0-9a-f]{32}_[A-Za-z0-9_]+", re.IGNORECASE)
# The part of the default clause Graph filters on by default (onPremisesSyncEnabled needs an advanced
# query, so it is tested here).
GROUP_FILTER = "securityEnabled eq true and mailEnabled eq false"
# How long one regular expression may run on one value, and the filters on all the tenant's groups.
_REGEX_SECONDS = 0.25
EVALUATION_SECONDS = 10.0


class _Unknown(Exception):
    pass


class _Budget:
    """The time left for evaluating the filters (regular expressions above all) on every group."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Unknown(f"evaluating the filters on the tenant's groups took more than {self.seconds:g} s")
        return min(left, _REGEX_SECONDS)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # as .NET writes a Boolean
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()) and len(value) <= 40:
        return int(value)
    return None


def _regex(pattern: str, cache: dict[str, Compiled]) -> Compiled:
    # Loaded by the plans that evaluate filters, not by every command that imports the writer.
    from reconciler.expressions.netregex import RegexError, compile_net

    if pattern not in cache:
        try:
            cache[pattern] = compile_net(pattern)
        except RegexError as exc:
            raise _Unknown(f"the pattern {pattern!r} does not compile: {exc}") from None
    return cache[pattern]


def _matches(pattern: Compiled, text: str, budget: _Budget) -> bool:
    try:
        return pattern.timed.search(text, timeout=budget.left()) is not None
    except TimeoutError:
        raise _Unknown("a regular expression of the filters ran too long on a group's value") from None


def extension_names(filters: Iterable[Sequence[FilterClause]]) -> list[str]:
    """The directory extensions ``filters`` test, each once, as written."""
    seen: dict[str, str] = {}
    for clause in (c for f in filters for c in f):
        if _EXTENSION.fullmatch(clause.attribute):
            seen.setdefault(clause.attribute.casefold(), clause.attribute)
    return list(seen.values())


def group_select(extensions: Iterable[str] = ()) -> str:
    """The ``$select`` of a listing that filters can be evaluated on: ``GROUP_SELECT`` and ``extensions``."""
    return ",".join([GROUP_SELECT, *extensions])


def _value(group: Mapping[str, Any], attribute: str) -> Any:
    name = GROUP_ATTRIBUTES.get(attribute.casefold())
    if name == "onPremisesSyncEnabled":
        # Graph leaves it null on a cloud group, where the service's dirSyncEnabled is false (its own
        # default clause, dirSyncEnabled IS FALSE, lets cloud groups through).
        return group.get(name) is True
    if name is not None:
        return group.get(name)
    # A directory extension: Graph names it as it was registered; compared without case.
    folded = attribute.casefold()
    return next((v for k, v in group.items() if k.casefold() == folded), None)


def _holds(
    clause: FilterClause, group: Mapping[str, Any], cache: dict[str, Compiled], budget: _Budget
) -> bool:
    value = _value(group, clause.attribute)
    wanted = clause.value or ""
    operator = clause.operator
    if operator in ("IS_NULL", "IS_NOT_NULL"):
        return _empty(value) is (operator == "IS_NULL")
    if operator in ("IS_TRUE", "IS_FALSE"):
        return value is (operator == "IS_TRUE")
    if operator in ("EQUALS", "NOT_EQUALS"):
        same = not _empty(value) and _text(value) == wanted
        return same is (operator == "EQUALS")
    if operator in ("REGEX_MATCH", "NOT_REGEX_MATCH"):
        if _empty(value):
            return False
        found = _matches(_regex(wanted, cache), _text(value), budget)
        return found is (operator == "REGEX_MATCH")
    if operator in ("GREATER_THAN", "GREATER_THAN_OR_EQUALS"):
        have, limit = _integer(value), _integer(wanted)
        if have is None or limit is None:
            return False
        return have > limit or (operator == "GREATER_THAN_OR_EQUALS" and have == limit)
    raise _Unknown(f"the operator {operator} is not one whose meaning is documented")


def _unreadable(filters: Sequence[Sequence[FilterClause]]) -> str | None:
    for clause in (c for f in filters for c in f):
        if clause.attribute.casefold() not in GROUP_ATTRIBUTES and not _EXTENSION.fullmatch(clause.attribute):
            return (
                f"the filters test {clause.attribute}, which is not among the group attributes read from "
                f"Graph ({', '.join(sorted(set(GROUP_ATTRIBUTES.values())))})"
            )
    return None


def _in_default_scope(group: Mapping[str, Any]) -> bool:
    return (
        group.get("securityEnabled") is True
        and group.get("onPremisesSyncEnabled") is not True
        and group.get("mailEnabled") is not True
    )


def select_groups(
    filters: Sequence[Sequence[FilterClause]],
    groups: Iterable[Mapping[str, Any]],
    seconds: float = EVALUATION_SECONDS,
) -> FilterSelection:
    """The groups of ``groups`` (Graph's group objects) that the default clause and ``filters`` select
    (no filters: every group the default clause lets through), evaluated within ``seconds`` in all."""
    why = _unreadable(filters)
    if why is not None:
        return FilterSelection(None, why)
    cache: dict[str, Compiled] = {}
    budget = _Budget(seconds)
    chosen: list[str] = []
    names: dict[str, str] = {}
    try:
        for group in groups:
            id = group.get("id")
            if not isinstance(id, str) or not _in_default_scope(group):
                continue  # a group without an id cannot be counted, nor provisioned
            if not filters or any(all(_holds(c, group, cache, budget) for c in f) for f in filters):
                chosen.append(id)
                if isinstance(group.get("displayName"), str):
                    names[id] = group["displayName"]
    except _Unknown as exc:
        return FilterSelection(None, str(exc))
    return FilterSelection(tuple(chosen), names=names)
