"""examples/configs: each file is valid, the folder loads, and together they show every feature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.config import schema
from reconciler.config.files import SourceFile, check_source
from reconciler.config.load import load_paths
from reconciler.config.yamlio import parse_documents
from reconciler.core.model import ApplyMode, Direction, MappingKind, ScopeKind

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "examples" / "configs"
FILES = sorted(FOLDER.glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(FILES) >= 5


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_example_file_is_valid_on_its_own(path: Path) -> None:
    """Every document of the file passes the file, YAML and schema checks (references need the folder)."""
    source = SourceFile(path.name, path.read_bytes())
    assert check_source(source) is None
    docs, problems = parse_documents(source.path, source.data)
    assert problems == [] and docs
    for doc in docs:
        assert isinstance(doc.value, dict)
        assert schema.check(doc, doc.value["kind"]) == []


def test_the_folder_loads_without_warnings() -> None:
    result = load_paths([str(FOLDER)])
    assert result.warnings == ()
    names = [c.name for c in result.state.configurations]
    assert names == ["contoso", "contoso-groups", "fabrikam", "lab", "northwind", "woodgrove"]


def test_the_examples_show_every_feature() -> None:
    state = load_paths([str(FOLDER)]).state.by_name()
    contoso, fabrikam, lab = state["contoso"], state["fabrikam"], state["lab"]

    # OU scope, written in the configuration; escaped comma and non-ASCII DN.
    assert contoso.scope.kind is ScopeKind.ORGANIZATIONAL_UNITS
    assert any("\\," in dn and "ü" in dn for dn in contoso.scope.entries)
    # Group scope, from a separate Scope file.
    assert fabrikam.scope.kind is ScopeKind.GROUPS
    assert any(source.endswith("fabrikam-scope.yaml") for source in fabrikam.sources)
    # Password hash sync off; a disabled configuration.
    assert fabrikam.settings.password_hash_sync is False
    assert lab.settings.enabled is False
    # A mapping set shared by selector reaches both tier=standard configurations, and only them.
    for desired in (contoso, fabrikam):
        assert any(source.endswith("shared-mappings.yaml") for source in desired.sources)
        assert ("user", "employeeId") in {o.key for o in desired.overrides}
    assert ("user", "employeeId") not in {o.key for o in lab.overrides}
    # Every mapping kind, default and apply; the removal of a template default.
    kinds = {o.mapping.kind for o in contoso.overrides if o.mapping is not None}
    assert kinds == {MappingKind.DIRECT, MappingKind.CONSTANT, MappingKind.EXPRESSION}
    display = next(o.mapping for o in contoso.overrides if o.target == "displayName")
    assert display is not None and display.default == "Unknown" and display.apply is ApplyMode.ON_CREATE
    removed = [o.target for o in contoso.overrides if o.remove]
    assert removed == ["ExtensionAttribute3"]
    # The add-on jobs of an AD -> Entra ID configuration.
    woodgrove = state["woodgrove"].settings
    assert woodgrove.exchange_hybrid_writeback and woodgrove.device_sync
    # Entra ID -> AD for the same domain: selected groups, a target container, a group mapping.
    groups = state["contoso-groups"]
    assert groups.settings.direction is Direction.ENTRA_TO_AD
    assert groups.scope.kind is ScopeKind.SELECTED_GROUPS and len(groups.scope.entries) == 2
    assert {o.target for o in groups.overrides} == {"parentDistinguishedName", "sAMAccountName"}
    # Deletion protection and a restart token.
    assert contoso.deletion_protection is True and contoso.restart_token == "2026-11-26"
    # Directory extensions mapped as ext:NAME, one of them from a declared on-premises attribute.
    northwind = state["northwind"]
    assert {e.name for e in northwind.extensions} == {"costCenter", "hireDate", "badgeId"}
    assert [(a.name, a.objects) for a in northwind.onprem_attributes] == [
        ("msDS-cloudExtensionAttribute1", ("user",))
    ]


def test_the_removed_target_is_a_documented_template_default() -> None:
    # A copy of ../shared/reference/default-mappings.json (the documented default mappings).
    reference = REPO / "tests" / "fixtures" / "reference" / "default-mappings.json"
    rows = json.loads(reference.read_text())["mappings"]
    defaults = {r["target"] for r in rows if r["direction"] == "AD->EntraID" and r["object"] == "user"}
    assert "ExtensionAttribute3" in defaults
