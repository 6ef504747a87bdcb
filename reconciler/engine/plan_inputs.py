"""What a plan reads from the target besides its configurations, before the planner compares: the
domains to look up, the configurations (as narrowly as a plan needs them), the preconditions of
Exchange hybrid writeback and of declared on-premises attributes, the held deletes an approval releases,
the extensions application, and the tenant's numbers the documented scope limits of Entra ID -> AD are
checked against (``read_group_sizes``). Each read happens only when the desired state needs it, so a
plan that changes nothing reads nothing more.

I/O: the target, through its provider (reads only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from reconciler.core.group_limits import (
    MAX_FILTER_GROUPS,
    Filters,
    GroupSizes,
    groups_to_count,
    needs_filter_selection,
    needs_tenant_size,
    tenant_too_large,
)
from reconciler.core.model import EXTENSION_REF, DesiredState, Direction, ExtensionsSeen, Mapping
from reconciler.core.observed import Observed
from reconciler.core.planner import compared_with
from reconciler.providers.base import (
    ChecksExchangeSchema,
    CountsGroupMembers,
    LooksUpDomains,
    Provider,
    ReadsByName,
    ReadsExtensions,
    ReadsOnPremisesAttributes,
)

__all__ = [
    "look_up_domains",
    "read_extensions",
    "read_group_sizes",
    "read_observed",
    "to_ad_defaults",
    "with_onprem_attributes",
    "with_preconditions",
]


def look_up_domains(provider: Provider, state: DesiredState) -> None:
    """Tell ``provider`` the domains of ``state``, when it needs them to find every configuration."""
    if isinstance(provider, LooksUpDomains):
        provider.look_up_domains(c.settings.domain for c in state.configurations)


def read_observed(provider: Provider, only: frozenset[str] | None) -> tuple[Observed, ...]:
    """What a plan of ``only`` (None: everything) needs from the target, read as narrowly as it can be."""
    if only is not None and isinstance(provider, ReadsByName):
        return provider.read_named(only)
    return provider.read_all()


def with_preconditions(
    provider: Provider, state: DesiredState, observed: Sequence[Observed]
) -> tuple[Observed, ...]:
    """``observed`` with Exchange hybrid writeback's precondition looked up where a plan needs it: a
    managed configuration the desired state gives the writeback job that it does not have yet. One
    directory discover each; none for a provider that cannot make it (the plan then says it was not
    checked). Also where each configuration's declared on-premises attributes are
    (``with_onprem_attributes``), and the deletes held by each configuration the desired state approves
    them for."""
    from reconciler.engine.held import with_held_deletes

    observed = with_onprem_attributes(provider, state, observed)
    # approveDeletes: the plan says how many deletes it releases (the provisioning logs' count).
    approving = {d.name for d in state.configurations if d.approve_deletes is not None}
    observed = with_held_deletes(provider, observed, approving) if approving else tuple(observed)
    if not isinstance(provider, ChecksExchangeSchema):
        return observed
    wanted = {d.name for d in state.configurations if d.settings.exchange_hybrid_writeback}
    out = []
    for o in observed:
        if o.managed and o.name in wanted and o.complete and not o.settings.exchange_hybrid_writeback:
            o = replace(o, exchange_schema=provider.exchange_schema_ready(o.id))
        out.append(o)
    return tuple(out)


def with_onprem_attributes(
    provider: Provider, state: DesiredState, observed: Sequence[Observed]
) -> tuple[Observed, ...]:
    """``observed`` with each managed configuration's declared on-premises attributes looked up: in its
    job schema, or else in a directory discover. Only for configurations that declare some."""
    declared = {d.name: d.onprem_attributes for d in state.configurations if d.onprem_attributes}
    if not declared or not isinstance(provider, ReadsOnPremisesAttributes):
        return tuple(observed)
    return tuple(
        replace(o, onprem_attributes=provider.onprem_attributes_seen(o.id, declared[o.name]))
        if o.managed and o.complete and o.name in declared
        else o
        for o in observed
    )


def read_extensions(provider: Provider, state: DesiredState) -> ExtensionsSeen | None:
    """The tenant's Cloud Sync extensions application, read only when ``state`` uses directory
    extensions (other plans make no more requests than before)."""
    if not isinstance(provider, ReadsExtensions) or not any(
        d.extensions or d.extension_removals or any(o.target.startswith(EXTENSION_REF) for o in d.overrides)
        for d in state.configurations
    ):
        return None
    return provider.read_extensions()


def read_group_sizes(
    provider: Provider,
    state: DesiredState,
    observed: Sequence[Observed],
    only: frozenset[str] | None = None,
) -> GroupSizes | None:
    """The member counts of the cloud groups the plan needs (``core.group_limits.groups_to_count``:
    those of configurations whose selected groups the desired state adds to, and those new attribute
    filters select), each group read once, and the tenant's size when a configuration takes up scoping
    all groups; None when the plan needs none of it or the target cannot count."""
    if not isinstance(provider, CountsGroupMembers) or not any(
        d.settings.direction is Direction.ENTRA_TO_AD for d in state.configurations
    ):
        return None  # no limit to check: spare a no-op plan even the pairing below
    compared = compared_with(state, observed)
    wanted: dict[str, str] = {}
    sized: list[str] = []  # configurations that take up scoping all groups
    filters: dict[str, Filters] = {}
    for d in state.configurations:
        if only is None or d.name in only:
            found = compared.get(d.name)
            if needs_tenant_size(d, found):
                sized.append(d.name)
            if needs_filter_selection(d, found):
                filters[d.name] = d.scope.filters
            for group in groups_to_count(d, found):
                wanted.setdefault(group.casefold(), group)
    if not wanted and not sized and not filters:
        return None
    tenant = provider.tenant_size() if sized else None
    if tenant is not None and tenant_too_large(tenant):
        # Held back for the tenant's size whatever they select: the tenant's groups are not listed.
        filters = {name: f for name, f in filters.items() if name not in sized}
    selections = provider.filter_selections(filters) if filters else {}
    for selection in selections.values():
        # More groups than documented hold the change back uncounted: their members are not read.
        if selection.groups is not None and len(selection.groups) <= MAX_FILTER_GROUPS:
            for group in selection.groups:
                wanted.setdefault(group.casefold(), group)
    sizes = provider.group_sizes(list(wanted.values())) if wanted else GroupSizes()
    return replace(sizes, tenant=tenant, selections=selections)


def to_ad_defaults() -> tuple[Mapping, ...]:
    """The rows of the Entra ID -> AD job's template (the embedded one: no reading of the service
    depends on it, only what a create shows it changes)."""
    from reconciler.graph.reading import template_defaults_for

    return template_defaults_for(Direction.ENTRA_TO_AD)
