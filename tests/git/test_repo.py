"""The git layer on real repositories: files at a commit, changed files, history, the loop's clone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.config.load import load_paths
from reconciler.errors import GitError
from reconciler.git.history import load_at_ref
from reconciler.git.repo import (
    changed_files,
    commits_touching,
    describe_worktree,
    files_at,
    redact,
    resolve_commit,
    sync_branch,
    tree_files,
)
from reconciler.testing.gitrepos import GitRepo, configuration, make_repo


def test_files_at_a_commit_are_named_as_the_disk_loader_names_them(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    repo.write("configs/sub/b.yml", configuration("b"))
    repo.write("configs/.hidden/c.yaml", configuration("c"))
    repo.write("configs/notes.md", "not yaml")
    repo.write("other.yaml", configuration("d"))
    first = repo.commit("first")
    repo.write("configs/a.yaml", configuration("a", domain="changed.example.com"))
    repo.remove("configs/sub/b.yml")

    files = files_at(first, ["configs", "other.yaml"])

    assert [f.path for f in files] == [
        os.path.join("configs", "a.yaml"),
        os.path.join("configs", "sub", "b.yml"),
        "other.yaml",
    ]
    assert files[0].data == configuration("a").encode()
    # The same names as a load from disk at that commit gives.
    repo.git("stash", "-q")
    on_disk = load_paths(["configs", "other.yaml"])
    at_ref = load_at_ref(first, ["configs", "other.yaml"])
    assert at_ref.state == on_disk.state
    assert [d.sources for d in at_ref.state.configurations] == [
        d.sources for d in on_disk.state.configurations
    ]


def test_files_at_from_a_subfolder_and_with_absolute_paths(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    sha = repo.commit("one")
    monkeypatch.chdir(repo.path / "configs")
    assert [f.path for f in files_at(sha, ["."])] == ["a.yaml"]
    assert [f.path for f in files_at(sha, [str(repo.path / "configs")])] == [
        str(repo.path / "configs" / "a.yaml")
    ]


def test_files_at_refuses_a_missing_path_and_a_path_outside(repo: GitRepo, tmp_path: Path) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    sha = repo.commit("one")
    with pytest.raises(GitError, match="does not exist in commit"):
        files_at(sha, ["nowhere"])
    assert files_at(sha, ["nowhere"], missing_ok=True) == []
    with pytest.raises(GitError, match="outside the repository"):
        files_at(sha, [str(tmp_path)])
    with pytest.raises(GitError, match="not a commit"):
        files_at("no-such-branch", ["configs"])


def test_changed_files_covers_commits_the_work_tree_and_renames(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    repo.write("configs/b.yaml", configuration("b"))
    repo.write("configs/README.md", "notes")
    base = repo.commit("base")
    repo.git("mv", "configs/b.yaml", "configs/bee.yaml")
    head = repo.commit("rename")
    assert changed_files(base, ["configs"], head=head) == {"configs/b.yaml", "configs/bee.yaml"}
    # The work tree: an edit, an untracked file; a README is no desired-state file.
    repo.write("configs/a.yaml", configuration("a", domain="x.example.com"))
    repo.write("configs/new.yaml", configuration("n"))
    repo.write("configs/README.md", "more notes")
    assert changed_files(head, ["configs"]) == {"configs/a.yaml", "configs/new.yaml"}
    assert changed_files(head, ["configs/a.yaml"]) == {"configs/a.yaml"}


def test_commits_touching_lists_newest_first_with_authors(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    base = repo.commit("base")
    repo.write("docs.txt", "unrelated")
    repo.commit("docs only")
    repo.write("configs/a.yaml", configuration("a", domain="b.example.com"))
    head = repo.commit("change a", author=("Bob Builder", "bob@example.com"))
    commits = commits_touching(base, head, ["configs"])
    assert [(c.sha, c.author, c.summary) for c in commits] == [(head, "Bob Builder", "change a")]
    assert commits[0].date == "2026-01-01T00:03:00+00:00"
    assert resolve_commit("HEAD").parents == (repo.shas[1],)


def test_describe_worktree_reports_dirty(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    sha = repo.commit("one")
    info = describe_worktree(".")
    assert info is not None and info.commit == sha and not info.dirty
    repo.write("configs/a.yaml", "# edited\n" + configuration("a"))
    info = describe_worktree("configs")
    assert info is not None and info.dirty


def test_describe_worktree_counts_only_changes_under_the_given_paths(repo: GitRepo) -> None:
    repo.write("configs/a.yaml", configuration("a"))
    repo.write("README.md", "notes\n")
    repo.commit("one")
    repo.write(".reconciler/tenant.db", "state")
    repo.write("README.md", "notes, edited\n")
    assert describe_worktree(".").dirty  # type: ignore[union-attr]
    info = describe_worktree("configs", only=["configs"])
    assert info is not None and not info.dirty
    repo.write("configs/new.yaml", configuration("b"))
    info = describe_worktree("configs", only=["configs"])
    assert info is not None and info.dirty


def test_sync_branch_clones_then_fetches(tmp_path: Path, pinned_git: dict[str, str]) -> None:
    source = make_repo(tmp_path / "source", pinned_git)
    source.write("configs/a.yaml", configuration("a"))
    first = source.commit("one")
    cache = tmp_path / "cache"
    folder, head = sync_branch(str(source.path), "main", cache)
    assert head.sha == first
    # Where it fetches from is not kept (a URL may carry a token).
    assert str(source.path) not in (Path(folder) / "config").read_text()
    assert [f.path for f in tree_files(folder, head.sha, ["configs"])] == ["configs/a.yaml"]
    source.write("configs/b.yaml", configuration("b"))
    second = source.commit("two")
    again, head = sync_branch(str(source.path), "main", cache)
    assert (again, head.sha) == (folder, second)
    # History rewritten upstream (a force-push) is followed too.
    source.git("reset", "-q", "--hard", first)
    _, head = sync_branch(str(source.path), "main", cache)
    assert head.sha == first
    with pytest.raises(GitError, match="cannot fetch branch nope"):
        sync_branch(str(source.path), "nope", tmp_path / "cache2")


def test_redact_hides_credentials_in_urls() -> None:
    assert redact("https://user:s3cret@example.com/repo.git") == "https://***@example.com/repo.git"
    assert redact("/srv/repo") == "/srv/repo"
