"""The desired state at git commits: loading it, what changed since a ref, and the diff between two commits.

``load_at_ref`` reads the desired files of a commit without touching the work tree (``plan --ref``,
``validate --ref``). ``load_changed_since`` picks the configurations that a change since a ref can
affect and loads only the files they need (``plan --changed-since``); ``changed_configuration_names``
picks them from a state loaded in full. ``diff_refs`` compares the desired state of two commits by
meaning (``reconciler.core.semantic_diff``) and names, for every changed field, the commit that gave it
its new value: the commits between the two that touched the desired files are walked newest first, and
each one is compared with its parent, so no ``git blame`` is needed and a moved file is no change.

I/O: reads repositories through ``reconciler.git.repo``; never a target. ``reconciler.render.diff``
renders a ``RefDiff``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.config.files import SourceFile, collect_files
from reconciler.config.load import LoadResult, load_files
from reconciler.config.yamlio import parse_documents
from reconciler.core.model import DesiredState, Mapping
from reconciler.core.semantic_diff import SemanticDiff, semantic_diff
from reconciler.errors import ConfigError, GitError, LoadError
from reconciler.git.repo import (
    CommitInfo,
    changed_files,
    commits_touching,
    files_at,
    read_files,
    repo_root,
    resolve_commit,
    shown_names,
    to_repo_paths,
)
from reconciler.graph.reading import template_defaults

__all__ = [
    "FORMAT_VERSION",
    "MAX_ATTRIBUTED_COMMITS",
    "ChangedSince",
    "RefDiff",
    "changed_configuration_names",
    "diff_refs",
    "load_at_ref",
    "load_changed_since",
]

FORMAT_VERSION = 1
# Attribution loads the desired state once per commit; past this many commits the rest stay unnamed.
MAX_ATTRIBUTED_COMMITS = 200


def load_at_ref(ref: str, paths: Sequence[str], *, repo: str = ".") -> LoadResult:
    """The desired state under ``paths`` as commit ``ref`` has it; raises ``LoadError`` as loading does."""
    return load_files(files_at(ref, paths, repo=repo), paths=paths)


# --------------------------------------------------------------------------------------------------
# --changed-since


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the documents of one file declare and refer to, read without the loader's checks."""

    declares: dict[str, dict[str, str]]  # Configuration name -> its labels
    refers: frozenset[str]  # names a Scope or an AttributeMappings list applies to
    selectors: tuple[dict[str, str], ...]  # matchLabels of AttributeMappings selectors

    def selects(self, labels: dict[str, str]) -> bool:
        return any(wanted.items() <= labels.items() for wanted in self.selectors)


def _facts(f: SourceFile) -> _Facts | None:
    """The facts of one file; None when it cannot be read as the format (the loader will say why)."""
    docs, problems = parse_documents(f.path, f.data)
    if problems:
        return None
    declares: dict[str, dict[str, str]] = {}
    refers: set[str] = set()
    selectors: list[dict[str, str]] = []
    for doc in docs:
        value = doc.value
        if value is None:
            continue
        if not isinstance(value, dict):
            return None
        metadata, spec, kind = value.get("metadata"), value.get("spec"), value.get("kind")
        if not isinstance(spec, dict) or not isinstance(metadata, dict):
            return None
        if kind == "Configuration":
            labels = metadata.get("labels") or {}
            if not isinstance(labels, dict):
                return None
            declares[str(metadata.get("name"))] = {str(k): str(v) for k, v in labels.items()}
        elif kind == "Scope":
            refers.add(str(spec.get("configuration")))
        elif kind == "AttributeMappings":
            listed, selector = spec.get("configurations"), spec.get("selector")
            if isinstance(listed, list):
                refers.update(str(n) for n in listed)
            elif isinstance(selector, dict) and isinstance(selector.get("matchLabels"), dict):
                selectors.append({str(k): str(v) for k, v in selector["matchLabels"].items()})
            else:
                return None
        else:
            return None
    return _Facts(declares, frozenset(refers), tuple(selectors))


def _names_in(files: Iterable[SourceFile], labels: dict[str, dict[str, str]]) -> set[str] | None:
    """Configuration names the documents of ``files`` declare or apply to; None when one cannot be read.

    ``labels`` are the current labels of every configuration, for selectors.
    """
    names: set[str] = set()
    for f in files:
        facts = _facts(f)
        if facts is None:
            return None
        names.update(facts.declares, facts.refers)
        names.update(n for n, have in labels.items() if facts.selects(have))
    return names


def _sources_changed(state: DesiredState, changed: frozenset[str], root: str) -> set[str]:
    return {d.name for d in state.configurations if set(to_repo_paths(d.sources, root)) & changed}


def changed_configuration_names(
    ref: str, paths: Sequence[str], state: DesiredState, *, repo: str = "."
) -> frozenset[str] | None:
    """The configurations a change to the files under ``paths`` since ``ref`` can affect.

    ``state`` is the whole desired state loaded from the work tree. A configuration is picked when one
    of its files changed, including a shared Scope or AttributeMappings file that applies to it now or
    applied to it at ``ref``, and when its file was deleted or renamed (so that the plan shows the
    delete). None means "all of them": a file changed at ``ref`` cannot be read, so what it applied to
    is unknown.
    """
    root = repo_root(repo)
    changed = changed_files(ref, to_repo_paths(paths, root), repo=root)
    if not changed:
        return frozenset()
    # What the changed files applied to at ref: read only those files there. Selectors are matched
    # against today's labels; a configuration whose labels changed has a changed file of its own.
    labels = {d.name: d.label_map for d in state.configurations}
    old = _names_in(read_files(root, ref, changed), labels)
    if old is None:
        return None
    return frozenset(_sources_changed(state, changed, root) | old)


# Only an escape in a double-quoted scalar (\x, \u, \U, or a line continuation) can spell a word
# whose letters are not in the file's bytes. A file without one names a configuration or a shared
# kind only by writing it out.
_ESCAPE = re.compile(rb"\\[xuU\r\n]")


_NAME_BYTES = frozenset(bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyz0123456789-")


def _names(data: bytes, name: bytes) -> bool:
    """Whether ``data`` holds ``name`` as a whole word of [a-z0-9-] (a configuration name)."""
    start = data.find(name)
    while start != -1:
        before, after = data[start - 1 : start], data[start + len(name) : start + len(name) + 1]
        if before not in _NAME_BYTES and after not in _NAME_BYTES:
            return True
        start = data.find(name, start + 1)
    return False


@dataclass(frozen=True, slots=True)
class ChangedSince:
    """What ``plan --changed-since`` plans: the names, and a desired state that holds them."""

    names: frozenset[str] | None  # None: every configuration
    result: LoadResult  # all the files, or just those the names need
    partial: bool  # True when only some of the files were loaded


def _closure(
    files: Sequence[SourceFile], facts: dict[str, _Facts | None], names: set[str]
) -> list[SourceFile] | None:
    """The files needed to load configurations ``names`` correctly; None when that cannot be told.

    A configuration needs the file that declares it and every shared file that applies to it; a file
    taken in brings every configuration it declares or names. Files are parsed only when their bytes
    can hold what is looked for, so the work follows the size of the change, not of the repository.
    """

    def facts_of(f: SourceFile) -> _Facts | None:
        if f.path not in facts:
            facts[f.path] = _facts(f)
        return facts[f.path]

    escaped = {f.path for f in files if _ESCAPE.search(f.data)}
    shared = [f for f in files if f.path in escaped or b"Scope" in f.data or b"AttributeMappings" in f.data]
    taken: dict[str, SourceFile] = {}
    labels: dict[str, dict[str, str]] = {}
    located: set[str] = set()
    todo = set(names)
    while todo:
        name = todo.pop()
        located.add(name)
        word = name.encode()
        for f in files:
            if f.path in taken or not (f.path in escaped or _names(f.data, word)):
                continue
            found = facts_of(f)
            if found is None:
                return None
            if name in found.declares or name in found.refers:
                taken[f.path] = f
                labels.update(found.declares)
                todo |= (set(found.declares) | found.refers) - located
        for f in shared:
            if f.path in taken:
                continue
            found = facts_of(f)
            if found is None:
                return None
            if any(found.selects(labels[n]) for n in labels):
                taken[f.path] = f
                labels.update(found.declares)
                todo |= (set(found.declares) | found.refers) - located
    return [f for f in files if f.path in taken]


def load_changed_since(ref: str, paths: Sequence[str], *, repo: str = ".") -> ChangedSince:
    """Load what ``plan --changed-since REF`` needs: the configurations a change since ``ref`` can affect.

    When that is known from the changed files alone (no selector is involved and every changed file
    reads), only the files those configurations need are loaded; otherwise everything is, and the names
    come from ``changed_configuration_names``. Raises ``LoadError`` as loading does.
    """
    root = repo_root(repo)
    changed = changed_files(ref, to_repo_paths(paths, root), repo=root)
    if not changed:
        return ChangedSince(frozenset(), LoadResult(DesiredState(paths=tuple(paths))), partial=True)
    files, problems = collect_files(paths)
    shown = shown_names(changed, paths, root)
    now = [f for f in files if f.path in shown]
    facts: dict[str, _Facts | None] = {f.path: _facts(f) for f in now}
    before = [_facts(f) for f in read_files(root, ref, changed)]
    every = [*facts.values(), *before]
    # A selector applies by labels, which only the whole state tells; so does an unreadable file.
    if not any(x is None or x.selectors for x in every):
        names = set().union(*(set(x.declares) | x.refers for x in every if x is not None))
        needed = _closure(files, facts, names)
        if needed is not None:
            loaded = load_files(needed, paths=paths, problems=problems)
            return ChangedSince(frozenset(names), loaded, partial=True)
    loaded = load_files(files, paths=paths, problems=problems)
    return ChangedSince(
        changed_configuration_names(ref, paths, loaded.state, repo=repo), loaded, partial=False
    )


# --------------------------------------------------------------------------------------------------
# diff between two commits


@dataclass(frozen=True, slots=True)
class RefDiff:
    """The semantic diff between two commits, with the commit that introduced each changed field."""

    base: CommitInfo
    head: CommitInfo
    paths: tuple[str, ...]
    diff: SemanticDiff
    introduced: dict[tuple[str, str], CommitInfo] = field(default_factory=dict)  # (name, field path)
    attributed_all: bool = True  # False when the history was longer than MAX_ATTRIBUTED_COMMITS

    def introduced_by(self, name: str, path: str) -> CommitInfo | None:
        return self.introduced.get((name, path))


def _state_at(commit: str, paths: Sequence[str], repo: str) -> DesiredState:
    """The desired state at ``commit``; a path that does not exist there (yet) contributes nothing."""
    return load_files(files_at(commit, paths, repo=repo, missing_ok=True), paths=paths).state


def _load_side(ref: CommitInfo, paths: Sequence[str], repo: str) -> DesiredState:
    try:
        return _state_at(ref.sha, paths, repo)
    except LoadError as exc:
        shown = "\n".join(str(d) for d in exc.diagnostics if d.severity == "error")
        raise ConfigError(f"the desired state at {ref.short} does not load:\n{shown}") from exc


def _rows(diff: SemanticDiff) -> dict[tuple[str, str], Any]:
    return {(c.name, f.path): f.after for c in diff.configurations for f in c.fields}


def _attribute(
    wanted: dict[tuple[str, str], Any],
    commits: Sequence[CommitInfo],
    paths: Sequence[str],
    repo: str,
    defaults: Sequence[Mapping],
    states: dict[str, DesiredState | None],
) -> dict[tuple[str, str], CommitInfo]:
    """For each (configuration, field) the newest commit that set the field to its final value.

    ``states`` holds the states already loaded, by commit; it is filled as more are loaded.
    """
    found: dict[tuple[str, str], CommitInfo] = {}

    def state(sha: str) -> DesiredState | None:
        if sha not in states:
            try:
                states[sha] = _state_at(sha, paths, repo)
            except (LoadError, GitError):
                states[sha] = None  # a broken commit: its change is found at a neighbour instead
        return states[sha]

    # A merge compared with its first parent shows the whole merged branch; the branch's own commits
    # are asked first, and the merge only for what they do not explain (conflict resolutions).
    ordered = [c for c in commits if len(c.parents) <= 1] + [c for c in commits if len(c.parents) > 1]
    for c in ordered:
        if len(found) == len(wanted):
            break
        after = state(c.sha)
        before = state(c.parents[0]) if c.parents else DesiredState()
        if after is None or before is None:
            continue
        for key, value in _rows(semantic_diff(before, after, defaults)).items():
            if key in wanted and key not in found and wanted[key] == value:
                found[key] = c
    return found


def diff_refs(base: str, head: str, paths: Sequence[str], *, repo: str = ".") -> RefDiff:
    """The meaning of the change to the desired files under ``paths`` from ``base`` to ``head``."""
    root = repo_root(repo)
    b, h = resolve_commit(base, repo=root), resolve_commit(head, repo=root)
    defaults = template_defaults()
    before, after = _load_side(b, paths, repo), _load_side(h, paths, repo)
    diff = semantic_diff(before, after, defaults)
    wanted = _rows(diff)
    introduced: dict[tuple[str, str], CommitInfo] = {}
    complete = True
    if wanted:
        prefixes = to_repo_paths(paths, root)
        commits = commits_touching(b.sha, h.sha, prefixes, repo=root, limit=MAX_ATTRIBUTED_COMMITS + 1)
        complete = len(commits) <= MAX_ATTRIBUTED_COMMITS
        known: dict[str, DesiredState | None] = {b.sha: before, h.sha: after}
        introduced = _attribute(wanted, commits[:MAX_ATTRIBUTED_COMMITS], paths, repo, defaults, known)
    return RefDiff(b, h, tuple(paths), diff, introduced, complete)
