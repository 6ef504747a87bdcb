"""On-premises attributes (AD schema extensions) through the real CLI, on the local tenant and over the
emulator (real HTTP on 127.0.0.1): the directory's schema extensions are loaded, a configuration
declares the ones it maps, plan shows the attribute definitions apply copies from a directory discover,
a second apply changes nothing, an undiscovered one holds the configuration back, and bad input is an
error with file and line. The tenant file is the witness: the job schema's AD directory and mappings."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import assert_apply_refused

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.providers.local import LocalProvider

Run = Callable[..., Any]

DIRECTORY = """\
kind: Directory
domain: contoso.com
schemaExtensions:
  - {name: contosoBadgeId, objects: [user]}
  - {name: msDS-cloudExtensionAttribute1, objects: [user, group], type: String}
  - {name: contosoClearance, objects: [user], type: Integer}
objects:
  - {dn: "OU=Sales,DC=contoso,DC=com", type: organizationalUnit}
"""

DECLARED = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: contoso
spec:
  domain: contoso.com
  notificationEmail: ops@contoso.com
  onPremisesAttributes:
    - {name: contosoBadgeId}
  attributeMappings:
    user:
      - {target: extensionAttribute7, source: contosoBadgeId}
"""

MORE = (
    DECLARED.replace(
        "    - {name: contosoBadgeId}\n",
        "    - {name: contosoBadgeId}\n    - {name: msDS-cloudExtensionAttribute1, objects: [user]}\n",
    )
    + "      - {target: extensionAttribute8, source: msDS-cloudExtensionAttribute1}\n"
)


def _tenant(project: Path) -> LocalProvider:
    return LocalProvider(project / ".reconciler" / "tenant.db")


def _write(project: Path, text: str) -> None:
    (project / "configs" / "contoso.yaml").write_text(text)


def _load_directory(project: Path, run: Run) -> None:
    (project / "directory.yaml").write_text(DIRECTORY)
    db = project / ".reconciler" / "tenant.db"
    r = run("directory", "load", "directory.yaml", "--target", f"local:{db}")
    assert r.code == 0 and "3 AD schema extensions" in r.out, r.out + r.err


def _schema(t: LocalProvider) -> dict[str, Any]:
    (o,) = t.read_all()
    job = next(j for j in t.store.list_jobs(o.id) if j["templateId"] == "AD2AADProvisioning")
    return t.store.get_schema(o.id, job["id"])


def _ad_user(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The AD directory's user object: attribute name -> definition."""
    ad = next(d for d in schema["directories"] if d["name"] == "Active Directory")
    user = next(o for o in ad["objects"] if o["name"] == "user")
    return {a["name"]: a for a in user["attributes"]}


def _mapped(schema: dict[str, Any]) -> dict[str, str]:
    rows = schema["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"]
    # Target names compare without case (the service's row keeps its spelling, e.g. ExtensionAttribute7).
    return {am["targetAttributeName"].casefold(): (am["source"] or {}).get("name") for am in rows}


def test_declared_attributes_are_defined_from_discover_mapped_and_kept(
    project: Path, run: Run, target: str
) -> None:
    _load_directory(project, run)
    _write(project, DECLARED)
    r = run("plan", "configs", "--target", target)
    assert r.code == 0, r.err
    assert "+ attributeDefinitions.user.contosoBadgeId" in r.out
    assert "checked when apply has made its provisioning job" in r.out + r.err
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0

    t = _tenant(project)
    schema = _schema(t)
    user = _ad_user(schema)
    # The definition is the one the discover handed out, exactly.
    (o,) = t.read_all()
    job = next(j for j in t.store.list_jobs(o.id) if j["templateId"] == "AD2AADProvisioning")
    ad_id = next(d["id"] for d in schema["directories"] if d["name"] == "Active Directory")
    found = t.store.discover(t.store.get_schema(o.id, job["id"]), ad_id)
    discovered = next(
        a
        for obj in found["objects"]
        if obj["name"] == "user"
        for a in obj["attributes"]
        if a["name"] == "contosoBadgeId"
    )
    assert user["contosoBadgeId"] == discovered
    assert "msDS-cloudExtensionAttribute1" not in user  # discovered, not declared: not copied
    assert _mapped(schema)["extensionattribute7"] == "contosoBadgeId"

    # A second plan and apply find everything in place.
    r = run("plan", "configs", "--detailed-exitcode", "--target", target)
    assert r.code == 0, r.out
    before = _schema(t)
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    assert _schema(t)["version"] == before["version"]

    # An update declares one more: one definition row, one copy.
    _write(project, MORE)
    r = run("plan", "configs", "--target", target)
    assert "+ attributeDefinitions.user.msDS-cloudExtensionAttribute1" in r.out, r.out
    assert "attributeDefinitions.user.contosoBadgeId" not in r.out
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    schema = _schema(t)
    assert {"contosoBadgeId", "msDS-cloudExtensionAttribute1"} <= set(_ad_user(schema))
    assert _mapped(schema)["extensionattribute8"] == "msDS-cloudExtensionAttribute1"
    assert run("plan", "configs", "--detailed-exitcode", "--target", target).code == 0

    # Taking a declaration (and its mapping) out of the YAML leaves the definition: mappings may use it.
    _write(project, DECLARED)
    assert run("plan", "configs", "--detailed-exitcode", "--target", target).code == 0
    assert "msDS-cloudExtensionAttribute1" in _ad_user(_schema(t))


def test_an_attribute_the_service_has_not_discovered_holds_the_configuration(
    project: Path, run: Run, target: str
) -> None:
    _load_directory(project, run)
    _write(project, DECLARED)
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    t = _tenant(project)
    before = copy.deepcopy(_schema(t))
    _write(
        project,
        DECLARED.replace(
            "    - {name: contosoBadgeId}\n", "    - {name: contosoBadgeId}\n    - {name: contosoFloor}\n"
        ).replace("notificationEmail: ops@contoso.com", "notificationEmail: it@contoso.com"),
    )
    r = run("apply", "configs", "--auto-approve", "--target", target)
    assert r.code == 0, r.err
    assert "contosoFloor (user) is neither in the job schema nor listed by a directory discover" in r.out
    assert "restart the provisioning agent" in r.out
    # Nothing of that configuration is applied: not its schema, not its settings.
    assert _schema(t) == before
    (o,) = t.read_all()
    assert o.settings.notification_email == "ops@contoso.com"

    # Once the agent has found it (restarted after the AD schema was extended), it is planned.
    t.store.set_schema_extensions(
        [{"name": "contosoFloor", "objects": ["user"], "type": "String", "multivalued": False}], replace=False
    )
    r = run("plan", "configs", "--target", target)
    assert "+ attributeDefinitions.user.contosoFloor" in r.out, r.out


def test_a_create_stops_before_its_schema_when_an_attribute_is_not_discovered(
    project: Path, run: Run, target: str
) -> None:
    _write(project, DECLARED)  # no schema extensions loaded: the service knows none
    r = run("apply", "configs", "--auto-approve", "--target", target)
    assert r.code != 0
    assert (
        "contosoBadgeId (user) is neither in the job schema nor listed by a directory discover"
        in r.out + r.err
    )
    assert "Traceback" not in r.err
    t = _tenant(project)
    # The local tenant rolls the whole create step back; over Graph the principal and its job stay,
    # unfinished, without the schema edit, for the next apply to finish.
    for o in t.read_all():
        assert not o.complete
        job = next(j for j in t.store.list_jobs(o.id) if j["templateId"] == "AD2AADProvisioning")
        schema = t.store.get_schema(o.id, job["id"])
        assert "contosoBadgeId" not in _ad_user(schema)
        assert _mapped(schema).get("extensionattribute7") != "contosoBadgeId"
    # Once the agent has found it, the next apply finishes the create.
    _load_directory(project, run)
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    assert "contosoBadgeId" in _ad_user(_schema(t))
    assert run("plan", "configs", "--detailed-exitcode", "--target", target).code == 0


ENTRA_TO_AD = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: contoso-groups
spec:
  direction: entraToAd
  domain: contoso.com
  notificationEmail: ops@contoso.com
  onPremisesAttributes:
    - {name: contosoBadgeId, objects: [group]}
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (DECLARED.replace("{name: contosoBadgeId}", "{name: contoso_badge}"), 9, "onPremisesAttributes"),
        (
            DECLARED.replace("{name: contosoBadgeId}", "{name: contosoBadgeId, objects: [computer]}"),
            9,
            "objects",
        ),
        (
            DECLARED.replace(
                "    - {name: contosoBadgeId}\n",
                "    - {name: contosoBadgeId}\n    - {name: ContosoBadgeID}\n",
            ),
            10,
            "on-premises attribute 'ContosoBadgeID' is already listed at",
        ),
        (
            DECLARED + "    group:\n      - {target: description, source: contosoBadgeId}\n",
            14,
            "reads on-premises attribute 'contosoBadgeId', which is declared at",
        ),
        (ENTRA_TO_AD, 9, "an Entra ID -> AD job's AD schema isn't discoverable"),
    ],
)
def test_bad_declarations_are_errors_with_file_and_line_and_nothing_is_applied(
    project: Path, run: Run, text: str, line: int, message: str
) -> None:
    _write(project, text)
    assert_apply_refused(project, run, "configs/contoso.yaml", line, message)


def test_a_declared_source_is_not_an_unknown_attribute(project: Path, run: Run) -> None:
    def warnings() -> list[str]:
        r = run("validate", "configs", "--format", "json")
        assert r.code == 0, r.err
        return [d["message"] for d in json.loads(r.out)["diagnostics"]]

    _write(project, DECLARED.replace("  onPremisesAttributes:\n    - {name: contosoBadgeId}\n", ""))
    assert any("'contosoBadgeId' is not a known user attribute" in w for w in warnings())
    _write(project, DECLARED)
    assert not any("contosoBadgeId" in w for w in warnings())


def test_the_emulator_is_asked_to_discover_before_the_schema_is_written(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = project / ".reconciler" / "tenant.db"
    db.parent.mkdir(exist_ok=True)
    _load_directory(project, run)
    monkeypatch.setenv("RECONCILER_GRAPH_TOKEN", "onprem-token-7")
    with Emulator(db, EmulatorConfig(token="onprem-token-7", record=True)) as emulator:
        _write(project, DECLARED)
        assert run("apply", "configs", "--auto-approve", "--target", emulator.target).code == 0
        calls = [(r.method, r.path.split("?")[0]) for r in emulator.recorded]
        discovers = [i for i, c in enumerate(calls) if c[0] == "POST" and c[1].endswith("/discover")]
        puts = [i for i, c in enumerate(calls) if c[0] == "PUT" and c[1].endswith("/schema")]
        assert len(discovers) == 1 and len(puts) == 1 and discovers[0] < puts[0]
        # The schema is read again after the discover (it may have written what it found).
        gets = [i for i, c in enumerate(calls) if c[0] == "GET" and c[1].endswith("/schema")]
        assert any(discovers[0] < i < puts[0] for i in gets)
        emulator.recorded.clear()
        assert run("apply", "configs", "--auto-approve", "--target", emulator.target).code == 0
        writes = [r for r in emulator.recorded if r.method != "GET" and r.path != "/$batch"]
        assert writes == []  # defined now: not even a discover


def test_a_saved_plan_carries_the_declarations_to_apply(project: Path, run: Run, target: str) -> None:
    _load_directory(project, run)
    _write(project, DECLARED)
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    _write(project, MORE)
    assert run("plan", "configs", "--out", "plan.json", "--target", target).code == 0
    spec = next(c for c in json.loads((project / "plan.json").read_text())["changes"])["spec"]
    assert spec["onPremisesAttributes"] == [
        {"name": "contosoBadgeId", "objects": ["user"]},
        {"name": "msDS-cloudExtensionAttribute1", "objects": ["user"]},
    ]
    r = run("apply", "plan.json", "--target", target)
    assert r.code == 0, r.out + r.err
    assert "msDS-cloudExtensionAttribute1" in _ad_user(_schema(_tenant(project)))


def test_a_bad_schema_extension_in_a_directory_file_is_an_error_with_file_and_line(
    project: Path, run: Run
) -> None:
    (project / "directory.yaml").write_text(
        DIRECTORY.replace(
            "{name: contosoClearance, objects: [user], type: Integer}",
            "{name: contosoClearance, type: Number}",
        )
    )
    db = project / ".reconciler" / "tenant.db"
    r = run("directory", "load", "directory.yaml", "--target", f"local:{db}")
    assert r.code == 1 and "directory.yaml:6:5: schemaExtensions: type must be one of" in r.err, r.err
    assert "Traceback" not in r.err


def test_an_imported_configuration_declares_what_its_mappings_read_and_plans_no_changes(
    project: Path, run: Run, target: str
) -> None:
    _load_directory(project, run)
    _write(
        project,
        MORE.replace(
            "    - {name: msDS-cloudExtensionAttribute1, objects: [user]}\n",
            "    - {name: msDS-cloudExtensionAttribute1, objects: [user]}\n    - {name: contosoClearance}\n",
        )
        + "      - target: extensionAttribute9\n"
        + "        expression: 'Join(\"-\", [contosoClearance], [department])'\n",
    )
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    assert run("import", "--out", "imported", "--target", target).code == 0
    imported = yaml.safe_load((project / "imported" / "contoso.yaml").read_text())
    # The attributes the mappings read beyond the template's, so that a new job gets them too.
    assert imported["spec"]["onPremisesAttributes"] == [
        {"name": "contosoBadgeId"},
        {"name": "contosoClearance"},
        {"name": "msDS-cloudExtensionAttribute1"},
    ]
    r = run("validate", "imported", "--format", "json")
    assert r.code == 0 and json.loads(r.out)["diagnostics"] == [], r.out
    r = run("plan", "imported", "--detailed-exitcode", "--target", target)
    assert r.code == 0, r.out
