"""The reviewer's diff between commits, the desired state at a ref, and --changed-since, on real repos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from reconciler.config.load import load_paths
from reconciler.core.plan import Plan, PlanOptions, Provenance
from reconciler.core.semantic_diff import DiffKind
from reconciler.engine.operations import (
    apply_saved_plan,
    make_plan,
    plan_and_apply,
    provenance_for,
    read_plan_file,
    write_plan_file,
)
from reconciler.errors import ConfigError, StalePlanError
from reconciler.git.history import (
    changed_configuration_names,
    diff_refs,
    load_at_ref,
    load_changed_since,
)
from reconciler.providers.base import Provider, ReadsByName
from reconciler.providers.local import LocalProvider
from reconciler.providers.memory import MemoryProvider
from reconciler.render.diff import render_diff
from reconciler.testing.gitrepos import GitRepo, configuration

DEPT = "      - {target: employeeType, source: department}\n"
OFFICE = "      - {target: employeeType, source: physicalDeliveryOfficeName}\n"
SALES = "OU=Sales,DC=contoso,DC=com"
PILOT = "OU=Pilot,DC=contoso,DC=com"
BOB = ("Bob Builder", "bob@example.com")


def contoso(ous: tuple[str, ...] = (SALES,), mappings: str = DEPT) -> str:
    return configuration("contoso", domain="contoso.com", ous=ous, mappings=mappings)


SHARED = """\
apiVersion: cloudsync/v1
kind: AttributeMappings
metadata:
  name: titles
spec:
  selector:
    matchLabels: {{tier: {tier}}}
  object: user
  mappings:
    - {{target: jobTitle, expression: "Trim([title])"}}
"""

SCOPE = """\
apiVersion: cloudsync/v1
kind: Scope
metadata:
  name: fabrikam-scope
spec:
  configuration: fabrikam
  groups: ["{group}"]
"""


def labelled(name: str, tier: str) -> str:
    return configuration(name, labels=f"    tier: {tier}\n")


def fabrikam() -> str:
    return configuration("fabrikam", domain="fabrikam.com", ous=())


# --------------------------------------------------------------------------------------------------
# diff


def test_layout_comments_order_and_moves_are_no_change(repo: GitRepo) -> None:
    repo.write("configs/contoso.yaml", contoso(ous=(SALES, PILOT)))
    repo.write("configs/fabrikam.yaml", fabrikam())
    base = repo.commit("base")
    # Same meaning: keys reordered, a comment, flow style, OUs reordered, another file and folder.
    repo.remove("configs/contoso.yaml")
    repo.write(
        "configs/teams/identity.yml",
        "# Contoso, moved\n"
        "kind: Configuration\napiVersion: cloudsync/v1\n"
        "spec:\n  notificationEmail: ops@contoso.com\n  domain: contoso.com\n"
        "  attributeMappings: {user: [{source: department, target: employeeType}]}\n"
        f"  scope: {{organizationalUnits: ['{PILOT}', '{SALES}']}}\n"
        "metadata: {name: contoso}\n",
    )
    head = repo.commit("reorganise")
    result = diff_refs(base, head, ["configs"])
    assert not result.diff.has_changes
    assert render_diff(result, "text").endswith("No change to the desired state.\n")


def test_diff_names_each_change_with_its_commit_and_the_restart(repo: GitRepo) -> None:
    repo.write("configs/contoso.yaml", contoso())
    repo.write("configs/fabrikam.yaml", fabrikam())
    base = repo.commit("Initial configurations")
    repo.write("configs/contoso.yaml", contoso(ous=(SALES, PILOT)))
    pilot = repo.commit("Add the pilot OU", author=BOB)
    repo.write("configs/contoso.yaml", contoso(ous=(SALES, PILOT), mappings=OFFICE))
    office = repo.commit("Department from the office")
    repo.remove("configs/fabrikam.yaml")
    repo.write("configs/northwind.yaml", configuration("northwind"))
    head = repo.commit("Replace fabrikam with northwind", author=BOB)

    result = diff_refs(base, head, ["configs"])

    by = result.diff.by_name()
    assert {n: c.kind for n, c in by.items()} == {
        "contoso": DiffKind.CHANGED,
        "fabrikam": DiffKind.REMOVED,
        "northwind": DiffKind.ADDED,
    }
    assert by["contoso"].restart_required and not by["northwind"].restart_required
    intro = result.introduced_by
    assert intro("contoso", "scope") is not None and intro("contoso", "scope").sha == pilot  # type: ignore[union-attr]
    dept = intro("contoso", "mappings.user.employeeType")
    assert dept is not None and (dept.sha, dept.author) == (office, "Alice Example")
    gone = intro("fabrikam", "settings.domain")
    assert gone is not None and (gone.sha, gone.author) == (head, "Bob Builder")

    text = render_diff(result, "text")
    assert "~ contoso: changed; restart will be required" in text
    changed = "~ mappings.user.employeeType: [department] → [physicalDeliveryOfficeName]"
    assert f"{changed}  ({office[:12]}" in text
    assert f"+ scope (organizationalUnits): {PILOT}" in text
    assert f"({pilot[:12]} Bob Builder, 2026-01-01: Add the pilot OU)" in text
    assert "↻ scope changed" in text and "↻ attribute mappings changed" in text
    assert "- fabrikam: removed" in text and "+ northwind: added" in text
    assert text.endswith("1 added, 1 changed, 1 removed; 1 will need a restart.\n")

    doc = json.loads(render_diff(result, "json"))
    assert doc["base"]["commit"] == base and doc["head"]["commit"] == head
    assert doc["summary"] == {"added": 1, "changed": 1, "removed": 1, "restart": 1}
    rows = {f["path"]: f for f in doc["configurations"][0]["fields"]}
    assert rows["mappings.user.employeeType"]["after"] == {
        "kind": "direct",
        "value": "physicalDeliveryOfficeName",
    }
    assert rows["mappings.user.employeeType"]["introducedBy"]["author"] == "Alice Example"

    md = render_diff(result, "markdown")
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    assert [t.tag for t in tokens if t.type == "heading_open"] == ["h2"]
    assert any(t.type == "table_open" for t in tokens)
    assert md.count("<details>") == 3
    assert f"`{pilot[:12]}` Bob Builder, 2026-01-01: Add the pilot OU" in md


def test_a_change_that_is_reverted_later_is_no_change(repo: GitRepo) -> None:
    repo.write("configs/contoso.yaml", contoso())
    base = repo.commit("base")
    repo.write("configs/contoso.yaml", contoso(mappings=OFFICE))
    repo.commit("try office")
    repo.write("configs/contoso.yaml", contoso())
    head = repo.commit("revert")
    assert not diff_refs(base, head, ["configs"]).diff.has_changes


def test_the_last_commit_that_set_a_value_is_named(repo: GitRepo) -> None:
    repo.write("configs/contoso.yaml", contoso())
    base = repo.commit("base")
    repo.write("configs/contoso.yaml", contoso(mappings=OFFICE))
    repo.commit("office")
    repo.write("configs/contoso.yaml", contoso(mappings="      - {target: employeeType, source: company}\n"))
    repo.commit("company", author=BOB)
    repo.write("docs.md", "unrelated")
    head = repo.commit("docs")
    found = diff_refs(base, head, ["configs"]).introduced_by("contoso", "mappings.user.employeeType")
    assert found is not None and found.summary == "company" and found.author == "Bob Builder"


def test_diff_from_before_the_folder_existed_and_a_broken_side(repo: GitRepo) -> None:
    repo.write("README.md", "empty")
    base = repo.commit("nothing yet")
    repo.write("configs/contoso.yaml", contoso())
    head = repo.commit("first configuration")
    result = diff_refs(base, head, ["configs"])
    assert [c.kind for c in result.diff.configurations] == [DiffKind.ADDED]
    repo.write("configs/contoso.yaml", "kind: [")
    broken = repo.commit("broken")
    with pytest.raises(ConfigError, match=f"the desired state at {broken[:12]} does not load"):
        diff_refs(head, broken, ["configs"])


# --------------------------------------------------------------------------------------------------
# the desired state at a ref


def test_load_at_ref_leaves_the_work_tree_alone(repo: GitRepo) -> None:
    repo.write("configs/contoso.yaml", contoso())
    first = repo.commit("one")
    repo.write("configs/contoso.yaml", contoso(mappings=OFFICE))
    repo.commit("two")
    repo.write("configs/contoso.yaml", "# uncommitted\n" + contoso(ous=(PILOT,)))
    before = repo.git("status", "--porcelain")

    at_first = load_at_ref(first, ["configs"]).state.by_name()["contoso"]
    at_head = load_at_ref("HEAD", ["configs"]).state.by_name()["contoso"]
    on_disk = load_paths(["configs"]).state.by_name()["contoso"]

    assert [o.mapping.value for o in at_first.overrides if o.mapping] == ["department"]
    assert [o.mapping.value for o in at_head.overrides if o.mapping] == ["physicalDeliveryOfficeName"]
    assert on_disk.scope.entries == (PILOT,)
    assert repo.git("status", "--porcelain") == before
    assert (repo.path / "configs/contoso.yaml").read_text().startswith("# uncommitted")


# --------------------------------------------------------------------------------------------------
# --changed-since


def _names(ref: str, paths: list[str] | None = None) -> frozenset[str] | None:
    paths = paths or ["configs"]
    return changed_configuration_names(ref, paths, load_paths(paths).state)


def test_changed_since_picks_changed_configurations_only(repo: GitRepo) -> None:
    for name in ("a", "b", "c"):
        repo.write(f"configs/{name}.yaml", labelled(name, "x"))
    base = repo.commit("base")
    assert _names(base) == frozenset()
    repo.write("configs/b.yaml", labelled("b", "x") + "  restartToken: '2'\n")
    assert _names(base) == {"b"}
    repo.commit("change b")
    repo.remove("configs/c.yaml")
    repo.write("configs/d.yaml", labelled("d", "x"))
    # A deleted file names its configuration (its delete is planned); an untracked file is a change.
    assert _names(base) == {"b", "c", "d"}
    # Renaming a file is a change of both paths: its configuration is planned (and shows no change).
    repo.commit("more")
    repo.git("mv", "configs/a.yaml", "configs/a2.yaml")
    assert _names("HEAD") == {"a"}


def test_changed_since_follows_shared_mapping_files_by_selector(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", labelled("a", "x"))
    repo.write("configs/b.yaml", labelled("b", "x"))
    repo.write("configs/c.yaml", labelled("c", "y"))
    repo.write("configs/shared/titles.yaml", SHARED.format(tier="x"))
    base = repo.commit("base")
    repo.write(
        "configs/shared/titles.yaml", SHARED.format(tier="x").replace("Trim([title])", "Left([title], 10)")
    )
    assert _names(base) == {"a", "b"}
    # The selector moves to tier y: what it applied to before and what it applies to now.
    repo.write("configs/shared/titles.yaml", SHARED.format(tier="y"))
    assert _names(base) == {"a", "b", "c"}
    # The shared file is deleted: every configuration it applied to.
    repo.commit("to y")
    repo.remove("configs/shared/titles.yaml")
    assert _names("HEAD") == {"c"}


def test_changed_since_follows_scope_files_and_lists(repo: GitRepo) -> None:
    repo.write("configs/fabrikam.yaml", fabrikam())
    repo.write("configs/contoso.yaml", contoso())
    repo.write("configs/fabrikam-scope.yaml", SCOPE.format(group="CN=Sync,DC=fabrikam,DC=com"))
    base = repo.commit("base")
    repo.write("configs/fabrikam-scope.yaml", SCOPE.format(group="CN=Pilot,DC=fabrikam,DC=com"))
    assert _names(base) == {"fabrikam"}


def test_changed_since_plans_everything_when_an_old_file_cannot_be_read(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", labelled("a", "x"))
    repo.write("configs/broken.yaml", "kind: [")
    base = repo.commit("base with a broken file")
    repo.remove("configs/broken.yaml")
    assert _names(base) is None


def test_a_changed_since_plan_shows_only_the_changed_configuration(repo: GitRepo, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        repo.write(f"configs/{name}.yaml", labelled(name, "x"))
    base = repo.commit("base")
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    try:
        state = load_paths(["configs"]).state
        run = plan_and_apply(state, provider, PlanOptions(), Provenance())
        assert run.result.ok
        # Drift on c (not changed in git) and a change to b in git.
        c_id = next(o.id for o in provider.read_all() if o.name == "c")
        provider.pause(c_id)
        repo.write("configs/b.yaml", labelled("b", "x") + "  restartToken: '2'\n")
        state = load_paths(["configs"]).state
        only = changed_configuration_names(base, ["configs"], state)
        plan = make_plan(state, provider, PlanOptions(only=only), Provenance())
        assert {c.name for c in plan.changes} == {"b"}
        full = make_plan(state, provider, PlanOptions(), Provenance())
        assert {c.name for c in full.changes} == {"b", "c"}
    finally:
        provider.close()


# --------------------------------------------------------------------------------------------------
# loading only what --changed-since needs

LISTED = """\
apiVersion: cloudsync/v1
kind: AttributeMappings
metadata:
  name: listed
spec:
  configurations: [{names}]
  object: user
  mappings:
    - {{target: {target}, source: {source}}}
"""


def check_changed_since(ref: str, names: set[str] | None, *, partial: bool) -> set[str]:
    """load_changed_since picks ``names`` and loads them exactly as a full load does; returns files read."""
    got = load_changed_since(ref, ["configs"])
    assert got.names == (None if names is None else frozenset(names))
    assert got.partial is partial
    full = load_paths(["configs"]).state.by_name()
    loaded = got.result.state.by_name()
    for name in names or ():
        assert loaded.get(name) == full.get(name), name
        if name in full:
            assert loaded[name].sources == full[name].sources
    return {Path(f).name for f in got.result.files}


def test_changed_since_loads_only_the_files_the_change_needs(repo: GitRepo) -> None:
    for name in ("a", "a-b", "b", "c"):
        repo.write(f"configs/{name}.yaml", labelled(name, "x" if name != "c" else "y"))
    repo.write("configs/fabrikam.yaml", fabrikam())
    repo.write("configs/fabrikam-scope.yaml", SCOPE.format(group="CN=Sync,DC=fabrikam,DC=com"))
    repo.write("configs/shared/titles.yaml", SHARED.format(tier="y"))
    repo.write("configs/shared/listed.yaml", LISTED.format(names="a, c", target="company", source="company"))
    base = repo.commit("base")
    assert check_changed_since(base, set(), partial=True) == set()

    # One configuration: its file, and the shared files that apply to it (by list and by selector).
    repo.write("configs/c.yaml", labelled("c", "y") + "  restartToken: '2'\n")
    assert check_changed_since(base, {"c"}, partial=True) == {
        "c.yaml",
        "titles.yaml",
        "listed.yaml",
        "a.yaml",
    }
    repo.write("configs/c.yaml", labelled("c", "y"))

    # A Scope file: the configuration it belongs to.
    repo.write("configs/fabrikam-scope.yaml", SCOPE.format(group="CN=Pilot,DC=fabrikam,DC=com"))
    assert check_changed_since(base, {"fabrikam"}, partial=True) == {"fabrikam.yaml", "fabrikam-scope.yaml"}
    repo.git("checkout", "-q", "--", ".")

    # A listed shared file, before and after: what it named then and names now.
    repo.write("configs/shared/listed.yaml", LISTED.format(names="a-b", target="company", source="company"))
    files = check_changed_since(base, {"a", "a-b", "c"}, partial=True)
    assert "b.yaml" not in files
    repo.git("checkout", "-q", "--", ".")

    # A deleted configuration is named (its delete is planned) and needs no file.
    repo.remove("configs/b.yaml")
    assert check_changed_since(base, {"b"}, partial=True) == set()
    repo.git("checkout", "-q", "--", ".")

    # A changed selector: only the whole state tells what it applies to.
    repo.write("configs/shared/titles.yaml", SHARED.format(tier="x"))
    check_changed_since(base, {"a", "a-b", "b", "c"}, partial=False)


def test_changed_since_finds_shared_documents_written_with_escapes(repo: GitRepo) -> None:
    b = configuration("b", ous=())
    repo.write("configs/b.yaml", b)
    repo.write("configs/other.yaml", labelled("other", "x"))
    # "\x53cope" is "Scope", and "\x62" is "b": neither word is in the file's bytes.
    repo.write(
        "configs/hidden.yaml",
        'apiVersion: cloudsync/v1\nkind: "\\x53cope"\nmetadata: {name: s}\n'
        'spec: {configuration: "\\x62", organizationalUnits: ["OU=Pilot,DC=b,DC=example,DC=com"]}\n',
    )
    base = repo.commit("base")
    repo.write("configs/b.yaml", b + "  restartToken: '2'\n")
    assert check_changed_since(base, {"b"}, partial=True) == {"b.yaml", "hidden.yaml"}


def test_a_saved_changed_since_plan_goes_stale_only_for_its_own_configurations(
    repo: GitRepo, tmp_path: Path, state_dir: Path
) -> None:
    for name in ("a", "b", "c"):
        repo.write(f"configs/{name}.yaml", labelled(name, "x"))
    base = repo.commit("base")
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    try:
        assert plan_and_apply(load_paths(["configs"]).state, provider, PlanOptions(), Provenance()).result.ok

        def saved_plan() -> Plan:
            got = load_changed_since(base, ["configs"])
            made = make_plan(
                got.result.state, provider, PlanOptions(only=got.names), provenance_for(["configs"])
            )
            write_plan_file(made, str(tmp_path / "plan.json"))
            return read_plan_file(str(tmp_path / "plan.json"))

        repo.write("configs/b.yaml", labelled("b", "x") + "  restartToken: '2'\n")
        plan = saved_plan()
        assert {c.name for c in plan.changes} == {"b"}
        # Another configuration's file changes after the plan was made: the plan still holds.
        repo.write("configs/c.yaml", labelled("c", "x") + "  enabled: false\n")
        assert apply_saved_plan(plan, provider).result.ok

        repo.write("configs/b.yaml", labelled("b", "x") + "  restartToken: '3'\n")
        plan = saved_plan()
        repo.write("configs/b.yaml", labelled("b", "x") + "  restartToken: '4'\n")
        with pytest.raises(StalePlanError, match="desired files changed"):
            apply_saved_plan(plan, provider)
    finally:
        provider.close()


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_a_changed_since_plan_reads_and_fingerprints_only_its_configurations(
    kind: str, repo: GitRepo, tmp_path: Path, state_dir: Path
) -> None:
    for name in ("a", "b", "c"):
        repo.write(f"configs/{name}.yaml", labelled(name, "x"))
    base = repo.commit("base")
    provider: Provider = LocalProvider(str(tmp_path / "tenant.db")) if kind == "local" else MemoryProvider()
    try:
        assert plan_and_apply(load_paths(["configs"]).state, provider, PlanOptions(), Provenance()).result.ok
        ids = {o.name: o.id for o in provider.read_all()}
        assert isinstance(provider, ReadsByName)
        assert [o.name for o in provider.read_named(frozenset({"b", "gone"}))] == ["b"]

        repo.write("configs/b.yaml", labelled("b", "x") + "  restartToken: '2'\n")
        got = load_changed_since(base, ["configs"])
        plan = make_plan(got.result.state, provider, PlanOptions(only=got.names), provenance_for(["configs"]))
        assert [name for name, _ in plan.fingerprints] == [ids["b"]]
        # Drift on another configuration does not make this plan stale; a change to its own does.
        provider.pause(ids["c"])
        provider.pause(ids["b"])
        with pytest.raises(StalePlanError, match="b: changed on the target") as stale:
            apply_saved_plan(plan, provider)
        assert stale.value.reasons == ("b: changed on the target",)
        provider.start(ids["b"])
        assert apply_saved_plan(plan, provider).result.ok
    finally:
        provider.close()
