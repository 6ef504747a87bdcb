"""The documented scope limits of Entra ID -> AD group provisioning, and what a plan makes of them.

The service does not provision a cloud group of more than 50,000 members; scoping by selected groups
is documented up to 250,000 direct-member links, and scoping all groups (by attribute filters) only
for tenants of fewer than 200,000 users and 40,000 groups, and up to 20,000 groups and 500,000 links
selected (``cloud-sync-directions.md`` §1.1 and §1.3, from Microsoft's deployment-options page). Only
the tenant knows these numbers: the engine looks them up (``GroupSizes``, through the provider) for
the configurations a plan would widen (selected groups added; all-groups scoping made or taken up; new
filters, which ``graph.group_scope`` evaluates), and the planner holds such a change back when it would
break a limit. A group the tenant does not list, or a count that could not be read, is a warning: the
count is read with ``ConsistencyLevel: eventual``, so a group made a moment ago may not be listed yet,
and a plan is never held back on what could not be read.

I/O: none; pure values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.core.model import Desired, Direction, FilterClause, ScopeKind
from reconciler.core.observed import Observed

__all__ = [
    "MAX_FILTER_GROUPS",
    "MAX_FILTER_LINKS",
    "MAX_GROUP_MEMBERS",
    "MAX_SELECTED_LINKS",
    "MAX_TENANT_GROUPS",
    "MAX_TENANT_USERS",
    "FilterSelection",
    "Filters",
    "GroupSize",
    "GroupSizes",
    "TenantSize",
    "groups_to_count",
    "member_limit_problems",
    "needs_filter_selection",
    "needs_tenant_size",
    "tenant_too_large",
]

# "Groups of more than 50,000 members are not supported" (group provisioning to AD).
MAX_GROUP_MEMBERS = 50_000
_TOO_LARGE = f"Entra ID -> AD provisioning does not support groups of more than {MAX_GROUP_MEMBERS:,} members"
# Selected-groups scoping: up to 10,000 groups (checked when the file is read) and 250,000 links.
MAX_SELECTED_LINKS = 250_000
# All groups (attribute filters): "only for tenants with fewer than 200,000 users and 40,000 groups".
MAX_TENANT_USERS = 200_000
MAX_TENANT_GROUPS = 40_000
# ... and up to 20,000 groups and 500,000 membership links selected.
MAX_FILTER_GROUPS = 20_000
MAX_FILTER_LINKS = 500_000


@dataclass(frozen=True, slots=True)
class GroupSize:
    """One cloud group's direct members: ``members`` when read; ``missing`` when the tenant does not list
    the group; otherwise ``unknown`` says why the count could not be read."""

    members: int | None = None
    missing: bool = False
    unknown: str | None = None


@dataclass(frozen=True, slots=True)
class TenantSize:
    """How many users and groups the tenant's directory holds; a count not read is None, and
    ``unknown`` says why."""

    users: int | None = None
    groups: int | None = None
    unknown: str | None = None


# A scope's attribute filters: clauses ANDed in a filter, filters ORed.
Filters = Sequence[Sequence[FilterClause]]


@dataclass(frozen=True, slots=True)
class FilterSelection:
    """The ids of the groups a configuration that scopes all groups selects; None with ``unknown`` when
    they could not be told (a filter on an attribute not read, a listing that failed), and why."""

    groups: tuple[str, ...] | None
    unknown: str | None = None
    # The display names of the groups selected, by id, as the listing gave them (for the messages).
    names: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class GroupSizes:
    """Sizes of cloud groups by object id (compared without case, as the directory does); the tenant's
    size and, by configuration name, the groups all-groups scoping selects, when a plan needs them
    (None / absent: not looked up)."""

    sizes: Mapping[str, GroupSize] = field(default_factory=dict)
    tenant: TenantSize | None = None
    selections: Mapping[str, FilterSelection] = field(default_factory=dict)

    @staticmethod
    def of(pairs: Iterable[tuple[str, GroupSize]], tenant: TenantSize | None = None) -> GroupSizes:
        return GroupSizes({id.casefold(): size for id, size in pairs}, tenant)

    def get(self, id: str) -> GroupSize | None:
        return self.sizes.get(id.casefold())


def _selected(d: Desired) -> tuple[str, ...]:
    if d.settings.direction is not Direction.ENTRA_TO_AD or d.scope.kind is not ScopeKind.SELECTED_GROUPS:
        return ()
    return d.scope.entries


def _added(d: Desired, found: Observed | None) -> set[str]:
    """The selected groups (folded) the desired state adds to what ``found`` assigns."""
    wanted = {g.casefold() for g in _selected(d)}
    if found is None or not found.complete or found.scope.kind is not ScopeKind.SELECTED_GROUPS:
        return wanted
    return wanted - {g.casefold() for g in found.scope.entries}


def _takes_up_all_groups(d: Desired, found: Observed | None) -> bool | None:
    """None when ``d`` does not scope all groups (Entra ID -> AD); else whether ``found`` did not."""
    if d.settings.direction is not Direction.ENTRA_TO_AD or d.scope.kind is not ScopeKind.ALL:
        return None
    return found is None or not found.complete or found.scope.kind is not ScopeKind.ALL


def needs_tenant_size(d: Desired, found: Observed | None) -> bool:
    """Whether a plan of ``d`` scopes all groups (with attribute filters, or none) where ``found`` did
    not: a create, or a change from selected groups."""
    return _takes_up_all_groups(d, found) is True


def needs_filter_selection(d: Desired, found: Observed | None) -> bool:
    """Whether a plan of ``d`` scopes all groups with other filters than ``found`` (or where it did not
    scope all groups): what the filters select is then counted."""
    new = _takes_up_all_groups(d, found)
    if new is None or new:
        return bool(new)
    assert found is not None
    return found.scope.filters_as_list() != d.scope.filters_as_list()


def tenant_too_large(tenant: TenantSize) -> bool:
    """Whether the tenant holds as many users or groups as scoping all groups is documented against."""
    return bool(_over(tenant))


def _over(tenant: TenantSize) -> list[str]:
    return [
        f"{count:,} {what}"
        for count, limit, what in (
            (tenant.users, MAX_TENANT_USERS, "users"),
            (tenant.groups, MAX_TENANT_GROUPS, "groups"),
        )
        if count is not None and count >= limit
    ]


def groups_to_count(d: Desired, found: Observed | None) -> tuple[str, ...]:
    """The groups whose members a plan of ``d`` needs counted: every selected group, when the desired
    state adds any (the link limit is over all of them); none when it adds none, so a plan that changes
    no scope reads nothing more."""
    return _selected(d) if _added(d, found) else ()


def member_limit_problems(
    d: Desired, found: Observed | None, sizes: GroupSizes | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(why the change is held back, warnings) for the scope of ``d``, given what ``sizes`` read.

    Held: a group the change adds has more than ``MAX_GROUP_MEMBERS`` members, or the selected groups
    together have more than ``MAX_SELECTED_LINKS`` (a lower bound when some counts are unknown); a group
    already assigned that has grown too large is a warning, the change does not cause it. Scoping all
    groups where the configuration did not is held back in a tenant of ``MAX_TENANT_USERS`` users or
    ``MAX_TENANT_GROUPS`` groups or more; new filters, when they select more than ``MAX_FILTER_GROUPS``
    groups, ``MAX_FILTER_LINKS`` links, or a group over ``MAX_GROUP_MEMBERS``."""
    if sizes is None:
        return (), ()
    reasons: list[str] = []
    warnings: list[str] = []
    if sizes.tenant is not None and needs_tenant_size(d, found):
        _tenant_problems(d.name, sizes.tenant, reasons, warnings)
    selection = sizes.selections.get(d.name)
    if selection is not None and needs_filter_selection(d, found):
        _filter_problems(d.name, selection, sizes, reasons, warnings)
    counted = groups_to_count(d, found)
    if counted:
        _selected_problems(d, _added(d, found), counted, sizes, reasons, warnings)
    return tuple(reasons), tuple(warnings)


@dataclass
class _Tally:
    """What the counts say of some groups, in their order: the members in all, the groups over
    ``MAX_GROUP_MEMBERS`` with their count, those the directory does not list, and those not counted
    (by why). A group not looked up (a target that cannot count) is in none of them."""

    total: int = 0
    over: list[tuple[str, int]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown: dict[str, list[str]] = field(default_factory=dict)


def _tally(groups: Sequence[str], sizes: GroupSizes) -> _Tally:
    tally = _Tally()
    for group in groups:
        size = sizes.get(group)
        if size is None:
            continue
        if size.missing:
            tally.missing.append(group)
        elif size.members is None:
            tally.unknown.setdefault(size.unknown or "the count could not be read", []).append(group)
        else:
            tally.total += size.members
            if size.members > MAX_GROUP_MEMBERS:
                tally.over.append((group, size.members))
    return tally


def _selected_problems(
    d: Desired,
    added: set[str],
    counted: Sequence[str],
    sizes: GroupSizes,
    reasons: list[str],
    warnings: list[str],
) -> None:
    tally = _tally(counted, sizes)
    for group, members in tally.over:
        text = f"selected group {group} has {members:,} direct members; {_TOO_LARGE}"
        if group.casefold() in added:
            reasons.append(text + ": remove it from spec.scope.selectedGroups")
        else:
            warnings.append(f"{d.name}: {text} (it was selected before this change)")
    if tally.total > MAX_SELECTED_LINKS:
        reasons.append(
            f"the {len(counted):,} selected groups have {tally.total:,} direct members together; "
            f"selected-group scoping is documented up to {MAX_SELECTED_LINKS:,} membership links: select "
            "fewer or smaller groups"
        )
    warnings.extend(_missing_warning(d.name, tally.missing))
    warnings.extend(_unknown_warnings(d.name, tally.unknown))


def _filter_problems(
    name: str, selection: FilterSelection, sizes: GroupSizes, reasons: list[str], warnings: list[str]
) -> None:
    if selection.groups is None:
        warnings.append(f"{name}: the groups its filters select were not counted: {selection.unknown}")
        return
    chosen = selection.groups
    if len(chosen) > MAX_FILTER_GROUPS:
        reasons.append(
            f"the filters select {len(chosen):,} groups; scoping by attribute filters is documented up to "
            f"{MAX_FILTER_GROUPS:,} groups: narrow the filters, or select the groups"
        )
        return
    # A group the directory no longer lists has gone since the listing: nothing to say of it.
    tally = _tally(chosen, sizes)
    reasons.extend(
        f"group {group}{_named(selection, group)}, which the filters select, has {members:,} direct "
        f"members; {_TOO_LARGE}: narrow the filters so that they leave it out"
        for group, members in tally.over
    )
    if tally.total > MAX_FILTER_LINKS:
        reasons.append(
            f"the {len(chosen):,} groups the filters select have {tally.total:,} direct members together; "
            f"scoping by attribute filters is documented up to {MAX_FILTER_LINKS:,} membership links: "
            "narrow the filters"
        )
    warnings.extend(_unknown_warnings(name, tally.unknown, "filter-selected"))


def _named(selection: FilterSelection, group: str) -> str:
    name = selection.names.get(group)
    return f" ({name})" if name else ""


def _unknown_warnings(name: str, unknown: Mapping[str, Sequence[str]], chosen: str = "selected") -> list[str]:
    """``chosen``: how the groups came into scope (``selected``, or chosen by the filters)."""
    return [
        f"{name}: the member limits of {_groups(groups, chosen)} were not checked: {why}"
        for why, groups in unknown.items()
    ]


def _groups(ids: Sequence[str], chosen: str = "selected") -> str:
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5:,} more" if len(ids) > 5 else "")
    return f"{chosen} group {shown}" if len(ids) == 1 else f"{len(ids):,} {chosen} groups ({shown})"


def _missing_warning(name: str, missing: Sequence[str]) -> tuple[str, ...]:
    if not missing:
        return ()
    return (
        f"{name}: {_groups(missing)} {'is' if len(missing) == 1 else 'are'} not in the tenant's directory; "
        "the service does not assign a group that does not exist (a group made moments ago may not be "
        "listed yet: counts are read eventually consistent)",
    )


def _tenant_problems(name: str, tenant: TenantSize, reasons: list[str], warnings: list[str]) -> None:
    over = _over(tenant)
    if tenant.unknown is not None:
        why = f"the tenant size that scoping all groups is documented for was not checked: {tenant.unknown}"
        warnings.append(f"{name}: {why}")
    if not over:
        return
    reasons.append(
        f"scoping all groups (attribute filters) is documented only for tenants of fewer than "
        f"{MAX_TENANT_USERS:,} users and {MAX_TENANT_GROUPS:,} groups, and this tenant has "
        f"{' and '.join(over)}: select the groups instead (spec.scope.selectedGroups)"
    )
