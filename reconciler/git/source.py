"""Where a command reads the desired state from, as values, and the one function that reads any of them.

- ``WorkTree``: the files on disk under the given paths (the default);
- ``AtRef``: the same paths as one commit has them (``plan --ref``, ``validate --ref``, the commit a saved
  plan pins), whatever the work tree holds;
- ``ChangedSince``: only the configurations a change since a ref can affect (``plan --changed-since``);
- ``Clone``: repository paths at one commit of a bare clone (the reconcile loop's cached branch, which
  has no work tree; ``reconciler.git.repo.sync_branch`` makes it).

``choose`` is the one place that turns a command's options into a source; ``load`` reads it. Git and the
commit readers are imported only for the sources that need them, so reading the work tree costs no git.

I/O: reads files, and repositories for every source but ``WorkTree``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.config.load import LoadResult, load_files, load_paths
from reconciler.errors import ConfigError

__all__ = ["AtRef", "ChangedSince", "Clone", "Loaded", "Source", "WorkTree", "choose", "load"]


@dataclass(frozen=True, slots=True)
class WorkTree:
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AtRef:
    ref: str
    paths: tuple[str, ...]
    repo: str = "."


@dataclass(frozen=True, slots=True)
class ChangedSince:
    ref: str
    paths: tuple[str, ...]
    repo: str = "."


@dataclass(frozen=True, slots=True)
class Clone:
    folder: str
    commit: str
    paths: tuple[str, ...]  # repository paths ('/'-separated, from the top folder; "" for all of it)


Source = WorkTree | AtRef | ChangedSince | Clone


@dataclass(frozen=True, slots=True)
class Loaded:
    """A loaded source: the result, the commit the files were read from (None: from disk), and for
    ``ChangedSince`` the configurations it covers (None: all of them) and whether only some files were
    read."""

    result: LoadResult
    commit: str | None = None
    only: frozenset[str] | None = None
    partial: bool = False


def choose(paths: Sequence[str], *, ref: str | None = None, changed_since: str | None = None) -> Source:
    """The source a command's paths and options name; ``ref`` and ``changed_since`` exclude each other."""
    given = tuple(paths)
    if ref is not None and changed_since is not None:
        raise ConfigError("--ref and --changed-since cannot be used together: choose one")
    if ref is not None:
        return AtRef(ref, given)
    if changed_since is not None:
        return ChangedSince(changed_since, given)
    return WorkTree(given)


def load(source: Source) -> Loaded:
    """Read ``source``; raises ``LoadError`` as loading does, and ``GitError`` for a bad ref or repository."""
    if isinstance(source, WorkTree):
        return Loaded(load_paths(list(source.paths)))
    if isinstance(source, AtRef):
        from reconciler.git.history import load_at_ref
        from reconciler.git.repo import resolve_commit

        commit = resolve_commit(source.ref, repo=source.repo).sha
        # The commit, not the ref: a branch that moves while the files are read cannot mix two commits.
        return Loaded(load_at_ref(commit, source.paths, repo=source.repo), commit=commit)
    if isinstance(source, ChangedSince):
        from reconciler.git.history import load_changed_since

        got = load_changed_since(source.ref, source.paths, repo=source.repo)
        return Loaded(got.result, only=got.names, partial=got.partial)
    from reconciler.git.repo import tree_files

    files = tree_files(source.folder, source.commit, source.paths)
    return Loaded(load_files(files, paths=source.paths), commit=source.commit)
