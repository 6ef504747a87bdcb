"""What only the Graph provider does: targets, the read path ($batch, paging, fallbacks), restarts,
provisioning on demand, expression checks, and refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.graph import TOKEN, StartEmulator, desired, portal_configuration, provider_for, state

from reconciler.core.plan import PlanOptions, Provenance
from reconciler.emulator import Emulator, odata, replies, service
from reconciler.engine.operations import plan_and_apply
from reconciler.errors import ConfigError, ConflictError, ProviderError
from reconciler.graph.identity import PROVISIONING_TEMPLATE, find_job
from reconciler.graph.provider import GraphProvider, parse_target
from reconciler.graph.reading import find_provisioning_rule
from reconciler.providers import open_target
from reconciler.providers.base import RESET_FORCE_DELETES


@pytest.mark.parametrize(
    ("text", "base", "canonical"),
    [
        ("graph", "https://graph.microsoft.com/v1.0", "graph:https://graph.microsoft.com/v1.0"),
        ("graph:", "https://graph.microsoft.com/v1.0", "graph:https://graph.microsoft.com/v1.0"),
        (
            "graph:https://graph.microsoft.us/v1.0/",
            "https://graph.microsoft.us/v1.0",
            "graph:https://graph.microsoft.us/v1.0",
        ),
        ("graph+http://127.0.0.1:8080", "http://127.0.0.1:8080/v1.0", "graph+http://127.0.0.1:8080"),
        ("graph+http://localhost:9/", "http://localhost:9/v1.0", "graph+http://localhost:9"),
        ("graph+http://localhost:9/v1.0", "http://localhost:9/v1.0", "graph+http://localhost:9"),
        ("graph+http://localhost:9/beta/", "http://localhost:9/beta", "graph+http://localhost:9/beta"),
    ],
)
def test_targets(text: str, base: str, canonical: str) -> None:
    assert parse_target(text) == (base, canonical)


@pytest.mark.parametrize(
    "text", ["graph:http://plain.test/v1.0", "graph+http://h:1/v2.0", "graph+http://h:x", "graphs"]
)
def test_bad_targets(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_target(text)


def test_the_registry_opens_graph_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_GRAPH_CONCURRENCY", "3")
    for text, canonical in [
        ("graph", "graph:https://graph.microsoft.com/v1.0"),
        ("graph+http://127.0.0.1:9", "graph+http://127.0.0.1:9"),
    ]:
        provider = open_target(text)
        assert isinstance(provider, GraphProvider) and provider.target == canonical
        assert provider.client.concurrency == 3
        provider.close()  # nothing was sent: opening a target makes no request
    monkeypatch.setenv("RECONCILER_GRAPH_CONCURRENCY", "lots")
    with pytest.raises(ConfigError):
        open_target("graph")


def test_reads_are_batched(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN)
    names = [f"c{i:02d}" for i in range(25)]
    for name in names:
        portal_configuration(emulator.store, f"{name}.contoso.com")
    provider = provider_for(emulator, TOKEN)
    found = provider.read_all()
    assert len(found) == 25
    # One page of principals made from each of the two templates (AD -> Entra ID, Entra ID -> AD) and
    # one of those carrying our tag that were not; jobs and secrets of 10 configurations a $batch (3),
    # then schemas of 20 a $batch (2); and the template alongside.
    outer = [r for r in emulator.recorded if not r.inner]
    batches = [r for r in outer if r.path == "/$batch"]
    assert len(outer) == 3 + 5 + 1 and len(batches) == 5
    assert all(len(r.body["requests"]) <= 20 for r in batches)
    provider.close()


def test_a_failed_read_sends_nothing_more(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(latency_ms=30)
    for i in range(150):
        portal_configuration(emulator.store, f"f{i:03d}.contoso.com")

    def refuse(sp_id: str) -> Any:
        raise ProviderError("no jobs today", code="BadRequest", status=400)

    emulator.store.list_jobs = refuse  # type: ignore[method-assign]
    provider = provider_for(emulator, concurrency=2)
    with pytest.raises(ProviderError, match="no jobs today"):
        provider.read_all()
    # Reading them all takes 3 + 15 + 8 requests and the template. The reading stops at the first
    # failure, listing included: the first listing, the template and the few job requests already
    # begun (and at most the listing under way) are all that is sent.
    assert emulator.stats["requests"] <= 12
    provider.close()


def test_read_all_follows_pages(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(page_size=3)
    ids = {portal_configuration(emulator.store, f"p{i}.contoso.com") for i in range(8)}
    provider = provider_for(emulator)
    # The provider asks for 999 a page; this emulator gives at most 3 unless told, so ask it the hard way.
    assert {o.id for o in provider.read_all()} == ids
    provider.close()
    small = start_emulator(emulator.store.path)
    small.service.page_size = 3
    original = replies.MAX_PAGE_SIZE
    try:
        replies.MAX_PAGE_SIZE = 3
        provider = provider_for(small)
        assert {o.id for o in provider.read_all()} == ids
        pages = [r for r in small.recorded if r.path.startswith("/servicePrincipals?") and not r.inner]
        # Three pages of principals made from the AD -> Entra ID template, one (empty) of those made from
        # the Entra ID -> AD one, one (empty) of those with our tag.
        assert len(pages) == 3 + 1 + 1
        provider.close()
    finally:
        replies.MAX_PAGE_SIZE = original


def test_a_refused_filter_falls_back_to_listing_everything(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(text: str, type_name: str, advanced: bool = False) -> Any:
        raise odata.QueryError("unsupported filter", "Request_UnsupportedQuery")

    monkeypatch.setattr(odata, "parse_filter", refuse)
    emulator = start_emulator()
    provider = provider_for(emulator)
    wanted = state(desired("alpha"), desired("beta"))
    assert plan_and_apply(wanted, provider, PlanOptions(), Provenance()).result.ok
    assert plan_and_apply(wanted, provider, PlanOptions(), Provenance()).plan.changes == ()
    assert sorted(o.name or "" for o in provider.read_all()) == ["alpha", "beta"]
    assert len(emulator.store.list_service_principals()) == 2
    provider.close()


def test_a_refused_schema_select_falls_back_to_whole_schemas(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = service.GraphService._get_schema

    def no_select(self: Any, sp_id: str, job_id: str, request: replies.Request) -> Any:
        if "select" in request.options:
            return replies.graph_error(400, "BadRequest", "$select is not supported here")
        return original(self, sp_id, job_id, request)

    emulator = start_emulator()
    local_view = portal_configuration(emulator.store, "portal.contoso.com")
    monkeypatch.setattr(service.GraphService, "_get_schema", no_select)
    emulator.service = service.GraphService(emulator.store)
    provider = provider_for(emulator)
    (o,) = provider.read_all()
    assert o.id == local_view and o.mappings
    provider.close()


def test_restart_flags_and_approved_deletes(emulator: Emulator) -> None:
    provider = provider_for(emulator, TOKEN)
    assert plan_and_apply(state(desired("alpha")), provider, PlanOptions(), Provenance()).result.ok
    (o,) = provider.read_all()
    provider.restart(o.id, RESET_FORCE_DELETES)
    restarts = [a["body"] for a in emulator.store.actions(o.id) if a["action"] == "restart"]
    assert restarts[-1] == {"criteria": {"resetScope": "ForceDeletes"}}
    provider.close()


def test_provision_on_demand_uses_the_rule_id_of_the_schema(emulator: Emulator) -> None:
    store = emulator.store
    id = portal_configuration(store, "portal.contoso.com")
    job = find_job(store.list_jobs(id), PROVISIONING_TEMPLATE)
    assert job is not None
    schema = store.get_schema(id, job["id"])
    rule = find_provisioning_rule(schema)
    assert rule is not None
    rule["id"] = "11111111-2222-3333-4444-555555555555"
    store.put_schema(id, job["id"], schema)
    dn = "CN=Adele,OU=Users,DC=portal,DC=com"
    store.put_onprem_object(
        dn,
        "user",
        {
            "objectGUID": "6f9619ff-8b86-d011-b42d-00cf4fc964ff",
            "userPrincipalName": "adele@portal.contoso.com",
            "sAMAccountName": "adele",
            "displayName": "Adele Vance",
            "cn": "Adele",
        },
    )
    provider = provider_for(emulator, TOKEN)
    response = provider.provision_on_demand(id, dn)
    (sent,) = [r for r in emulator.recorded if r.path.endswith("/provisionOnDemand")]
    assert sent.body == {
        "parameters": [
            {
                "ruleId": "11111111-2222-3333-4444-555555555555",
                "subjects": [{"objectId": dn, "objectTypeName": "user"}],
            }
        ]
    }
    assert set(response) == {"key", "value"}
    assert json.loads(response["key"])["result"] == "Success", response
    log = json.loads(response["value"])
    assert [step["type"] for step in log["provisioningSteps"]][:1] == ["Import"]
    # An unknown object is the service's answer too, not an HTTP error.
    missing = provider.provision_on_demand(id, "CN=Nobody,OU=Users,DC=portal,DC=com")
    assert json.loads(missing["key"])["result"] == "Failure"
    provider.close()


def test_parse_expression(emulator: Emulator) -> None:
    provider = provider_for(emulator, TOKEN)
    with pytest.raises(ProviderError, match="needs one Cloud Sync configuration"):
        provider.parse_expression("[mail]")
    portal_configuration(emulator.store, "portal.contoso.com")
    good = provider.parse_expression('Join("@", [sAMAccountName], "contoso.com")')
    assert good["parsingSucceeded"] and good["parsedExpression"]["type"] == "Function"
    assert good["parsedExpression"]["name"] == "Join"
    bad = provider.parse_expression('Join("@", [sAMAccountName]')
    assert not bad["parsingSucceeded"] and bad["error"]["message"]
    provider.close()


def test_a_domain_shared_with_an_unmanaged_configuration(emulator: Emulator) -> None:
    theirs = portal_configuration(emulator.store, "alpha.contoso.com")
    provider = provider_for(emulator, TOKEN)
    # (The planner refuses this and suggests adoption; the provider must still never take it over.)
    d = desired("alpha")
    ours = provider.create("alpha", d.settings, d.scope, list(provider.template_defaults()))
    found = {o.id: o for o in provider.read_all()}
    assert found[ours].managed and found[ours].name == "alpha"
    assert len(found) == 2 and not found[theirs].managed
    provider.close()


def test_secrets_the_service_hides_are_not_overwritten(emulator: Emulator) -> None:
    provider = provider_for(emulator, TOKEN)
    assert plan_and_apply(state(desired("alpha")), provider, PlanOptions(), Provenance()).result.ok
    (o,) = provider.read_all()
    store = emulator.store
    store.put_secrets(o.id, [*store.get_secrets(o.id), {"key": "SecretToken", "value": "*"}])
    before = store.get_secrets(o.id)
    with pytest.raises(ConflictError, match="SecretToken"):
        provider.update_settings(
            o.id,
            desired("alpha", notification_email="x@alpha.contoso.com").settings,
            deletion_protection=False,
            restart_token=None,
        )
    assert store.get_secrets(o.id) == before
    provider.close()


def test_read_named_reads_only_those_and_the_unmanaged(start_emulator: StartEmulator, tmp_path: Any) -> None:
    from reconciler.providers.local import LocalProvider

    local = LocalProvider(tmp_path / "tenant.db")
    wanted = state(*(desired(f"c{i}") for i in range(6)))
    assert plan_and_apply(wanted, local, PlanOptions(), Provenance()).result.ok
    portal_configuration(local.store, "portal.contoso.com")
    emulator = start_emulator()
    provider = provider_for(emulator)
    names = frozenset({"c1", "c4", "gone"})
    found = provider.read_named(names)
    assert found == local.read_named(names)
    assert sorted(o.name or "-" for o in found) == ["-", "c1", "c4"]
    inner = [r.path for r in emulator.recorded if r.inner and r.path.endswith("/synchronization/jobs")]
    assert len(inner) == 3  # c1, c4 and the portal's; the other four were never read
    provider.close()
    local.close()
