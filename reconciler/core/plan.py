"""The planner: a pure function from (desired, observed, options) to an immutable ``Plan``.

Per configuration the plan holds zero or more changes: ``create``, ``update`` (field-level),
``start``/``pause`` (from ``enabled``), ``restart`` (with reasons) and ``delete``. Deletes are the hardest
thing to get: a managed configuration missing from the desired state is deleted only with
``allow_delete``, never while the target records deletion protection for it, and more than
``max_deletes`` in one plan also needs ``allow_mass_delete``. Whatever is held back is in ``Plan.held``
with the reason, so the reviewer sees it.

``apply`` executes a plan exactly as it is; it never calls back into this module.
No I/O here: provenance (time, commit) is attached by the caller.
"""

from __future__ import annotations

import enum
import hashlib
import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from reconciler.core.diff import FieldChange, essence, field_changes, flatten, mapping_essence
from reconciler.core.model import (
    CREDENTIAL_DATA,
    ENTRA_TO_AD_OBJECTS,
    RESET_FORCE_DELETES,
    TOO_MANY_DELETES,
    Desired,
    DesiredState,
    Direction,
    DirectoryExtension,
    ExtensionsSeen,
    JobStatus,
    Mapping,
    Observed,
    Scope,
    ScopeKind,
    Settings,
    edit_mappings,
    extension_attribute,
    folded_key,
    resolve_extension_removals,
    resolve_extensions,
)

__all__ = [
    "ACTION_ORDER",
    "FORMAT_VERSION",
    "TITLES",
    "Action",
    "Change",
    "Held",
    "Plan",
    "PlanOptions",
    "Provenance",
    "Spec",
    "compute_plan",
    "desired_digest",
    "fingerprint",
    "fingerprints",
    "in_scope",
]

FORMAT_VERSION = 1


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    START = "start"
    PAUSE = "pause"
    RESTART = "restart"
    # The documented restart with ForceDeletes, approved in git (``approveDeletes``).
    APPROVE_DELETES = "approveDeletes"
    DELETE = "delete"


# Apply runs the actions in this order, one phase after the other; deletes always last.
ACTION_ORDER: dict[Action, int] = {
    Action.CREATE: 0,
    Action.UPDATE: 1,
    Action.START: 2,
    Action.PAUSE: 2,
    Action.RESTART: 3,
    # After a restart: a restart for changes ends the quarantine, and with it what this approves.
    Action.APPROVE_DELETES: 4,
    Action.DELETE: 5,
}

TITLES: dict[Action, str] = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.START: "will be started (enabled)",
    Action.PAUSE: "will be paused (disabled)",
    Action.RESTART: "will be restarted",
    Action.APPROVE_DELETES: "will have its held deletes approved (restart with ForceDeletes)",
    Action.DELETE: "will be deleted",
}

# Restart flags (synchronizationJobRestartScope). Scope and mapping changes need every object
# re-evaluated, which is what the portal's "Restart sync" and the docs' "Full" do.
RESET_FOR_CHANGES = "Full"


@dataclass(frozen=True, slots=True)
class Spec:
    """The desired values of one configuration: what apply writes.

    ``mappings`` are the rows the desired state sets and ``removals`` the (object, target) rows it
    takes out; every other row of the service's schema is the service's and is kept as it is.
    """

    settings: Settings
    scope: Scope
    mappings: tuple[Mapping, ...]
    deletion_protection: bool = False
    restart_token: str | None = None
    removals: tuple[tuple[str, str], ...] = ()
    # Directory extensions the configuration declares (apply makes any that are missing) and, in a
    # change, those it deletes (only in a plan made with --allow-delete).
    extensions: tuple[DirectoryExtension, ...] = ()
    extension_removals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    name: str
    action: Action
    target_id: str | None = None  # None: a configuration that does not exist yet
    reasons: tuple[str, ...] = ()
    fields: tuple[FieldChange, ...] = ()
    spec: Spec | None = None  # create / update: the values to write
    write_settings: bool = False  # update: settings or our metadata changed
    write_schema: bool = False  # update: scope or mappings changed
    reset_scope: str | None = None  # restart: resetScope flags
    # update: the managed configuration's name until now; the desired state renamed it (``moved``)
    moved_from: str | None = None
    # approveDeletes: the start of the quarantine it approves, as the service reported it when planned
    quarantine_since: str | None = None

    @property
    def address(self) -> str:
        return f"configuration.{self.name}"


@dataclass(frozen=True, slots=True)
class Held:
    """A change the plan would make but holds back, and why."""

    name: str
    action: Action
    target_id: str | None
    reasons: tuple[str, ...]
    override: str | None = None  # the flag that releases it, when one does

    @property
    def address(self) -> str:
        return f"configuration.{self.name}"


@dataclass(frozen=True, slots=True)
class PlanOptions:
    allow_delete: bool = False
    allow_mass_delete: bool = False
    max_deletes: int = 1
    # Only these configuration names are planned (``--changed-since``); None plans everything.
    only: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Provenance:
    created_at: str = ""
    commit: str | None = None
    dirty: bool = False
    paths: tuple[str, ...] = ()
    user: str | None = None
    # The commit the desired state was read from (``plan --ref``); None: the work tree.
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    target: str
    changes: tuple[Change, ...] = ()
    held: tuple[Held, ...] = ()
    warnings: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    # "CONFIGURATION: clause" for each scoping-filter clause the tool does not manage (read-only).
    unmanaged_scoping: tuple[str, ...] = ()
    statuses: tuple[tuple[str, JobStatus], ...] = ()  # (name, status) of configurations not healthy
    fingerprints: tuple[tuple[str, str], ...] = ()  # (target id, fingerprint) of everything observed
    desired_digest: str = ""
    options: PlanOptions = field(default_factory=PlanOptions)
    provenance: Provenance = field(default_factory=Provenance)
    format_version: int = FORMAT_VERSION

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def summary(self) -> dict[str, int]:
        counts = Counter(c.action.value for c in self.changes)
        # Approvals are counted only when a plan has some: other plans' summaries read as before.
        out = {
            a.value: counts.get(a.value, 0)
            for a in Action
            if a is not Action.APPROVE_DELETES or counts[a.value]
        }
        out["held"] = len(self.held)
        return out

    def names(self) -> tuple[str, ...]:
        return tuple(sorted({c.name for c in self.changes} | {h.name for h in self.held}))


# --------------------------------------------------------------------------------------------------
# fingerprints and digests


def _canon_mappings(mappings: Iterable[Mapping]) -> tuple[tuple[Any, ...], ...]:
    return tuple(sorted([m.canonical for m in mappings]))


def _canon(
    settings: Settings,
    scope: Scope,
    mappings: Iterable[Mapping],
    deletion_protection: bool,
    restart_token: str | None,
    removals: Iterable[tuple[str, str]] = (),
) -> tuple[Any, ...]:
    """A canonical tuple of plain values (strings, numbers, booleans, None and tuples of them)."""
    s = settings
    return (
        (
            s.domain,
            s.notification_email,
            s.enabled,
            s.password_hash_sync,
            s.accidental_deletes_enabled,
            s.accidental_deletes_threshold,
            # Fields of the other directions and add-on jobs, only when set: the canonical form (and
            # so digests and fingerprints) of an AD -> Entra ID configuration without them is unchanged.
            *_extra_settings(s),
        ),
        (scope.kind._value_, tuple(sorted(e.casefold() for e in scope.entries)), *_canon_filters(scope)),
        _canon_mappings(mappings),
        deletion_protection,
        restart_token,
        *((tuple(sorted(folded_key(o, t) for o, t in removals)),) if removals else ()),
    )


def _canon_extensions(s: Spec) -> tuple[Any, ...]:
    return (
        tuple(
            (e.name.casefold(), e.data_type, tuple(sorted(e.target_objects)), e.multi_valued)
            for e in s.extensions
        ),
        tuple(n.casefold() for n in s.extension_removals),
    )


def _canon_filters(scope: Scope) -> tuple[Any, ...]:
    if not scope.filters:
        return ()
    return (tuple(tuple((c.attribute, c.operator, c.value) for c in f) for f in scope.filters),)


def _extra_settings(s: Settings) -> tuple[Any, ...]:
    extra = {k: v for k, v in s.as_dict().items() if k in _EXTRA_SETTINGS}
    return (tuple(sorted(extra.items())),) if extra else ()


_EXTRA_SETTINGS = frozenset(("direction", "exchangeHybridWriteback", "deviceSync", "previewUsers"))


def _digest(data: Any) -> str:
    """SHA-256 of a canonical tuple's JSON text (orjson: ~4x faster than ``repr``, as stable).

    A value JSON cannot hold (a lone surrogate from a YAML escape, an integer beyond 64 bits) takes
    ``repr`` instead; the same value always takes the same path, so digests stay comparable.
    """
    try:
        text = orjson.dumps(data)
    except TypeError:
        text = b"repr:" + repr(data).encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:32]


def fingerprint(o: Observed) -> str:
    """What the planner saw of one configuration (status excluded: it changes on its own)."""
    return _digest(
        (
            o.id,
            o.name,
            o.managed,
            o.complete,
            o.restart_pending,
            tuple(sorted(o.credential_data_count.items())),
            _canon(o.settings, o.scope, o.mappings, o.deletion_protection, o.restart_token),
            # Only when there are any: fingerprints of configurations without them stay as they were.
            *((o.unmanaged_scoping,) if o.unmanaged_scoping else ()),
        )
    )


def fingerprints(observed: Iterable[Observed]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((o.id, fingerprint(o)) for o in observed))


_MAPPING_KEY = operator.attrgetter("object", "target")  # Mapping.key, without a Python call
_FOLDED = operator.attrgetter("folded")  # Mapping.folded_key, likewise


def _spec_for(d: Desired, defaults: Sequence[Mapping] = ()) -> Spec:
    sets = [o.mapping for o in d.overrides if o.mapping is not None]
    return Spec(
        settings=d.settings,
        scope=d.scope.normalized(),
        mappings=tuple(sorted(sets, key=_FOLDED)),
        deletion_protection=d.deletion_protection,
        restart_token=d.restart_token,
        removals=tuple(
            sorted((o.key for o in d.overrides if o.mapping is None), key=lambda k: folded_key(*k))
        ),
        extensions=tuple(sorted(d.extensions, key=lambda e: e.name.casefold())),
        extension_removals=tuple(sorted(d.extension_removals, key=str.casefold)),
    )


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


def _spec_essence(spec: Spec) -> dict[str, Any]:
    return essence(
        spec.settings,
        spec.scope,
        spec.mappings,
        deletion_protection=spec.deletion_protection,
        restart_token=spec.restart_token,
    )


def in_scope(o: Observed, only: frozenset[str] | None) -> bool:
    """Whether a plan restricted to ``only`` depends on ``o``: unmanaged ones always (for clashes)."""
    return only is None or not o.managed or o.name in only


def desired_digest(
    state: DesiredState, defaults: Sequence[Mapping], only: frozenset[str] | None = None
) -> str:
    """A digest of the desired state's meaning: formatting, comments and file layout do not change it.

    With ``only`` it covers those configurations alone, as the plan restricted to them does, so such a
    plan (``--changed-since``) does not go stale when files of other configurations change.
    """
    return _specs_digest(
        {d.name: _spec_for(d, defaults) for d in state.configurations if only is None or d.name in only}
    )


def _specs_digest(by_name: dict[str, Spec]) -> str:
    specs = sorted(by_name.items())
    return _digest(
        tuple(
            (
                name,
                _canon(s.settings, s.scope, s.mappings, s.deletion_protection, s.restart_token, s.removals),
                # Only when there are any: digests of configurations without extensions stay as they were.
                *((_canon_extensions(s),) if s.extensions or s.extension_removals else ()),
            )
            for name, s in specs
        )
    )


def _create_fields(spec: Spec, defaults: Sequence[Mapping]) -> tuple[FieldChange, ...]:
    """A create shows every setting, and of the mappings only the overrides and removals it makes on
    the rows the service gives a new job (``defaults``); those rows are kept."""
    data = _spec_essence(spec)
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


def _no_object(missing: Sequence[str]) -> str:
    return (
        f"its mappings speak about {', '.join(missing)}, but the job schema has no object mapping for "
        f"{'it' if len(missing) == 1 else 'them'}; remove those mappings from the desired state"
    )


def _exchange_precondition(d: Desired, found: Observed | None, warnings: list[str]) -> Held | None:
    """Exchange hybrid writeback asked for where the configuration lacks it: held when a directory
    discover found no Exchange schema in AD (the documented precondition); a warning when it could not
    be looked up (a new configuration, or a target that cannot discover)."""
    if not d.settings.exchange_hybrid_writeback or (
        found is not None and found.settings.exchange_hybrid_writeback
    ):
        return None
    if found is not None and found.exchange_schema is False:
        reason = (
            f"exchangeHybridWriteback: the AD schema of {d.settings.domain} has no Exchange attributes (a "
            "directory discover finds no mailNickname on user); extend the schema for Exchange and restart "
            "the provisioning agent, then plan again"
        )
        return Held(d.name, Action.UPDATE, found.id, (reason,))
    if found is None or found.exchange_schema is None:
        warnings.append(
            f"{d.name}: exchangeHybridWriteback needs the Exchange schema in AD; it could not be checked "
            + ("before the configuration exists" if found is None else "on this target")
        )
    return None


_DIRECTION_WORDS = {Direction.AD_TO_ENTRA: "AD -> Entra ID", Direction.ENTRA_TO_AD: "Entra ID -> AD"}


def _held_direction_change(d: Desired, found: Observed) -> Held:
    """A managed configuration the desired state gives the other direction: the service makes each
    direction from its own template, so a direction never changes in place."""
    reason = (
        f"the target's configuration '{d.name}' provisions {_DIRECTION_WORDS[found.settings.direction]} and "
        f"the desired one {_DIRECTION_WORDS[d.settings.direction]}; a configuration's direction cannot "
        "change: give the new one another name"
    )
    return Held(d.name, Action.UPDATE, found.id, (reason,))


def _domain_key(settings: Settings) -> tuple[str, Direction]:
    """What makes two configurations one: one per AD domain (as the service compares it) and direction."""
    return settings.domain.casefold(), settings.direction


def _plan_approval(
    d: Desired, found: Observed | None, options: PlanOptions, warnings: list[str]
) -> Change | Held | None:
    """``approveDeletes``: the documented restart with ForceDeletes, for the one TooManyDeletes
    quarantine it names by the time it began. Any other state (no quarantine, another reason, a later
    quarantine) approves nothing and says so; releasing deletes needs ``--allow-delete``."""
    since = d.approve_deletes
    if since is None:
        return None
    if found is None:
        warnings.append(
            f"{d.name}: approveDeletes names the quarantine that began {since}, but the configuration does "
            "not exist on the target: nothing is approved; remove the field"
        )
        return None
    status = found.status
    if not status.holds_deletes(since):
        warnings.append(
            f"{d.name}: approveDeletes names the {TOO_MANY_DELETES} quarantine that began {since}; the "
            f"provisioning job is {status.state_text()}, so nothing is approved; remove the field"
        )
        return None
    if found.deletes_approved is not None and status.holds_deletes(found.deletes_approved):
        warnings.append(
            f"{d.name}: the held deletes of the quarantine that began {status.quarantine_since} were "
            "approved already; remove approveDeletes"
        )
        return None
    reason = f"approve held deletes (quarantined since {status.quarantine_since})"
    if not options.allow_delete:
        return Held(
            d.name,
            Action.APPROVE_DELETES,
            found.id,
            (f"{reason}: releasing deletes needs --allow-delete",),
            override="--allow-delete",
        )
    return Change(
        name=d.name,
        action=Action.APPROVE_DELETES,
        target_id=found.id,
        reasons=(reason,),
        reset_scope=RESET_FORCE_DELETES,
        quarantine_since=status.quarantine_since,
    )


def _name(d: Desired) -> str:
    return d.name


# --------------------------------------------------------------------------------------------------
# the planner


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


def _plan_existing(d: Desired, spec: Spec, o: Observed, warnings: list[str]) -> list[Change]:
    current, aligned = _observed_spec(o, spec)
    # Enabled/disabled is carried out by start/pause, not by an update.
    cur_settings = current.settings
    want_settings = spec.settings
    want_enabled = want_settings.enabled
    phs_drift = (
        any(n != (1 if want_settings.password_hash_sync else 0) for n in o.credential_data_count.values())
        if o.credential_data_count
        else False
    )
    same_settings = (
        want_settings == cur_settings
        and spec.deletion_protection == current.deletion_protection
        and spec.restart_token == current.restart_token
        and not phs_drift
    )
    same_mappings = aligned.mappings == current.mappings
    same_schema = aligned.scope == current.scope and same_mappings
    if same_settings and same_schema and not o.restart_pending:
        return []

    changes: list[Change] = []
    # Compare with 'enabled' aligned so that it never shows as an update field.
    before = _spec_essence(current)
    after = _spec_essence(aligned)
    _aligned_essences(before["mappings"], after["mappings"])
    before["settings"]["enabled"] = after["settings"]["enabled"]
    rows = field_changes(before, after)
    if phs_drift and not any(r.path == "settings.passwordHashSync" for r in rows):
        # In the words of the YAML (passwordHashSync), not of the service's mapping that carries it.
        rows += (
            FieldChange(
                "settings.passwordHashSync",
                ", ".join(f"{obj}: {_phs_state(n)}" for obj, n in sorted(o.credential_data_count.items())),
                want_settings.password_hash_sync,
            ),
        )
    settings_changed = (
        dict(before["settings"]) != dict(after["settings"])
        or spec.deletion_protection != current.deletion_protection
        or spec.restart_token != current.restart_token
        or phs_drift
    )
    schema_changed = not same_schema
    if rows:
        changes.append(
            Change(
                name=d.name,
                action=Action.UPDATE,
                target_id=o.id,
                fields=rows,
                spec=spec,
                write_settings=settings_changed,
                write_schema=schema_changed,
            )
        )

    reasons: list[str] = []
    if spec.scope != current.scope:
        reasons.append("scope changed (the service picks up a new scope only on restart)")
        if _scope_shrinks(current.scope, spec.scope):
            warnings.append(
                f"{d.name}: the scope shrinks; objects that leave scope are deleted in "
                f"{'AD' if want_settings.direction is Direction.ENTRA_TO_AD else 'Entra ID'}, and more "
                f"than {want_settings.accidental_deletes_threshold} deletes stop the job (accidental-delete "
                "threshold) until someone approves them"
            )
    if not same_mappings:
        reasons.append("attribute mappings changed")
    if want_settings.password_hash_sync != cur_settings.password_hash_sync or phs_drift:
        reasons.append("password hash sync changed")
    if spec.restart_token != current.restart_token and spec.restart_token is not None:
        reasons.append(f"restartToken changed to {spec.restart_token!r}")
    if o.restart_pending:
        reasons.append("an earlier apply changed this configuration but its restart did not happen")
    if reasons:
        if want_enabled:
            changes.append(
                Change(
                    name=d.name,
                    action=Action.RESTART,
                    target_id=o.id,
                    reasons=tuple(reasons),
                    reset_scope=RESET_FOR_CHANGES,
                )
            )
        else:
            warnings.append(
                f"{d.name}: restart not planned because the configuration is disabled; "
                "after enabling it, restart it (bump restartToken) so the change is picked up"
            )
    return changes


def _plan_moved(d: Desired, spec: Spec, o: Observed, warnings: list[str]) -> list[Change]:
    """The changes of managed configuration ``o`` that the desired state now calls ``d.name``: its other
    changes as for any configuration, the first update carrying the new name."""
    rename = FieldChange("metadata.name", o.name, d.name)
    changes = _plan_existing(d, spec, o, warnings)
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


@dataclass
class _Draft:
    """What the planner has decided so far: the changes, what it holds back and why, and warnings."""

    changes: list[Change] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Holdings:
    """The target's configurations, sorted by what the plan may do with them."""

    managed: dict[str, Observed]  # by the name its tag gives
    unmanaged: list[Observed]
    unmanaged_domains: dict[tuple[str, Direction], Observed]  # by _domain_key
    # A managed configuration the desired state no longer names, whose domain a new name has: the same
    # configuration renamed (Terraform's ``moved``), never a second configuration and a delete.
    leaving: dict[tuple[str, Direction], Observed]  # by _domain_key
    moved: set[str] = field(default_factory=set)  # names of the managed configurations renamed
    # The tenant's Cloud Sync extensions application and its properties (None: none, or not read).
    extensions: ExtensionsSeen | None = None


def compute_plan(
    desired: DesiredState,
    observed: Sequence[Observed],
    defaults: Sequence[Mapping],
    options: PlanOptions = PlanOptions(),
    *,
    target: str = "",
    extensions: ExtensionsSeen | None = None,
    to_ad_defaults: Sequence[Mapping] = (),
) -> Plan:
    """Compare the desired state with what the target holds. Pure and deterministic.

    ``extensions``: the tenant's Cloud Sync extensions application, when the desired state uses
    directory extensions (``ext:`` names are compared as the service spells them once it exists).
    ``defaults`` are the rows of the AD -> Entra ID job's template, ``to_ad_defaults`` those of the
    Entra ID -> AD one (a create shows how it changes them).

    Sort what the target holds; plan each desired configuration (held back, created or brought to the
    desired state); plan the deletes of what the desired state no longer names; put it in order.
    """
    only = options.only
    draft = _Draft()
    wanted = {d.name for d in desired.configurations}
    holdings = _sort_target(observed, wanted, draft)
    holdings.extensions = extensions
    specs = {d.name: _spec_for(d, defaults) for d in desired.configurations}
    for d in sorted(desired.configurations, key=_name):
        if only is None or d.name in only:
            own = to_ad_defaults if d.settings.direction is Direction.ENTRA_TO_AD else defaults
            _plan_configuration(d, specs[d.name], own, holdings, draft, options)
    leftover = [
        o
        for name, o in sorted(holdings.managed.items())
        if name not in wanted and name not in holdings.moved and (only is None or name in only)
    ]
    _plan_deletes(leftover, options, draft)
    draft.changes.sort(key=lambda c: (ACTION_ORDER[c.action], c.name))
    draft.held.sort(key=lambda h: (ACTION_ORDER[h.action], h.name))
    in_view = sorted((o for o in observed if in_scope(o, only)), key=lambda x: x.display)
    return Plan(
        target=target,
        changes=tuple(draft.changes),
        held=tuple(draft.held),
        warnings=tuple(draft.warnings),
        unmanaged=tuple(sorted(u.display for u in holdings.unmanaged)),
        unmanaged_scoping=tuple(f"{o.display}: {clause}" for o in in_view for clause in o.unmanaged_scoping),
        statuses=_unhealthy(observed, only),
        fingerprints=fingerprints(o for o in observed if in_scope(o, only)),
        desired_digest=_specs_digest({n: s for n, s in specs.items() if only is None or n in only}),
        options=options,
    )


def _sort_target(observed: Sequence[Observed], wanted: set[str], draft: _Draft) -> _Holdings:
    """The target's configurations as managed (by name) and unmanaged, and which managed ones may be
    renamed; a second configuration tagged with a managed name is warned about and left alone."""
    managed: dict[str, Observed] = {}
    unmanaged: list[Observed] = []
    for o in observed:
        if o.managed and o.name is not None:
            if o.name in managed:
                draft.warnings.append(
                    f"{o.name}: the target holds two configurations tagged with this name "
                    f"({managed[o.name].id}, {o.id}); only {managed[o.name].id} is managed by this plan"
                )
                continue
            managed[o.name] = o
        else:
            unmanaged.append(o)
    return _Holdings(
        managed=managed,
        unmanaged=unmanaged,
        unmanaged_domains={_domain_key(u.settings): u for u in unmanaged},
        leaving={
            _domain_key(o.settings): o
            for name, o in sorted(managed.items())
            if name not in wanted and o.complete
        },
    )


def _plan_configuration(
    d: Desired,
    spec: Spec,
    defaults: Sequence[Mapping],
    holdings: _Holdings,
    draft: _Draft,
    options: PlanOptions,
) -> None:
    """One desired configuration: held back, created (or its create resumed), or brought to ``spec``."""
    found = holdings.managed.get(d.name)
    if found is not None and found.settings.direction is not d.settings.direction:
        draft.held.append(_held_direction_change(d, found))
        return
    blocked = _exchange_precondition(d, found, draft.warnings)
    if blocked is not None:
        draft.held.append(blocked)
        return
    renamed = holdings.leaving.get(_domain_key(d.settings)) if found is None else None
    if renamed is not None and renamed.name is not None:
        holdings.moved.add(renamed.name)
        found = renamed
    with_extensions = _plan_extensions(d, spec, found, holdings.extensions, options, draft)
    if with_extensions is None:
        return
    spec, rows = with_extensions
    if found is None or not found.complete:
        _plan_create(d, spec, found, defaults, holdings, draft)
        _plan_approval(d, None, options, draft.warnings)
    else:
        _plan_update(d, spec, found, draft, options)
    if rows:
        _add_extension_rows(d, spec, found, rows, draft)


def _plan_extensions(
    d: Desired,
    spec: Spec,
    found: Observed | None,
    seen: ExtensionsSeen | None,
    options: PlanOptions,
    draft: _Draft,
) -> tuple[Spec, tuple[FieldChange, ...]] | None:
    """``spec`` with its ``ext:`` names as the service spells them (once the extensions application
    exists), and a row per extension property to make or delete. Deleting one deletes its values on
    every object: held for ``--allow-delete``. A declared property the service holds with another type
    holds the configuration back (a property never changes). None: held (recorded in ``draft``)."""
    if not spec.extensions and not spec.extension_removals and seen is None:
        return spec, ()
    target_id = found.id if found is not None else None
    rows: list[FieldChange] = []
    for extension in spec.extensions:
        have = seen.find(extension.name) if seen is not None else None
        if have is None:
            rows.append(FieldChange(f"directoryExtensions.{extension.name}", None, extension.as_dict()))
        elif not have.same_property(extension):
            reason = (
                f"directory extension {extension.name} exists as {have.as_dict()}, not as "
                f"{extension.as_dict()}; an extension property never changes: remove it (remove: true, "
                "with --allow-delete) and declare it again"
            )
            draft.held.append(Held(d.name, Action.UPDATE, target_id, (reason,)))
            return None
    removals: list[str] = []
    gone_rows: list[tuple[str, str]] = []
    for name in spec.extension_removals:
        have = seen.find(name) if seen is not None else None
        if have is None:
            continue  # gone already
        if options.allow_delete:
            rows.append(FieldChange(f"directoryExtensions.{have.name}", have.as_dict(), None))
            removals.append(have.name)
            if found is not None and seen is not None:
                # The rows that set it go with it: the plan shows them, and the restart they need.
                full = extension_attribute(seen.app_id, have.name).casefold()
                gone_rows += [(m.object, m.target) for m in found.mappings if m.target.casefold() == full]
        else:
            reason = (
                f"removing directory extension {have.name} deletes its values on every object of the "
                "tenant; removals need --allow-delete"
            )
            draft.held.append(Held(d.name, Action.UPDATE, target_id, (reason,), override="--allow-delete"))
    app_id = seen.app_id if seen is not None else None
    resolved = replace(
        spec,
        mappings=tuple(sorted(resolve_extensions(spec.mappings, app_id), key=_FOLDED)),
        removals=tuple(
            sorted(
                (*resolve_extension_removals(spec.removals, app_id), *gone_rows), key=lambda k: folded_key(*k)
            )
        ),
        extension_removals=tuple(removals),
    )
    return resolved, tuple(rows)


def _add_extension_rows(
    d: Desired, spec: Spec, found: Observed | None, rows: tuple[FieldChange, ...], draft: _Draft
) -> None:
    """The extension rows join the configuration's create or update (an update is made for them when
    there is none): apply's schema step makes and deletes the properties."""
    for i, c in enumerate(draft.changes):
        if c.name == d.name and c.action in (Action.CREATE, Action.UPDATE):
            draft.changes[i] = replace(c, fields=(*c.fields, *rows), write_schema=True, spec=c.spec or spec)
            return
    if found is None or any(h.name == d.name and h.override is None for h in draft.held):
        return  # held back: nothing of it is made
    draft.changes.append(
        Change(
            name=d.name,
            action=Action.UPDATE,
            target_id=found.id,
            fields=rows,
            spec=spec,
            write_schema=True,
        )
    )


def _plan_create(
    d: Desired,
    spec: Spec,
    found: Observed | None,
    defaults: Sequence[Mapping],
    holdings: _Holdings,
    draft: _Draft,
) -> None:
    """A new configuration, or the rest of one whose create was interrupted (``found``): held back when
    its domain has an unmanaged configuration or a mapping names an object the template lacks."""
    clash = holdings.unmanaged_domains.get(_domain_key(d.settings))
    if found is None and clash is not None:
        draft.held.append(
            Held(
                d.name,
                Action.CREATE,
                None,
                (
                    f"domain {d.settings.domain} already has a configuration that this tool does not "
                    f"manage ({clash.id}); adopt it with `reconciler import --adopt` instead of "
                    "creating a second one",
                ),
            )
        )
        return
    missing = missing_objects(spec, defaults)
    if missing:
        draft.held.append(Held(d.name, Action.CREATE, found.id if found else None, (_no_object(missing),)))
        return
    draft.changes.append(
        Change(
            name=d.name,
            action=Action.CREATE,
            target_id=found.id if found is not None else None,
            # The unchanged template defaults are not a reason: only the differences are shown.
            reasons=("resume an interrupted create",) if found is not None else (),
            fields=_create_fields(spec, defaults),
            spec=spec,
        )
    )
    if d.settings.enabled:
        draft.changes.append(Change(name=d.name, action=Action.START, target_id=found.id if found else None))


def _plan_update(d: Desired, spec: Spec, o: Observed, draft: _Draft, options: PlanOptions) -> None:
    """A configuration the target holds (under this name or, renamed, another): its field changes, a
    start or pause, and a warning when its job is in quarantine."""
    missing = missing_objects(spec, o.mappings)
    if d.settings.direction is Direction.ENTRA_TO_AD:
        # Its job has both object mappings; users' is read only while it is switched on (preview), and
        # the same update switches it on.
        missing = [m for m in missing if m not in ENTRA_TO_AD_OBJECTS]
    if missing:
        draft.held.append(Held(d.name, Action.UPDATE, o.id, (_no_object(missing),)))
        return
    if o.name == d.name:
        draft.changes.extend(_plan_existing(d, spec, o, draft.warnings))
    else:
        draft.changes.extend(_plan_moved(d, spec, o, draft.warnings))
    # A restart of a paused job is preceded by a start: apply runs starts before restarts.
    if d.settings.enabled and not o.settings.enabled:
        draft.changes.append(Change(name=d.name, action=Action.START, target_id=o.id))
    elif not d.settings.enabled and o.settings.enabled:
        draft.changes.append(Change(name=d.name, action=Action.PAUSE, target_id=o.id))
    approval = _plan_approval(d, o, options, draft.warnings)
    if isinstance(approval, Change):
        draft.changes.append(approval)
    elif approval is not None:
        draft.held.append(approval)
    if o.status.code == "Quarantine":
        draft.warnings.append(
            f"{d.name}: the provisioning job is in quarantine"
            + (f" ({o.status.quarantine_reason})" if o.status.quarantine_reason else "")
            + (f" since {o.status.quarantine_since}" if o.status.quarantine_since else "")
        )


def _plan_deletes(candidates: Sequence[Observed], options: PlanOptions, draft: _Draft) -> None:
    """Managed configurations the desired state no longer lists (nor renamed): deleted, or held back
    by deletion protection, by a missing ``allow_delete``, or as more than ``max_deletes``."""
    releasable: list[Observed] = []
    for o in candidates:
        name = o.name or o.id
        if o.deletion_protection:
            draft.held.append(
                Held(
                    name,
                    Action.DELETE,
                    o.id,
                    (
                        "deletion protection is on for this configuration on the target; to delete it, first "
                        "apply a change that sets deletionProtection: false, then remove it",
                    ),
                )
            )
        elif not options.allow_delete:
            draft.held.append(
                Held(
                    name,
                    Action.DELETE,
                    o.id,
                    ("it is no longer in the desired state; deletes need --allow-delete",),
                    override="--allow-delete",
                )
            )
        else:
            releasable.append(o)
    if len(releasable) > options.max_deletes and not options.allow_mass_delete:
        for o in releasable:
            draft.held.append(
                Held(
                    o.name or o.id,
                    Action.DELETE,
                    o.id,
                    (
                        f"{len(releasable)} deletes in one plan is more than the limit of "
                        f"{options.max_deletes}; "
                        "deleting that many needs --allow-mass-delete as well",
                    ),
                    override="--allow-mass-delete",
                )
            )
        return
    for o in releasable:
        draft.changes.append(
            Change(
                name=o.name or o.id,
                action=Action.DELETE,
                target_id=o.id,
                reasons=("no longer in the desired state",),
                fields=flatten(
                    essence(
                        o.settings,
                        o.scope,
                        o.mappings,
                        deletion_protection=o.deletion_protection,
                        restart_token=o.restart_token,
                    ),
                    removed=True,
                ),
            )
        )


def _unhealthy(
    observed: Sequence[Observed], only: frozenset[str] | None
) -> tuple[tuple[str, JobStatus], ...]:
    """The job status of every configuration in view whose job is not healthy, by display name."""
    return tuple(
        (o.name or o.display, o.status)
        for o in sorted(observed, key=lambda x: x.display)
        if (only is None or o.name in only) and not o.status.healthy
    )
