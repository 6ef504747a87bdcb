"""Where the desired state is read from: each source value read from a real repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.errors import ConfigError, GitError
from reconciler.git.repo import sync_branch
from reconciler.git.source import AtRef, ChangedSince, Clone, WorkTree, choose, load
from reconciler.testing.gitrepos import GitRepo, configuration, make_repo


def _names(loaded_state: object) -> list[str]:
    return sorted(c.name for c in loaded_state.configurations)  # type: ignore[attr-defined]


def test_options_choose_one_source() -> None:
    assert choose(["configs"]) == WorkTree(("configs",))
    assert choose(["configs"], ref="v1") == AtRef("v1", ("configs",))
    assert choose(["configs"], changed_since="main") == ChangedSince("main", ("configs",))
    with pytest.raises(ConfigError, match="cannot be used together"):
        choose(["configs"], ref="v1", changed_since="main")


def test_each_source_reads_what_it_names(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    repo.write("configs/b.yaml", configuration("b"))
    first = repo.commit("one")
    repo.write("configs/c.yaml", configuration("c"))
    repo.commit("two")
    repo.write("configs/d.yaml", configuration("d"))  # in the work tree only

    on_disk = load(WorkTree(("configs",)))
    assert (_names(on_disk.result.state), on_disk.commit, on_disk.only) == (["a", "b", "c", "d"], None, None)

    at_first = load(AtRef(first[:10], ("configs",)))
    # The ref is resolved to the full commit once, and only that commit is read.
    assert (_names(at_first.result.state), at_first.commit) == (["a", "b"], first)

    since = load(ChangedSince(first, ("configs",)))
    assert since.only == frozenset({"c", "d"}) and since.commit is None


def test_a_clone_is_read_by_repository_paths(tmp_path: Path, pinned_git: dict[str, str]) -> None:
    source = make_repo(tmp_path / "source", pinned_git)
    source.write("configs/a.yaml", configuration("a"))
    first = source.commit("one")
    folder, head = sync_branch(str(source.path), "main", tmp_path / "cache")
    loaded = load(Clone(str(folder), head.sha, ("configs",)))
    assert (_names(loaded.result.state), loaded.commit) == (["a"], first)


def test_a_ref_that_names_nothing_is_a_git_error(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    repo.commit("one")
    with pytest.raises(GitError):
        load(AtRef("no-such-ref", ("configs",)))


def test_reading_the_work_tree_imports_no_git(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(configuration("a"))
    code = (
        "import sys; from reconciler.git.source import WorkTree, load; "
        "load(WorkTree(('.',))); print('git' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.strip() == "False"
