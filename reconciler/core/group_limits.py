"""The documented member limits of Entra ID -> AD group provisioning, and what a plan makes of them.

The service does not provision a cloud group of more than 50,000 members, and scoping by selected
groups is documented up to 250,000 direct-member links (``cloud-sync-directions.md`` §1.1 and §1.3,
from Microsoft's deployment-options page). Only the tenant knows how many members a group has: the
engine looks them up (``GroupSizes``, one read per group, through the provider) for the configurations
whose selected groups a plan would add to, and the planner holds such a change back when it would
break a limit. A group the tenant does not list, or a count that could not be read, is a warning: the
count is read with ``ConsistencyLevel: eventual``, so a group made a moment ago may not be listed yet,
and a plan is never held back on what could not be read.

I/O: none; pure values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.core.model import Desired, Direction, ScopeKind
from reconciler.core.observed import Observed

__all__ = [
    "MAX_GROUP_MEMBERS",
    "MAX_SELECTED_LINKS",
    "GroupSize",
    "GroupSizes",
    "groups_to_count",
    "member_limit_problems",
]

# "Groups of more than 50,000 members are not supported" (group provisioning to AD).
MAX_GROUP_MEMBERS = 50_000
# Selected-groups scoping: up to 10,000 groups (checked when the file is read) and 250,000 links.
MAX_SELECTED_LINKS = 250_000


@dataclass(frozen=True, slots=True)
class GroupSize:
    """One cloud group's direct members: ``members`` when read; ``missing`` when the tenant does not list
    the group; otherwise ``unknown`` says why the count could not be read."""

    members: int | None = None
    missing: bool = False
    unknown: str | None = None


@dataclass(frozen=True, slots=True)
class GroupSizes:
    """Sizes of cloud groups by object id (compared without case, as the directory does)."""

    sizes: Mapping[str, GroupSize] = field(default_factory=dict)

    @staticmethod
    def of(pairs: Iterable[tuple[str, GroupSize]]) -> GroupSizes:
        return GroupSizes({id.casefold(): size for id, size in pairs})

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


def groups_to_count(d: Desired, found: Observed | None) -> tuple[str, ...]:
    """The groups whose members a plan of ``d`` needs counted: every selected group, when the desired
    state adds any (the link limit is over all of them); none when it adds none, so a plan that changes
    no scope reads nothing more."""
    return _selected(d) if _added(d, found) else ()


def member_limit_problems(
    d: Desired, found: Observed | None, sizes: GroupSizes | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(why the change is held back, warnings) for the selected groups of ``d``, given their ``sizes``.

    Held: a group the change adds has more than ``MAX_GROUP_MEMBERS`` members, or the selected groups
    together have more than ``MAX_SELECTED_LINKS`` (a lower bound when some counts are unknown). A group
    already assigned that has grown too large is a warning: the change does not cause it."""
    counted = groups_to_count(d, found)
    if sizes is None or not counted:
        return (), ()
    added = _added(d, found)
    reasons: list[str] = []
    warnings: list[str] = []
    missing: list[str] = []
    unknown: dict[str, list[str]] = {}
    total = 0
    for group in counted:
        size = sizes.get(group)
        if size is None:
            continue  # not looked up (a target that cannot count)
        if size.missing:
            missing.append(group)
            continue
        if size.members is None:
            unknown.setdefault(size.unknown or "the count could not be read", []).append(group)
            continue
        total += size.members
        if size.members > MAX_GROUP_MEMBERS:
            text = (
                f"selected group {group} has {size.members:,} direct members; Entra ID -> AD provisioning "
                f"does not support groups of more than {MAX_GROUP_MEMBERS:,} members"
            )
            if group.casefold() in added:
                reasons.append(text + ": remove it from spec.scope.selectedGroups")
            else:
                warnings.append(f"{d.name}: {text} (it was selected before this change)")
    if total > MAX_SELECTED_LINKS:
        reasons.append(
            f"the {len(counted):,} selected groups have {total:,} direct members together; selected-group "
            f"scoping is documented up to {MAX_SELECTED_LINKS:,} membership links: select fewer or "
            "smaller groups"
        )
    warnings.extend(_missing_warning(d.name, missing))
    warnings.extend(
        f"{d.name}: the member limits of {_groups(groups)} were not checked: {why}"
        for why, groups in unknown.items()
    )
    return tuple(reasons), tuple(warnings)


def _groups(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5:,} more" if len(ids) > 5 else "")
    return f"selected group {shown}" if len(ids) == 1 else f"{len(ids):,} selected groups ({shown})"


def _missing_warning(name: str, missing: Sequence[str]) -> tuple[str, ...]:
    if not missing:
        return ()
    return (
        f"{name}: {_groups(missing)} {'is' if len(missing) == 1 else 'are'} not in the tenant's directory; "
        "the service does not assign a group that does not exist (a group made moments ago may not be "
        "listed yet: counts are read eventually consistent)",
    )
