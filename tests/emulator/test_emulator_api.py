"""The emulator answers like the Graph synchronization API: both versions, the documented calls, OData.

Everything goes over real HTTP on 127.0.0.1; the tool's own flows run as subprocesses of the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.graph import TOKEN, StartEmulator

from reconciler import expressions
from reconciler.emulator import Emulator
from reconciler.graph.identity import PROVISIONING_TEMPLATE, TEMPLATE_APP_ID
from reconciler.graph.metadata import metadata

VERSIONS = ("v1.0", "beta")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"
EVENTUAL = {"ConsistencyLevel": "eventual"}


@pytest.fixture
def api(start_emulator: StartEmulator) -> Iterator[tuple[Emulator, httpx.Client]]:
    emulator = start_emulator(token=TOKEN, page_size=2)
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        yield emulator, client


def configuration(client: httpx.Client, version: str, name: str) -> tuple[str, str]:
    """Instantiate a principal and create its provisioning job; (principal id, job id)."""
    created = client.post(
        f"/{version}/applicationTemplates/{TEMPLATE_APP_ID}/instantiate", json={"displayName": name}
    )
    assert created.status_code == 201, created.text
    sp_id = created.json()["servicePrincipal"]["id"]
    job = client.post(
        f"/{version}/servicePrincipals/{sp_id}/synchronization/jobs",
        json={"templateId": PROVISIONING_TEMPLATE},
    )
    assert job.status_code == 201, job.text
    return sp_id, job.json()["id"]


@pytest.mark.parametrize("version", VERSIONS)
def test_both_versions_are_served_with_their_own_links(
    api: tuple[Emulator, httpx.Client], version: str
) -> None:
    emulator, client = api
    sp_id, job_id = configuration(client, version, "contoso.com")
    r = client.get(f"/{version}/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}")
    assert r.status_code == 200
    job = r.json()
    assert job["@odata.context"].startswith(f"{emulator.url}/{version}/$metadata#")
    # The job carries its schedule and status as documented.
    assert set(job["schedule"]) >= {"interval", "state"} and "code" in job["status"]
    assert client.get("/v2.0/servicePrincipals").status_code == 400


def test_the_versions_differ_where_their_metadata_does() -> None:
    v1, beta = metadata("v1.0"), metadata("beta")
    # beta has the synchronization ping action, v1.0 does not.
    assert beta.bound_actions("Ping", "graph.synchronization", False)
    assert not v1.bound_actions("Ping", "graph.synchronization", False)
    path = "/servicePrincipals/x/synchronization/Ping"
    assert beta.check("POST", path, None) == [] and v1.check("POST", path, None) != []


@pytest.mark.parametrize("version", VERSIONS)
def test_segment_and_option_names_are_case_insensitive(
    api: tuple[Emulator, httpx.Client], version: str
) -> None:
    _, client = api
    sp_id, job_id = configuration(client, version, "contoso.com")
    r = client.get(f"/{version.upper()}/SERVICEPRINCIPALS/{sp_id}/Synchronization/Jobs/{job_id}/SCHEMA")
    assert r.status_code == 200 and r.json()["synchronizationRules"]
    r = client.get(f"/{version}/serviceprincipals", params={"$SELECT": "DISPLAYNAME", "$Top": "1"})
    assert r.status_code == 200 and r.json()["value"] == [{"id": sp_id, "displayName": "contoso.com"}]


def test_the_dollar_is_optional_in_beta_only(api: tuple[Emulator, httpx.Client]) -> None:
    _, client = api
    configuration(client, "beta", "a.com")
    configuration(client, "beta", "b.com")
    assert len(client.get("/beta/servicePrincipals", params={"top": "1"}).json()["value"]) == 1
    # In v1.0 a name without "$" is a custom option, which Graph ignores.
    assert len(client.get("/v1.0/servicePrincipals", params={"top": "1"}).json()["value"]) == 2


def test_count_search_and_paging(api: tuple[Emulator, httpx.Client]) -> None:
    emulator, client = api
    for name in ("contoso.com", "contoso-lab.com", "fabrikam.com"):
        configuration(client, "v1.0", name)
    r = client.get("/v1.0/servicePrincipals/$count", headers=EVENTUAL)
    assert r.status_code == 200 and r.text == "3" and r.headers["content-type"].startswith("text/plain")
    assert client.get("/v1.0/servicePrincipals/$count").status_code == 400
    assert client.get("/v1.0/servicePrincipals", params={"$count": "true"}).status_code == 400
    r = client.get("/v1.0/servicePrincipals", params={"$count": "true"}, headers=EVENTUAL)
    body = r.json()
    assert body["@odata.count"] == 3 and len(body["value"]) == 2
    # The next link is absolute, on the emulator's own address, and keeps the options.
    link = body["@odata.nextLink"]
    assert link.startswith(emulator.url + "/v1.0/servicePrincipals?") and "%24count=true" in link.replace(
        "$", "%24"
    )
    rest = client.get(link, headers=EVENTUAL).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest
    search = {"$search": '"displayName:contoso"'}
    assert client.get("/v1.0/servicePrincipals", params=search).status_code == 400
    found = client.get("/v1.0/servicePrincipals", params=search, headers=EVENTUAL).json()["value"]
    assert sorted(sp["displayName"] for sp in found) == ["contoso-lab.com", "contoso.com"]
    lab = {"$search": '"displayName:lab"', "$count": "true"}
    assert client.get("/v1.0/servicePrincipals", params=lab, headers=EVENTUAL).json()["@odata.count"] == 1


def test_filter_operators_graph_supports(api: tuple[Emulator, httpx.Client]) -> None:
    _, client = api
    ids = {name: configuration(client, "v1.0", name)[0] for name in ("a.com", "b.com", "c.org")}

    def names(text: str, **headers: str) -> list[str]:
        r = client.get("/v1.0/servicePrincipals", params={"$filter": text, "$top": "10"}, headers=headers)
        assert r.status_code == 200, r.text
        return sorted(sp["displayName"] for sp in r.json()["value"])

    assert names("displayName in ('a.com', 'c.org')") == ["a.com", "c.org"]
    assert names(f"id eq '{ids['b.com']}' or startswith(displayName, 'c')") == ["b.com", "c.org"]
    assert names("accountEnabled eq true and displayName eq 'A.COM'") == ["a.com"]
    for name in ("a.com", "b.com"):
        assert (
            client.patch(f"/v1.0/servicePrincipals/{ids[name]}", json={"tags": ["Team-X"]}).status_code == 204
        )
    assert names("tags/any(t: t eq 'team-x')") == ["a.com", "b.com"]
    # ne, not and endswith are advanced queries: refused unless asked for as such.
    r = client.get("/v1.0/servicePrincipals", params={"$filter": "endswith(displayName, '.com')"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"
    advanced = {"$filter": "endswith(displayName, '.com')", "$count": "true"}
    r = client.get("/v1.0/servicePrincipals", params=advanced, headers=EVENTUAL)
    assert r.status_code == 200 and r.json()["@odata.count"] == 2
    for bad in ("notes eq 'x'", "displayName eq", "displayName eq 'a' garbage", "x/y(z)"):
        r = client.get("/v1.0/servicePrincipals", params={"$filter": bad})
        assert r.status_code == 400, bad


def test_unsupported_options_are_a_400_in_graphs_error_shape(api: tuple[Emulator, httpx.Client]) -> None:
    _, client = api
    sp_id, _ = configuration(client, "v1.0", "a.com")
    for path, params in [
        ("/v1.0/servicePrincipals", {"$skip": "1"}),
        ("/v1.0/servicePrincipals", {"$frobnicate": "1"}),
        ("/v1.0/servicePrincipals", {"$select": "noSuchProperty"}),
        ("/v1.0/servicePrincipals", {"$top": "0"}),
        (f"/v1.0/servicePrincipals/{sp_id}", {"$top": "1"}),
        (f"/v1.0/servicePrincipals/{sp_id}", {"$expand": "noSuchNavigation"}),
    ]:
        r = client.get(path, params=params, headers={"client-request-id": "abc-123"})
        assert r.status_code == 400, (path, params)
        error = r.json()["error"]
        assert error["code"] and error["message"]
        inner = error["innerError"]
        assert inner["client-request-id"] == "abc-123" and inner["request-id"] and inner["date"]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_service_principal_has_every_documented_property(
    api: tuple[Emulator, httpx.Client], version: str
) -> None:
    _, client = api
    sp_id, _ = configuration(client, version, "a.com")
    sp = client.get(f"/{version}/servicePrincipals/{sp_id}").json()
    documented = {
        name
        for name, prop in (metadata(version).properties("graph.servicePrincipal") or {}).items()
        if not prop.get("navigation")
    }
    # customSecurityAttributes is returned only when selected, as Graph documents.
    assert set(sp) - {"@odata.context"} == documented - {"customSecurityAttributes"}
    assert (
        sp["accountEnabled"] is True and sp["appRoles"] == [] and sp["servicePrincipalType"] == "Application"
    )
    # The beta extract (a national cloud's, see docs/graph.md) has no customSecurityAttributes.
    wanted = [
        p for p in ("appRoles", "oauth2PermissionScopes", "customSecurityAttributes") if p in documented
    ]
    picked = client.get(f"/{version}/servicePrincipals/{sp_id}", params={"$select": ",".join(wanted)}).json()
    assert set(picked) == {"@odata.context", "id", *wanted}


@pytest.mark.parametrize("version", VERSIONS)
def test_templates_carry_their_schema_when_expanded(api: tuple[Emulator, httpx.Client], version: str) -> None:
    _, client = api
    sp_id, _ = configuration(client, version, "a.com")
    r = client.get(
        f"/{version}/servicePrincipals/{sp_id}/synchronization/templates", params={"$expand": "schema"}
    )
    templates = r.json()["value"]
    assert {t["id"] for t in templates} >= {PROVISIONING_TEMPLATE}
    schemas = {t["id"]: t["schema"] for t in templates}
    plain = client.get(f"/{version}/servicePrincipals/{sp_id}/synchronization/templates").json()["value"]
    assert {t["id"]: t["schema"] for t in plain} == schemas
    assert schemas[PROVISIONING_TEMPLATE]["synchronizationRules"]
    assert all("directories" in schema for schema in schemas.values())
    one = client.get(
        f"/{version}/servicePrincipals/{sp_id}/synchronization/templates/{PROVISIONING_TEMPLATE}",
        params={"$expand": "schema", "$select": "id"},
    ).json()
    assert set(one) == {"@odata.context", "id", "schema"}


@pytest.mark.parametrize("version", VERSIONS)
def test_functions_and_filter_operators_are_the_real_lists(
    api: tuple[Emulator, httpx.Client], version: str
) -> None:
    _, client = api
    sp_id, job_id = configuration(client, version, "a.com")
    for owner in (f"jobs/{job_id}", f"templates/{PROVISIONING_TEMPLATE}"):
        base = f"/{version}/servicePrincipals/{sp_id}/synchronization/{owner}/schema"
        functions = client.get(base + "/functions").json()["value"]
        # The list is the parser's own table: every function it accepts, with the service's keys.
        assert {f["name"] for f in functions} == set(expressions.FUNCTIONS)
        append = next(f for f in functions if f["name"] == "Append")
        assert [p["name"] for p in append["parameters"]] == ["source", "suffix"]
        operators = client.get(base + "/filterOperators").json()["value"]
        names = {o["name"] for o in operators}
        # Every operator the real template schema uses is in the list.
        assert {"NOT REGEX MATCH", "IS NOT NULL", "NOT EQUALS", "IS FALSE", "!&", "ENDS_WITH"} <= names
        assert all(o["arity"] in ("Binary", "Unary") and o["supportedAttributeTypes"] for o in operators)
    assert (
        client.get(
            f"/{version}/servicePrincipals/{sp_id}/synchronization/jobs/nope/schema/functions"
        ).status_code
        == 404
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_discover_returns_the_directory_with_its_attributes(
    api: tuple[Emulator, httpx.Client], version: str
) -> None:
    _, client = api
    sp_id, job_id = configuration(client, version, "a.com")
    base = f"/{version}/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema"
    directories = client.get(base, params={"$select": "directories"}).json()["directories"]
    ad = directories[0]
    r = client.post(f"{base}/directories/{ad['id']}/discover")
    assert r.status_code == 200
    found = r.json()
    assert found["id"] == ad["id"] and found["discoveryDateTime"]
    # What the schema holds, and what AD has beyond the template: the cloud extension strings on user.
    held = {(o["name"], a["name"]) for o in ad["objects"] for a in o["attributes"]}
    discovered = {(o["name"], a["name"]) for o in found["objects"] for a in o["attributes"]}
    assert discovered - held == {("user", f"msDS-cloudExtensionAttribute{i}") for i in range(1, 21)}
    assert held <= discovered
    assert client.post(f"{base}/directories/no-such-directory/discover").status_code == 404


@pytest.mark.parametrize("version", VERSIONS)
def test_validate_credentials(api: tuple[Emulator, httpx.Client], version: str) -> None:
    _, client = api
    sp_id, job_id = configuration(client, version, "a.com")
    jobs = f"/{version}/servicePrincipals/{sp_id}/synchronization/jobs"
    given = {"useSavedCredentials": False, "credentials": [{"key": "Domain", "value": "a.com"}]}
    assert client.post(f"{jobs}/{job_id}/validateCredentials", json=given).status_code == 204
    # Nothing saved yet and nothing given: nothing to validate.
    saved = {"useSavedCredentials": True}
    assert client.post(f"{jobs}/{job_id}/validateCredentials", json=saved).status_code == 400
    new = {"templateId": PROVISIONING_TEMPLATE, **given}
    assert client.post(f"{jobs}/validateCredentials", json=new).status_code == 204
    wrong = {"useSavedCredentials": False, "credentials": [{"key": "Domain", "value": 5}]}
    assert client.post(f"{jobs}/{job_id}/validateCredentials", json=wrong).status_code == 400


@pytest.mark.parametrize("version", VERSIONS)
def test_parse_expression_takes_the_documented_body(api: tuple[Emulator, httpx.Client], version: str) -> None:
    _, client = api
    sp_id, job_id = configuration(client, version, "a.com")
    body = {
        "expression": 'Replace([preferredLanguage], "-", , , "_", , )',
        "targetAttributeDefinition": None,
        "testInputObject": {
            "definition": None,
            "properties": [{"key": "preferredLanguage", "value": "EN-Us"}],
        },
    }
    url = f"/{version}/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema/parseExpression"
    answer = client.post(url, json=body).json()
    assert answer["parsingSucceeded"] and answer["evaluationSucceeded"]
    # The same evaluator the plan uses.
    assert answer["evaluationResult"] == [
        expressions.evaluate(body["expression"], {"preferredLanguage": "EN-Us"})
    ]
    broken = client.post(url, json={"expression": "Replace("}).json()
    assert broken["parsingSucceeded"] is False and broken["error"]["code"] == "ParsingError"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_schema_put_with_lower_case_types_is_stored_in_the_metadata_spelling(
    api: tuple[Emulator, httpx.Client], version: str
) -> None:
    _, client = api
    sp_id, job_id = configuration(client, version, "a.com")
    url = f"/{version}/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema"
    schema = client.get(url).json()
    schema.pop("@odata.context")
    attribute = schema["directories"][0]["objects"][0]["attributes"][0]
    attribute["type"] = attribute["type"].lower()
    assert client.put(url, json=schema).status_code == 204
    again = client.get(url).json()["directories"][0]["objects"][0]["attributes"][0]
    assert again["type"] == attribute["type"].capitalize() or again["type"].lower() == attribute["type"]
    assert again["type"] in metadata(version).types["graph.attributeType"]["members"]
    attribute["type"] = "Strung"
    assert client.put(url, json=schema).status_code == 400


def test_batch_serves_the_batch_version(api: tuple[Emulator, httpx.Client]) -> None:
    _, client = api
    configuration(client, "beta", "a.com")
    requests = [
        {"id": "1", "method": "GET", "url": "/servicePrincipals/$count", "headers": EVENTUAL},
        {"id": "2", "method": "GET", "url": "/servicePrincipals?$select=displayName"},
    ]
    answers = {
        a["id"]: a for a in client.post("/beta/$batch", json={"requests": requests}).json()["responses"]
    }
    assert answers["1"]["status"] == 200 and answers["1"]["body"] == "1"
    assert answers["2"]["body"]["@odata.context"].endswith("/beta/$metadata#servicePrincipals(displayName)")


# --------------------------------------------------------------------------------------------------
# the tool's own flows, on each version


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_plan_apply_and_import_run_on_each_version(
    start_emulator: StartEmulator, tmp_path: Path, version: str
) -> None:
    emulator = start_emulator(token=TOKEN)
    target = f"graph+{emulator.url}/{version}"
    env = {"RECONCILER_GRAPH_TOKEN": TOKEN, "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    applied = run_cli("apply", str(EXAMPLES), "--target", target, "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stderr
    again = run_cli("plan", str(EXAMPLES), "--target", target, "--detailed-exitcode", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    imported = run_cli("import", "--out", str(tmp_path / "imported"), "--target", target, env=env)
    assert imported.returncode == 0, imported.stderr
    # One file per configuration; the directory extensions application is no configuration.
    configurations = [
        sp
        for sp in emulator.store.list_service_principals()
        if sp["displayName"] != "CloudSyncCustomExtensionsApp"
    ]
    assert len(list((tmp_path / "imported").glob("*.yaml"))) == len(configurations)
    # Every request went to the version of the target, and each body was valid for that version.
    versions = {r.version for r in emulator.recorded}
    assert versions == {version}
    assert emulator.stats["requests"] > 0
