"""The documented member limits of Entra ID -> AD group provisioning, as the planner applies them: which
groups a plan needs counted, when a change is held back, and what is only a warning."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.group_limits import (
    MAX_FILTER_GROUPS,
    MAX_GROUP_MEMBERS,
    MAX_SELECTED_LINKS,
    MAX_TENANT_GROUPS,
    MAX_TENANT_USERS,
    FilterSelection,
    GroupSize,
    GroupSizes,
    TenantSize,
    groups_to_count,
    member_limit_problems,
    needs_filter_selection,
    needs_tenant_size,
)
from reconciler.core.model import Desired, DesiredState, Direction, FilterClause, Scope, ScopeKind, Settings
from reconciler.core.observed import Observed
from reconciler.core.plan import Action, PlanOptions
from reconciler.core.planner import compared_with, compute_plan

G1, G2, G3 = (
    "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b",
    "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d",
    "9f8e7d6c-5b4a-4392-8171-605f4e3d2c1b",
)
TO_AD = Settings("contoso.com", "ops@contoso.com", direction=Direction.ENTRA_TO_AD)


def want(*groups: str) -> Desired:
    return Desired("groups", TO_AD, scope=Scope(ScopeKind.SELECTED_GROUPS, groups))


def have(*groups: str) -> Observed:
    return Observed(
        id="sp-1",
        name="groups",
        managed=True,
        settings=TO_AD,
        scope=Scope(ScopeKind.SELECTED_GROUPS, groups),
        mappings=(),
    )


def sizes(**members: int | None) -> GroupSizes:
    ids = {"g1": G1, "g2": G2, "g3": G3}
    return GroupSizes.of(
        (ids[k], GroupSize(missing=True) if v is None else GroupSize(members=v)) for k, v in members.items()
    )


def test_a_plan_counts_every_selected_group_when_it_adds_one_and_none_otherwise() -> None:
    assert groups_to_count(want(G1, G2), None) == (G1, G2)
    assert groups_to_count(want(G1, G2), have(G1)) == (G1, G2)
    # Removing a group, or changing nothing, reads nothing more; ids compare without case.
    assert groups_to_count(want(G1), have(G1, G2)) == ()
    assert groups_to_count(want(G1.upper()), have(G1)) == ()


def test_other_scopes_and_the_other_direction_count_nothing() -> None:
    filters = Scope(ScopeKind.ALL, filters=((FilterClause("displayName", "REGEX_MATCH", "^sec-"),),))
    assert groups_to_count(replace(want(), scope=filters), None) == ()
    to_entra = Desired("users", Settings("contoso.com", "ops@contoso.com"), scope=Scope(ScopeKind.ALL))
    assert groups_to_count(to_entra, None) == ()


def test_an_added_group_over_50000_members_holds_the_change_back() -> None:
    held, warnings = member_limit_problems(want(G1, G2), have(G1), sizes(g1=10, g2=MAX_GROUP_MEMBERS + 1))
    assert held == (
        f"selected group {G2} has 50,001 direct members; Entra ID -> AD provisioning does not support groups "
        "of more than 50,000 members: remove it from spec.scope.selectedGroups",
    )
    assert warnings == ()
    # Exactly at the limit is allowed.
    assert member_limit_problems(want(G1, G2), have(G1), sizes(g1=10, g2=MAX_GROUP_MEMBERS)) == ((), ())


def test_a_group_selected_before_that_grew_too_large_is_a_warning_not_a_hold() -> None:
    held, warnings = member_limit_problems(want(G1, G2), have(G1), sizes(g1=60_000, g2=5))
    assert held == ()
    assert warnings == (
        f"groups: selected group {G1} has 60,000 direct members; Entra ID -> AD provisioning does not "
        "support groups of more than 50,000 members (it was selected before this change)",
    )


def test_more_than_250000_links_together_hold_the_change_back() -> None:
    held, _ = member_limit_problems(want(G1, G2, G3), None, sizes(g1=50_000, g2=50_000, g3=50_000))
    assert held == ()
    many = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(6)]
    counted = GroupSizes.of((g, GroupSize(members=45_000)) for g in many)
    held, _ = member_limit_problems(want(*many), None, counted)
    assert held == (
        "the 6 selected groups have 270,000 direct members together; selected-group scoping is documented "
        "up to 250,000 membership links: select fewer or smaller groups",
    )


def test_groups_not_in_the_directory_and_unknown_counts_are_warnings() -> None:
    read = GroupSizes.of(
        [
            (G1, GroupSize(missing=True)),
            (
                G2,
                GroupSize(unknown="the identity lacks GroupMember.Read.All to read group members (HTTP 403)"),
            ),
            (G3, GroupSize(members=3)),
        ]
    )
    held, warnings = member_limit_problems(want(G1, G2, G3), None, read)
    assert held == ()
    assert warnings == (
        f"groups: selected group {G1} is not in the tenant's directory; the service does not assign a group "
        "that does not exist (a group made moments ago may not be listed yet: counts are read eventually "
        "consistent)",
        f"groups: the member limits of selected group {G2} were not checked: the identity lacks "
        "GroupMember.Read.All to read group members (HTTP 403)",
    )


def test_nothing_is_said_when_the_target_could_not_count() -> None:
    assert member_limit_problems(want(G1), None, None) == ((), ())
    assert member_limit_problems(want(G1), None, GroupSizes()) == ((), ())


@given(st.lists(st.integers(min_value=0, max_value=80_000), min_size=1, max_size=12))
def test_a_hold_is_exactly_a_broken_limit(counts: list[int]) -> None:
    ids = [f"{i:08x}-1111-4000-8000-000000000000" for i in range(len(counts))]
    read = GroupSizes.of((g, GroupSize(members=n)) for g, n in zip(ids, counts, strict=True))
    held, warnings = member_limit_problems(want(*ids), None, read)
    broken = any(n > MAX_GROUP_MEMBERS for n in counts) or sum(counts) > MAX_SELECTED_LINKS
    assert bool(held) is broken
    assert warnings == ()  # on a create every group is one the change adds


def test_the_planner_holds_a_create_and_an_update_back_and_plans_the_rest() -> None:
    too_large = sizes(g1=5, g2=MAX_GROUP_MEMBERS + 1)
    other = Desired("users", Settings("fabrikam.com", "ops@fabrikam.com"), scope=Scope(ScopeKind.ALL))
    plan = compute_plan(DesiredState((want(G1, G2), other)), (), (), group_sizes=too_large)
    (held,) = plan.held
    assert (held.name, held.action, held.target_id) == ("groups", Action.CREATE, None)
    assert "50,001 direct members" in held.reasons[0]
    assert {c.name for c in plan.changes} == {"users"}

    plan = compute_plan(DesiredState((want(G1, G2),)), (have(G1),), (), group_sizes=too_large)
    (held,) = plan.held
    assert (held.action, held.target_id) == (Action.UPDATE, "sp-1")
    assert plan.changes == ()

    fine = sizes(g1=5, g2=7)
    plan = compute_plan(DesiredState((want(G1, G2),)), (have(G1),), (), group_sizes=fine)
    assert plan.held == () and [c.action for c in plan.changes] == [Action.UPDATE, Action.RESTART]


FILTERS = Scope(ScopeKind.ALL, filters=((FilterClause("displayName", "REGEX_MATCH", "^sec-"),),))


def test_the_tenant_size_is_needed_when_a_configuration_takes_up_scoping_all_groups() -> None:
    every = replace(want(), scope=FILTERS)
    assert needs_tenant_size(every, None)
    assert needs_tenant_size(every, have(G1))  # from selected groups to filters
    assert not needs_tenant_size(every, replace(have(), scope=Scope(ScopeKind.ALL)))  # already all groups
    assert not needs_tenant_size(want(G1), None)


def test_a_tenant_too_large_for_scoping_all_groups_holds_it_back() -> None:
    every = replace(want(), scope=FILTERS)
    large = GroupSizes(tenant=TenantSize(users=MAX_TENANT_USERS, groups=12))
    held, warnings = member_limit_problems(every, None, large)
    assert held == (
        "scoping all groups (attribute filters) is documented only for tenants of fewer than 200,000 users "
        "and 40,000 groups, and this tenant has 200,000 users: select the groups instead "
        "(spec.scope.selectedGroups)",
    )
    assert warnings == ()
    both = GroupSizes(tenant=TenantSize(users=250_000, groups=MAX_TENANT_GROUPS + 5))
    assert "has 250,000 users and 40,005 groups:" in member_limit_problems(every, have(G1), both)[0][0]
    small = GroupSizes(tenant=TenantSize(users=MAX_TENANT_USERS - 1, groups=MAX_TENANT_GROUPS - 1))
    assert member_limit_problems(every, None, small) == ((), ())


def test_a_tenant_size_not_read_is_a_warning() -> None:
    every = replace(want(), scope=FILTERS)
    partly = GroupSizes(tenant=TenantSize(users=None, groups=7, unknown="the identity lacks User.Read.All"))
    assert member_limit_problems(every, None, partly) == (
        (),
        (
            "groups: the tenant size that scoping all groups is documented for was not checked: the "
            "identity lacks User.Read.All",
        ),
    )


def test_new_filters_are_counted_and_unchanged_ones_are_not() -> None:
    every = replace(want(), scope=FILTERS)
    assert needs_filter_selection(every, None)
    assert needs_filter_selection(every, have(G1))
    assert needs_filter_selection(every, replace(have(), scope=Scope(ScopeKind.ALL)))  # filters added
    assert not needs_filter_selection(every, replace(have(), scope=FILTERS))
    assert not needs_filter_selection(want(G1), None)


def selected_by_filters(groups: dict[str, int], picked: tuple[str, ...] | None = None) -> GroupSizes:
    chosen = tuple(groups) if picked is None else picked
    counts = GroupSizes.of((g, GroupSize(members=n)) for g, n in groups.items())
    return replace(counts, selections={"groups": FilterSelection(chosen)})


def test_filters_that_select_too_much_hold_the_change_back() -> None:
    every = replace(want(), scope=FILTERS)
    fine = selected_by_filters({G1: 10, G2: 20})
    assert member_limit_problems(every, None, fine) == ((), ())

    big = selected_by_filters({G1: 10, G2: MAX_GROUP_MEMBERS + 1})
    assert member_limit_problems(every, None, big)[0] == (
        f"group {G2}, which the filters select, has 50,001 direct members; Entra ID -> AD provisioning does "
        "not support groups of more than 50,000 members: narrow the filters so that they leave it out",
    )
    many = [f"{i:08x}-9999-4000-8000-000000000000" for i in range(11)]
    links = selected_by_filters(dict.fromkeys(many, 46_000))
    assert member_limit_problems(every, None, links)[0] == (
        "the 11 groups the filters select have 506,000 direct members together; scoping by attribute "
        "filters is documented up to 500,000 membership links: narrow the filters",
    )
    ids = tuple(f"{i:08x}-aaaa-4000-8000-000000000000" for i in range(MAX_FILTER_GROUPS + 1))
    too_many = replace(GroupSizes(), selections={"groups": FilterSelection(ids)})
    assert member_limit_problems(every, None, too_many)[0] == (
        "the filters select 20,001 groups; scoping by attribute filters is documented up to 20,000 groups: "
        "narrow the filters, or select the groups",
    )


def test_a_selection_that_could_not_be_told_is_a_warning() -> None:
    every = replace(want(), scope=FILTERS)
    unknown = replace(
        GroupSizes(), selections={"groups": FilterSelection(None, "the filters test extensionAttribute1")}
    )
    assert member_limit_problems(every, None, unknown) == (
        (),
        ("groups: the groups its filters select were not counted: the filters test extensionAttribute1",),
    )
    # Unchanged filters are not checked again, whatever was read.
    assert member_limit_problems(every, replace(have(), scope=FILTERS), unknown) == ((), ())


def test_a_renamed_configuration_is_compared_with_the_one_it_renames() -> None:
    old = replace(have(G1), name="groups-old")
    grown = sizes(g1=60_000, g2=5)
    # The group that grew was selected under the old name: a warning, and the rename goes ahead.
    plan = compute_plan(DesiredState((want(G1),)), (old,), (), group_sizes=grown)
    assert plan.held == () and [c.action for c in plan.changes] == [Action.UPDATE]
    assert compared_with(DesiredState((want(G1),)), (old,)) == {"groups": old}
    # Held back while renamed: the old configuration is left as it is, not deleted.
    plan = compute_plan(
        DesiredState((want(G1, G2),)),
        (old,),
        (),
        PlanOptions(allow_delete=True),
        group_sizes=sizes(g1=1, g2=60_000),
    )
    (held,) = plan.held
    assert (held.action, held.target_id) == (Action.UPDATE, "sp-1")
    assert plan.changes == ()


def test_a_filter_selected_group_is_named_when_the_listing_named_it() -> None:
    every = replace(want(), scope=FILTERS)
    counts = GroupSizes.of([(G1, GroupSize(members=1)), (G2, GroupSize(members=MAX_GROUP_MEMBERS + 1))])
    named = replace(counts, selections={"groups": FilterSelection((G1, G2), names={G2: "sec-Everyone"})})
    (reason,) = member_limit_problems(every, None, named)[0]
    assert reason.startswith(
        f"group {G2} (sec-Everyone), which the filters select, has 50,001 direct members"
    )
