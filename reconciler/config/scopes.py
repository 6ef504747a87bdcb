"""A configuration's scope as written: AD groups or OUs by DN (AD -> Entra ID), or Entra groups by
object id or attribute filters (Entra ID -> AD), each checked against the service's limits.

Pure: no I/O. Problems go to the ``Report``; a scope with any problem is None.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.config.declared import Report, ScopeDecl
from reconciler.config.dn import DNError, dn_domain, dn_key, parse_dn
from reconciler.config.schema import dotted
from reconciler.config.yamlio import Document, Locator
from reconciler.core.model import UNARY_OPERATORS, FilterClause, Scope, ScopeKind

__all__ = ["MAX_SCOPE_ENTRIES", "MAX_SELECTED_GROUPS", "ad_scope", "dn_in_domain", "entra_scope"]

# The service keeps scoping in one 4 MB setting, which it documents as about 50 OUs or groups.
MAX_SCOPE_ENTRIES = 50
# Entra ID -> AD (cloud-sync-directions.md 1.3): "selected groups" scoping is documented up to 10,000
# groups (the portal's picker stops at 999).
MAX_SELECTED_GROUPS = 10_000
_PORTAL_PICKER_LIMIT = 999
_SCOPE_KEYS = (("groups", ScopeKind.GROUPS), ("organizationalUnits", ScopeKind.ORGANIZATIONAL_UNITS))


def _regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None


def entra_scope(report: Report, doc: Document, spec: dict[str, Any] | None) -> ScopeDecl | None:
    """An Entra ID -> AD scope: selected groups by object id, or all groups that pass the filters."""
    if spec is None or not ("selectedGroups" in spec or "filters" in spec):
        where = doc.root.find(("spec",), key=True)
        report.warn(
            doc.file,
            where,
            "every cloud security group of the tenant is in scope: the docs ask for at least one "
            "attribute filter (spec.scope.filters) when all groups are provisioned, or select groups "
            "(spec.scope.selectedGroups)",
        )
        return None
    path = ("spec", "scope")
    here = doc.root.find(path)
    origin = doc.root.find(path, key=True).origin(doc.file)
    if "selectedGroups" in spec and "filters" in spec:
        report.error(
            doc.file, here.key("filters") or here, "spec.scope: give selectedGroups or filters, not both"
        )
        return None
    if "selectedGroups" in spec:
        ids: list[str] = spec["selectedGroups"]
        list_loc = here.child("selectedGroups") or here
        if len(ids) > MAX_SELECTED_GROUPS:
            message = (
                f"spec.scope.selectedGroups: {len(ids)} groups; the service documents at most "
                f"{MAX_SELECTED_GROUPS:,} selected groups per configuration"
            )
            report.error(doc.file, here.key("selectedGroups") or here, message)
            return None
        if len(ids) > _PORTAL_PICKER_LIMIT:
            message = (
                f"spec.scope.selectedGroups: {len(ids)} groups; the portal shows at most "
                f"{_PORTAL_PICKER_LIMIT} of them (the service takes them all)"
            )
            report.warn(doc.file, here.key("selectedGroups") or here, message)
        seen: dict[str, Locator] = {}
        ok = True
        for entry, loc in zip(ids, list_loc.items(), strict=True):
            key = entry.casefold()
            if key in seen:
                report.error(
                    doc.file, loc, f"group '{entry}' is listed twice (first on line {seen[key].line})"
                )
                ok = False
                continue
            seen[key] = loc
        return ScopeDecl(Scope(ScopeKind.SELECTED_GROUPS, tuple(ids)), origin) if ok else None
    filters: list[tuple[FilterClause, ...]] = []
    ok = True
    for filt, floc in zip(spec["filters"], (here.child("filters") or here).items(), strict=True):
        clauses: list[FilterClause] = []
        for clause, cloc in zip(filt, floc.items(), strict=True):
            op: str = clause["operator"]
            unary = op in UNARY_OPERATORS
            if unary and "value" in clause:
                report.error(doc.file, cloc.key("value") or cloc, f"operator {op} takes no value")
                ok = False
            elif not unary and "value" not in clause:
                report.error(doc.file, cloc, f"operator {op} needs a value")
                ok = False
            elif op in ("REGEX_MATCH", "NOT_REGEX_MATCH"):
                problem = _regex_problem(clause["value"])
                if problem:
                    where = cloc.child("value") or cloc
                    report.error(doc.file, where, f"value is not a regular expression: {problem}")
                    ok = False
            clauses.append(FilterClause(clause["attribute"], op, clause.get("value")))
        filters.append(tuple(clauses))
    return ScopeDecl(Scope(ScopeKind.ALL, (), tuple(filters)), origin) if ok else None


def ad_scope(
    report: Report, doc: Document, path: tuple[str, ...], spec: dict[str, Any], domain: str | None
) -> ScopeDecl | None:
    """The scope written at ``path`` (a ``scope:`` mapping or a Scope's spec), checked; None if wrong."""
    here = doc.root.find(path)
    given = [(key, kind) for key, kind in _SCOPE_KEYS if key in spec]
    if len(given) != 1:
        if given:
            later = max((here.key(key) or here for key, _ in given), key=lambda loc: (loc.line, loc.col))
            report.error(doc.file, later, f"{dotted(path)}: give groups or organizationalUnits, not both")
        else:
            report.error(
                doc.file,
                doc.root.find(path, key=True),
                f"{dotted(path)}: give groups or organizationalUnits"
                + (" (or leave scope out to take the whole domain)" if path[-1] == "scope" else ""),
            )
        return None
    key, kind = given[0]
    entries: list[str] = spec[key]
    list_loc = here.child(key) or here
    ok = True
    if len(entries) > MAX_SCOPE_ENTRIES:
        count = f"{len(entries)} entries; the service takes at most {MAX_SCOPE_ENTRIES}"
        report.error(doc.file, here.key(key) or here, f"{dotted((*path, key))}: {count}")
        ok = False
    if list_loc.flow and len(entries) > 1 and any("," not in entry for entry in entries):
        # [OU=Sales,DC=contoso,DC=com] is a list of three strings in YAML; every DN in a domain
        # has a comma, so an entry without one is a piece of a DN that YAML split.
        message = (
            f"{dotted((*path, key))}: inside [ ] a comma separates list items, so the DNs were split "
            "apart; put quotes around each DN or write one DN per '- ' line"
        )
        report.error(doc.file, list_loc, message)
        return None
    seen: dict[Any, Locator] = {}
    for entry, loc in zip(entries, list_loc.items(), strict=True):
        rdns = dn_in_domain(report, doc.file, entry, loc, domain)
        if rdns is None:
            ok = False
            continue
        dup = dn_key(rdns)
        if dup in seen:
            report.error(doc.file, loc, f"'{entry}' is listed twice (first on line {seen[dup].line})")
            ok = False
            continue
        seen[dup] = loc
    if not ok:
        return None
    return ScopeDecl(Scope(kind, tuple(entries)), doc.root.find(path, key=True).origin(doc.file))


def dn_in_domain(report: Report, file: str, dn: str, loc: Locator, domain: str | None) -> Any:
    """``dn`` parsed, when it is a valid DN inside ``domain`` (any domain when None); else None,
    with the problem reported at ``loc``."""
    try:
        rdns = parse_dn(dn)
    except DNError as exc:
        report.error(file, loc, f"'{dn}' is not a valid DN: {exc.message} (at character {exc.offset + 1})")
        return None
    if domain is not None:
        found = dn_domain(rdns)
        if found.casefold() != domain.casefold():
            where = f"its domain is {found}" if found else "it has no DC= parts"
            report.error(file, loc, f"'{dn}' is outside the configuration's domain {domain} ({where})")
            return None
    return rdns
