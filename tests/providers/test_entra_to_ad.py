"""Entra ID -> AD group provisioning on every provider backed by a tenant: the local tenant, and Graph
over real HTTP to the emulator. The write steps are the one algorithm of ``graph.writes``.

What is checked is what the service holds afterwards: the principal and the template it was made from,
its one job, its secrets, the group assignments ("selected groups") and the job schema, and the
configuration read back as a plan would read it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from support.providers import Harness

from reconciler.core.model import (
    TARGET_CONTAINER,
    Direction,
    FilterClause,
    Mapping,
    MappingKind,
    Scope,
    ScopeKind,
    Settings,
)
from reconciler.errors import ConflictError, NotFoundError, ProviderError
from reconciler.graph import template as tenant_template
from reconciler.graph.identity import (
    GROUP_PROVISIONING_TEMPLATE,
    GROUP_TEMPLATE_APP_ID,
    PROVISIONING_TEMPLATE,
    SELECTED_GROUP_APP_ROLES,
)
from reconciler.graph.provider import GraphProvider
from reconciler.graph.reading import find_provisioning_rule
from reconciler.providers.local import LocalProvider

SETTINGS = Settings(
    domain="contoso.com",
    notification_email="ops@contoso.com",
    password_hash_sync=False,
    accidental_deletes_threshold=100,
    direction=Direction.ENTRA_TO_AD,
)
A, B, C = (
    "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b",
    "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d",
    "9f8e7d6c-5b4a-4392-8171-605f4e3d2c1b",
)
CONTAINER = Mapping("group", TARGET_CONTAINER, MappingKind.CONSTANT, "OU=Cloud Groups,DC=contoso,DC=com")
SAM = Mapping("group", "sAMAccountName", MappingKind.EXPRESSION, 'Join("_", [displayName], "Cloud")')
FILTERS = (
    (FilterClause("department", "EQUALS", "Finance"),),
    (
        FilterClause("extension_1_WritebackEnabled", "IS_TRUE"),
        FilterClause("displayName", "REGEX_MATCH", "^FIN-"),
    ),
)


def selected(h: Harness, id: str) -> dict[str, str]:
    """The groups assigned to principal ``id``: group id -> assignment id."""
    assert h.store is not None
    return {a["principalId"]: a["id"] for a in h.store.list_app_role_assignments(id)}


def schema_of(h: Harness, id: str) -> dict[str, object]:
    assert h.store is not None
    (job,) = h.store.list_jobs(id)
    return h.store.get_schema(id, job["id"])


def test_a_configuration_is_made_from_its_own_template_with_its_groups_assigned(tenant: Harness) -> None:
    p, store = tenant.provider, tenant.store
    assert store is not None
    id = p.create("contoso-groups", SETTINGS, Scope(ScopeKind.SELECTED_GROUPS, (A, B)), [CONTAINER, SAM])
    sp = store.get_service_principal(id)
    assert sp["applicationTemplateId"] == GROUP_TEMPLATE_APP_ID
    assert [j["templateId"] for j in store.list_jobs(id)] == [GROUP_PROVISIONING_TEMPLATE]
    # Every group with the role the principal lists (one of the documented per-cloud roles).
    assignments = store.list_app_role_assignments(id)
    assert {a["principalId"] for a in assignments} == {A, B}
    assert {a["appRoleId"] for a in assignments} <= SELECTED_GROUP_APP_ROLES
    assert {a["appRoleId"] for a in assignments} == {r["id"] for r in sp["appRoles"]}
    # Domain and notification settings; no AppKey (its flags are about AD -> Entra ID sync).
    assert [s["key"] for s in store.get_secrets(id)] == ["Domain", "SyncNotificationSettings"]

    (o,) = p.read_all()
    assert o.managed and o.name == "contoso-groups" and o.complete
    assert o.settings == replace(SETTINGS, enabled=False)
    assert o.scope.normalized() == Scope(ScopeKind.SELECTED_GROUPS, (A, B)).normalized()
    rows = {m.target: m for m in o.mappings if m.object == "group"}
    assert rows[TARGET_CONTAINER] == CONTAINER and rows["sAMAccountName"] == SAM
    # Rows the desired state does not name are the service's, as the template made them.
    assert rows["member"].value == "members"
    # Users (preview) not asked for: the user object mapping is switched off and not read.
    assert not any(m.object == "user" for m in o.mappings)

    p.start(id)
    (o,) = p.read_all()
    assert o.settings.enabled and o.status.code != "NotConfigured"


def test_a_scope_change_adds_and_removes_only_the_groups_that_change(tenant: Harness) -> None:
    p = tenant.provider
    id = p.create("contoso-groups", SETTINGS, Scope(ScopeKind.SELECTED_GROUPS, (A, B)), [])
    before = selected(tenant, id)
    p.edit_schema(id, Scope(ScopeKind.SELECTED_GROUPS, (B.upper(), C)), [])
    after = selected(tenant, id)
    assert set(after) == {B, C}
    assert after[B] == before[B]  # kept as it was: the same assignment, not made again
    (o,) = p.read_all()
    assert o.scope.normalized() == Scope(ScopeKind.SELECTED_GROUPS, (B, C)).normalized()

    # All groups that pass the filters: no assignment left, the filters in the group object mapping.
    p.edit_schema(id, Scope(ScopeKind.ALL, (), FILTERS), [])
    assert selected(tenant, id) == {}
    (o,) = p.read_all()
    assert o.scope == Scope(ScopeKind.ALL, (), FILTERS)
    rule = find_provisioning_rule(schema_of(tenant, id))
    assert rule is not None
    (group,) = [om for om in rule["objectMappings"] if om["sourceObjectName"] == "Group"]
    assert [len(g["clauses"]) for g in group["scope"]["inputFilterGroups"]] == [1, 2]
    # Written again unchanged: the schema is not written (nothing differs).
    version = schema_of(tenant, id).get("version")
    p.edit_schema(id, Scope(ScopeKind.ALL, (), FILTERS), [])
    assert schema_of(tenant, id).get("version") == version


def test_users_in_preview_switch_the_user_object_mapping(tenant: Harness) -> None:
    p = tenant.provider
    id = p.create("contoso-groups", SETTINGS, Scope(ScopeKind.SELECTED_GROUPS, (A,)), [])
    users = replace(SETTINGS, preview_users=True)
    p.update_settings(id, users, deletion_protection=False, restart_token=None)
    (o,) = p.read_all()
    assert o.settings.preview_users and any(m.object == "user" for m in o.mappings)
    p.update_settings(id, SETTINGS, deletion_protection=False, restart_token=None)
    (o,) = p.read_all()
    assert not o.settings.preview_users
    assert selected(tenant, id) == {A: selected(tenant, id)[A]}  # settings never touch the groups


def test_both_directions_of_one_domain_are_two_configurations(tenant: Harness) -> None:
    p, store = tenant.provider, tenant.store
    assert store is not None
    to_entra = p.create("contoso", replace(SETTINGS, direction=Direction.AD_TO_ENTRA), Scope.all(), [])
    to_ad = p.create("contoso-groups", SETTINGS, Scope(ScopeKind.SELECTED_GROUPS, (A,)), [])
    assert to_entra != to_ad
    found = {o.name: o for o in p.read_all()}
    assert found["contoso"].settings.direction is Direction.AD_TO_ENTRA
    assert found["contoso-groups"].settings.direction is Direction.ENTRA_TO_AD
    assert [j["templateId"] for j in store.list_jobs(to_entra)] == [PROVISIONING_TEMPLATE]
    # A create run again finds its own configuration, not the other direction's.
    assert p.create("contoso-groups", SETTINGS, Scope(ScopeKind.SELECTED_GROUPS, (A,)), []) == to_ad


def test_delete_takes_the_principal_and_its_assignments(tenant: Harness) -> None:
    p, store = tenant.provider, tenant.store
    assert store is not None
    id = p.create("contoso-groups", SETTINGS, Scope(ScopeKind.SELECTED_GROUPS, (A, B)), [])
    p.delete(id)
    assert p.read_all() == ()
    with pytest.raises(NotFoundError):
        store.list_app_role_assignments(id)


def test_a_service_that_does_not_offer_the_template_is_told_so_and_nothing_is_made(
    tenant: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The template id is inferred: it is read before it is instantiated.
    monkeypatch.delitem(tenant_template.APPLICATION_TEMPLATES, GROUP_TEMPLATE_APP_ID)
    with pytest.raises(ConflictError, match="lists no application template"):
        tenant.provider.create("contoso-groups", SETTINGS, Scope(ScopeKind.SELECTED_GROUPS, (A,)), [])
    assert tenant.store is not None
    assert tenant.store.list_service_principals() == []


def test_a_group_is_provisioned_on_demand_with_at_most_five_members(tenant: Harness) -> None:
    p, store = tenant.provider, tenant.store
    assert store is not None
    id = p.create("contoso-groups", SETTINGS, Scope(ScopeKind.SELECTED_GROUPS, (A,)), [CONTAINER])
    ann = "CN=Ann,OU=Staff,DC=contoso,DC=com"
    store.put_cloud_object(A, "Group", {"displayName": "Finance"})
    store.put_onprem_object(ann, "user", {"displayName": "Ann"})
    store.put_cloud_object(B, "User", {"onPremisesDistinguishedName": ann})
    assert isinstance(p, LocalProvider | GraphProvider)
    # Over Graph the members go as the subject's links.members (the emulator reads them from there).
    response = p.provision_on_demand(id, A, "group", members=(B,))
    assert json.loads(response["key"])["result"] == "Success"
    (group,) = store.list_onprem_objects("group")
    assert group["dn"].endswith(",OU=Cloud Groups,DC=contoso,DC=com")
    assert store.list_members(group["dn"]) == [ann]
    with pytest.raises(ProviderError, match="at most 5"):
        p.provision_on_demand(id, A, "group", members=tuple(f"{C[:-1]}{i}" for i in range(6)))
