"""Finding configurations made in the portal, whose principal may carry no ``applicationTemplateId``.

The emulator holds a configuration seeded from the real job-schema dump (``tests/fixtures/real``) the
way the portal leaves one (template id null, the service's own tag, its app id as its only name); the
tool reads it over real HTTP: by its domain, as a plan does, or by looking at every principal named
like a domain, as ``import`` without names does; never with one request per principal of the tenant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.graph import FAST_RETRY, TOKEN, SleepRecorder, StartEmulator, provider_for

from reconciler.emulator import Emulator
from reconciler.emulator.seed import domain_of, load_schema_dump, seed_portal_configuration
from reconciler.errors import ConfigError
from reconciler.graph.client import GraphClient
from reconciler.graph.identity import PROVISIONING_TEMPLATE, TEMPLATE_APP_ID, find_job
from reconciler.graph.provider import GraphProvider
from reconciler.graph.tokens import NoToken
from reconciler.providers.local import LocalProvider
from reconciler.tenant.store import INTEGRATED_APP_TAG, TenantStore

REAL_DUMP = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "ad2aad-schema-sample1.json"
DOMAIN = "mydomain.tld"


def seeded(db: Path) -> str:
    store = TenantStore(db)
    try:
        sp_id = seed_portal_configuration(store, load_schema_dump(str(REAL_DUMP)), DOMAIN, "ops@mydomain.tld")
    finally:
        store.close()
    assert sp_id is not None
    return sp_id


def other_principals(db: Path, count: int) -> None:
    """Applications of the tenant that are no configuration: some named like domains, none with jobs."""
    store = TenantStore(db)
    try:
        for i in range(count):
            store.instantiate(f"app{i}.example.com" if i % 2 else f"Some app {i}", portal_made=True)
    finally:
        store.close()


def test_the_seeded_principal_has_the_documented_shape(tmp_path: Path) -> None:
    sp_id = seeded(tmp_path / "tenant.db")
    store = TenantStore(tmp_path / "tenant.db")
    try:
        sp = store.get_service_principal(sp_id)
        assert sp["applicationTemplateId"] is None
        assert sp["tags"] == [INTEGRATED_APP_TAG]
        assert sp["servicePrincipalNames"] == [sp["appId"]]
        assert sp["displayName"] == DOMAIN
        job = find_job(store.list_jobs(sp_id), PROVISIONING_TEMPLATE)
        assert job is not None and job["schedule"]["state"] == "Active"
        schema = store.get_schema(sp_id, job["id"])
        dump = json.loads(REAL_DUMP.read_text())
        # The dump as read, less its annotations: every rule and directory, beta-only parts included.
        assert schema["synchronizationRules"] == dump["synchronizationRules"]
        assert schema["directories"] == dump["directories"]
        assert schema["provisioningTaskIdentifier"] == dump["provisioningTaskIdentifier"]
        # Seeding again does nothing.
        assert (
            seed_portal_configuration(store, load_schema_dump(str(REAL_DUMP)), DOMAIN.upper(), "x@y.z")
            is None
        )
        assert len(store.list_service_principals()) == 1
    finally:
        store.close()


def test_a_new_principal_from_instantiate_has_the_documented_shape(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    provider = provider_for(emulator)
    created = provider.client.request(
        "POST", f"/applicationTemplates/{TEMPLATE_APP_ID}/instantiate", body={"displayName": "contoso.com"}
    )
    sp = created["servicePrincipal"]
    assert sp["tags"] == [INTEGRATED_APP_TAG]
    assert sp["servicePrincipalNames"] == [sp["appId"]]
    assert sp["applicationTemplateId"] == TEMPLATE_APP_ID


def test_the_dump_names_its_domain() -> None:
    assert domain_of(load_schema_dump(str(REAL_DUMP))) == DOMAIN


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a job schema"),
        (b'{"synchronizationRules": []}', "no provisioning rule"),
    ],
)
def test_a_file_that_is_no_schema_dump_is_refused(tmp_path: Path, text: bytes, says: str) -> None:
    path = tmp_path / "dump.json"
    path.write_bytes(text)
    with pytest.raises(ConfigError, match=says) as err:
        load_schema_dump(str(path))
    assert str(path) in str(err.value)


@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_a_plan_finds_a_portal_configuration_by_its_domain(
    tmp_path: Path, start_emulator: StartEmulator, version: str
) -> None:
    db = tmp_path / "tenant.db"
    sp_id = seeded(db)
    other_principals(db, 30)
    emulator = start_emulator(db)
    provider = provider_on(emulator, version)
    # Without the domain the template listing cannot see it.
    assert [o.id for o in provider.read_all()] == []
    provider.look_up_domains(["contoso.com", DOMAIN.upper(), "app1.example.com"])
    emulator.recorded.clear()
    (found,) = provider.read_all()
    assert found.id == sp_id and not found.managed
    assert found.settings.domain == DOMAIN
    assert found.scope.entries == ("OU=Cloud,DC=mydomain,DC=tld",)
    assert len(found.mappings) > 100  # the real dump's rows, as the service holds them
    outer = [r for r in emulator.recorded if not r.inner]
    # Three listings (the two templates' principals, ours by tag), one $batch of three look-ups, one
    # $batch of the jobs of the two principals found (app1.example.com holds none), then jobs, secrets
    # and the schema of the configuration.
    assert len(outer) <= 8, [r.path for r in outer]


def provider_on(emulator: Emulator, version: str) -> GraphProvider:
    base = f"{emulator.url}/{version}"
    client = GraphClient(base, NoToken(), concurrency=4, retry=FAST_RETRY, sleep=SleepRecorder())
    return GraphProvider(base, target=emulator.target, client=client)


def test_import_without_names_looks_at_every_principal_named_like_a_domain_not_one_by_one(
    tmp_path: Path, start_emulator: StartEmulator
) -> None:
    db = tmp_path / "tenant.db"
    sp_id = seeded(db)
    other_principals(db, 120)
    emulator = start_emulator(db, page_size=50)
    provider = provider_for(emulator)
    provider.look_up_domains(None)
    emulator.recorded.clear()
    assert [o.id for o in provider.read_all()] == [sp_id]
    jobs_read = [r for r in emulator.recorded if r.path.endswith("/synchronization/jobs")]
    outer = [r for r in emulator.recorded if not r.inner]
    # 121 principals: 3 pages; the 61 named like a domain have their jobs read 20 to a $batch.
    assert len(jobs_read) == 61 + 1
    assert len(outer) <= 12, [r.path for r in outer]


def test_an_adopted_portal_configuration_is_found_and_written_like_any_managed_one(
    tmp_path: Path, start_emulator: StartEmulator
) -> None:
    db = tmp_path / "tenant.db"
    sp_id = seeded(db)
    provider = provider_for(start_emulator(db))
    provider.look_up_domains([DOMAIN])
    provider.adopt(sp_id, "mydomain")
    # Found by our tag from now on, without the domain.
    fresh = provider_for(start_emulator(db))
    (found,) = fresh.read_all()
    assert found.managed and found.name == "mydomain"
    fresh.pause(sp_id)
    (paused,) = fresh.read_all()
    assert not paused.settings.enabled
    # The local target reads the same tenant the same way.
    local = LocalProvider(db)
    try:
        (same,) = local.read_all()
        assert same.id == sp_id and same.managed and not same.settings.enabled
    finally:
        local.close()


def test_a_principal_named_like_a_domain_without_a_provisioning_job_is_no_configuration(
    tmp_path: Path, start_emulator: StartEmulator
) -> None:
    db = tmp_path / "tenant.db"
    other_principals(db, 4)
    provider = provider_for(start_emulator(db))
    provider.look_up_domains(["app1.example.com", "app3.example.com"])
    assert provider.read_all() == ()
    provider.look_up_domains(None)
    assert provider.read_all() == ()


def _run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_rehearsal_against_a_seeded_emulator_import_adopt_then_plan_is_empty(
    tmp_path: Path, emulator_process: Callable[..., tuple[subprocess.Popen[str], str]]
) -> None:
    _proc, url = emulator_process("--seed-config", str(REAL_DUMP), "--token", TOKEN)
    env = {**os.environ, "RECONCILER_GRAPH_TOKEN": TOKEN, "RECONCILER_TARGET": "graph+" + url}
    imported = _run("import", "--out", "configs", cwd=tmp_path, env=env)
    assert imported.returncode == 0, imported.stderr
    assert "mydomain (not managed by reconciler" in imported.stdout + imported.stderr
    held = _run("plan", "configs", "--detailed-exitcode", cwd=tmp_path, env=env)
    assert held.returncode == 2 and "adopt it with" in held.stdout + held.stderr
    adopted = _run("import", "--out", "adopted", "--adopt", DOMAIN, cwd=tmp_path, env=env)
    assert adopted.returncode == 0, adopted.stderr
    for target in ("graph+" + url, "graph+" + url + "/beta", f"local:{tmp_path / 'tenant.db'}"):
        plan = _run("plan", "adopted", "--detailed-exitcode", "--target", target, cwd=tmp_path, env=env)
        assert plan.returncode == 0, (target, plan.stdout, plan.stderr)
        assert "No changes" in plan.stdout


def test_scoping_clauses_the_tool_does_not_manage_are_shown_in_the_plan_and_kept(
    tmp_path: Path, emulator_process: Callable[..., tuple[subprocess.Popen[str], str]]
) -> None:
    dump = json.loads(REAL_DUMP.read_text())
    user = dump["synchronizationRules"][0]["objectMappings"][0]
    clause = {
        "operatorName": "EQUALS",
        "sourceOperandName": "department",
        "targetOperand": {"values": ["Sales"]},
    }
    user["scope"]["inputFilterGroups"][0]["clauses"].append(clause)
    (tmp_path / "dump.json").write_text(json.dumps(dump))
    _proc, url = emulator_process("--seed-config", str(tmp_path / "dump.json"), "--token", TOKEN)
    env = {**os.environ, "RECONCILER_GRAPH_TOKEN": TOKEN, "RECONCILER_TARGET": "graph+" + url}
    adopted = _run("import", "--out", "configs", "--adopt", DOMAIN, cwd=tmp_path, env=env)
    assert adopted.returncode == 0, adopted.stderr
    shown = 'mydomain: user: department EQUALS "Sales"'
    plan = _run("plan", "configs", "--format", "json", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["unmanaged_scoping_filters"] == [shown]
    for fmt in ("text", "markdown"):
        rendered = _run("plan", "configs", "--format", fmt, cwd=tmp_path, env=env)
        assert "Unmanaged scoping filters" in rendered.stdout and "department EQUALS" in rendered.stdout
    # A change to the scope keeps the clause, in the OU group where it was.
    config = tmp_path / "configs" / "mydomain.yaml"
    config.write_text(
        config.read_text().replace("OU=Cloud,DC=mydomain,DC=tld", "OU=Sales,DC=mydomain,DC=tld")
    )
    applied = _run("apply", "configs", "--auto-approve", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    store = TenantStore(tmp_path / "tenant.db")
    try:
        (sp,) = store.list_service_principals()
        job = find_job(store.list_jobs(sp["id"]), PROVISIONING_TEMPLATE)
        assert job is not None
        schema = store.get_schema(sp["id"], job["id"])
    finally:
        store.close()
    # What the tool does not manage is written back as read: parts no metadata declares included.
    assert schema["provisioningTaskIdentifier"] == dump["provisioningTaskIdentifier"]
    assert schema["directories"] == dump["directories"]
    scope = schema["synchronizationRules"][0]["objectMappings"][0]["scope"]
    clauses = [c for g in scope["inputFilterGroups"] for c in g["clauses"]]
    assert clause in clauses
    assert {"OU=Sales,DC=mydomain,DC=tld"} == {
        v for c in clauses if c["operatorName"] == "ENDS_WITH" for v in c["targetOperand"]["values"]
    }
    again = _run("plan", "configs", "--format", "json", "--detailed-exitcode", cwd=tmp_path, env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["unmanaged_scoping_filters"] == [shown]
