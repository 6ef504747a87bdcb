"""The planner with the add-on jobs of an AD -> Entra ID configuration and with Entra ID -> AD
configurations: what it plans, what it holds back, and that plan files carry the new fields."""

from __future__ import annotations

from dataclasses import replace

from reconciler.core.model import Desired, DesiredState, Direction, FilterClause, Scope, ScopeKind, Settings
from reconciler.core.observed import Observed
from reconciler.core.plan import Action, PlanOptions
from reconciler.core.planner import compute_plan
from reconciler.core.serialize import from_document, to_document

SETTINGS = Settings(domain="contoso.com", notification_email="ops@contoso.com")
TO_AD = replace(SETTINGS, direction=Direction.ENTRA_TO_AD, password_hash_sync=False)
G1 = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"


def observed(name: str, settings: Settings, id: str = "sp-1") -> Observed:
    return Observed(id=id, name=name, managed=True, settings=settings, scope=Scope.all(), mappings=())


def plan(ds: list[Desired], obs: list[Observed]):  # type: ignore[no-untyped-def]
    return compute_plan(DesiredState(tuple(ds)), obs, (), PlanOptions(), target="memory:t")


def test_turning_add_on_jobs_on_is_a_settings_update_without_restart() -> None:
    want = replace(SETTINGS, exchange_hybrid_writeback=True, device_sync=True)
    have = replace(observed("contoso", SETTINGS), exchange_schema=True)
    p = plan([Desired("contoso", want)], [have])
    assert [c.action for c in p.changes] == [Action.UPDATE] and p.held == () and p.warnings == ()
    (update,) = p.changes
    assert update.write_settings and not update.write_schema
    assert {f.path: (f.before, f.after) for f in update.fields} == {
        "settings.deviceSync": (None, True),
        "settings.exchangeHybridWriteback": (None, True),
    }
    # The main job's objects are not re-evaluated for an add-on job.
    assert not [c for c in p.changes if c.action is Action.RESTART]


def test_add_on_jobs_as_the_target_has_them_is_no_change() -> None:
    want = replace(SETTINGS, exchange_hybrid_writeback=True)
    assert plan([Desired("contoso", want)], [observed("contoso", want)]).changes == ()


def test_entra_to_ad_configuration_is_created_and_started() -> None:
    scope = Scope(ScopeKind.SELECTED_GROUPS, (G1,))
    p = plan([Desired("groups", TO_AD, scope=scope)], [])
    assert p.held == ()
    assert [(c.action, c.name) for c in p.changes] == [(Action.CREATE, "groups"), (Action.START, "groups")]
    fields = {f.path: f.after for f in p.changes[0].fields}
    assert fields["settings.direction"] == "entraToAd"
    assert fields["scope"] == {"kind": "selectedGroups", "entries": [G1]}


def test_a_change_of_selected_groups_is_an_update_and_a_restart() -> None:
    g2 = "7e3d0f52-8b4c-4a9f-87d2-1fa0b9c8d7e6"
    have = replace(observed("groups", TO_AD), scope=Scope(ScopeKind.SELECTED_GROUPS, (G1,)))
    want = Desired("groups", TO_AD, scope=Scope(ScopeKind.SELECTED_GROUPS, (g2,)))
    p = plan([want], [have])
    assert [c.action for c in p.changes] == [Action.UPDATE, Action.RESTART]
    update, restart = p.changes
    assert update.write_schema and not update.write_settings
    assert restart.reasons == ("scope changed (the service picks up a new scope only on restart)",)
    # Groups leaving the scope are deleted in AD: said so in the reader's terms.
    assert any("deleted in AD" in w for w in p.warnings)


def test_both_directions_of_one_domain_are_two_configurations() -> None:
    # An unmanaged configuration of the other direction is no clash; one of the same direction is.
    portal = replace(observed("x", SETTINGS), name=None, managed=False)
    p = plan([Desired("groups", TO_AD)], [portal])
    assert [c.action for c in p.changes] == [Action.CREATE, Action.START] and p.held == ()
    portal_to_ad = replace(portal, settings=TO_AD)
    (held,) = plan([Desired("groups", TO_AD)], [portal_to_ad]).held
    assert held.action is Action.CREATE and "import --adopt" in held.reasons[0]


def test_direction_of_a_managed_configuration_never_changes_in_place() -> None:
    p = plan([Desired("contoso", TO_AD)], [observed("contoso", SETTINGS)])
    assert p.changes == ()
    (held,) = p.held
    assert held.action is Action.UPDATE and "direction cannot change" in held.reasons[0]


def test_entra_to_ad_for_a_domain_is_not_a_rename_of_its_ad_to_entra_configuration() -> None:
    # The AD -> Entra ID configuration of the same domain leaves the desired state: that is a delete to
    # hold (no --allow-delete), never the new direction taking it over under another name.
    p = plan([Desired("groups", TO_AD)], [observed("contoso", SETTINGS)])
    assert [(c.action, c.name) for c in p.changes] == [(Action.CREATE, "groups"), (Action.START, "groups")]
    assert [(h.action, h.name) for h in p.held] == [(Action.DELETE, "contoso")]


def test_plan_files_carry_direction_filters_and_add_on_jobs() -> None:
    filters = ((FilterClause("department", "EQUALS", "Finance"), FilterClause("x", "IS_TRUE")),)
    want = replace(SETTINGS, exchange_hybrid_writeback=True, device_sync=True)
    have = replace(want, notification_email="old@contoso.com")
    p = plan([Desired("contoso", want, scope=Scope(ScopeKind.ALL, (), filters))], [observed("contoso", have)])
    again = from_document(to_document(p))
    assert again == p
    spec = again.changes[0].spec
    assert spec is not None and spec.scope.filters == filters and spec.settings.device_sync


def test_exchange_writeback_is_held_when_discover_found_no_exchange_schema() -> None:
    # The add-on jobs are written (the hold for unwritten add-ons aside) only where the schema allows.
    want = replace(SETTINGS, exchange_hybrid_writeback=True)
    have = replace(observed("contoso", SETTINGS), exchange_schema=False)
    p = plan([Desired("contoso", want)], [have])
    assert p.changes == ()
    (held,) = p.held
    assert held.action is Action.UPDATE
    assert held.reasons[0].startswith("exchangeHybridWriteback: the AD schema of contoso.com has no Exchange")
    # Turning device sync on beside it is held with it: the configuration's update is one change.
    both = replace(want, device_sync=True)
    assert [h.name for h in plan([Desired("contoso", both)], [have]).held] == ["contoso"]


def test_exchange_writeback_on_a_new_configuration_warns_that_it_was_not_checked() -> None:
    from reconciler.core.holds import exchange_precondition

    warnings: list[str] = []
    want = Desired("contoso", replace(SETTINGS, exchange_hybrid_writeback=True))
    assert exchange_precondition(want, None, warnings) is None
    assert warnings == [
        "contoso: exchangeHybridWriteback needs the Exchange schema in AD; it could not be checked "
        "before the configuration exists"
    ]
    have = replace(observed("contoso", SETTINGS), exchange_schema=True)
    warnings.clear()
    assert exchange_precondition(want, have, warnings) is None and warnings == []


def test_the_meaning_of_a_change_to_an_entra_to_ad_configuration_is_shown_entry_by_entry() -> None:
    # `reconciler diff` says what changed, as the plan does.
    from reconciler.core.semantic_diff import DiffKind, semantic_diff

    g2 = "7e3d0f52-8b4c-4a9f-87d2-1fa0b9c8d7e6"
    before = Desired("groups", TO_AD, scope=Scope(ScopeKind.SELECTED_GROUPS, (G1,)))
    after = replace(
        before,
        settings=replace(TO_AD, accidental_deletes_threshold=100),
        scope=Scope(ScopeKind.SELECTED_GROUPS, (g2,)),
    )
    (diff,) = semantic_diff(DesiredState((before,)), DesiredState((after,)), ()).configurations
    assert diff.kind is DiffKind.CHANGED
    rows = {f.path: (f.before, f.after) for f in diff.fields}
    assert rows["scope"] == (
        {"kind": "selectedGroups", "entries": [G1]},
        {"kind": "selectedGroups", "entries": [g2]},
    )
    assert rows["settings.accidentalDeletes.threshold"] == (500, 100)
    (new,) = semantic_diff(DesiredState(()), DesiredState((after,)), ()).configurations
    assert new.kind is DiffKind.ADDED and any(f.path == "settings.direction" for f in new.fields)
    assert semantic_diff(DesiredState((after,)), DesiredState((after,)), ()).configurations == ()
