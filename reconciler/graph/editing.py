"""Editing a job schema the service returned so that it says what the desired state says. Pure: no I/O.

Every write is read-modify-write: ``edit_schema`` takes the schema as the service returned it and makes
the smallest edits (mappings set and taken out by object and target, the scope in the form the schema
already uses, the password-hash rows, an Entra ID -> AD rule's filters and user preview); everything
else, fields, rules and keys we do not know included, is written back exactly as read, without the
``@odata.*`` annotations of the response (``without_annotations``). Nothing here mutates its arguments.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import replace
from typing import Any

from reconciler.core.model import PHS_OBJECTS, FilterClause, Mapping, Scope, ScopeKind
from reconciler.errors import ProviderError
from reconciler.graph.identity import JSON
from reconciler.graph.mappings import (
    attribute_mapping_to_model,
    is_credential_data,
    is_password_hash,
    model_to_attribute_mapping,
    password_hash_attribute_mapping,
    update_attribute_mapping,
)
from reconciler.graph.reading import (
    OU_OPERATOR,
    clause_ous,
    find_provisioning_rule,
    is_ou_clause,
    is_ou_group,
    managed_object_mappings,
    read_filters,
    read_scope,
    to_ad_rule,
)

__all__ = ["edit_schema", "missing_object_mappings", "set_password_hash_mappings", "without_annotations"]


def _with_password_hash(obj: str, attribute_mappings: list[dict[str, Any]], on: bool) -> list[dict[str, Any]]:
    # The service does not de-duplicate: a second CredentialData row makes the job fail, so keep one.
    # A row already there stays exactly as read.
    want = on and obj in PHS_OBJECTS
    result: list[dict[str, Any]] = []
    have = False
    for am in attribute_mappings:
        if not is_credential_data(am.get("targetAttributeName")):
            result.append(am)
        elif want and not have:
            result.append(am if is_password_hash(am) else password_hash_attribute_mapping())
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
    for obj, om in managed_object_mappings(rule).items():
        om["attributeMappings"] = _with_password_hash(obj, list(om.get("attributeMappings") or []), on)
    return new


def _ou_clause(like: AbcMapping[str, Any] | None, ou: str) -> JSON:
    clause = _copy_json(dict(like)) if like is not None else {"sourceOperandName": "distinguishedName"}
    clause["operatorName"] = OU_OPERATOR
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
    ou_groups = [g for g in groups if is_ou_group(g)]
    if not ou_groups:
        return
    pattern = ou_groups[0]
    like = next((c for c in pattern.get("clauses") or [] if is_ou_clause(c)), None)
    base = [c for c in pattern.get("clauses") or [] if not is_ou_clause(c)]
    made: list[JSON] = []
    for index, ou in enumerate(ous or [None]):
        group = _copy_json(dict(pattern))
        group["name"] = _numbered(str(pattern.get("name")), index)
        group["clauses"] = _copy_json(base) + ([_ou_clause(like, ou)] if ou is not None else [])
        made.append(group)
    at = groups.index(pattern)
    rest = [g for g in groups if not is_ou_group(g)]
    scope["inputFilterGroups"] = rest[:at] + made + rest[at:]


def _set_scope(rule: dict[str, Any], object_mappings: AbcMapping[str, dict[str, Any]], scope: Scope) -> None:
    """``scope`` written in the form the schema already uses; never two forms at once.

    The clause form is kept when the schema holds its OU scope that way and the new scope is OUs or
    everything; otherwise the documented ``containerFilter``/``groupFilter`` are used, and any OU
    clauses are taken out. A filter property the schema does not have is only added to hold entries.
    """
    uses_clauses = any(clause_ous(om.get("scope")) for om in object_mappings.values())
    if uses_clauses and scope.kind is not ScopeKind.GROUPS:
        for om in object_mappings.values():
            if isinstance(om.get("scope"), dict):
                _set_clause_scope(om["scope"], list(scope.entries))
        containers: list[str] = []
        groups: list[str] = []
    else:
        for om in object_mappings.values():
            if isinstance(om.get("scope"), dict) and clause_ous(om["scope"]):
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
    if isinstance(like, AbcMapping) and read_filters({"inputFilterGroups": [{"clauses": [like]}]}) == (
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
    if read_filters(current) == tuple(tuple(f) for f in filters):
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
        if not isinstance(target, str) or is_credential_data(target):
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
        result.append(am if current == wanted else update_attribute_mapping(am, current, wanted))
    result += [model_to_attribute_mapping(m) for key, m in sets.items() if key not in done]
    return result


def missing_object_mappings(schema: AbcMapping[str, Any], objects: Iterable[str]) -> list[str]:
    """The object types among ``objects`` that ``schema`` has no object mapping for."""
    rule = find_provisioning_rule(schema)
    have = set(managed_object_mappings(rule)) if rule is not None else set()
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
    object_mappings = managed_object_mappings(rule)
    sets: dict[str, dict[str, Mapping]] = {}
    for m in mappings:
        if not is_credential_data(m.target):  # follows password_hash_sync, never the mapping list
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
        and read_scope(rule, [om.get("scope") for om in object_mappings.values()]).normalized()
        != scope.normalized()
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
