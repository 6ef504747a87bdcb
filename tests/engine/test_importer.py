"""Import round trip against the local tenant: the YAML written plans to no changes, and is minimal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli.errors import error_handler
from reconciler.cli.import_cmd import import_
from reconciler.config.load import load_paths
from reconciler.core.model import Mapping, MappingKind, Scope, ScopeKind, Settings
from reconciler.core.plan import Action, PlanOptions, Provenance
from reconciler.engine.importer import import_target
from reconciler.engine.journal import read_runs
from reconciler.engine.operations import make_plan, plan_and_apply
from reconciler.errors import ReconcilerError
from reconciler.providers.local import LocalProvider

WRITTEN = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: contoso
  labels: {team: identity}
spec:
  domain: contoso.com
  notificationEmail: ops@contoso.com
  passwordHashSync: false
  accidentalDeletes: {threshold: 50}
  deletionProtection: true
  restartToken: "7"
  scope:
    groups: ["CN=Sync,OU=Groups,DC=contoso,DC=com"]
  attributeMappings:
    user:
      - {target: department, source: physicalDeliveryOfficeName}
      - {target: jobTitle, expression: 'Trim([title])', default: none, apply: onCreate}
      - {target: companyName, constant: "Contoso: no"}
      - {target: countryCode, remove: true}
      - {target: givenName, expression: 'Trim([givenName])', default: unknown}
---
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: plain
spec:
  domain: plain.example.com
  notificationEmail: ops@plain.example.com
  enabled: false
"""


@pytest.fixture
def tenant(tmp_path: Path, state_dir: Path) -> Iterator[LocalProvider]:
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    yield provider
    provider.close()


def portal_configuration(provider: LocalProvider, domain: str) -> str:
    """A configuration made outside the tool, with its own scope and mappings: no tags of ours."""
    dc = ",".join(f"DC={part}" for part in domain.split("."))
    id = provider.create(
        "temporary",
        Settings(domain, f"admin@{domain}", accidental_deletes_enabled=False),
        Scope(ScopeKind.ORGANIZATIONAL_UNITS, (f"OU=B,{dc}", f"OU=A,{dc}")),
        [Mapping("user", "ExtensionAttribute1", MappingKind.CONSTANT, "portal")],
        removals=[("user", "commonname")],
    )
    provider.store.patch_service_principal(id, {"tags": []})
    return id


def test_import_round_trip_plans_no_changes(tenant: LocalProvider, tmp_path: Path) -> None:
    (tmp_path / "written").mkdir()
    (tmp_path / "written" / "both.yaml").write_text(WRITTEN)
    run = plan_and_apply(load_paths([str(tmp_path / "written")]).state, tenant, PlanOptions(), Provenance())
    assert run.result.ok
    theirs = portal_configuration(tenant, "fabrikam.com")
    out = tmp_path / "imported"

    result = import_target(tenant, out, adopt=True)

    assert [(c.name, c.adopted, c.was_managed) for c in result.configurations] == [
        ("contoso", False, True),
        ("plain", False, True),
        ("fabrikam", True, False),
    ]
    assert result.warnings == ()
    assert sorted(p.name for p in out.iterdir()) == ["contoso.yaml", "fabrikam.yaml", "plain.yaml"]
    # Only what differs from the defaults.
    assert (out / "plain.yaml").read_text() == (
        "apiVersion: cloudsync/v1\nkind: Configuration\nmetadata:\n  name: plain\nspec:\n"
        "  domain: plain.example.com\n  notificationEmail: ops@plain.example.com\n  enabled: false\n"
    )
    fabrikam = (out / "fabrikam.yaml").read_text()
    # As the service spells it, once (not a second, differently spelt row).
    assert "    user:\n      - target: CommonName\n        remove: true\n" in fabrikam
    assert fabrikam.casefold().count("target: commonname") == 1
    assert "ExtensionAttribute1" in fabrikam and "accidentalDeletes:\n    enabled: false\n" in fabrikam

    adopted = {o.id: o for o in tenant.read_all()}[theirs]
    assert adopted.managed and adopted.name == "fabrikam"
    last = read_runs(tenant.target)[-1]
    assert last.kind == "import" and last.changes[0]["outcome"] == "ok"

    plan = make_plan(load_paths([str(out)]).state, tenant, PlanOptions(), Provenance())
    assert plan.changes == () and plan.held == ()


def test_without_adopt_the_plan_holds_the_unmanaged_one_back(tenant: LocalProvider, tmp_path: Path) -> None:
    portal_configuration(tenant, "fabrikam.com")
    out = tmp_path / "imported"
    result = import_target(tenant, out)
    assert [(c.name, c.adopted) for c in result.configurations] == [("fabrikam", False)]
    plan = make_plan(load_paths([str(out)]).state, tenant, PlanOptions(), Provenance())
    assert plan.changes == ()
    assert [(h.name, h.action) for h in plan.held] == [("fabrikam", Action.CREATE)]
    assert "import --adopt" in plan.held[0].reasons[0]


def test_names_made_from_domains_do_not_clash(tenant: LocalProvider, tmp_path: Path) -> None:
    portal_configuration(tenant, "contoso.com")
    portal_configuration(tenant, "contoso.org")
    result = import_target(tenant, tmp_path / "out", adopt=True)
    assert sorted(c.name for c in result.configurations) == ["contoso", "contoso-org"]
    plan = make_plan(load_paths([str(tmp_path / "out")]).state, tenant, PlanOptions(), Provenance())
    assert plan.changes == ()


def test_existing_files_are_not_replaced_without_overwrite(tenant: LocalProvider, tmp_path: Path) -> None:
    portal_configuration(tenant, "fabrikam.com")
    out = tmp_path / "out"
    out.mkdir()
    (out / "fabrikam.yaml").write_text("mine")
    with pytest.raises(ReconcilerError, match="exist already"):
        import_target(tenant, out, adopt=True)
    assert (out / "fabrikam.yaml").read_text() == "mine"
    assert not any(o.managed for o in tenant.read_all())
    import_target(tenant, out, overwrite=True)
    assert (out / "fabrikam.yaml").read_text().startswith("apiVersion: cloudsync/v1")


def test_the_import_command(
    tenant: LocalProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    portal_configuration(tenant, "fabrikam.com")
    out = tmp_path / "out"
    args = ["--target", tenant.target, "--out", str(out), "--adopt"]
    with error_handler():
        import_.main(args=args, prog_name="reconciler import", standalone_mode=False)
    assert f"{out / 'fabrikam.yaml'}: fabrikam (adopted: now managed)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc, error_handler():
        import_.main(args=[*args, "nothere"], prog_name="reconciler import", standalone_mode=False)
    assert exc.value.code == 1
    assert "not on local:" in capsys.readouterr().err


def test_what_the_format_rejects_is_reported(tenant: LocalProvider, tmp_path: Path) -> None:
    id = portal_configuration(tenant, "fabrikam.com")
    tenant.store.patch_service_principal(id, {"tags": []})
    odd = Scope(ScopeKind.ORGANIZATIONAL_UNITS, ("OU=X,DC=elsewhere,DC=com",))
    # Written straight into the schema, as another tool might.
    tenant.adopt(id, "tmp")
    tenant.edit_schema(id, odd, [])
    tenant.store.patch_service_principal(id, {"tags": []})
    with pytest.raises(ReconcilerError, match=r"outside the configuration's domain fabrikam\.com"):
        import_target(tenant, tmp_path / "out")
    assert not (tmp_path / "out" / "fabrikam.yaml").exists()


def test_a_configuration_without_a_notification_email_stops_the_import(
    tenant: LocalProvider, tmp_path: Path
) -> None:
    id = portal_configuration(tenant, "fabrikam.com")
    secrets = [s for s in tenant.store.get_secrets(id) if s["key"] != "SyncNotificationSettings"]
    tenant.store.put_secrets(id, secrets)
    with pytest.raises(ReconcilerError, match="notificationEmail"):
        import_target(tenant, tmp_path / "out")
    assert not (tmp_path / "out").exists()
