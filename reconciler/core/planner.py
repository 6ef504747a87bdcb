"""The planner: a pure function from (desired, observed, options) to an immutable ``Plan``.

``compute_plan`` reads as its steps: sort what the target holds (managed, unmanaged, renamed); plan each
desired configuration (held back, created, or brought to the desired state, with its directory
extensions); plan the deletes of what the desired state no longer names; put it in order. Deletes are
the hardest thing to get: a managed configuration missing from the desired state is deleted only with
``allow_delete``, never while the target records deletion protection for it, and more than
``max_deletes`` in one plan also needs ``allow_mass_delete``.

No I/O here: provenance (time, commit) is attached by the caller.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from reconciler.core.changes import create_fields, missing_objects, plan_existing, plan_moved
from reconciler.core.diff import FieldChange, essence, flatten
from reconciler.core.digest import fingerprints, specs_digest
from reconciler.core.group_limits import GroupSizes, member_limit_problems
from reconciler.core.holds import (
    exchange_precondition,
    held_direction_change,
    no_object,
    onprem_definitions,
    plan_approval,
)
from reconciler.core.model import (
    ENTRA_TO_AD_OBJECTS,
    Desired,
    DesiredState,
    Direction,
    ExtensionsSeen,
    Mapping,
    Settings,
    extension_attribute,
    folded_key,
    resolve_extension_removals,
    resolve_extensions,
)
from reconciler.core.observed import JobStatus, Observed
from reconciler.core.plan import (
    ACTION_ORDER,
    Action,
    Change,
    Held,
    Plan,
    PlanOptions,
    Spec,
    in_scope,
    spec_for,
)

__all__ = ["compared_with", "compute_plan"]


_DEFAULTS = PlanOptions()
_FOLDED = operator.attrgetter("folded")  # Mapping.folded_key, without a Python call


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
    # What the tenant was found to hold for the documented scope limits: member counts, its size, and
    # the groups new attribute filters select (``core.group_limits``; None: not looked up).
    group_sizes: GroupSizes | None = None


def compute_plan(
    desired: DesiredState,
    observed: Sequence[Observed],
    defaults: Sequence[Mapping],
    options: PlanOptions = _DEFAULTS,
    *,
    target: str = "",
    extensions: ExtensionsSeen | None = None,
    to_ad_defaults: Sequence[Mapping] = (),
    group_sizes: GroupSizes | None = None,
) -> Plan:
    """Compare the desired state with what the target holds. Pure and deterministic.

    ``extensions``: the tenant's Cloud Sync extensions application, when the desired state uses
    directory extensions (``ext:`` names are compared as the service spells them once it exists).
    ``defaults`` are the rows of the AD -> Entra ID job's template, ``to_ad_defaults`` those of the
    Entra ID -> AD one (a create shows how it changes them). ``group_sizes``: what the tenant holds
    for the documented scope limits of Entra ID -> AD configurations (``core.group_limits``).

    Sort what the target holds; plan each desired configuration in view (held back, created or brought
    to the desired state); plan the deletes of what the desired state no longer names; assemble the plan.
    """
    only = options.only
    wanted = {d.name for d in desired.configurations}
    draft = _Draft()
    holdings = _sort_target(observed, wanted, extensions, draft)
    holdings.group_sizes = group_sizes
    specs = {d.name: spec_for(d) for d in desired.configurations if only is None or d.name in only}
    for d in sorted(desired.configurations, key=_name):
        if d.name in specs:
            own = to_ad_defaults if d.settings.direction is Direction.ENTRA_TO_AD else defaults
            _plan_configuration(d, specs[d.name], own, holdings, draft, options)
    _plan_deletes(_leftover(holdings, wanted, only), options, draft)
    return _assemble(draft, holdings, observed, specs, options, target)


def _leftover(holdings: _Holdings, wanted: set[str], only: frozenset[str] | None) -> list[Observed]:
    """The managed configurations the desired state no longer names, nor renamed (in view of ``only``)."""
    return [
        o
        for name, o in sorted(holdings.managed.items())
        if name not in wanted and name not in holdings.moved and (only is None or name in only)
    ]


def _assemble(
    draft: _Draft,
    holdings: _Holdings,
    observed: Sequence[Observed],
    specs: dict[str, Spec],
    options: PlanOptions,
    target: str,
) -> Plan:
    """The plan of ``draft``: its changes in the order apply runs them, with what the target shows of
    the configurations in view (unmanaged ones, unhealthy jobs, fingerprints) and the desired digest."""
    only = options.only
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
        fingerprints=fingerprints(in_view),
        desired_digest=specs_digest(specs),
        options=options,
    )


def compared_with(desired: DesiredState, observed: Sequence[Observed]) -> dict[str, Observed]:
    """What ``compute_plan`` compares each desired configuration with, by name: the managed
    configuration of that name, or the one it renames (same domain and direction, its own name no
    longer desired). For the reads a plan needs beforehand (``engine.plan_inputs.read_group_sizes``)."""
    draft = _Draft()
    holdings = _sort_target(observed, {d.name for d in desired.configurations}, None, draft)
    out: dict[str, Observed] = {}
    for d in desired.configurations:
        found = holdings.managed.get(d.name) or holdings.leaving.get(_domain_key(d.settings))
        if found is not None:
            out[d.name] = found
    return out


def _domain_key(settings: Settings) -> tuple[str, Direction]:
    """What makes two configurations one: one per AD domain (as the service compares it) and direction."""
    return settings.domain.casefold(), settings.direction


def _name(d: Desired) -> str:
    return d.name


def _sort_target(
    observed: Sequence[Observed], wanted: set[str], extensions: ExtensionsSeen | None, draft: _Draft
) -> _Holdings:
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
        extensions=extensions,
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
        draft.held.append(held_direction_change(d, found))
        return
    blocked = exchange_precondition(d, found, draft.warnings)
    if blocked is not None:
        draft.held.append(blocked)
        return
    renamed = holdings.leaving.get(_domain_key(d.settings)) if found is None else None
    if renamed is not None and renamed.name is not None:
        # Moved even when held back below: the configuration renamed is then left as it is, never
        # deleted in favour of one that is not made.
        holdings.moved.add(renamed.name)
        found = renamed
    too_large, notes = member_limit_problems(d, found, holdings.group_sizes)
    draft.warnings.extend(notes)
    if too_large:
        action = Action.CREATE if found is None or not found.complete else Action.UPDATE
        draft.held.append(Held(d.name, action, found.id if found is not None else None, too_large))
        return
    with_extensions = _plan_extensions(d, spec, found, holdings.extensions, options, draft)
    if with_extensions is None:
        return
    spec, rows = with_extensions
    definitions = onprem_definitions(d, spec, found, draft.warnings)
    if isinstance(definitions, Held):
        draft.held.append(definitions)
        return
    rows = (*rows, *definitions)
    if found is None or not found.complete:
        _plan_create(d, spec, found, defaults, holdings, draft)
        plan_approval(d, None, options, draft.warnings)
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
        draft.held.append(Held(d.name, Action.CREATE, found.id if found else None, (no_object(missing),)))
        return
    draft.changes.append(
        Change(
            name=d.name,
            action=Action.CREATE,
            target_id=found.id if found is not None else None,
            # The unchanged template defaults are not a reason: only the differences are shown.
            reasons=("resume an interrupted create",) if found is not None else (),
            fields=create_fields(spec, defaults),
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
        draft.held.append(Held(d.name, Action.UPDATE, o.id, (no_object(missing),)))
        return
    if o.name == d.name:
        draft.changes.extend(plan_existing(d, spec, o, draft.warnings))
    else:
        draft.changes.extend(plan_moved(d, spec, o, draft.warnings))
    # A restart of a paused job is preceded by a start: apply runs starts before restarts.
    if d.settings.enabled and not o.settings.enabled:
        draft.changes.append(Change(name=d.name, action=Action.START, target_id=o.id))
    elif not d.settings.enabled and o.settings.enabled:
        draft.changes.append(Change(name=d.name, action=Action.PAUSE, target_id=o.id))
    approval = plan_approval(d, o, options, draft.warnings)
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
