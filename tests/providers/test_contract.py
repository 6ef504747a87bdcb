"""The Provider contract: what the planner and apply may rely on, checked on every provider."""

from __future__ import annotations

from dataclasses import replace

import pytest
from support.providers import Harness

from reconciler.core.model import (
    CREDENTIAL_DATA,
    ApplyMode,
    Mapping,
    MappingKind,
    MappingOverride,
    Scope,
    ScopeKind,
    Settings,
    effective_mappings,
)
from reconciler.core.observed import Observed
from reconciler.errors import ConflictError, NotFoundError, ProviderError
from reconciler.providers.base import RESET_FORCE_DELETES, RESET_FULL, Provider

SETTINGS = Settings(domain="contoso.com", notification_email="ops@contoso.com")
OUS = Scope(ScopeKind.ORGANIZATIONAL_UNITS, ("OU=Sales,DC=contoso,DC=com", "OU=HR,DC=contoso,DC=com"))
GROUPS = Scope(ScopeKind.GROUPS, ("CN=Pilot,OU=Groups,DC=contoso,DC=com",))

# Targets as a person may write them: matched to the service's rows case-insensitively.
OVERRIDES = (
    MappingOverride("user", "department", Mapping("user", "department", MappingKind.DIRECT, "department")),
    MappingOverride(
        "user",
        "jobTitle",
        Mapping("user", "jobTitle", MappingKind.EXPRESSION, 'Join(" ", Trim([title]), "FTE")', default="n/a"),
    ),
    MappingOverride(
        "user",
        "company",
        Mapping("user", "company", MappingKind.CONSTANT, "Contoso", apply=ApplyMode.ON_CREATE),
    ),
    MappingOverride("user", "extensionAttribute3", None),
)


Effective = dict[tuple[str, str], Mapping]


def mappings(provider: Provider, overrides: tuple[MappingOverride, ...] = OVERRIDES) -> Effective:
    """The template's rows with ``overrides`` made, by case-folded key (the service's spelling kept)."""
    return effective_mappings(provider.template_defaults(), overrides)


def split(overrides: tuple[MappingOverride, ...]) -> tuple[list[Mapping], list[tuple[str, str]]]:
    sets = [o.mapping for o in overrides if o.mapping is not None]
    return sets, [o.key for o in overrides if o.mapping is None]


def by_key(observed: Observed) -> dict[tuple[str, str], Mapping]:
    return {m.folded_key: m for m in observed.mappings}


def only(provider: Provider, id: str) -> Observed:
    found = [o for o in provider.read_all() if o.id == id]
    assert len(found) == 1, found
    return found[0]


def create(provider: Provider, name: str = "prod", settings: Settings = SETTINGS, **kw: object) -> str:
    scope = kw.pop("scope", OUS)
    assert isinstance(scope, Scope)
    sets, removals = split(OVERRIDES)
    return provider.create(name, settings, scope, sets, removals=removals, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# template


def test_template_defaults_are_there_without_credential_data(provider: Provider) -> None:
    defaults = provider.template_defaults()
    assert defaults
    assert all(m.target != CREDENTIAL_DATA for m in defaults)
    keys = {m.key for m in defaults}
    # As the service spells them (a real job schema): PascalCase, one user object mapping.
    assert ("user", "UserPrincipalName") in keys and ("user", "onPremisesObjectIdentifier") in keys
    assert {m.object for m in defaults} == {"user"}
    matching = [m for m in defaults if m.key == ("user", "onPremisesObjectIdentifier")]
    assert matching[0].matching_priority == 1


# --------------------------------------------------------------------------------------------------
# create


@pytest.mark.parametrize("phs", [True, False], ids=["phs-on", "phs-off"])
def test_create_reads_back_what_was_written(provider: Provider, phs: bool) -> None:
    settings = replace(SETTINGS, password_hash_sync=phs, accidental_deletes_threshold=42)
    wanted = mappings(provider)
    sets, removals = split(OVERRIDES)
    id = provider.create(
        "prod", settings, OUS, sets, removals=removals, deletion_protection=True, restart_token="t1"
    )
    o = only(provider, id)
    assert o.managed and o.name == "prod" and o.complete
    assert o.settings == replace(settings, enabled=False)  # created paused
    assert o.scope == OUS
    # Every template row is kept, an overridden one under the service's spelling; no case duplicates.
    assert by_key(o) == wanted
    assert len(o.mappings) == len(wanted) == len(provider.template_defaults()) + 1 - 1
    assert ("user", "Department") in {m.key for m in o.mappings}
    assert all(m.target != CREDENTIAL_DATA for m in o.mappings)
    # Only the object mappings the schema has get the password-hash row.
    assert o.credential_data_count == {"user": int(phs)}
    assert o.deletion_protection and o.restart_token == "t1"
    assert o.status.code == "Paused"


def test_create_with_groups_scope_and_all_scope(provider: Provider) -> None:
    a = create(provider, "a", scope=GROUPS)
    b = create(provider, "b", scope=Scope.all())
    assert only(provider, a).scope == GROUPS
    assert only(provider, b).scope == Scope.all()


def test_create_is_idempotent_by_name(provider: Provider) -> None:
    first = create(provider)
    again = create(provider)
    assert again == first
    assert [o.name for o in provider.read_all()] == ["prod"]
    other = create(provider, "test", replace(SETTINGS, domain="test.contoso.com"))
    assert other != first
    assert sorted(o.name or "" for o in provider.read_all()) == ["prod", "test"]


def test_create_finishes_an_interrupted_create(harness: Harness) -> None:
    provider = harness.provider
    id = harness.add_incomplete("prod", SETTINGS)
    (o,) = provider.read_all()
    assert o.managed and o.name == "prod" and not o.complete
    assert create(provider) == id
    o = only(provider, id)
    assert o.complete and o.scope == OUS and by_key(o) == mappings(provider)
    assert o.credential_data_count == {"user": 1}


def test_create_takes_a_principal_left_unfinished_whatever_tags_the_service_put(harness: Harness) -> None:
    # An instantiate whose answer was lost (or a run killed before tagging) left a principal with only
    # the service's own tag: the create finishes that one instead of making a second application.
    if harness.store is None:
        pytest.skip("this provider has no service principals")
    store = harness.store
    left = store.instantiate(SETTINGS.domain)["servicePrincipal"]["id"]
    store.patch_service_principal(left, {"tags": ["WindowsAzureActiveDirectoryIntegratedApp"]})
    assert create(harness.provider) == left
    assert len(store.list_applications()) == 1 and only(harness.provider, left).complete


def test_create_never_takes_a_principal_holding_secrets(harness: Harness) -> None:
    if harness.store is None:
        pytest.skip("this provider has no service principals")
    store = harness.store
    made = store.instantiate(SETTINGS.domain)["servicePrincipal"]
    other = made["id"]
    store.put_secrets(other, [{"key": "Domain", "value": '{"domain":"contoso.com"}'}])
    assert create(harness.provider) != other
    # Untouched: the tags the service gave it, and no jobs.
    assert store.get_service_principal(other)["tags"] == made["tags"] and store.list_jobs(other) == []


def test_read_all_is_sorted_by_id(harness: Harness) -> None:
    for i in range(4):
        create(harness.provider, f"c{i}", replace(SETTINGS, domain=f"c{i}.contoso.com"))
    harness.add_unmanaged("portal.contoso.com")
    ids = [o.id for o in harness.provider.read_all()]
    assert len(ids) == 5 and ids == sorted(ids)


# --------------------------------------------------------------------------------------------------
# update


def test_update_settings(provider: Provider) -> None:
    id = create(provider)
    new = Settings(
        domain="fabrikam.com",
        notification_email="alerts@fabrikam.com",
        password_hash_sync=False,
        accidental_deletes_enabled=False,
        accidental_deletes_threshold=7,
    )
    provider.update_settings(id, new, deletion_protection=True, restart_token="r2")
    o = only(provider, id)
    assert o.settings == replace(new, enabled=False)
    assert o.deletion_protection and o.restart_token == "r2" and o.name == "prod"
    assert o.credential_data_count == {"user": 0}
    # mappings and scope are not touched by a settings update
    assert by_key(o) == mappings(provider) and o.scope == OUS

    provider.update_settings(id, SETTINGS, deletion_protection=False, restart_token=None)
    provider.update_settings(id, SETTINGS, deletion_protection=False, restart_token=None)
    o = only(provider, id)
    assert o.settings.password_hash_sync
    assert o.credential_data_count == {"user": 1}  # exactly once, however often
    assert not o.deletion_protection and o.restart_token is None


def test_update_settings_keeps_secret_keys_we_do_not_manage(harness: Harness) -> None:
    if harness.store is None:
        pytest.skip("this provider has no service secrets")
    store = harness.store
    id = create(harness.provider)
    secrets = store.get_secrets(id)
    store.put_secrets(id, [{"key": "SkipOutOfScopeDeletions", "value": "true"}, *secrets])
    harness.provider.update_settings(
        id, replace(SETTINGS, domain="fabrikam.com"), deletion_protection=False, restart_token=None
    )
    after = store.get_secrets(id)
    assert after[0] == {"key": "SkipOutOfScopeDeletions", "value": "true"}
    keys = [s["key"] for s in after]
    assert keys == ["SkipOutOfScopeDeletions", "Domain", "AppKey", "SyncNotificationSettings"]
    assert only(harness.provider, id).settings.domain == "fabrikam.com"


def test_update_keeps_tags_we_do_not_own(harness: Harness) -> None:
    if harness.store is None:
        pytest.skip("this provider has no service tags")
    store = harness.store
    id = create(harness.provider)
    tags = store.get_service_principal(id)["tags"]
    store.patch_service_principal(id, {"tags": ["WindowsAzureActiveDirectoryIntegratedApp", *tags]})
    harness.provider.update_settings(id, SETTINGS, deletion_protection=True, restart_token="x")
    tags = store.get_service_principal(id)["tags"]
    assert tags[0] == "WindowsAzureActiveDirectoryIntegratedApp"
    assert "reconciler:deletionProtection" in tags and "reconciler:restartToken=x" in tags


def test_edit_schema_changes_only_what_it_names(provider: Provider) -> None:
    id = create(provider)
    changed = (
        MappingOverride("user", "DEPARTMENT", Mapping("user", "DEPARTMENT", MappingKind.CONSTANT, "Sales")),
        MappingOverride("user", "displayname", None),
        MappingOverride("user", "employeeType", Mapping("user", "employeeType", MappingKind.DIRECT, "title")),
    )
    sets, removals = split(changed)
    provider.edit_schema(id, GROUPS, sets, removals)
    o = only(provider, id)
    assert o.scope == GROUPS
    assert by_key(o) == effective_mappings(list(mappings(provider).values()), changed)
    assert ("user", "Department") in {m.key for m in o.mappings}  # the service's spelling stays
    assert o.credential_data_count == {"user": 1}  # PHS on: CredentialData stays, once
    assert o.settings == replace(SETTINGS, enabled=False)

    # Nothing named: nothing changes but the scope.
    before = by_key(o)
    provider.edit_schema(id, Scope.all(), [], [])
    o = only(provider, id)
    assert o.scope == Scope.all() and by_key(o) == before


def test_credential_data_in_the_mapping_list_is_ignored(provider: Provider) -> None:
    id = create(provider, settings=replace(SETTINGS, password_hash_sync=False))
    extra = [Mapping(obj, CREDENTIAL_DATA, MappingKind.DIRECT, "PasswordHash") for obj in ("user",)]
    provider.edit_schema(id, OUS, extra, [])
    o = only(provider, id)
    assert o.credential_data_count == {"user": 0}
    assert by_key(o) == mappings(provider)


def test_a_mapping_for_an_object_mapping_the_schema_lacks_is_refused(provider: Provider) -> None:
    id = create(provider)
    before = only(provider, id)
    with pytest.raises(ProviderError, match="no object mapping for group"):
        provider.edit_schema(id, OUS, [Mapping("group", "mail", MappingKind.DIRECT, "mail")], [])
    assert only(provider, id) == before


# --------------------------------------------------------------------------------------------------
# jobs


def test_start_and_pause(provider: Provider) -> None:
    id = create(provider)
    provider.start(id)
    o = only(provider, id)
    assert o.status.code == "Active" and o.settings.enabled
    provider.pause(id)
    o = only(provider, id)
    assert o.status.code == "Paused" and not o.settings.enabled
    provider.start(id)
    assert only(provider, id).settings.enabled


def test_start_lifts_quarantine(harness: Harness) -> None:
    id = create(harness.provider)
    harness.quarantine(id)
    o = only(harness.provider, id)
    assert o.status.code == "Quarantine" and o.status.quarantine_reason == "TooManyDeletes"
    assert not o.status.healthy
    harness.provider.start(id)
    o = only(harness.provider, id)
    assert o.status.code == "Active" and o.status.quarantine_reason is None


def test_restart(harness: Harness) -> None:
    provider = harness.provider
    id = create(provider)
    provider.start(id)
    harness.quarantine(id)
    # Releasing held deletes alone does not lift the quarantine.
    provider.restart(id, RESET_FORCE_DELETES)
    assert only(provider, id).status.code == "Quarantine"
    provider.restart(id, RESET_FULL)
    o = only(provider, id)
    assert o.status.code == "Active" and o.status.quarantine_reason is None and o.settings.enabled
    provider.restart(id)
    assert only(provider, id).status.code == "Active"


def test_restart_is_recorded_with_its_criteria(harness: Harness) -> None:
    if harness.store is None:
        pytest.skip("this provider has no job action log")
    id = create(harness.provider)
    harness.provider.restart(id, "Watermark, Escrows")
    (action,) = [a for a in harness.store.actions(id) if a["action"] == "restart"]
    assert action["body"] == {"criteria": {"resetScope": "Watermark, Escrows"}}


def test_a_pending_restart_is_recorded_kept_by_updates_and_cleared_by_the_restart(provider: Provider) -> None:
    id = create(provider)
    provider.start(id)
    assert not only(provider, id).restart_pending
    provider.set_restart_pending(id, True)
    provider.update_settings(
        id,
        replace(SETTINGS, notification_email="new@contoso.com"),
        deletion_protection=False,
        restart_token="2",
    )
    o = only(provider, id)
    assert o.restart_pending and o.restart_token == "2"
    provider.restart(id, RESET_FULL)
    assert not only(provider, id).restart_pending


# --------------------------------------------------------------------------------------------------
# delete


def test_delete_is_idempotent(provider: Provider) -> None:
    keep = create(provider, "keep", replace(SETTINGS, domain="keep.contoso.com"))
    id = create(provider)
    provider.delete(id)
    assert [o.id for o in provider.read_all()] == [keep]
    provider.delete(id)
    assert [o.id for o in provider.read_all()] == [keep]


def test_delete_removes_every_service_object(harness: Harness) -> None:
    if harness.store is None:
        pytest.skip("this provider has no service objects")
    store = harness.store
    id = create(harness.provider)
    harness.provider.delete(id)
    assert store.list_service_principals() == [] and store.list_applications() == []


def test_delete_of_an_unknown_id_is_a_no_op(provider: Provider) -> None:
    provider.delete("00000000-0000-0000-0000-000000000000")


# --------------------------------------------------------------------------------------------------
# unmanaged configurations and adoption


def test_unmanaged_configurations_are_listed_and_read_only(harness: Harness) -> None:
    provider = harness.provider
    ours = create(provider)
    theirs = harness.add_unmanaged("portal.contoso.com")
    found = {o.id: o for o in provider.read_all()}
    assert set(found) == {ours, theirs}
    o = found[theirs]
    assert not o.managed and o.name is None and o.complete
    assert o.settings.domain == "portal.contoso.com"
    assert o.display == f"portal.contoso.com ({theirs})"
    with pytest.raises(ConflictError):
        provider.update_settings(theirs, SETTINGS, deletion_protection=False, restart_token=None)
    with pytest.raises(ConflictError):
        provider.edit_schema(theirs, Scope.all(), [])
    with pytest.raises(ConflictError):
        provider.delete(theirs)
    with pytest.raises(ConflictError):
        provider.start(theirs)
    assert only(provider, theirs) == o


def test_a_managed_name_is_not_taken_from_an_unmanaged_configuration(harness: Harness) -> None:
    theirs = harness.add_unmanaged("contoso.com")
    ours = create(harness.provider)
    assert ours != theirs
    assert not only(harness.provider, theirs).managed


def test_adopt(harness: Harness) -> None:
    provider = harness.provider
    theirs = harness.add_unmanaged("portal.contoso.com")
    before = only(provider, theirs)
    provider.adopt(theirs, "portal")
    o = only(provider, theirs)
    assert o.managed and o.name == "portal"
    assert (o.settings, o.scope, o.mappings) == (before.settings, before.scope, before.mappings)
    provider.adopt(theirs, "portal")  # again: nothing to do
    with pytest.raises(ConflictError):
        provider.adopt(theirs, "other")
    # once adopted it is ours like any other
    assert create(provider, "portal", before.settings) == theirs
    provider.update_settings(theirs, SETTINGS, deletion_protection=False, restart_token=None)
    assert only(provider, theirs).settings.domain == SETTINGS.domain


def test_adopt_refuses_a_name_in_use(harness: Harness) -> None:
    create(harness.provider)
    theirs = harness.add_unmanaged("portal.contoso.com")
    with pytest.raises(ConflictError):
        harness.provider.adopt(theirs, "prod")
    assert not only(harness.provider, theirs).managed


def test_rename_keeps_the_configuration_and_its_protection(harness: Harness) -> None:
    provider = harness.provider
    ours = create(provider, "prod", deletion_protection=True, restart_token="t1")
    theirs = harness.add_unmanaged("portal.contoso.com")
    provider.rename(ours, "prod", "production")
    o = only(provider, ours)
    assert (o.managed, o.name, o.deletion_protection, o.restart_token) == (True, "production", True, "t1")
    provider.rename(ours, "prod", "production")  # again: nothing to do
    with pytest.raises(ConflictError):
        provider.rename(ours, "staging", "other")  # not the configuration of that name
    with pytest.raises(ConflictError):
        provider.rename(theirs, "portal", "mine")  # never takes over what is not managed
    other = create(
        provider, "other", Settings(domain="other.example.com", notification_email="a@b.example.com")
    )
    with pytest.raises(ConflictError):
        provider.rename(other, "other", "production")  # a name in use
    assert not only(provider, theirs).managed


def test_unknown_ids(provider: Provider) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(NotFoundError):
        provider.update_settings(missing, SETTINGS, deletion_protection=False, restart_token=None)
    with pytest.raises(NotFoundError):
        provider.edit_schema(missing, Scope.all(), [])
    with pytest.raises(NotFoundError):
        provider.start(missing)
    with pytest.raises(NotFoundError):
        provider.adopt(missing, "x")


def test_target_is_recorded(provider: Provider) -> None:
    scheme, _, rest = provider.target.partition(":")
    assert scheme and rest
