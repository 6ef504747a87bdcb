"""What changes in one configuration: the rows a create writes over the template, and for a
configuration the target holds, its field changes, the restart they need and a rename (``moved``).

Only the rows the desired state speaks about are compared: every other row of the service's schema is
the service's. Pure: no I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler.core.diff import FieldChange, essence, field_changes, flatten, mapping_essence
from reconciler.core.model import (
    CREDENTIAL_DATA,
    Desired,
    Direction,
    Mapping,
    Scope,
    ScopeKind,
    edit_mappings,
    folded_key,
)
from reconciler.core.observed import Observed
from reconciler.core.plan import RESET_FOR_CHANGES, Action, Change, Spec

__all__ = ["create_fields", "missing_objects", "plan_existing", "plan_moved", "spec_essence", "spoken_rows"]


_MAPPING_KEY = operator.attrgetter("object", "target")  # Mapping.key, without a Python call


def spoken_rows(spec: Spec, rows: Iterable[Mapping]) -> tuple[tuple[Mapping, ...], tuple[Mapping, ...]]:
    """The rows of ``rows`` the desired state speaks about, as they are and as the spec makes them.

    Rows it does not speak about are the service's: they are neither compared nor shown.
    """
    spoken = {m.folded for m in spec.mappings} | {folded_key(o, t) for o, t in spec.removals}
    before: dict[tuple[str, str], Mapping] = {}
    for m in rows:
        key = m.folded
        if key in spoken and key not in before:
            before[key] = m
    current = tuple(before.values())
    return current, edit_mappings(current, spec.mappings, spec.removals)


def missing_objects(spec: Spec, rows: Sequence[Mapping]) -> list[str]:
    """Object types the spec speaks about that ``rows`` (a schema's) have no row of."""
    have = {m.object for m in rows}
    wanted = {m.object for m in spec.mappings} | {o for o, _ in spec.removals}
    return sorted(wanted - have) if have else []


def spec_essence(spec: Spec) -> dict[str, Any]:
    """The plain values of ``spec`` that the plan compares and shows, as ``diff.essence`` gives them."""
    return essence(
        spec.settings,
        spec.scope,
        spec.mappings,
        deletion_protection=spec.deletion_protection,
        restart_token=spec.restart_token,
    )


def create_fields(spec: Spec, defaults: Sequence[Mapping]) -> tuple[FieldChange, ...]:
    """A create shows every setting, and of the mappings only the overrides and removals it makes on
    the rows the service gives a new job (``defaults``); those rows are kept."""
    data = spec_essence(spec)
    data.pop("mappings")
    rows = flatten(data)
    before, after = spoken_rows(spec, (m for m in defaults if m.target != CREDENTIAL_DATA))
    old, new = _aligned_essences(mapping_essence(before), mapping_essence(after))
    return rows + field_changes({"mappings": old}, {"mappings": new})


def _aligned_essences(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both mapping essences with the same object keys, so that a change is reported row by row even
    where one side has no row of that object at all."""
    for obj in set(before) | set(after):
        before.setdefault(obj, {})
        after.setdefault(obj, {})
    return before, after


def _scope_shrinks(before: Scope, after: Scope) -> bool:
    """True when some objects in scope before are out of scope after (as far as the DNs tell)."""
    if before == after:
        return False
    if after.kind is ScopeKind.ALL:
        return False
    if before.kind is ScopeKind.ALL or before.kind is not after.kind:
        return True
    return bool({e.casefold() for e in before.entries} - {e.casefold() for e in after.entries})


def _observed_spec(o: Observed, spec: Spec) -> tuple[Spec, Spec]:
    """What ``o`` holds of what ``spec`` speaks about, and ``spec`` with its rows aligned to the
    service's (its spelling of each target, its matching priority)."""
    before, after = spoken_rows(spec, o.mappings)
    current = Spec(
        settings=o.settings,
        scope=o.scope.normalized(),
        mappings=tuple(sorted(before, key=_MAPPING_KEY)),
        deletion_protection=o.deletion_protection,
        restart_token=o.restart_token,
    )
    return current, replace(spec, mappings=tuple(sorted(after, key=_MAPPING_KEY)))


def _phs_state(count: int) -> str:
    """Password hash sync for one object type, from its number of CredentialData mappings."""
    return {0: "off", 1: "on"}.get(count, f"{count} password hash mappings")


@dataclass(frozen=True, slots=True)
class _Compared:
    """A configuration the target holds beside its spec, both as far as the spec speaks."""

    current: Spec  # what the target holds
    aligned: Spec  # the spec, its rows spelled as the service spells them
    phs_drift: bool  # a password hash mapping count that is not what passwordHashSync says
    same_settings: bool
    same_mappings: bool
    same_schema: bool  # scope and mappings


def _compare(spec: Spec, o: Observed) -> _Compared:
    current, aligned = _observed_spec(o, spec)
    want = spec.settings
    phs_drift = (
        any(n != (1 if want.password_hash_sync else 0) for n in o.credential_data_count.values())
        if o.credential_data_count
        else False
    )
    same_mappings = aligned.mappings == current.mappings
    return _Compared(
        current=current,
        aligned=aligned,
        phs_drift=phs_drift,
        same_settings=(
            want == current.settings
            and spec.deletion_protection == current.deletion_protection
            and spec.restart_token == current.restart_token
            and not phs_drift
        ),
        same_mappings=same_mappings,
        same_schema=aligned.scope == current.scope and same_mappings,
    )


def plan_existing(d: Desired, spec: Spec, o: Observed, warnings: list[str]) -> list[Change]:
    """The update and the restart that bring configuration ``o`` to ``spec``; none when it is there.
    Enabled/disabled is carried out by start/pause (the planner's), never by an update."""
    seen = _compare(spec, o)
    if seen.same_settings and seen.same_schema and not o.restart_pending:
        return []
    changes: list[Change] = []
    update = _update(d, spec, o, seen)
    if update is not None:
        changes.append(update)
    reasons = _restart_reasons(d, spec, o, seen, warnings)
    if reasons and spec.settings.enabled:
        changes.append(
            Change(
                name=d.name,
                action=Action.RESTART,
                target_id=o.id,
                reasons=tuple(reasons),
                reset_scope=RESET_FOR_CHANGES,
            )
        )
    elif reasons:
        warnings.append(
            f"{d.name}: restart not planned because the configuration is disabled; "
            "after enabling it, restart it (bump restartToken) so the change is picked up"
        )
    return changes


def _update(d: Desired, spec: Spec, o: Observed, seen: _Compared) -> Change | None:
    """The update of ``o``'s fields (settings, our metadata, scope and mappings), when any differ."""
    current = seen.current
    # Compare with 'enabled' aligned so that it never shows as an update field.
    before = spec_essence(current)
    after = spec_essence(seen.aligned)
    _aligned_essences(before["mappings"], after["mappings"])
    before["settings"]["enabled"] = after["settings"]["enabled"]
    rows = field_changes(before, after)
    if seen.phs_drift and not any(r.path == "settings.passwordHashSync" for r in rows):
        # In the words of the YAML (passwordHashSync), not of the service's mapping that carries it.
        rows += (
            FieldChange(
                "settings.passwordHashSync",
                ", ".join(f"{obj}: {_phs_state(n)}" for obj, n in sorted(o.credential_data_count.items())),
                spec.settings.password_hash_sync,
            ),
        )
    if not rows:
        return None
    settings_changed = (
        dict(before["settings"]) != dict(after["settings"])
        or spec.deletion_protection != current.deletion_protection
        or spec.restart_token != current.restart_token
        or seen.phs_drift
    )
    return Change(
        name=d.name,
        action=Action.UPDATE,
        target_id=o.id,
        fields=rows,
        spec=spec,
        write_settings=settings_changed,
        write_schema=not seen.same_schema,
    )


def _restart_reasons(d: Desired, spec: Spec, o: Observed, seen: _Compared, warnings: list[str]) -> list[str]:
    """Why ``o`` needs a restart for its changes to take effect; a scope that shrinks is warned about."""
    current, want = seen.current, spec.settings
    reasons: list[str] = []
    if spec.scope != current.scope:
        reasons.append("scope changed (the service picks up a new scope only on restart)")
        if _scope_shrinks(current.scope, spec.scope):
            warnings.append(
                f"{d.name}: the scope shrinks; objects that leave scope are deleted in "
                f"{'AD' if want.direction is Direction.ENTRA_TO_AD else 'Entra ID'}, and more "
                f"than {want.accidental_deletes_threshold} deletes stop the job (accidental-delete "
                "threshold) until someone approves them"
            )
    if not seen.same_mappings:
        reasons.append("attribute mappings changed")
    if want.password_hash_sync != current.settings.password_hash_sync or seen.phs_drift:
        reasons.append("password hash sync changed")
    if spec.restart_token != current.restart_token and spec.restart_token is not None:
        reasons.append(f"restartToken changed to {spec.restart_token!r}")
    if o.restart_pending:
        reasons.append("an earlier apply changed this configuration but its restart did not happen")
    return reasons


def plan_moved(d: Desired, spec: Spec, o: Observed, warnings: list[str]) -> list[Change]:
    """The changes of managed configuration ``o`` that the desired state now calls ``d.name``: its other
    changes as for any configuration, the first update carrying the new name."""
    rename = FieldChange("metadata.name", o.name, d.name)
    changes = plan_existing(d, spec, o, warnings)
    for i, c in enumerate(changes):
        if c.action is Action.UPDATE:
            changes[i] = replace(c, fields=(rename, *c.fields), moved_from=o.name)
            return changes
    return [
        Change(
            name=d.name,
            action=Action.UPDATE,
            target_id=o.id,
            reasons=(f"renamed from {o.name} (same domain {o.settings.domain}): the configuration is kept",),
            fields=(rename,),
            moved_from=o.name,
        ),
        *changes,
    ]
