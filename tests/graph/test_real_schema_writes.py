"""The write algorithm against a real job schema, over real HTTP (the emulator on 127.0.0.1).

The configuration is seeded the way the portal leaves one, with the job schema of a real tenant
(``tests/fixtures/real/ad2aad-schema-sample1.json``, a copy of ``../shared/reference/real/``); every
request the provider sends is recorded by the emulator, so the body of each PUT is compared with what
the service answered to the GET before it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.graph import (
    FAST_RETRY,
    SleepRecorder,
    StartEmulator,
    desired,
    portal_configuration,
    provider_for,
    state,
)
from test_graph_resilience import Targeted

from reconciler.core.model import CREDENTIAL_DATA, Direction, MappingKind, MappingOverride, Scope, ScopeKind
from reconciler.core.plan import PlanOptions, Provenance
from reconciler.emulator import Emulator
from reconciler.engine.importer import import_target
from reconciler.engine.operations import load_desired, make_plan, plan_and_apply
from reconciler.graph.client import GraphClient
from reconciler.graph.editing import without_annotations
from reconciler.graph.identity import PROVISIONING_TEMPLATE, TEMPLATE_APP_ID, find_job
from reconciler.graph.provider import GraphProvider
from reconciler.graph.reading import find_provisioning_rule, read_schema
from reconciler.graph.secrets import APP_KEY
from reconciler.graph.tokens import NoToken
from reconciler.tenant.store import TenantStore

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "ad2aad-schema-sample1.json"
DOMAIN = "mydomain.tld"  # the domain of the real schema's OU scope
# The tags the service puts on a principal it makes from the template (Entra docs, cloud-sync
# concept-attributes: the documented Cloud Sync service principal).
SERVICE_TAGS = ["WindowsAzureActiveDirectoryIntegratedApp"]
# The real schema maps Department from Trim([department]); this is another expression.
_NEW_EXPRESSION = 'Join(" ", Trim([department]), "FTE")'


def _real_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REAL.read_text(encoding="utf-8"))
    return data


def _seed_real(store: TenantStore) -> tuple[str, str]:
    """A portal-made configuration whose job schema is the real one; (principal id, job id)."""
    # The real schema has no CredentialData row: that configuration did not sync password hashes.
    sp_id = portal_configuration(store, DOMAIN, password_hash_sync=False)
    job = find_job(store.list_jobs(sp_id), PROVISIONING_TEMPLATE)
    assert job is not None
    store.put_schema(sp_id, job["id"], _real_schema())
    return sp_id, str(job["id"])


def _differences(before: Any, after: Any, path: str = "") -> list[str]:
    """The JSON paths where ``before`` and ``after`` differ (a key or item present on one side only
    counts as a difference at its own path)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in sorted(set(before) | set(after)):
            if key not in before or key not in after:
                found.append(f"{path}.{key}")
            else:
                found += _differences(before[key], after[key], f"{path}.{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in _differences(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [path]


def _schema_path(sp_id: str, job_id: str) -> str:
    return f"/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema"


def _puts(emulator: Emulator, suffix: str) -> list[Any]:
    return [r.body for r in emulator.recorded if r.method == "PUT" and r.path.split("?")[0].endswith(suffix)]


def _row_index(schema: dict[str, Any], target: str) -> int:
    rule = find_provisioning_rule(schema)
    assert rule is not None
    rows = rule["objectMappings"][0]["attributeMappings"]
    return next(i for i, am in enumerate(rows) if am["targetAttributeName"].casefold() == target.casefold())


def _beta_provider(emulator: Emulator) -> GraphProvider:
    """A provider on the emulator's beta endpoint: the real schema holds beta-only properties
    (``provisioningTaskIdentifier``), which are read and written back through the same version."""
    base = emulator.url + "/beta"
    client = GraphClient(base, NoToken(), concurrency=4, retry=FAST_RETRY, sleep=SleepRecorder())
    return GraphProvider(base, target="graph+" + base, client=client)


def _adopted(emulator: Emulator) -> tuple[GraphProvider, str, str]:
    sp_id, job_id = _seed_real(emulator.store)
    provider = _beta_provider(emulator)
    provider.adopt(sp_id, "contoso")
    return provider, sp_id, job_id


def test_one_mapping_changed_puts_the_schema_as_read_but_for_that_row(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    provider, sp_id, job_id = _adopted(emulator)
    before = provider.client.get(_schema_path(sp_id, job_id))
    scope, mappings, *_ = read_schema(before)
    department = next(m for m in mappings if m.object == "user" and m.target.casefold() == "department")
    changed = replace(department, kind=MappingKind.EXPRESSION, value=_NEW_EXPRESSION)

    provider.edit_schema(sp_id, scope, [changed])

    (put,) = _puts(emulator, "/schema")
    row = f".synchronizationRules[0].objectMappings[0].attributeMappings[{_row_index(before, 'department')}]"
    differences = _differences(without_annotations(before), put)
    assert differences and all(d.startswith(row + ".") for d in differences), differences
    # The service's spelling of the target is kept.
    assert (
        put["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][
            _row_index(before, "department")
        ]["targetAttributeName"]
        == department.target
    )
    provider.close()


def test_the_scope_clause_is_read_and_changed_in_place(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    provider, sp_id, job_id = _adopted(emulator)
    before = provider.client.get(_schema_path(sp_id, job_id))
    scope, *_ = read_schema(before)
    assert scope.kind is ScopeKind.ORGANIZATIONAL_UNITS and scope.entries

    wanted = Scope(ScopeKind.ORGANIZATIONAL_UNITS, ("OU=Elsewhere,DC=mydomain,DC=tld",))
    provider.edit_schema(sp_id, wanted, [])

    (put,) = _puts(emulator, "/schema")
    differences = _differences(without_annotations(before), put)
    # Only the clause's value changes: no containerFilter is added, no clause or group is added or lost.
    assert differences and all(
        ".scope.inputFilterGroups[" in d and ".targetOperand" in d for d in differences
    ), differences
    rule = put["synchronizationRules"][0]
    assert "containerFilter" not in rule and "groupFilter" not in rule
    after = provider.client.get(_schema_path(sp_id, job_id))
    assert read_schema(after)[0] == wanted
    provider.close()


def test_create_keeps_every_row_of_the_schema_the_service_made(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    store = emulator.store
    provider = provider_for(emulator)
    wanted = desired("alpha")
    assert plan_and_apply(state(wanted), provider, PlanOptions(), Provenance()).result.ok

    (sp,) = store.list_service_principals()
    job = find_job(store.list_jobs(sp["id"]), PROVISIONING_TEMPLATE)
    assert job is not None
    made = find_provisioning_rule(store.template_schema())
    written = find_provisioning_rule(store.get_schema(sp["id"], job["id"]))
    assert made is not None and written is not None
    named = {o.target.casefold() for o in wanted.overrides}
    for made_om, written_om in zip(made["objectMappings"], written["objectMappings"], strict=True):
        made_rows = {am["targetAttributeName"].casefold(): am for am in made_om["attributeMappings"]}
        written_rows = {am["targetAttributeName"].casefold(): am for am in written_om["attributeMappings"]}
        removed = {o.target.casefold() for o in wanted.overrides if o.mapping is None}
        # Every row the desired state does not name is there, exactly as the service made it.
        for target, row in made_rows.items():
            if target not in named and target != CREDENTIAL_DATA.casefold():
                assert written_rows.get(target) == row, target
        assert not removed & set(written_rows)
        # No row comes in twice under another spelling.
        assert len(written_rows) == len(written_om["attributeMappings"])
    provider.close()


def _service_tags_on_new_principals(store: TenantStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's instantiate, with the tags the service puts on a new principal."""
    made_by_store = store.instantiate

    def instantiate(display_name: str, template_id: str = TEMPLATE_APP_ID) -> dict[str, Any]:
        made = made_by_store(display_name, template_id)
        sp = made["servicePrincipal"]
        store.patch_service_principal(sp["id"], {"tags": list(SERVICE_TAGS)})
        sp["tags"] = list(SERVICE_TAGS)
        return made

    monkeypatch.setattr(store, "instantiate", instantiate)


@pytest.mark.parametrize("when", ["drop-after", "error-after"])
def test_a_lost_instantiate_answer_with_the_service_tags_leaves_one_application(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    emulator = start_emulator()
    store = emulator.store
    _service_tags_on_new_principals(store, monkeypatch)
    faults = Targeted("^POST .*/instantiate", when)
    emulator.faults = faults  # type: ignore[assignment]
    provider = provider_for(emulator)
    wanted = state(desired("alpha"))
    run = plan_and_apply(wanted, provider, PlanOptions(), Provenance())
    assert faults.hits == 1
    assert run.result.ok, [o.error for o in run.result.outcomes if o.error]
    assert len(store.list_applications()) == 1
    (sp,) = store.list_service_principals()
    # The service's own tag is kept beside ours.
    assert SERVICE_TAGS[0] in sp["tags"]
    assert make_plan(wanted, provider, PlanOptions(), Provenance()).changes == ()
    provider.close()


def test_password_hash_sync_off_on_one_configuration_writes_no_other_app_key(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator()
    store = emulator.store
    provider = provider_for(emulator)
    both = state(desired("alpha", password_hash_sync=True), desired("beta", password_hash_sync=True))
    assert plan_and_apply(both, provider, PlanOptions(), Provenance()).result.ok
    ids = {o.name: o.id for o in provider.read_all()}
    app_keys = {name: _secret(store, id, APP_KEY) for name, id in ids.items()}
    emulator.recorded.clear()

    one_off = state(desired("alpha", password_hash_sync=False), desired("beta", password_hash_sync=True))
    run = plan_and_apply(one_off, provider, PlanOptions(), Provenance())
    assert run.result.ok, [o.error for o in run.result.outcomes if o.error]

    written = [r.path for r in emulator.recorded if r.method == "PUT" and "/secrets" in r.path]
    assert all(ids["beta"] not in path for path in written)
    # AppKey sets tenant-wide flags: it is not lowered for the tenant by alpha, and beta's is untouched.
    assert {name: _secret(store, id, APP_KEY) for name, id in ids.items()} == app_keys
    assert make_plan(one_off, provider, PlanOptions(), Provenance()).changes == ()
    provider.close()


def _secret(store: TenantStore, sp_id: str, key: str) -> Any:
    return next((s["value"] for s in store.get_secrets(sp_id) if s["key"] == key), None)


def test_import_change_one_mapping_apply_then_plan_again_is_empty(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator()
    sp_id, job_id = _seed_real(emulator.store)
    provider = _beta_provider(emulator)
    import_target(provider, tmp_path / "configs", adopt=True)
    imported = load_desired([str(tmp_path / "configs")]).state
    assert make_plan(imported, provider, PlanOptions(), Provenance()).changes == ()

    before = copy.deepcopy(provider.client.get(_schema_path(sp_id, job_id)))
    department = next(m for m in read_schema(before)[1] if m.target.casefold() == "department")
    changed = replace(department, kind=MappingKind.EXPRESSION, value=_NEW_EXPRESSION)
    (configuration,) = imported.configurations
    override = MappingOverride("user", "department", changed)
    wanted = state(replace(configuration, overrides=(*configuration.overrides, override)))
    emulator.recorded.clear()
    run = plan_and_apply(wanted, provider, PlanOptions(), Provenance())
    assert run.result.ok, [o.error for o in run.result.outcomes if o.error]

    (put,) = _puts(emulator, "/schema")
    row = f".synchronizationRules[0].objectMappings[0].attributeMappings[{_row_index(before, 'department')}]"
    differences = _differences(without_annotations(before), put)
    assert differences and all(d.startswith(row + ".") for d in differences), differences
    assert make_plan(wanted, provider, PlanOptions(), Provenance()).changes == ()
    provider.close()


def test_a_new_principal_showing_no_template_id_is_known_by_the_job_template_it_offers(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Microsoft's example of a Cloud Sync principal shows applicationTemplateId null and
    # servicePrincipalNames [appId]: such a principal, left unfinished, is still recognised (its
    # synchronization templates offer AD2AADProvisioning), and one holding a job is not taken.
    emulator = start_emulator()
    store = emulator.store
    _service_tags_on_new_principals(store, monkeypatch)
    provider = provider_for(emulator)
    made = store.instantiate("alpha.contoso.com")["servicePrincipal"]
    as_listed = {**made, "applicationTemplateId": None, "servicePrincipalNames": [made["appId"]]}
    assert not provider.resources.is_configuration(as_listed, Direction.AD_TO_ENTRA)
    assert provider._left_unfinished(as_listed, Direction.AD_TO_ENTRA)
    # Not an unfinished Entra ID -> AD principal: it offers another job template.
    assert not provider._left_unfinished(as_listed, Direction.ENTRA_TO_AD)
    store.create_job(made["id"], PROVISIONING_TEMPLATE)
    assert not provider._left_unfinished(as_listed, Direction.AD_TO_ENTRA)
    provider.close()
