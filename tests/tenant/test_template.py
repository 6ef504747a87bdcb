"""The embedded template schema: its shape, and that it is what tools/build_template.py builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.core.model import CREDENTIAL_DATA
from reconciler.graph.shapes import PROVISIONING_RULE_ID
from reconciler.tenant.template import template_defaults, template_schema

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "default-mappings.json"


def test_template_shape() -> None:
    schema = template_schema()
    (rule,) = schema["synchronizationRules"]
    assert (
        rule["id"] == PROVISIONING_RULE_ID and rule["name"] == "AD2AADProvisioning" and rule["priority"] == 1
    )
    assert (rule["sourceDirectoryName"], rule["targetDirectoryName"]) == (
        "Active Directory",
        "Azure Active Directory",
    )
    assert {"key": "supportsProvisionOnDemand", "value": "true"} in rule["metadata"]
    assert rule["containerFilter"] == {"includedContainers": []} and rule["groupFilter"] == {
        "includedGroups": []
    }
    pairs = [(om["sourceObjectName"], om["targetObjectName"]) for om in rule["objectMappings"]]
    assert pairs == [("user", "User"), ("inetOrgPerson", "User"), ("group", "Group"), ("contact", "Contact")]
    assert rule["objectMappings"][0]["name"] == "Provision Active Directory users"
    assert rule["objectMappings"][0]["scope"]["inputFilterGroups"][0]["clauses"]
    assert [d["name"] for d in schema["directories"]] == ["Active Directory", "Azure Active Directory"]


def test_every_row_has_the_full_service_shape_and_a_known_source_attribute() -> None:
    schema = template_schema()
    ad = {o["name"]: {a["name"] for a in o["attributes"]} for o in schema["directories"][0]["objects"]}
    aad = {o["name"]: {a["name"] for a in o["attributes"]} for o in schema["directories"][1]["objects"]}

    def attributes(source: dict[str, object]) -> list[str]:
        if source["type"] == "Attribute":
            return [str(source["name"])]
        return [a for p in source["parameters"] for a in attributes(p["value"])]  # type: ignore[attr-defined]

    for om in schema["synchronizationRules"][0]["objectMappings"]:
        for am in om["attributeMappings"]:
            assert am["exportMissingReferences"] is False and am["flowBehavior"] == "FlowWhenChanged"
            assert am["flowType"] == "Always" and "defaultValue" in am and "matchingPriority" in am
            assert am["targetAttributeName"] != CREDENTIAL_DATA
            assert am["targetAttributeName"] in aad[om["targetObjectName"]]
            for name in attributes(am["source"]):
                assert name in ad[om["sourceObjectName"]], (om["sourceObjectName"], name)


def test_defaults_include_the_documented_rows() -> None:
    keys = {m.key: m for m in template_defaults()}
    assert keys[("user", "sourceAnchorBinary")].value == "objectGUID"
    assert keys[("user", "ExtensionAttribute3")].value == "Trim([extensionAttribute3])"
    assert ("user", "AccountEnabled") in keys and ("inetOrgPerson", "AccountEnabled") in keys
    assert keys[("user", "UserType")].value == "UserType"
    assert keys[("group", "onPremisesObjectIdentifier")].matching_priority == 1


@pytest.mark.skipif(not REFERENCE.exists(), reason="the reference mappings are not checked out here")
def test_committed_template_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_template.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
