"""``reconciler provision`` end to end on the example directory and configurations (local tenant)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.provisioning import (
    ADELE,
    ALEX,
    CASEY,
    CONTOSO_DIR,
    FABRIKAM_DIR,
    ISAIAH,
    JONI,
    LIDIA,
    MEGAN,
    NESTOR,
    PRADEEP,
    SALES_TEAM,
    Run,
    decode,
)

from reconciler.errors import NotFoundError, ProviderError
from reconciler.graph.identity import PROVISIONING_TEMPLATE, find_job
from reconciler.graph.reading import PROVISIONING_RULE_ID
from reconciler.providers.local import LocalProvider
from reconciler.provisioning.on_demand import provision_request


def provision_json(run: Run, *args: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    r = run("provision", *args, "--format", "json")
    response = r.json()
    key, log = decode(response)
    return r.code, key, log


def steps(log: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["type"], s["status"]) for s in log["provisioningSteps"]]


def modified(log: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {m["displayName"]: (m["oldValue"], m["newValue"]) for m in log["modifiedProperties"]}


def local(project: Path) -> LocalProvider:
    return LocalProvider(project / "tenant.db")


def test_a_user_in_scope_is_created_with_its_mapped_attributes(tenant: Path, run: Run) -> None:
    code, key, log = provision_json(run, "contoso", "--subject", ADELE)
    assert code == 0
    assert key == {"result": "Success", "details": {}}
    assert steps(log) == [
        ("Import", "Success"),
        ("Scoping", "Success"),
        ("Matching", "Success"),
        ("Export", "Success"),
    ]
    assert log["action"] == "Create"
    assert log["reportableIdentifier"] == "AdeleV@contoso.com"
    assert log["sourceSystem"]["name"] == "Active Directory"
    assert log["targetSystem"]["name"] == "Azure Active Directory"
    assert log["statusInfo"]["status"] == "Success"
    props = modified(log)
    assert props["UserPrincipalName"] == (None, "AdeleV@contoso.com")
    assert props["Department"] == (None, "Sales")  # the configuration's own Direct mapping
    assert props["ExtensionAttribute1"] == (None, "FTE")  # Constant
    assert props["DisplayName"] == (None, "Adele Vance")  # Expression, on create only
    assert props["companyName"] == (None, "Contoso Ltd.")  # the shared mapping set
    assert props["AccountEnabled"] == (None, "True")
    assert props["onPremisesObjectIdentifier"] == (None, "5b0b3cbb-8a8a-4d7e-9e0c-3f1c2b6d7a01")
    assert "ExtensionAttribute3" not in props  # the template default removed by contoso
    scoping = log["provisioningSteps"][1]
    assert scoping["details"]["Scoping filter evaluation passed"] == "True"

    # The cloud object is there, and provisioning again changes nothing.
    provider = local(tenant)
    (user,) = provider.store.list_cloud_objects("User")
    assert user["id"] == log["targetIdentity"]["id"] and user["attributes"]["Department"] == "Sales"
    provider.close()
    code, key, log = provision_json(run, "contoso", "--subject", ADELE)
    assert code == 0 and key["result"] == "Skipped" and key["details"]["errorCode"] == "RedundantExport"
    assert steps(log)[-1] == ("Export", "Skipped") and log["modifiedProperties"] == []


def test_a_changed_source_attribute_is_an_update_with_old_and_new_values(tenant: Path, run: Run) -> None:
    assert run("provision", "contoso", "--subject", ADELE).code == 0
    provider = local(tenant)
    found = provider.store.get_onprem_object(ADELE)
    assert found is not None
    attrs = dict(found["attributes"], department="Marketing", givenName="Adèle", sn="Vance-Smith")
    provider.store.put_onprem_object(ADELE, "user", attrs)
    provider.close()
    code, key, log = provision_json(run, "contoso", "--subject", ADELE)
    assert code == 0 and key["result"] == "Success" and log["action"] == "Update"
    # displayName is applied on create only, so it keeps the first value.
    assert modified(log) == {
        "Department": ("Sales", "Marketing"),
        "GivenName": ("Adele", "Adèle"),
        "Surname": ("Vance", "Vance-Smith"),
    }
    assert "matched on onPremisesObjectIdentifier" in log["provisioningSteps"][2]["description"]


def test_the_text_output_shows_the_steps_and_the_properties(tenant: Path, run: Run) -> None:
    r = run("provision", "contoso", "--subject", ALEX)
    assert r.code == 0, r.err
    assert "1. Import    Success  Retrieved user 'Alex Wilber' from Active Directory" in r.out
    assert "4. Export    Success  User 'Alex Wilber' was created in Azure Active Directory" in r.out
    assert "Modified properties (" in r.out
    # No userPrincipalName in AD: the fallback builds one from sAMAccountName and the domain.
    assert any(line.split() == ["UserPrincipalName", "-", "alexw@contoso.com"] for line in r.out.splitlines())
    assert r.out.rstrip().endswith("Result: Success (Create)")


def test_an_escaped_comma_in_the_scoped_ou(tenant: Path, run: Run) -> None:
    code, key, log = provision_json(run, "contoso", "--subject", LIDIA)
    assert code == 0 and key["result"] == "Success"
    assert "in scope" in log["provisioningSteps"][1]["description"]


def test_a_disabled_account(tenant: Path, run: Run) -> None:
    _, _, log = provision_json(run, "contoso", "--subject", MEGAN)
    assert modified(log)["AccountEnabled"] == (None, "False")


def test_out_of_scope_is_reported_and_provisioned_as_the_service_does(tenant: Path, run: Run) -> None:
    code, key, log = provision_json(run, "contoso", "--subject", PRADEEP)
    assert code == 0 and key["result"] == "Success"
    scoping = log["provisioningSteps"][1]
    assert scoping["status"] == "Success"
    assert scoping["details"]["Scoping filter evaluation passed"] == "False"
    assert "out of scope" in scoping["description"] and "does not apply scoping" in scoping["description"]


def test_out_of_scope_with_apply_scoping_is_skipped(tenant: Path, run: Run) -> None:
    code, key, log = provision_json(run, "contoso", "--subject", PRADEEP, "--apply-scoping")
    assert code == 0
    assert key["result"] == "Skipped" and key["details"]["errorCode"] == "NotEffectivelyEntitled"
    assert "not in any scoped organizational unit" in key["details"]["errorMessage"]
    assert steps(log) == [("Import", "Success"), ("Scoping", "Skipped")]
    assert log["modifiedProperties"] == []
    provider = local(tenant)
    assert provider.store.list_cloud_objects("User") == []  # (the cloud groups are the directory's)
    provider.close()
    r = run("provision", "contoso", "--subject", PRADEEP, "--apply-scoping")
    assert r.code == 0 and "Result: Skipped: NotEffectivelyEntitled" in r.out


def test_group_scope_counts_direct_members_only(tenant: Path, run: Run) -> None:
    for dn, expected in ((NESTOR, "Success"), (ISAIAH, "Success"), (JONI, "Skipped")):
        code, key, _ = provision_json(run, "fabrikam", "--subject", dn, "--apply-scoping")
        assert (code, key["result"]) == (0, expected), dn


def test_an_error_call_fails_the_export_with_its_message(tenant: Path, run: Run) -> None:
    code, key, log = provision_json(run, "contoso", "--subject", CASEY)
    assert code == 1
    assert key == {
        "result": "Failure",
        "details": {"errorCode": "ExpressionRaisedError", "errorMessage": "AccountName is not present"},
    }
    assert steps(log) == [
        ("Import", "Success"),
        ("Scoping", "Success"),
        ("Matching", "Success"),
        ("Export", "Failure"),
    ]
    export = log["provisioningSteps"][-1]
    assert "AccountName is not present" in export["description"]
    assert export["details"] == {
        "UserPrincipalName": "AccountName is not present",
        "onPremisesUserPrincipalName": "AccountName is not present",
    }
    assert (
        log["statusInfo"]["status"] == "Failure" and log["statusInfo"]["errorCode"] == "ExpressionRaisedError"
    )
    provider = local(tenant)
    assert provider.store.list_cloud_objects("User") == []  # nothing written
    provider.close()
    r = run("provision", "contoso", "--subject", CASEY)
    assert r.code == 1
    assert (
        "4. Export    Failure  The mapping of onPremisesUserPrincipalName failed: AccountName is not present"
        in r.out
    )
    assert "Result: Failure (Create): ExpressionRaisedError: AccountName is not present" in r.out


def test_an_unknown_dn_is_a_clear_failure(tenant: Path, run: Run) -> None:
    r = run("provision", "contoso", "--subject", "CN=Nobody,OU=Sales,DC=contoso,DC=com")
    assert r.code == 1
    assert (
        "1. Import    Failure  No object with the distinguished name 'CN=Nobody,OU=Sales,DC=contoso,DC=com'"
        in r.out
    )
    assert "Result: Failure: ObjectNotFound" in r.out
    code, key, log = provision_json(run, "contoso", "--subject", "CN=Nobody,DC=contoso,DC=com")
    assert (
        code == 1
        and key["details"]["errorCode"] == "ObjectNotFound"
        and steps(log) == [("Import", "Failure")]
    )


def test_the_wrong_type_is_a_failure(tenant: Path, run: Run) -> None:
    code, key, _ = provision_json(run, "contoso", "--subject", SALES_TEAM)
    assert code == 1 and key["details"]["errorCode"] == "ObjectTypeMismatch"
    assert "is a group, not a user" in key["details"]["errorMessage"]


def test_a_group_is_skipped_when_the_schema_has_no_group_object_mapping(tenant: Path, run: Run) -> None:
    # The job schema is the real one: it has a user object mapping only.
    code, key, log = provision_json(run, "contoso", "--subject", SALES_TEAM, "--type", "group")
    assert code == 0 and key["result"] == "Skipped"
    assert key["details"]["errorCode"] == "ObjectTypeNotProvisioned"
    assert log["modifiedProperties"] == []


def test_unknown_configuration_and_bad_options(tenant: Path, run: Run) -> None:
    r = run("provision", "nope", "--subject", ADELE)
    assert r.code == 1 and "no configuration named 'nope'" in r.err
    r = run("provision", "contoso", "--subject", ADELE, "--apply-scoping", "--target", "memory:x")
    assert r.code == 64 and "--apply-scoping needs a local target" in r.err
    assert run("provision", "contoso").code == 64  # --subject is required


def test_the_directory_commands(project: Path, run: Run) -> None:
    r = run("directory", "load", CONTOSO_DIR, FABRIKAM_DIR)
    assert r.code == 0
    assert r.out.startswith("Loaded 22 objects (4 group, 8 organizationalUnit, 10 user) and 6 memberships")
    r = run("directory", "list", "--type", "group")
    assert r.code == 0 and "CN=Sales Team,OU=Sales,DC=contoso,DC=com  (2 members)" in r.out
    listed = json.loads(run("directory", "list", "--format", "json").out)
    assert len(listed) == 24  # and the two cloud groups, after them
    assert [e["id"] for e in listed[22:]] == [
        "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b",
        "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d",
    ]
    r = run("directory", "load", CONTOSO_DIR)
    assert "removed 9 objects that are not in the files" in r.out
    bad = project / "bad.yaml"
    bad.write_text("kind: Directory\nobjects:\n  - {dn: 'CN=A,DC=x', type: usr}\n")
    r = run("directory", "load", bad)
    assert r.code == 1 and "bad.yaml:3:" in r.err and "did you mean 'user'?" in r.err
    r = run("directory", "list", "--target", "memory:x")
    assert r.code == 64 and "only a local target" in r.err


def test_the_provider_and_the_graph_action(tenant: Path) -> None:
    provider = local(tenant)
    try:
        (contoso,) = [o for o in provider.read_all() if o.name == "contoso"]
        key, _ = decode(provider.provision_on_demand(contoso.id, ADELE))
        assert key["result"] == "Success"
        with pytest.raises(ProviderError, match="objectTypeName"):
            provider.provision_on_demand(contoso.id, ADELE, "computer")
        with pytest.raises(NotFoundError):
            provider.provision_on_demand("00000000-0000-0000-0000-000000000000", ADELE)

        job = find_job(provider.store.list_jobs(contoso.id), PROVISIONING_TEMPLATE)
        assert job is not None
        body = {
            "parameters": [
                {"ruleId": PROVISIONING_RULE_ID, "subjects": [{"objectId": ALEX, "objectTypeName": "user"}]}
            ]
        }
        key, log = decode(provision_request(provider.store, contoso.id, job["id"], body))
        assert key["result"] == "Success" and log["action"] == "Create"
        body["parameters"][0]["ruleId"] = "not-a-rule"
        with pytest.raises(ProviderError, match="ruleId"):
            provision_request(provider.store, contoso.id, job["id"], body)
        with pytest.raises(ProviderError, match="exactly one"):
            provision_request(provider.store, contoso.id, job["id"], {"parameters": []})
    finally:
        provider.close()
