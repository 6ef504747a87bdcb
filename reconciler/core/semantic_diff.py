"""What a change to the desired state means: two desired states compared configuration by configuration.

The comparison is on meaning only. Both sides are reduced to the values a target would hold (effective
mappings over the template defaults, the normalized scope, the settings), so reordering keys or list
items, comments, and moving a configuration to another file are no change; a mapping override equal to
the template default is none either.

It is the planner's comparison: the older state is handed to ``compute_plan`` as if a target held it
exactly, so the rows, and the reasons a restart of the provisioning job will be required, are the ones
a plan shows once the newer state is applied. Pure, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from reconciler.core.diff import FieldChange, essence, field_changes, flatten
from reconciler.core.model import Desired, DesiredState, Direction, Mapping, effective_mappings
from reconciler.core.observed import Observed
from reconciler.core.plan import Action, PlanOptions
from reconciler.core.planner import compute_plan

__all__ = ["ConfigurationDiff", "DiffKind", "SemanticDiff", "as_observed", "semantic_diff"]


class DiffKind(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class ConfigurationDiff:
    """The difference for one configuration; ``restart_reasons`` is empty when no restart is needed."""

    name: str
    kind: DiffKind
    fields: tuple[FieldChange, ...] = ()
    restart_reasons: tuple[str, ...] = ()

    @property
    def restart_required(self) -> bool:
        return bool(self.restart_reasons)


@dataclass(frozen=True, slots=True)
class SemanticDiff:
    configurations: tuple[ConfigurationDiff, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.configurations)

    def by_name(self) -> dict[str, ConfigurationDiff]:
        return {c.name: c for c in self.configurations}


def _effective(d: Desired, defaults: Sequence[Mapping]) -> tuple[Mapping, ...]:
    eff = effective_mappings(defaults, d.overrides)
    return tuple(eff[k] for k in sorted(eff))


def as_observed(state: DesiredState, defaults: Sequence[Mapping]) -> tuple[Observed, ...]:
    """The state as a target would hold it once applied: every configuration managed, healthy."""
    return tuple(
        Observed(
            id=d.name,
            name=d.name,
            managed=True,
            settings=d.settings,
            scope=d.scope.normalized(),
            mappings=_effective(d, defaults),
            deletion_protection=d.deletion_protection,
            restart_token=d.restart_token,
        )
        for d in state.configurations
    )


def _removed(d: Desired, defaults: Sequence[Mapping]) -> ConfigurationDiff:
    data = essence(
        d.settings,
        d.scope.normalized(),
        _effective(d, defaults),
        deletion_protection=d.deletion_protection,
        restart_token=d.restart_token,
    )
    return ConfigurationDiff(d.name, DiffKind.REMOVED, flatten(data, removed=True))


def _written(d: Desired) -> dict[str, object]:
    """What the desired state says of ``d``: its settings, scope and the rows it sets (no template)."""
    rows = [o.mapping for o in d.overrides if o.mapping is not None]
    return essence(
        d.settings,
        d.scope.normalized(),
        rows,
        deletion_protection=d.deletion_protection,
        restart_token=d.restart_token,
    )


def _other_directions(
    before: DesiredState, after: DesiredState, fields: dict[str, list[FieldChange]], added: set[str]
) -> None:
    """The rows of configurations the planner holds back whole (Entra ID -> AD: no target carries them
    out yet), compared as written, so that a change to one is never reported as no change."""
    old = before.by_name()
    for d in after.configurations:
        if d.settings.direction is Direction.AD_TO_ENTRA:
            continue
        was = old.get(d.name)
        if was is None:
            added.add(d.name)
            fields[d.name] = list(flatten(_written(d)))
        else:
            rows = list(field_changes(_written(was), _written(d)))
            if rows:
                fields[d.name] = rows


def semantic_diff(before: DesiredState, after: DesiredState, defaults: Sequence[Mapping]) -> SemanticDiff:
    """The per-configuration difference from ``before`` to ``after``, sorted by name."""
    # Deletes are left to _removed: the planner holds back deletes of protected configurations.
    # An approval of held deletes depends on the target's quarantine, which no ref holds: it is compared
    # as written (below), not planned.
    unapproved = replace(
        after, configurations=tuple(replace(d, approve_deletes=None) for d in after.configurations)
    )
    plan = compute_plan(unapproved, as_observed(before, defaults), defaults, PlanOptions(allow_delete=False))
    fields: dict[str, list[FieldChange]] = {}
    reasons: dict[str, tuple[str, ...]] = {}
    added: set[str] = set()
    for change in plan.changes:
        rows = fields.setdefault(change.name, [])
        if change.action is Action.CREATE:
            added.add(change.name)
            # The name is the row's heading already.
            rows.extend(f for f in change.fields if f.path != "name")
        elif change.action is Action.UPDATE:
            rows.extend(change.fields)
        elif change.action in (Action.START, Action.PAUSE) and change.name not in added:
            # The planner carries 'enabled' out as a start or a pause, not as a field.
            on = change.action is Action.START
            rows.append(FieldChange("settings.enabled", not on, on))
        elif change.action is Action.RESTART:
            reasons[change.name] = change.reasons
    _other_directions(before, after, fields, added)
    old = before.by_name()
    for d in after.configurations:
        was = old[d.name].approve_deletes if d.name in old else None
        if d.approve_deletes != was:
            fields.setdefault(d.name, []).append(
                FieldChange("approveDeletes.quarantinedSince", was, d.approve_deletes)
            )
    out = [
        ConfigurationDiff(
            name,
            DiffKind.ADDED if name in added else DiffKind.CHANGED,
            tuple(sorted(rows, key=lambda f: f.path)),
            reasons.get(name, ()),
        )
        for name, rows in fields.items()
    ]
    wanted = {d.name for d in after.configurations}
    out += [_removed(d, defaults) for d in before.configurations if d.name not in wanted]
    out.sort(key=lambda c: c.name)
    return SemanticDiff(tuple(out), plan.warnings)
