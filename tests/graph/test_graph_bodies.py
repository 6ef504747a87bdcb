"""Every request body the Graph provider sends, checked against the Graph v1.0 metadata extract."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from support.graph import StartEmulator, desired, portal_configuration, provider_for, state

from reconciler.core.model import Scope, ScopeKind
from reconciler.core.plan import PlanOptions, Provenance
from reconciler.engine.operations import plan_and_apply
from reconciler.graph.metadata import METADATA_FILE, metadata
from reconciler.providers.base import RESET_FORCE_DELETES, RESET_FULL

# A copy of ../shared/reference/graph-v1.0-synchronization.json, the v1.0 types the Graph calls follow.
REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / METADATA_FILE


def test_packaged_metadata_holds_the_shared_reference() -> None:
    # The packaged extract is made from the published metadata by tools/extract_metadata.py and holds more
    # types and properties than the shared reference (service principals in full, open types marked), but
    # every type, property, enum member and action the reference lists must be there exactly as listed.
    packaged = json.loads(
        resources.files("reconciler").joinpath("data", METADATA_FILE).read_text(encoding="utf-8")
    )
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert packaged["actions"] == reference["actions"]
    for name, wanted in reference["types"].items():
        have = packaged["types"].get(name)
        assert have is not None, name
        for key, value in wanted.items():
            if key == "properties":
                for prop, definition in value.items():
                    assert have["properties"].get(prop) == definition, f"{name}.{prop}"
            else:
                assert have.get(key) == value, f"{name}: {key}"


def test_both_extracts_hold_the_application_side_types() -> None:
    # What the application, app role assignment and extension property calls are checked against.
    for version, stamp in (("v1.0", "createdDateTime"), ("beta", "creationTimestamp")):
        types = json.loads(
            resources.files("reconciler")
            .joinpath("data", f"graph-{version}-synchronization.json")
            .read_text(encoding="utf-8")
        )["types"]
        assert types["appRoleAssignment"]["base"] == "graph.directoryObject", version
        assert types["appRoleAssignment"]["properties"]["appRoleId"]["nullable"] is False, version
        assert stamp in types["appRoleAssignment"]["properties"], version
        assert types["extensionProperty"]["properties"]["dataType"]["nullable"] is False, version
        assert "extensionProperties" in types["application"]["properties"], version


EXTRACT_TOOL = Path(__file__).resolve().parents[2] / "tools" / "extract_metadata.py"
EDMX = (
    '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
    '<Schema Namespace="microsoft.graph" Alias="graph" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
    "{}</Schema></edmx:DataServices></edmx:Edmx>"
)


def test_extract_tool_merges_fragments_and_names_what_is_missing(tmp_path: Path) -> None:
    # The beta extract is made from fragments of a document too large to fetch whole: a type left out
    # of every fragment must stop the tool, by name, and fragments must merge into one schema.
    first = tmp_path / "a.xml"
    first.write_text(
        EDMX.format(
            '<EntityType Name="synchronization"><Property Name="secrets" '
            'Type="Collection(graph.synchronizationSecretKeyStringValuePair)" /></EntityType>'
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out.json"
    run = [sys.executable, str(EXTRACT_TOOL), str(first), str(out), "--source", "test"]
    failed = subprocess.run(run, capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert "synchronizationSecretKeyStringValuePair" in failed.stderr
    assert not out.exists()
    second = tmp_path / "b.xml"
    second.write_text(
        EDMX.format(
            '<ComplexType Name="synchronizationSecretKeyStringValuePair">'
            '<Property Name="value" Type="Edm.String" /></ComplexType>'
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [*run[:3], str(second), str(out), "--source", "test", "--partial"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    types = json.loads(out.read_text(encoding="utf-8"))["types"]
    assert set(types) >= {"synchronization", "synchronizationSecretKeyStringValuePair"}
    # The roots the fragments do not define are listed, since --partial was given.
    assert "servicePrincipal" in done.stderr
    twice = subprocess.run(
        [sys.executable, str(EXTRACT_TOOL), str(second), str(second), str(out), "--source", "test"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "defined twice" in twice.stderr


# --------------------------------------------------------------------------------------------------
# the checker itself: it must catch each kind of mistake


SP = "/servicePrincipals/5c1e0d1c-0000-0000-0000-000000000001"
JOB = SP + "/synchronization/jobs/AD2AADProvisioning.abc.def"


def one_violation(method: str, path: str, body: Any, pattern: str) -> None:
    problems = metadata().check(method, path, body)
    assert len(problems) == 1, problems
    assert re.search(pattern, problems[0]), problems[0]


def test_documented_bodies_pass() -> None:
    check = metadata().check
    template = "/applicationTemplates/1a4721b3-e57f-4451-ae87-ef078703ec94/instantiate"
    assert check("POST", template, {"displayName": "contoso.com"}) == []
    assert check("POST", SP + "/synchronization/jobs", {"templateId": "AD2AADProvisioning"}) == []
    secrets = {
        "value": [{"key": "Domain", "value": '{"domain":"contoso.com"}'}, {"key": "AppKey", "value": "{}"}]
    }
    assert check("PUT", SP + "/synchronization/secrets", secrets) == []
    assert (
        check("POST", JOB + "/restart", {"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}})
        == []
    )
    assert check("POST", JOB + "/start", None) == []
    on_demand = {
        "parameters": [
            {
                "ruleId": "6c409270-f78a-4bc6-af23-7cf3ab6482fe",
                "subjects": [
                    {"objectId": "CN=AdeleV,CN=Users,DC=corp,DC=chicago,DC=com", "objectTypeName": "user"}
                ],
            }
        ]
    }
    assert check("POST", JOB + "/provisionOnDemand", on_demand) == []
    assert check("PATCH", SP, {"tags": ["a", "b"]}) == []
    assert check("DELETE", "/applications(appId='00000000-0000-0000-0000-000000000001')", None) == []
    assert check("GET", JOB + "/schema?$select=id,version", None) == []


def test_unknown_property() -> None:
    one_violation("PATCH", SP, {"tags": [], "colour": "blue"}, r"servicePrincipal has no property 'colour'")
    one_violation("POST", SP + "/synchronization/jobs", {"template": "x"}, r"has no property 'template'")
    one_violation("POST", JOB + "/restart", {"criteria": {"scope": "Full"}}, r"no property 'scope'")
    one_violation(
        "POST", JOB + "/restart", {"resetScope": "Full"}, r"'restart' has no parameter 'resetScope'"
    )


def test_wrong_type() -> None:
    one_violation("PATCH", SP, {"tags": "managed"}, r"expected a list")
    one_violation("PATCH", SP, {"tags": None}, r"null is not allowed")
    one_violation("POST", SP + "/synchronization/jobs", {"templateId": 5}, r"expected a string")
    rule = {"id": "r", "priority": "1"}
    one_violation("PUT", JOB + "/schema", {"synchronizationRules": [rule]}, r"priority: expected an integer")
    mapping = {"targetAttributeName": "x", "matchingPriority": True}
    schema = {"synchronizationRules": [{"objectMappings": [{"attributeMappings": [mapping]}]}]}
    one_violation("PUT", JOB + "/schema", schema, r"matchingPriority: expected an integer")
    job = {"schedule": {"interval": "40 minutes", "state": "Active"}}
    one_violation("POST", SP + "/synchronization/jobs", job, r"ISO 8601 duration")


def test_enum_member_that_does_not_exist() -> None:
    one_violation(
        "PUT",
        SP + "/synchronization/secrets",
        {"value": [{"key": "Passwd", "value": "x"}]},
        r"'Passwd' is not a member",
    )
    one_violation(
        "POST",
        JOB + "/restart",
        {"criteria": {"resetScope": "Watermark, Everything"}},
        r"'Everything' is not a member",
    )
    mapping = {"targetAttributeName": "x", "flowType": "Sometimes"}
    schema = {"synchronizationRules": [{"objectMappings": [{"attributeMappings": [mapping]}]}]}
    one_violation("PUT", JOB + "/schema", schema, r"'Sometimes' is not a member of attributeFlowType")


def test_action_that_is_not_bound_to_the_type() -> None:
    one_violation(
        "POST",
        JOB + "/schema/start",
        None,
        r"'start' is bound to graph.synchronizationJob, not to graph.synchronizationSchema",
    )
    one_violation(
        "POST", JOB + "/parseExpression", {"expression": "[a]"}, r"bound to graph.synchronizationSchema"
    )
    one_violation("POST", SP + "/instantiate", {"displayName": "x"}, r"bound to graph.applicationTemplate")
    one_violation("POST", SP + "/synchronization/jobz", {}, r"no property or bound action 'jobz'")


def test_batch_envelope() -> None:
    too_many = {"requests": [{"id": str(i), "method": "GET", "url": SP} for i in range(21)]}
    one_violation("POST", "/$batch", too_many, r"limit is 20")
    no_type = {"requests": [{"id": "1", "method": "PATCH", "url": SP, "body": {"tags": []}}]}
    one_violation("POST", "/$batch", no_type, r"Content-Type")
    bad_inner = {
        "requests": [
            {
                "id": "1",
                "method": "PATCH",
                "url": SP,
                "body": {"tag": []},
                "headers": {"Content-Type": "application/json"},
            }
        ]
    }
    one_violation("POST", "/$batch", bad_inner, r"requests\[0\].*no property 'tag'")


def test_the_documented_test_input_is_inside_the_metadata() -> None:
    # The docs' parseExpression example sends testInputObject.properties[].value: value is not declared,
    # but stringKeyObjectValuePair is an open type in both versions' metadata, so it is allowed.
    body = {
        "expression": "[a]",
        "targetAttributeDefinition": None,
        "testInputObject": {"definition": None, "properties": [{"key": "a", "value": "b"}]},
    }
    for version in ("v1.0", "beta"):
        assert metadata(version).check("POST", JOB + "/schema/parseExpression", body) == []
    # A closed type still refuses what it does not declare.
    body["testInputObject"]["colour"] = "blue"
    assert metadata().check("POST", JOB + "/schema/parseExpression", body)


# --------------------------------------------------------------------------------------------------
# every body the provider sends


def _route(method: str, path: str) -> str:
    path = path.split("?")[0]
    path = re.sub(r"/servicePrincipals/[^/]+", "/servicePrincipals/{id}", path)
    path = re.sub(r"/jobs/[^/]+", "/jobs/{jobId}", path)
    path = re.sub(r"/templates/[^/]+", "/templates/{templateId}", path)
    path = re.sub(r"/applications\(appId='[^']*'\)", "/applications(appId={appId})", path)
    return f"{method} {path}"


def test_every_request_the_provider_sends_is_valid(start_emulator: StartEmulator) -> None:
    # The emulator would refuse an invalid body itself; it is switched off here so that the check
    # below sees every request exactly as sent.
    emulator = start_emulator(validate_bodies=False)
    provider = provider_for(emulator)
    a, b = (
        desired("alpha"),
        desired("beta", password_hash_sync=False, scope=Scope(ScopeKind.GROUPS, ("CN=G,DC=b",))),
    )
    run = plan_and_apply(state(a, b), provider, PlanOptions(), Provenance())
    assert run.result.ok, [o.error for o in run.result.outcomes]
    (alpha,) = [o for o in provider.read_all() if o.name == "alpha"]
    provider.update_settings(
        alpha.id,
        desired("alpha", password_hash_sync=False).settings,
        deletion_protection=True,
        restart_token="r1",
    )
    provider.update_settings(alpha.id, a.settings, deletion_protection=False, restart_token=None)
    provider.edit_schema(alpha.id, Scope.all(), list(provider.template_defaults())[:3], [("user", "Title")])
    provider.pause(alpha.id)
    provider.start(alpha.id)
    provider.restart(alpha.id, RESET_FULL)
    provider.restart(alpha.id, RESET_FORCE_DELETES)
    provider.restart(alpha.id, "Watermark, Escrows, QuarantineState")
    theirs = portal_configuration(emulator.store, "portal.contoso.com")
    provider.adopt(theirs, "portal")
    assert provider.parse_expression('Join(" ", [givenName], [sn])')["parsingSucceeded"] is True
    assert provider.parse_expression("Join(")["parsingSucceeded"] is False
    assert set(provider.provision_on_demand(alpha.id, "CN=Adele,OU=Sync,DC=alpha,DC=com")) == {"key", "value"}
    provider.delete(alpha.id)
    provider.close()

    problems = [
        f"{r.method} {r.path}: {p}"
        for r in emulator.recorded
        for p in metadata().check(r.method, r.path, r.body)
    ]
    assert problems == []
    sent = {_route(r.method, r.path) for r in emulator.recorded if r.body is not None}
    assert sent >= {
        "POST /applicationTemplates/1a4721b3-e57f-4451-ae87-ef078703ec94/instantiate",
        "PATCH /servicePrincipals/{id}",
        "POST /servicePrincipals/{id}/synchronization/jobs",
        "PUT /servicePrincipals/{id}/synchronization/jobs/{jobId}/schema",
        "PUT /servicePrincipals/{id}/synchronization/secrets",
        "POST /servicePrincipals/{id}/synchronization/jobs/{jobId}/restart",
        "POST /servicePrincipals/{id}/synchronization/jobs/{jobId}/provisionOnDemand",
        "POST /servicePrincipals/{id}/synchronization/templates/{templateId}/schema/parseExpression",
        "POST /$batch",
    }
    bodiless = {_route(r.method, r.path) for r in emulator.recorded if r.body is None}
    assert bodiless >= {
        "POST /servicePrincipals/{id}/synchronization/jobs/{jobId}/start",
        "POST /servicePrincipals/{id}/synchronization/jobs/{jobId}/pause",
        "DELETE /servicePrincipals/{id}/synchronization/jobs/{jobId}",
        "DELETE /applications(appId={appId})",
    }
