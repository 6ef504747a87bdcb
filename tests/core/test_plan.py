"""The planner against literal desired and observed values: every action and every refusal."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.core.digest import fingerprint
from reconciler.core.model import (
    Desired,
    DesiredState,
    Mapping,
    MappingKind,
    MappingOverride,
    Scope,
    ScopeKind,
    Settings,
    effective_mappings,
)
from reconciler.core.observed import JobStatus, Observed
from reconciler.core.plan import Action, PlanOptions
from reconciler.core.planner import compute_plan

DEFAULTS = (
    Mapping("user", "displayName", MappingKind.DIRECT, "displayName"),
    Mapping("user", "ExtensionAttribute3", MappingKind.EXPRESSION, "Trim([extensionAttribute3])"),
)
SETTINGS = Settings(domain="contoso.com", notification_email="ops@contoso.com")
OU = Scope(ScopeKind.ORGANIZATIONAL_UNITS, ("OU=Sales,DC=contoso,DC=com",))


def desired(name: str = "contoso", **kw: object) -> Desired:
    base: dict[str, object] = {"name": name, "settings": SETTINGS, "scope": OU}
    base.update(kw)
    return Desired(**base)  # type: ignore[arg-type]


def observed_for(d: Desired, id: str = "sp-1", **kw: object) -> Observed:
    eff = effective_mappings(DEFAULTS, d.overrides)
    base: dict[str, object] = {
        "id": id,
        "name": d.name,
        "managed": True,
        "settings": d.settings,
        "scope": d.scope,
        "mappings": tuple(eff.values()),
        "deletion_protection": d.deletion_protection,
        "restart_token": d.restart_token,
    }
    base.update(kw)
    return Observed(**base)  # type: ignore[arg-type]


def plan_for(ds: list[Desired], obs: list[Observed], **opts: object):  # type: ignore[no-untyped-def]
    return compute_plan(DesiredState(tuple(ds)), obs, DEFAULTS, PlanOptions(**opts), target="memory:t")  # type: ignore[arg-type]


def actions(plan) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(c.action.value, c.name) for c in plan.changes]


def test_new_configuration_is_created_then_started() -> None:
    over = MappingOverride(
        "user", "department", Mapping("user", "department", MappingKind.DIRECT, "department")
    )
    plan = plan_for([desired(overrides=(over, MappingOverride("user", "ExtensionAttribute3", None)))], [])
    assert actions(plan) == [("create", "contoso"), ("start", "contoso")]
    create = plan.changes[0]
    assert create.spec is not None
    # the spec carries only what the desired state says: the rest of the new schema is the service's
    assert {m.target for m in create.spec.mappings} == {"department"}
    assert create.spec.removals == (("user", "ExtensionAttribute3"),)
    # ... and the review shows settings and the overrides and removals the create makes
    rows = {f.path: (f.before, f.after) for f in create.fields}
    assert rows["settings.domain"] == (None, "contoso.com")
    assert rows["mappings.user.department"] == (None, {"kind": "direct", "value": "department"})
    assert rows["mappings.user.ExtensionAttribute3"][1] is None
    assert "mappings.user.displayName" not in rows
    assert create.reasons == ()


def test_disabled_new_configuration_is_created_but_not_started() -> None:
    plan = plan_for([desired(settings=replace(SETTINGS, enabled=False))], [])
    assert actions(plan) == [("create", "contoso")]


def test_matching_target_gives_no_changes() -> None:
    d = desired()
    plan = plan_for([d], [observed_for(d)])
    assert plan.changes == () and not plan.has_changes
    assert plan.summary()["create"] == 0


def test_settings_change_is_a_field_level_update_without_restart() -> None:
    d = desired()
    o = observed_for(d, settings=replace(SETTINGS, notification_email="old@contoso.com"))
    plan = plan_for([d], [o])
    assert actions(plan) == [("update", "contoso")]
    (row,) = plan.changes[0].fields
    assert (row.path, row.before, row.after) == (
        "settings.notificationEmail",
        "old@contoso.com",
        "ops@contoso.com",
    )
    assert plan.changes[0].write_settings and not plan.changes[0].write_schema


def test_mapping_change_compared_by_key_not_position_and_restarts() -> None:
    over = MappingOverride(
        "user", "department", Mapping("user", "department", MappingKind.DIRECT, "department")
    )
    d = desired(overrides=(over,))
    o = observed_for(desired())  # the target lacks the department mapping
    plan = plan_for([d], [o])
    assert actions(plan) == [("update", "contoso"), ("restart", "contoso")]
    row = plan.changes[0].fields[0]
    assert row.path == "mappings.user.department" and row.before is None
    assert row.after == {"kind": "direct", "value": "department"}
    assert plan.changes[1].reasons == ("attribute mappings changed",)
    assert plan.changes[1].reset_scope == "Full"
    # same mappings in another order: nothing to do
    reordered = replace(observed_for(d), mappings=tuple(reversed(observed_for(d).mappings)))
    assert plan_for([d], [reordered]).changes == ()


def test_removing_a_template_default() -> None:
    d = desired(overrides=(MappingOverride("user", "ExtensionAttribute3", None),))
    plan = plan_for([d], [observed_for(desired())])
    row = plan.changes[0].fields[0]
    assert row.path == "mappings.user.ExtensionAttribute3" and row.after is None


def test_scope_shrink_restarts_and_warns() -> None:
    wide = Scope(ScopeKind.ORGANIZATIONAL_UNITS, ("OU=Sales,DC=contoso,DC=com", "OU=HR,DC=contoso,DC=com"))
    d = desired()
    plan = plan_for([d], [observed_for(d, scope=wide)])
    assert actions(plan) == [("update", "contoso"), ("restart", "contoso")]
    assert "scope changed" in plan.changes[1].reasons[0]
    assert any("scope shrinks" in w and "500" in w for w in plan.warnings)


def test_restart_token_change_restarts() -> None:
    d = desired(restart_token="2")
    plan = plan_for([d], [observed_for(d, restart_token="1")])
    assert actions(plan) == [("update", "contoso"), ("restart", "contoso")]
    assert plan.changes[1].reasons == ("restartToken changed to '2'",)


def test_enable_and_disable() -> None:
    d_on = desired()
    d_off = desired(settings=replace(SETTINGS, enabled=False))
    assert actions(plan_for([d_on], [observed_for(d_off)])) == [("start", "contoso")]
    assert actions(plan_for([d_off], [observed_for(d_on)])) == [("pause", "contoso")]


def test_disabled_configuration_with_scope_change_warns_instead_of_restart() -> None:
    d_off = desired(settings=replace(SETTINGS, enabled=False), scope=Scope.all())
    plan = plan_for([d_off], [observed_for(d_off, scope=OU)])
    assert actions(plan) == [("update", "contoso")]
    assert any("restart not planned" in w for w in plan.warnings)


def test_delete_is_held_without_allow_delete() -> None:
    o = observed_for(desired("old"))
    plan = plan_for([], [o])
    assert plan.changes == ()
    (held,) = plan.held
    assert held.action is Action.DELETE and held.override == "--allow-delete"


def test_delete_with_allow_delete() -> None:
    plan = plan_for([], [observed_for(desired("old"))], allow_delete=True)
    assert actions(plan) == [("delete", "old")]


def test_deletion_protection_recorded_on_target_blocks_delete_even_with_flags() -> None:
    o = observed_for(desired("old"), deletion_protection=True)
    plan = plan_for([], [o], allow_delete=True, allow_mass_delete=True)
    assert plan.changes == ()
    assert "deletion protection" in plan.held[0].reasons[0]


def test_turning_protection_off_is_an_update_first() -> None:
    d = desired(deletion_protection=False)
    plan = plan_for([d], [observed_for(d, deletion_protection=True)])
    assert actions(plan) == [("update", "contoso")]
    assert plan.changes[0].fields[0].path == "deletionProtection"


def test_mass_delete_needs_its_own_flag() -> None:
    obs = [observed_for(desired(n), id=f"sp-{n}") for n in ("a", "b")]
    plan = plan_for([], obs, allow_delete=True)
    assert plan.changes == () and len(plan.held) == 2
    assert all(h.override == "--allow-mass-delete" for h in plan.held)
    plan = plan_for([], obs, allow_delete=True, allow_mass_delete=True)
    assert actions(plan) == [("delete", "a"), ("delete", "b")]


def test_unmanaged_configurations_are_listed_and_never_touched() -> None:
    u = observed_for(desired("x"), id="sp-u", name=None, managed=False)
    plan = plan_for([], [u], allow_delete=True)
    assert plan.changes == () and plan.held == ()
    assert plan.unmanaged == ("contoso.com (sp-u)",)


def test_create_on_a_domain_held_by_an_unmanaged_configuration_is_held() -> None:
    u = observed_for(desired("x"), id="sp-u", name=None, managed=False)
    plan = plan_for([desired()], [u])
    assert plan.changes == ()
    assert "import --adopt" in plan.held[0].reasons[0]


def test_interrupted_create_is_resumed_on_the_same_id() -> None:
    d = desired()
    partial = observed_for(d, complete=False)
    plan = plan_for([d], [partial])
    assert actions(plan) == [("create", "contoso"), ("start", "contoso")]
    assert plan.changes[0].target_id == "sp-1"


def test_quarantine_is_reported() -> None:
    d = desired()
    status = JobStatus(code="Quarantine", quarantine_reason="TooManyDeletes")
    plan = plan_for([d], [observed_for(d, status=status)])
    assert any("quarantine (TooManyDeletes)" in w for w in plan.warnings)
    assert plan.statuses[0][0] == "contoso"


def test_password_hash_mapping_drift_is_repaired() -> None:
    d = desired()
    o = observed_for(d, credential_data_count={"user": 2, "inetOrgPerson": 1})
    plan = plan_for([d], [o])
    assert actions(plan) == [("update", "contoso"), ("restart", "contoso")]
    assert plan.changes[0].write_settings


@pytest.mark.parametrize("only", [frozenset({"a"}), frozenset()])
def test_only_limits_the_plan(only: frozenset[str]) -> None:
    plan = plan_for([desired("a"), desired("b", settings=replace(SETTINGS, domain="b.com"))], [], only=only)
    assert {c.name for c in plan.changes} == set(only)


def test_plan_is_deterministic_and_fingerprints_ignore_status() -> None:
    d = desired()
    o1 = observed_for(d)
    o2 = replace(o1, status=JobStatus(code="Active", last_run_state="Succeeded"))
    p1, p2 = plan_for([d], [o1]), plan_for([d], [o2])
    assert p1.fingerprints == p2.fingerprints
    assert p1.desired_digest == p2.desired_digest


def test_a_restart_owed_by_an_earlier_apply_is_planned() -> None:
    d = desired()
    plan = plan_for([d], [observed_for(d, restart_pending=True)])
    assert actions(plan) == [("restart", "contoso")]
    assert "restart did not happen" in plan.changes[0].reasons[0]
    off = desired(settings=replace(SETTINGS, enabled=False))
    assert plan_for([off], [observed_for(off, restart_pending=True)]).changes == ()


def test_scoping_clauses_the_tool_does_not_manage_are_listed_not_planned() -> None:
    observed = Observed(
        id="sp-1",
        name=None,
        managed=False,
        settings=Settings(domain="mydomain.tld", notification_email="ops@mydomain.tld"),
        scope=Scope.all(),
        mappings=(),
        unmanaged_scoping=('user: department EQUALS "Sales"',),
    )
    plan = compute_plan(DesiredState(), (observed,), ())
    assert plan.changes == ()
    assert plan.unmanaged_scoping == ('mydomain.tld (sp-1): user: department EQUALS "Sales"',)
    # A configuration without such clauses keeps the fingerprint it always had.
    plain = replace(observed, unmanaged_scoping=())
    assert fingerprint(plain) != fingerprint(observed)
