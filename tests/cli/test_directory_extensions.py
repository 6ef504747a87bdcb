"""Directory extensions through the real CLI, on the local tenant and over the emulator (real HTTP on
127.0.0.1): create, an idempotent second apply, a held removal, an import round trip and bad input. The
tenant file is the witness: the extensions application, its principal, its extension properties and the
job schema's attribute definitions and mappings."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import assert_apply_refused

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.providers.local import LocalProvider

Run = Callable[..., Any]

EXTENDED = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: contoso
spec:
  domain: contoso.com
  notificationEmail: ops@contoso.com
  directoryExtensions:
    - {name: costCenter, targetObjects: [User]}
    - {name: GroupDN, dataType: String, targetObjects: [Group]}
    - {name: grade, dataType: Integer, targetObjects: [User]}
  attributeMappings:
    user:
      - {target: "ext:costCenter", source: department}
      - {target: "ext:grade", source: employeeNumber}
"""

# costCenter removed: its declaration says so, and its mapping is gone from the YAML.
REMOVED = EXTENDED.replace(
    "{name: costCenter, targetObjects: [User]}", "{name: costCenter, remove: true}"
).replace('      - {target: "ext:costCenter", source: department}\n', "")


def _tenant(project: Path) -> LocalProvider:
    return LocalProvider(project / ".reconciler" / "tenant.db")


def _write(project: Path, text: str) -> None:
    (project / "configs" / "contoso.yaml").write_text(text)


def _schema(t: LocalProvider) -> tuple[dict[str, Any], str]:
    (o,) = t.read_all()
    job = next(j for j in t.store.list_jobs(o.id) if j["templateId"] == "AD2AADProvisioning")
    return t.store.get_schema(o.id, job["id"]), o.id


def _definitions(schema: dict[str, Any]) -> dict[str, str]:
    """Extension attribute definitions of the Entra ID directory: name -> object."""
    return {
        a["name"]: obj["name"]
        for d in schema["directories"]
        if d["name"] == "Azure Active Directory"
        for obj in d["objects"]
        for a in obj["attributes"]
        if a["name"].startswith("extension_")
    }


def _mapped(schema: dict[str, Any]) -> dict[str, str]:
    """Extension targets of the provisioning rule's mappings: target -> source."""
    return {
        am["targetAttributeName"]: am["source"].get("name")
        for om in schema["synchronizationRules"][0]["objectMappings"]
        for am in om["attributeMappings"]
        if am["targetAttributeName"].startswith("extension_")
    }


def test_extensions_are_made_mapped_kept_and_removed_only_with_the_flag(
    project: Path, run: Run, target: str
) -> None:
    _write(project, EXTENDED)
    r = run("plan", "configs", "--target", target)
    assert r.code == 0
    assert '+ directoryExtensions.costCenter: {"dataType": "String"' in r.out
    assert (
        "+ directoryExtensions.GroupDN:" in r.out and "+ mappings.user.ext:grade: [employeeNumber]" in r.out
    )
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0

    t = _tenant(project)
    seen = t.read_extensions()
    assert seen is not None and {p.name for p in seen.properties} == {"costCenter", "GroupDN", "grade"}
    (app,) = [a for a in t.store.list_applications() if a.get("identifierUris")]
    assert app["identifierUris"] == [f"api://{t.store.tenant_id}/CloudSyncCustomExtensionsApp"]
    assert app["displayName"] == "CloudSyncCustomExtensionsApp"
    assert t.store.principal_of(app["appId"]) is not None
    prefix = "extension_" + app["appId"].replace("-", "")
    schema, _id = _schema(t)
    # Defined where the rule writes them; GroupDN, declared but not mapped here, is a property only.
    assert _definitions(schema) == {f"{prefix}_costCenter": "User", f"{prefix}_grade": "User"}
    assert _mapped(schema) == {f"{prefix}_costCenter": "department", f"{prefix}_grade": "employeeNumber"}

    # A second apply finds everything in place: no change, no second application or property.
    r = run("plan", "configs", "--detailed-exitcode", "--target", target)
    assert r.code == 0, r.out
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    assert len([a for a in t.store.list_applications() if a.get("identifierUris")]) == 1
    assert len(t.store.list_extension_properties(app["id"])) == 3

    # Removing one is held like a delete: it deletes the values on every object.
    _write(project, REMOVED)
    r = run("apply", "configs", "--auto-approve", "--target", target)
    assert r.code == 0 and "removing directory extension costCenter deletes its values" in r.out
    assert "--allow-delete" in r.out
    assert len(t.store.list_extension_properties(app["id"])) == 3

    r = run("plan", "configs", "--allow-delete", "--target", target)
    assert "- directoryExtensions.costCenter:" in r.out and f"- mappings.user.{prefix}_costCenter" in r.out
    assert "attribute mappings changed" in r.out  # the rows that set it go: a restart follows
    assert run("apply", "configs", "--auto-approve", "--allow-delete", "--target", target).code == 0
    names = sorted(p["name"] for p in t.store.list_extension_properties(app["id"]))
    assert names == [f"{prefix}_GroupDN", f"{prefix}_grade"]
    schema, _id = _schema(t)
    assert _definitions(schema) == {f"{prefix}_grade": "User"}
    assert _mapped(schema) == {f"{prefix}_grade": "employeeNumber"}
    r = run("plan", "configs", "--allow-delete", "--detailed-exitcode", "--target", target)
    assert r.code == 0, r.out


# An attribute of an application other than the Cloud Sync extensions application.
OTHER_APPS = "extension_0123456789abcdef0123456789abcdef_legacyCode"


def test_an_imported_configuration_with_extensions_plans_no_changes(
    project: Path, run: Run, target: str
) -> None:
    _write(
        project,
        EXTENDED.replace(
            '      - {target: "ext:grade", source: employeeNumber}\n',
            '      - {target: "ext:grade", source: employeeNumber}\n'
            f"      - {{target: {OTHER_APPS}, source: info}}\n",
        ),
    )
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    assert run("import", "--out", "imported", "--target", target).code == 0
    imported = yaml.safe_load((project / "imported" / "contoso.yaml").read_text())
    # Declarations, not the service's spelling: the properties mapped, with what is not the default.
    assert imported["spec"]["directoryExtensions"] == [
        {"name": "costCenter"},
        {"name": "grade", "dataType": "Integer"},
    ]
    assert {m["target"]: m["source"] for m in imported["spec"]["attributeMappings"]["user"]} == {
        "ext:costCenter": "department",
        "ext:grade": "employeeNumber",
        OTHER_APPS: "info",
    }
    assert run("validate", "imported").code == 0
    r = run("plan", "imported", "--detailed-exitcode", "--target", target)
    assert r.code == 0, r.out


def test_a_property_of_another_type_holds_the_configuration(project: Path, run: Run, target: str) -> None:
    _write(project, EXTENDED)
    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    _write(
        project,
        EXTENDED.replace(
            "{name: costCenter, targetObjects: [User]}", "{name: costCenter, dataType: Integer}"
        ),
    )
    r = run("apply", "configs", "--auto-approve", "--target", target)
    assert r.code == 0 and "an extension property never changes" in r.out
    seen = _tenant(project).read_extensions()
    assert seen is not None and {(p.name, p.data_type) for p in seen.properties} >= {("costCenter", "String")}


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (
            ("ext:costCenter", "ext:nope"),
            14,
            "names directory extension 'nope', which configuration 'contoso'",
        ),
        (("{name: GroupDN, dataType: String", "{name: GroupDN, dataType: Text"), 10, "dataType"),
        (("{name: costCenter,", "{name: cost-center,"), 9, "name"),
        (("ext:grade", "ext:GroupDN"), 15, "directory extension 'GroupDN' targets Group; the user mapping"),
        (
            (
                "{name: costCenter, targetObjects: [User]}",
                "{name: costCenter, remove: true, dataType: String}",
            ),
            9,
            "remove: true takes only a name",
        ),
    ],
)
def test_bad_extension_input_is_an_error_with_file_and_line_and_nothing_is_applied(
    project: Path, run: Run, edit: tuple[str, str], line: int, message: str
) -> None:
    _write(project, EXTENDED.replace(*edit))
    assert_apply_refused(project, run, "configs/contoso.yaml", line, message)


def test_two_configurations_must_agree_on_an_extension(project: Path, run: Run) -> None:
    _write(project, EXTENDED)
    other = EXTENDED.replace("name: contoso", "name: fabrikam").replace("contoso.com", "fabrikam.com")
    (project / "configs" / "fabrikam.yaml").write_text(
        other.replace("[Group]}", "[Group], isMultiValued: true}")
    )
    r = run("validate", "configs")
    assert r.code == 1 and "directory extension 'GroupDN' is declared as" in r.err
    assert "configs/contoso.yaml:10" in r.err


def test_the_emulator_is_called_as_the_documented_recipe_says(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = project / ".reconciler" / "tenant.db"
    db.parent.mkdir(exist_ok=True)
    monkeypatch.setenv("RECONCILER_GRAPH_TOKEN", "recipe-token-11")
    with Emulator(db, EmulatorConfig(token="recipe-token-11", record=True)) as emulator:
        _write(project, EXTENDED)
        assert run("apply", "configs", "--auto-approve", "--target", emulator.target).code == 0
        calls = [(r.method, r.path.split("?")[0]) for r in emulator.recorded]
        queries = [
            urllib.parse.unquote_plus(r.path)
            for r in emulator.recorded
            if r.path.startswith("/applications?")
        ]
        assert any("identifierUris/any(uri:uri eq 'api://" in q for q in queries), queries
        posted = [c for c in calls if c[0] == "POST"]
        assert ("POST", "/applications") in posted and ("POST", "/servicePrincipals") in posted
        made = [c for c in posted if c[1].endswith("/extensionProperties")]
        assert len(made) == 3
        # In order: the application, its principal, the properties, then the schema that maps them.
        order = [i for i, c in enumerate(calls) if c in made or c == ("POST", "/applications")]
        schema_puts = [i for i, c in enumerate(calls) if c[0] == "PUT" and c[1].endswith("/schema")]
        assert order and schema_puts and max(order) < min(schema_puts)
        emulator.recorded.clear()
        assert run("apply", "configs", "--auto-approve", "--target", emulator.target).code == 0
        # Reads only ($batch carries GETs): nothing is made twice.
        writes = [r for r in emulator.recorded if r.method != "GET" and r.path != "/$batch"]
        assert writes == []
