"""The embedded template schema: built from a real job schema, and what tools/build_template.py builds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reconciler.core.model import CREDENTIAL_DATA
from reconciler.graph.reading import PROVISIONING_RULE_ID, template_defaults
from reconciler.graph.template import template_schema

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "real" / "ad2aad-schema-sample1.json"


def _real() -> dict[str, object]:
    data = json.loads(REAL.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_template_is_the_real_schema_without_what_belongs_to_one_configuration() -> None:
    schema, real = template_schema(), _real()
    assert [k for k in schema if "@odata." in k] == [] and "provisioningTaskIdentifier" not in schema
    (rule,) = schema["synchronizationRules"]
    (real_rule,) = real["synchronizationRules"]  # type: ignore[attr-defined]
    assert rule["id"] == PROVISIONING_RULE_ID and rule["name"] == "AD2AADProvisioning"
    # No filter property the data does not have; the object mappings exactly as the service has them.
    assert "containerFilter" not in rule and "groupFilter" not in rule
    pairs = [(om["sourceObjectName"], om["targetObjectName"]) for om in rule["objectMappings"]]
    assert pairs == [("user", "User"), ("", "SyncCredentialsChangeItem")]
    assert schema["directories"] == real["directories"]
    for om, real_om in zip(rule["objectMappings"], real_rule["objectMappings"], strict=True):
        assert om["attributeMappings"] == real_om["attributeMappings"]
    # The one thing taken out: the organizational-unit clause of that configuration's scope.
    (group,) = rule["objectMappings"][0]["scope"]["inputFilterGroups"]
    (real_group,) = real_rule["objectMappings"][0]["scope"]["inputFilterGroups"]
    assert group["name"] == real_group["name"] == "DefaultUserExclusions.0.UX-OrganizationalGroup-Scope"
    assert group["clauses"] == real_group["clauses"][:-1]
    assert "OU=Cloud" not in json.dumps(schema)


def test_defaults_are_the_real_rows_with_their_spelling() -> None:
    keys = {m.key: m for m in template_defaults()}
    assert len(keys) == 136 and all(obj == "user" for obj, _ in keys)
    assert keys[("user", "ExtensionAttribute3")].value == "Trim([extensionAttribute3])"
    assert keys[("user", "CommonName")] and ("user", "commonName") not in keys
    assert keys[("user", "onPremisesObjectIdentifier")].matching_priority == 1
    assert all(m.target != CREDENTIAL_DATA for m in keys.values())


def test_committed_template_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_template.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
