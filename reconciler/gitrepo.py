"""Every use of git in the project goes through this module (GitPython is imported nowhere else).

Small typed functions over a repository: where it is, which commit is checked out and whether the work
tree is dirty. I/O: reads the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.errors import GitError

__all__ = ["WorktreeInfo", "describe_worktree"]


@dataclass(frozen=True, slots=True)
class WorktreeInfo:
    root: str
    commit: str | None  # None in a repository with no commit yet
    dirty: bool


def _open(path: str | Path) -> git.Repo:
    try:
        return git.Repo(str(path), search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(f"{path} is not inside a git repository") from exc


def describe_worktree(path: str | Path = ".") -> WorktreeInfo | None:
    """The commit checked out at ``path`` and whether the tree differs from it; None outside a repository."""
    try:
        repo = _open(path)
    except GitError:
        return None
    try:
        commit: str | None = repo.head.commit.hexsha
    except ValueError:
        commit = None
    try:
        dirty = repo.is_dirty(untracked_files=True)
    except git.GitCommandError:
        dirty = True
    return WorktreeInfo(root=str(repo.working_tree_dir), commit=commit, dirty=dirty)
