"""``reconciler preview`` end to end on the example configurations and directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.provisioning import ADELE, CASEY, CONFIGS, CONTOSO_DIR, FABRIKAM_DIR, PRADEEP, Run

ADELE_ONLY = f"""\
dn: {ADELE}
type: user
attributes:
  objectGUID: 5b0b3cbb-8a8a-4d7e-9e0c-3f1c2b6d7a01
  userPrincipalName: AdeleV@contoso.com
  givenName: Adele
  sn: Vance
  department: Sales
  userAccountControl: 512
"""


def row(out: str, *cells: str) -> bool:
    """Whether some line of ``out`` consists of exactly these whitespace-separated words."""
    want = " ".join(cells).split()
    return any(line.split() == want for line in out.splitlines())


def sample(project: Path, text: str = ADELE_ONLY) -> Path:
    path = project / "adele.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_user_in_scope(project: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_TARGET")
    r = run("preview", CONFIGS, "--config", "contoso", "--object", sample(project))
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"{ADELE} (user)"
    assert lines[1] == "  in scope: in organizational unit OU=Sales,DC=contoso,DC=com"
    # Rows the configuration sets keep the service's spelling of their target.
    assert row(r.out, "Department", "Sales", "[department]")
    assert row(r.out, "ExtensionAttribute1", "FTE", '"FTE"')
    assert any(line.split()[:2] == ["UserPrincipalName", "AdeleV@contoso.com"] for line in lines)
    assert row(r.out, "UsageLocation", "(null)", "[msExchUsageLocation]")
    assert "ExtensionAttribute3" not in r.out  # removed by contoso
    # Without --against or a target nothing is opened: no tenant file appears.
    assert not (project / "tenant.db").exists() and not (project / ".reconciler").exists()


def test_the_whole_example_directory(project: Path, run: Run) -> None:
    r = run("preview", CONFIGS, "--config", "contoso", "--object", CONTOSO_DIR)
    assert r.code == 1  # Casey's userPrincipalName calls Error(...)
    assert f"{PRADEEP} (user)\n  OUT OF SCOPE: not in any scoped organizational unit" in r.out
    casey = r.out.split(f"{CASEY} (user)")[1].split("\n\n")[0]
    assert "AccountName is not present" in casey and "UserPrincipalName" in casey
    assert "6 organizational unit(s) or container(s) not shown" in r.out
    assert r.out.rstrip().endswith("1 object(s) failed a mapping.")


def test_group_scope(project: Path, run: Run) -> None:
    r = run("preview", CONFIGS, "--config", "fabrikam", "--object", FABRIKAM_DIR, "--format", "json")
    assert r.code == 0, r.err
    scopes = {o["dn"].split(",")[0]: o["scope"]["inScope"] for o in r.json()["objects"]}
    assert scopes["CN=Nestor Wilke"] and scopes["CN=Isaiah Langer"]
    assert not scopes["CN=Joni Sherman"] and not scopes["CN=Grady Archie"]  # nested / no group


def test_json_output(project: Path, run: Run) -> None:
    r = run("preview", CONFIGS, "--config", "contoso", "--object", CONTOSO_DIR, "--format", "json")
    assert r.code == 1
    doc = r.json()
    assert doc["configuration"] == "contoso" and len(doc["notProvisioned"]) == 6
    by_dn = {o["dn"]: o for o in doc["objects"]}
    upn = by_dn[CASEY]["attributes"]["UserPrincipalName"]
    assert upn["outcome"] == "error" and upn["raised"] and upn["error"] == "AccountName is not present"
    assert by_dn[ADELE]["attributes"]["Department"] == {
        "outcome": "value",
        "value": "Sales",
        "mapping": "[department]",
    }


def test_update_leaves_out_on_create_mappings_and_defaults(project: Path, run: Run) -> None:
    no_names = sample(project, ADELE_ONLY.replace("  givenName: Adele\n  sn: Vance\n", ""))
    r = run("preview", CONFIGS, "--config", "contoso", "--object", no_names)
    assert row(
        r.out,
        "DisplayName",
        "Unknown",
        "(default)",
        'Join("',
        '",',
        "[givenName],",
        "[sn])",
        "(default",
        "'Unknown')",
        "(on",
        "create…",
    )
    r = run("preview", CONFIGS, "--config", "contoso", "--object", no_names, "--update")
    assert r.code == 0
    assert any(line.split()[:4] == ["DisplayName", "(on", "create", "only)"] for line in r.out.splitlines())


def test_against_shows_before_and_after(project: Path, run: Run) -> None:
    # What the target holds: the example configurations as they are.
    assert run("apply", CONFIGS, "--auto-approve").code == 0
    # The change under review: department from an expression, extensionAttribute1 dropped, a new title.
    changed = project / "configs"
    shutil.copytree(CONFIGS, changed)
    contoso = changed / "contoso.yaml"
    text = contoso.read_text(encoding="utf-8")
    text = text.replace(
        "{target: department, source: department}",
        "{target: department, expression: 'ToUpper([department])'}",
    )
    text = text.replace("      - {target: extensionAttribute1, constant: FTE}              # Constant\n", "")
    text = text.replace("    user:\n", "    user:\n      - {target: jobTitle, source: title}\n", 1)
    contoso.write_text(text, encoding="utf-8")
    adele = sample(project, ADELE_ONLY + "  title: Account Executive\n")

    r = run("preview", changed, "--config", "contoso", "--object", adele, "--against")
    assert r.code == 0, r.err
    target = f"local:{project / 'tenant.db'}"
    assert r.out.startswith(f"Before: the mappings on {target}. After: the desired mappings.\n")
    assert row(r.out, "ATTRIBUTE", "BEFORE", "(target)", "AFTER", "(desired)")
    assert row(r.out, "~", "Department", "Sales", "SALES")
    # A row the desired state stops naming stays as the target has it: an apply does not touch it.
    assert row(r.out, "ExtensionAttribute1", "FTE", "FTE")
    assert row(r.out, "+", "jobTitle", "-", "Account", "Executive")
    assert row(r.out, "GivenName", "Adele", "Adele")
    assert "  2 of 137 attributes change" in r.out

    r = run("preview", changed, "--config", "contoso", "--object", adele, "--against", "--changes-only")
    assert not row(r.out, "GivenName", "Adele", "Adele") and row(r.out, "~", "Department", "Sales", "SALES")

    r = run("preview", changed, "--config", "contoso", "--object", adele, "--against", "--format", "json")
    assert r.json()["before"] == target
    attrs = r.json()["objects"][0]["attributes"]
    assert attrs["Department"]["changed"] and not attrs["GivenName"]["changed"]
    assert attrs["jobTitle"]["before"] is None and attrs["jobTitle"]["after"]["value"] == "Account Executive"


def test_against_a_configuration_not_on_the_target(project: Path, run: Run) -> None:
    r = run("preview", CONFIGS, "--config", "contoso", "--object", sample(project), "--against")
    assert r.code == 0
    assert "contoso is not on" in r.err and "every attribute is new" in r.err
    assert row(r.out, "+", "Department", "-", "Sales")


def test_errors(project: Path, run: Run) -> None:
    r = run("preview", CONFIGS, "--config", "nope", "--object", sample(project))
    assert r.code == 1 and "no configuration named 'nope'" in r.err and "contoso" in r.err
    r = run("preview", CONFIGS, "--config", "contoso", "--object", project / "missing.yaml")
    assert r.code == 1 and "cannot read the file" in r.err
    r = run("preview", CONFIGS, "--config", "contoso", "--object", sample(project), "--changes-only")
    assert r.code == 64
    assert run("preview", CONFIGS, "--object", sample(project)).code == 64  # --config is required
