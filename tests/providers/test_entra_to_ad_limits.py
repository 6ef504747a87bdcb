"""The member limits of Entra ID -> AD group provisioning, on the local tenant and over real HTTP to the
emulator: a selected group of more than 50,000 members, or more than 250,000 links together, holds the
change back and nothing is written; groups the directory does not hold are a warning; a plan that
adds no group reads no count; scoping all groups in a tenant larger than documented for it is held."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config import entra_to_ad
from support.providers import Harness, add_cloud_groups

from reconciler.config.load import load_paths
from reconciler.core import group_limits
from reconciler.core.model import DesiredState
from reconciler.core.plan import Action, Plan, PlanOptions, Provenance
from reconciler.engine.operations import make_plan, plan_and_apply
from reconciler.providers.local import LocalProvider

SMALL = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"
LARGE = "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d"
OTHER = "9f8e7d6c-5b4a-4392-8171-605f4e3d2c1b"


def write(folder: Path, *groups: str) -> DesiredState:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "groups.yaml").write_text(entra_to_ad(*groups))
    return load_paths([str(folder)]).state


def plan(h: Harness, state: DesiredState) -> Plan:
    return make_plan(state, h.provider, PlanOptions(), Provenance())


def assigned(h: Harness) -> set[str]:
    assert h.store is not None
    return {
        a["principalId"]
        for sp in h.store.list_service_principals()
        for a in h.store.list_app_role_assignments(sp["id"])
    }


def test_a_group_over_50000_members_holds_back_create_and_update(tenant: Harness, tmp_path: Path) -> None:
    assert tenant.store is not None
    add_cloud_groups(tenant.store, {SMALL: 3, LARGE: 50_001, OTHER: 2})
    folder = tmp_path / "configs"

    state = write(folder, SMALL, LARGE)
    first = plan(tenant, state)
    (held,) = first.held
    assert (held.action, held.target_id) == (Action.CREATE, None)
    assert held.reasons == (
        f"selected group {LARGE} has 50,001 direct members; Entra ID -> AD provisioning does not support "
        "groups of more than 50,000 members: remove it from spec.scope.selectedGroups",
    )
    assert first.changes == () and first.warnings == ()
    run = plan_and_apply(state, tenant.provider, PlanOptions(), Provenance())
    assert run.result.ok and tenant.store.list_service_principals() == []  # nothing was made

    state = write(folder, SMALL)
    assert plan_and_apply(state, tenant.provider, PlanOptions(), Provenance()).result.ok
    assert assigned(tenant) == {SMALL}

    # Adding the large group later: the update is held back and the assignments stay as they are.
    state = write(folder, SMALL, LARGE, OTHER)
    (held,) = plan(tenant, state).held
    assert held.action is Action.UPDATE and LARGE in held.reasons[0]
    plan_and_apply(state, tenant.provider, PlanOptions(), Provenance())
    assert assigned(tenant) == {SMALL}

    # A group of the right size is added; removing one reads no count at all.
    state = write(folder, SMALL, OTHER)
    second = plan(tenant, state)
    assert second.held == () and [c.action for c in second.changes] == [Action.UPDATE, Action.RESTART]
    plan_and_apply(state, tenant.provider, PlanOptions(), Provenance())
    assert assigned(tenant) == {SMALL, OTHER}
    tenant.store.delete_cloud_object(SMALL)  # a count now would find it missing
    third = plan(tenant, write(folder, OTHER))
    assert third.held == () and [w.split(";")[0] for w in third.warnings] == [
        "contoso-groups: the scope shrinks"
    ]


def test_more_than_250000_links_together_hold_the_change_back(tenant: Harness, tmp_path: Path) -> None:
    assert tenant.store is not None
    groups = [f"{i:08x}-5555-4000-8000-000000000000" for i in range(6)]
    add_cloud_groups(tenant.store, dict.fromkeys(groups, 41_700))
    (held,) = plan(tenant, write(tmp_path / "configs", *groups)).held
    assert held.reasons == (
        "the 6 selected groups have 250,200 direct members together; selected-group scoping is documented "
        "up to 250,000 membership links: select fewer or smaller groups",
    )


def test_a_group_the_directory_does_not_hold_is_a_warning(tenant: Harness, tmp_path: Path) -> None:
    assert tenant.store is not None
    add_cloud_groups(tenant.store, {SMALL: 1})
    result = plan(tenant, write(tmp_path / "configs", SMALL, OTHER))
    assert result.held == () and [c.action for c in result.changes] == [Action.CREATE, Action.START]
    assert result.warnings == (
        f"contoso-groups: selected group {OTHER} is not in the tenant's directory; the service does not "
        "assign a group that does not exist (a group made moments ago may not be listed yet: counts are "
        "read eventually consistent)",
    )


def test_a_local_tenant_without_cloud_groups_checks_nothing(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path / "tenant.db")
    try:
        state = write(tmp_path / "configs", SMALL, OTHER)
        result = make_plan(state, provider, PlanOptions(), Provenance())
        assert result.held == () and result.warnings == ()
    finally:
        provider.close()


FILTERS = """\
    filters:
      - [{attribute: displayName, operator: REGEX_MATCH, value: "^sec-"}]
"""


def filtered(folder: Path, pattern: str = "^sec-") -> DesiredState:
    """The configuration scoping all groups whose displayName matches ``pattern``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = entra_to_ad(SMALL).replace(f"    selectedGroups: [{SMALL}]\n", FILTERS.replace("^sec-", pattern))
    (folder / "groups.yaml").write_text(text)
    return load_paths([str(folder)]).state


def test_scoping_all_groups_in_a_tenant_too_large_for_it_is_held_back(
    tenant: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tenant.store is not None
    # The documented 40,000 groups, scaled down: the exact figures are tested in tests/core.
    monkeypatch.setattr(group_limits, "MAX_TENANT_GROUPS", 3)
    add_cloud_groups(tenant.store, {SMALL: 1, LARGE: 1, OTHER: 1})
    folder = tmp_path / "configs"
    (held,) = plan(tenant, filtered(folder)).held
    assert held.action is Action.CREATE
    assert held.reasons[0].endswith(
        "and this tenant has 3 groups: select the groups instead (spec.scope.selectedGroups)"
    )
    # Selected groups in the same tenant are fine; taking up filters later is held back too.
    state = write(folder, SMALL)
    assert plan_and_apply(state, tenant.provider, PlanOptions(), Provenance()).result.ok
    (held,) = plan(tenant, filtered(folder)).held
    assert held.action is Action.UPDATE and "this tenant has 3 groups" in held.reasons[0]
    assert assigned(tenant) == {SMALL}


def test_filters_that_select_too_many_links_are_held_back(
    tenant: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The documented 500,000 links, scaled down: the exact figures are tested in tests/core.
    monkeypatch.setattr(group_limits, "MAX_FILTER_LINKS", 10)
    assert tenant.store is not None
    names = {SMALL: "sec-Finance", LARGE: "sec-Research", OTHER: "Marketing"}
    add_cloud_groups(tenant.store, {SMALL: 4, LARGE: 8, OTHER: 30}, names)
    folder = tmp_path / "configs"
    result = plan(tenant, filtered(folder))
    assert result.warnings == ()
    (held,) = result.held
    assert held.reasons == (
        "the 2 groups the filters select have 12 direct members together; scoping by attribute filters is "
        "documented up to 10 membership links: narrow the filters",
    )
    # Narrower filters pass; Marketing's 30 members are not theirs.
    narrow = plan(tenant, filtered(folder, "^sec-F"))
    assert narrow.held == () and narrow.warnings == ()


def test_filters_on_a_directory_extension_are_evaluated(
    tenant: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Microsoft's tutorial: provision the groups whose WritebackEnabled extension is true.
    monkeypatch.setattr(group_limits, "MAX_FILTER_LINKS", 10)
    store = tenant.store
    assert store is not None
    app = store.create_application("CloudSyncCustomExtensionsApp", [])
    definition = {"name": "WritebackEnabled", "dataType": "Boolean", "targetObjects": ["Group"]}
    writeback = str(store.create_extension_property(app["id"], definition)["name"])
    add_cloud_groups(store, {SMALL: 6, LARGE: 6, OTHER: 50})
    for id in (SMALL, LARGE):
        held = store.get_cloud_object(id)
        assert held is not None
        store.put_cloud_object(id, "Group", {**held["attributes"], writeback: True}, from_directory=True)
    folder = tmp_path / "configs"
    folder.mkdir()
    clause = f"      - [{{attribute: {writeback}, operator: IS_TRUE}}]\n"
    text = entra_to_ad(SMALL).replace(f"    selectedGroups: [{SMALL}]\n", "    filters:\n" + clause)
    (folder / "groups.yaml").write_text(text)
    result = plan(tenant, load_paths([str(folder)]).state)
    assert result.warnings == ()
    (held,) = result.held
    assert held.reasons[0].startswith("the 2 groups the filters select have 12 direct members together;")
