"""The git-facing commands through the real entry point: diff, and the commit a plan records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.providers.local import LocalProvider
from reconciler.testing.gitrepos import GitRepo, configuration

OFFICE = "      - {target: employeeType, source: physicalDeliveryOfficeName}\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_diff_command(repo: GitRepo, state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    repo.write("notes.md", "x")
    base = repo.commit("base")
    repo.write("configs/a.yaml", configuration("a", mappings=OFFICE))
    head = repo.commit("office")

    code, out, _ = run(capsys, "diff", base, "--exit-code")
    assert code == 2
    assert "~ a: changed; restart will be required" in out
    assert f"+ mappings.user.employeeType: [physicalDeliveryOfficeName]  ({head[:12]} Alice Example" in out

    # HEAD is optional and PATH... follow it; an existing path is never taken for a commit.
    code, out, _ = run(capsys, "diff", base, "configs", "--format", "json")
    assert code == 0 and json.loads(out)["head"]["commit"] == head
    code, out, _ = run(capsys, "diff", base, base, "configs", "--exit-code")
    assert code == 0 and "No change to the desired state." in out
    code, out, _ = run(capsys, "diff", base, "HEAD", "configs/a.yaml", "--format", "json")
    assert code == 0 and [c["name"] for c in json.loads(out)["configurations"]] == ["a"]

    code, _, err = run(capsys, "diff", "no-such-ref")
    assert code == 1 and "'no-such-ref' is not a commit" in err


def test_a_plan_records_its_commit_and_a_dirty_tree(
    repo: GitRepo, state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    head = repo.commit("base")
    target = f"local:{tmp_path / 'tenant.db'}"
    LocalProvider(str(tmp_path / "tenant.db")).close()  # a plan only reads: the tenant must exist

    assert run(capsys, "plan", "configs", "--target", target, "--out", str(tmp_path / "clean.json"))[0] == 0
    clean = json.loads((tmp_path / "clean.json").read_text())
    assert (clean["commit"], clean["dirty"]) == (head, False)

    repo.write("configs/a.yaml", configuration("a", mappings=OFFICE))
    assert run(capsys, "plan", "configs", "--target", target, "--out", str(tmp_path / "dirty.json"))[0] == 0
    dirty = json.loads((tmp_path / "dirty.json").read_text())
    assert (dirty["commit"], dirty["dirty"]) == (head, True)
    code, _, err = run(capsys, "apply", str(tmp_path / "dirty.json"), "--target", target)
    assert code == 0
    assert "this plan was made from a work tree with uncommitted changes" in err


def test_plan_and_validate_at_a_ref_ignore_the_work_tree(
    repo: GitRepo, state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"local:{tmp_path / 'tenant.db'}"
    LocalProvider(str(tmp_path / "tenant.db")).close()  # a plan only reads: the tenant must exist
    repo.write("configs/a.yaml", configuration("a"))
    first = repo.commit("add a")
    # the work tree now holds something else, even something invalid
    repo.write("configs/a.yaml", configuration("a", mappings=OFFICE))
    repo.write("configs/broken.yaml", "kind: [unclosed\n")
    assert run(capsys, "validate", "configs")[0] == 1
    code, out, _ = run(capsys, "validate", "configs", "--ref", first)
    assert code == 0 and "1 configuration valid" in out

    plan_file = str(tmp_path / "at-ref.json")
    code, out, _ = run(capsys, "plan", "configs", "--ref", first, "--target", target, "--out", plan_file)
    assert code == 0 and "department" not in out
    doc = json.loads(Path(plan_file).read_text())
    assert doc["ref"] == first and doc["commit"] == first and doc["dirty"] is False
    # applied against the commit it was made from, not the (different, broken) work tree
    code, _, err = run(capsys, "apply", plan_file, "--target", target)
    assert code == 0, err
    code, out, _ = run(capsys, "plan", "configs", "--ref", first, "--target", target, "--detailed-exitcode")
    assert code == 0 and "No changes" in out


def test_plan_changed_since_plans_only_what_changed(
    repo: GitRepo, state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"local:{tmp_path / 'tenant.db'}"
    LocalProvider(str(tmp_path / "tenant.db")).close()  # a plan only reads: the tenant must exist
    repo.write("configs/a.yaml", configuration("a"))
    repo.write("configs/b.yaml", configuration("b"))
    base = repo.commit("a and b")
    repo.write("configs/b.yaml", configuration("b", mappings=OFFICE))
    repo.commit("b gets a mapping")
    code, out, _ = run(capsys, "plan", "configs", "--changed-since", base, "--target", target)
    assert code == 0
    assert "configuration.b will be created" in out and "configuration.a" not in out
    assert run(capsys, "plan", "configs", "--ref", base, "--changed-since", base)[0] == 64
