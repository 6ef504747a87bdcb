"""Every use of git in the project goes through this module (GitPython is imported nowhere else).

Small typed functions over a repository: which commit is checked out and whether the work tree is dirty,
the desired-state files as they are in a commit, the files changed since a ref, the commits that touched
some paths, and a cached clone of one branch for the reconcile loop.

Paths come in two forms. *Given* paths are what a user types (relative to the current folder, or
absolute) and are reported back in the same form, so a file read from a commit carries the same name
as when it is read from disk. *Repository* paths are relative to the repository's top folder, with
``/`` separators; they are used for bare clones, which have no work tree.

Repositories and their sources are untrusted input. Every git process gets configuration overrides
(``_SAFE_CONFIG``, passed as command-line configuration, which wins over every file) so that a
repository's own ``.git/config`` cannot run anything: no hooks, no ``core.fsmonitor``, no external diff,
and only the https, ssh and file transports (never ``ext::``). Refs are resolved to a commit by git with
``--end-of-options``; every ref, URL and path is passed after ``--`` (or ``--end-of-options``) so none is
read as an option. A submodule (gitlink) inside a desired-state folder is an error, so that reading a
commit and reading the work tree always see the same files.

I/O: reads repositories; ``sync_branch`` also fetches into a repository in a cache folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

# GitPython takes about a tenth of a second to import, more than a whole ``--help``: the functions that
# use it import it, so that a plain ``plan`` (which only asks which commit is checked out) never does.
if TYPE_CHECKING:
    import git

from reconciler.config.files import YAML_SUFFIXES, SourceFile
from reconciler.errors import GitError

__all__ = [
    "SAFE_ENVIRONMENT",
    "CommitInfo",
    "WorktreeInfo",
    "cache_folder",
    "changed_files",
    "check_merged",
    "check_source",
    "commits_touching",
    "describe_worktree",
    "files_at",
    "read_files",
    "redact",
    "repo_root",
    "resolve_commit",
    "shown_names",
    "source_url",
    "sync_branch",
    "to_repo_paths",
    "tree_files",
]

# A fetch that hangs (a dead network, a credential prompt nobody answers) must not stall the loop.
GIT_NETWORK_TIMEOUT = 300
# A local question (which commit, is the tree dirty) on a very large repository.
GIT_LOCAL_TIMEOUT = 300

_FIELD = "\x1f"
_LOG_FORMAT = _FIELD.join(("%H", "%P", "%an", "%ae", "%aI", "%s"))
# user:password@ in a URL: never repeated in a message.
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")

# Configuration a repository must not be able to set for us: each entry is passed to every git process
# as command-line configuration (GIT_CONFIG_COUNT), which takes precedence over the repository's files.
_SAFE_CONFIG = (
    ("core.fsmonitor", "false"),  # a command run on every index refresh
    ("core.hooksPath", os.devnull),  # no hook runs
    ("core.pager", "cat"),
    ("diff.external", ""),
    ("protocol.allow", "never"),  # transports: only those below, never ext:: or fd::
    ("protocol.https.allow", "always"),
    ("protocol.ssh.allow", "always"),
    ("protocol.file.allow", "always"),
)
SAFE_ENVIRONMENT: dict[str, str] = {
    "GIT_CONFIG_COUNT": str(len(_SAFE_CONFIG)),
    **{f"GIT_CONFIG_KEY_{i}": k for i, (k, _) in enumerate(_SAFE_CONFIG)},
    **{f"GIT_CONFIG_VALUE_{i}": v for i, (_, v) in enumerate(_SAFE_CONFIG)},
    "GIT_PROTOCOL_FROM_USER": "0",
    "GIT_TERMINAL_PROMPT": "0",  # a credential prompt nobody answers would hang a loop
}
_BRANCH = re.compile(r"[A-Za-z0-9._/+@-]+")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
# scp-like ssh sources: [user@]host:path (no "::", which is git's remote-helper syntax such as ext::).
_SCP_LIKE = re.compile(r"[A-Za-z0-9._~%+-]+(@[A-Za-z0-9._-]+)?:(?!:)[^\0]*")
_ALLOWED_SCHEMES = ("https://", "ssh://", "git+ssh://", "ssh+git://", "file://")


@dataclass(frozen=True, slots=True)
class WorktreeInfo:
    root: str
    commit: str | None  # None in a repository with no commit yet
    dirty: bool


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    author: str
    email: str
    date: str  # author date, ISO 8601 with offset
    summary: str
    parents: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return self.sha[:12]

    def as_dict(self) -> dict[str, object]:
        return {
            "commit": self.sha,
            "author": self.author,
            "email": self.email,
            "date": self.date,
            "summary": self.summary,
        }


def redact(text: str) -> str:
    """``text`` with the user and password of any URL in it replaced by ``***``."""
    return _USERINFO.sub("***@", text)


def _git_message(exc: git.GitCommandError) -> str:
    stderr = exc.stderr if isinstance(exc.stderr, str) else ""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    # git prefixes its own message with "stderr: '" in GitPython's rendering; keep git's last word.
    text = lines[-1] if lines else str(exc)
    return redact(text.removeprefix("stderr: ").strip("'\" "))


def _safe(repo: git.Repo) -> git.Repo:
    repo.git.update_environment(**SAFE_ENVIRONMENT)
    return repo


def _open(path: str | Path) -> git.Repo:
    import git

    try:
        return _safe(git.Repo(str(path), search_parent_directories=True))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(f"{path} is not inside a git repository") from exc


def describe_worktree(path: str | Path = ".", only: Sequence[str] = ()) -> WorktreeInfo | None:
    """The commit checked out at ``path`` and whether the tree differs from it; None outside a repository.

    ``only``: given paths; then only changes (staged, unstaged or untracked files) under them count, so
    that a state folder or a build output elsewhere in the tree does not mark a plan as made from
    uncommitted files.
    """
    # Absolute, since git runs in the top folder; after "--", so that no path is read as an option.
    pathspecs = [os.path.abspath(p) for p in only]
    found = _top_and_head(path)
    if found is None:
        # Whatever plain git does not answer (no repository here, or one git refuses to read, such as
        # one owned by another user) is answered as GitPython reads it.
        return _describe_with_gitpython(path, pathspecs)
    top, commit = found
    status = _plain_git(["status", "--porcelain", "-z", "--untracked-files=all", "--", *pathspecs], top)
    return WorktreeInfo(root=top, commit=commit, dirty=status is None or bool(status))


def _plain_git(args: Sequence[str], cwd: str) -> str | None:
    """The output of one git process in ``cwd`` under the safe configuration; None when it failed."""
    done = _run_plain_git(args, cwd)
    return None if done is None or done.returncode != 0 else done.stdout


def _run_plain_git(args: Sequence[str], cwd: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env={**os.environ, **SAFE_ENVIRONMENT},
            capture_output=True,
            text=True,
            errors="surrogateescape",
            timeout=GIT_LOCAL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def _top_and_head(path: str | Path) -> tuple[str, str | None] | None:
    """The top folder of the work tree holding ``path`` and its checked-out commit (None before the
    first commit), from one git process; None when git gives no such answer."""
    folder = os.path.abspath(path)
    if not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return None
    done = _run_plain_git(["rev-parse", "--show-toplevel", "--verify", "--quiet", "HEAD^{commit}"], folder)
    if done is None:
        return None
    lines = done.stdout.splitlines()
    if done.returncode == 0 and len(lines) == 2 and _FULL_SHA.fullmatch(lines[1]):
        return lines[0], lines[1]
    if done.returncode == 1 and len(lines) == 1:
        return lines[0], None  # a repository without a commit yet
    return None


def _describe_with_gitpython(path: str | Path, pathspecs: Sequence[str]) -> WorktreeInfo | None:
    import git

    try:
        repo = _open(path)
    except GitError:
        return None
    try:
        commit: str | None = repo.head.commit.hexsha
    except ValueError:
        commit = None
    try:
        status = repo.git.status("--porcelain", "-z", "--untracked-files=all", "--", *pathspecs)
        dirty = bool(status)
    except git.GitCommandError:
        dirty = True
    return WorktreeInfo(root=str(repo.working_tree_dir), commit=commit, dirty=dirty)


def repo_root(path: str | Path = ".") -> str:
    """The top folder of the work tree that contains ``path``."""
    repo = _open(path)
    if repo.working_tree_dir is None:
        raise GitError(f"{path} is in a bare repository; it has no work tree")
    return str(repo.working_tree_dir)


def _commit(repo: git.Repo, ref: str) -> git.Commit:
    """The commit ``ref`` names, resolved by git itself; anything else is a ``GitError``."""
    import git

    problem = GitError(f"{ref!r} is not a commit in {repo.git_dir}")
    if not ref or ref.startswith("-") or "\0" in ref or "\n" in ref:
        raise problem
    try:
        if _FULL_SHA.fullmatch(ref):
            obj = repo.rev_parse(ref)  # a full commit id: no process needed
        else:
            sha = repo.git.rev_parse("--verify", "--quiet", "--end-of-options", ref + "^{commit}")
            obj = repo.commit(sha.strip())
    except Exception as exc:  # GitPython raises several kinds for odd names (@{-1}, HEAD:path)
        raise problem from exc
    if not isinstance(obj, git.Commit):
        raise problem
    return obj


def _info(c: git.Commit) -> CommitInfo:
    return CommitInfo(
        sha=c.hexsha,
        author=str(c.author.name or ""),
        email=str(c.author.email or ""),
        date=c.authored_datetime.isoformat(),
        summary=str(c.summary if isinstance(c.summary, str) else c.summary.decode("utf-8", "replace")),
        parents=tuple(p.hexsha for p in c.parents),
    )


def resolve_commit(ref: str, *, repo: str | Path = ".") -> CommitInfo:
    """The commit ``ref`` names (a branch, tag, sha, ``HEAD~2``...)."""
    r = _open(repo)
    return _info(_commit(r, ref))


# --------------------------------------------------------------------------------------------------
# paths


def to_repo_paths(paths: Sequence[str], root: str) -> list[str]:
    """Given paths as repository paths (``""`` for the top folder); refused when outside the repository."""
    real_root = os.path.realpath(root)
    real_dirs: dict[str, str] = {}
    out = []
    for p in paths:
        # Only the folder part is resolved: a link inside the repository keeps the name git knows it by.
        full = os.path.abspath(p)
        folder = os.path.dirname(full)
        if folder not in real_dirs:
            real_dirs[folder] = os.path.realpath(folder)
        rel = os.path.relpath(os.path.join(real_dirs[folder], os.path.basename(full)), real_root)
        if rel == os.curdir:
            rel = ""
        elif rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise GitError(f"{p} is outside the repository at {root}")
        out.append(PurePosixPath(*Path(rel).parts).as_posix() if rel else "")
    return out


def check_merged(ref: str, *, repo: str | Path = ".") -> None:
    """Refuse a commit that is not the checked-out commit or one of its ancestors."""
    import git

    r = _open(repo)
    sha = _commit(r, ref).hexsha
    try:
        r.git.merge_base("--is-ancestor", "--end-of-options", sha, "HEAD")
    except git.GitCommandError as exc:
        raise GitError(
            f"commit {sha[:12]} is not part of the checked-out history (HEAD or an ancestor of it); "
            "a plan made from it is not applied here"
        ) from exc


def _pathspecs(prefixes: Iterable[str]) -> list[str]:
    # ":(top)" keeps the meaning of each path independent of the folder git runs in.
    return [f":(top){p}" if p else ":(top)" for p in prefixes]


def _ls_tree(repo: git.Repo, commit: str, prefixes: Sequence[str]) -> list[tuple[str, str]]:
    """(repository path, blob sha) of every file under ``prefixes`` in ``commit``."""
    import git

    try:
        out = repo.git.ls_tree("-r", "-z", "--full-tree", commit, "--", *(p or "." for p in prefixes))
    except git.GitCommandError as exc:
        raise GitError(f"cannot list the files of commit {commit[:12]}: {_git_message(exc)}") from exc
    rows = []
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        mode, kind, sha = meta.split(" ")
        # Symbolic links and submodules are not desired-state files; the disk loader refuses odd links too.
        if kind == "blob" and mode != "120000":
            rows.append((path, sha))
        elif kind == "commit" and not any(part.startswith(".") for part in path.split("/")):
            _gitlink(path)
    return rows


def _gitlink(path: str) -> None:
    # A submodule's files are not in the commit, but a work-tree read would see them: refuse both ways.
    raise GitError(
        f"{path} is a git submodule inside a desired-state folder; desired-state files must be part of "
        "the repository itself"
    )


def _is_under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _wanted(path: str, prefix: str) -> bool:
    """Whether a file found under ``prefix`` is one the disk loader would read there."""
    if path == prefix:
        return True  # a file given by name is taken whatever its name
    rest = path[len(prefix) + 1 :] if prefix else path
    parts = rest.split("/")
    return not any(part.startswith(".") for part in parts) and path.endswith(YAML_SUFFIXES)


def _read_blobs(repo: git.Repo, shas: Iterable[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for sha in shas:
        if sha not in out:
            # GitPython keeps one `git cat-file --batch` process for all these reads.
            out[sha] = repo.odb.stream(bytes.fromhex(sha)).read()
    return out


def tree_files(
    repo: str | Path, commit: str, prefixes: Sequence[str], *, missing_ok: bool = False
) -> list[SourceFile]:
    """The desired-state files under repository paths ``prefixes`` in ``commit``, named by repository path.

    Folders are walked as the disk loader walks them: ``*.yaml``/``*.yml`` files, hidden entries skipped;
    a prefix that names a file takes it whatever its name. A prefix that matches nothing is an error
    unless ``missing_ok``.
    """
    r = _open(repo)
    c = _commit(r, commit)
    listed = _ls_tree(r, c.hexsha, prefixes)
    picked: dict[str, str] = {}
    for prefix in prefixes:
        found = [(p, s) for p, s in listed if _is_under(p, prefix)]
        if not found and not missing_ok:
            raise GitError(f"{prefix or '.'} does not exist in commit {c.hexsha[:12]}")
        picked.update((p, s) for p, s in found if _wanted(p, prefix))
    blobs = _read_blobs(r, picked.values())
    return [SourceFile(p, blobs[picked[p]]) for p in sorted(picked)]


def read_files(repo: str | Path, commit: str, paths: Iterable[str]) -> list[SourceFile]:
    """The files at exactly these repository paths in ``commit``; paths that are not there are left out."""
    r = _open(repo)
    c = _commit(r, commit)
    wanted = sorted(set(paths))
    if not wanted:
        return []
    listed = dict(_ls_tree(r, c.hexsha, wanted))
    blobs = _read_blobs(r, listed.values())
    return [SourceFile(p, blobs[listed[p]]) for p in wanted if p in listed]


def _shown(given: str, prefix: str, path: str) -> str:
    """The name a file under given path ``given`` (repository path ``prefix``) is reported under."""
    base = os.path.normpath(given)
    if path == prefix:
        return base
    rest = path[len(prefix) + 1 :] if prefix else path
    return rest.replace("/", os.sep) if base == os.curdir else os.path.join(base, *rest.split("/"))


def shown_names(repo_paths: Iterable[str], paths: Sequence[str], root: str) -> dict[str, str]:
    """The desired-state files among ``repo_paths`` under given ``paths``, by the name the loader gives."""
    prefixes = to_repo_paths(paths, root)
    out: dict[str, str] = {}
    for path in repo_paths:
        for given, prefix in zip(paths, prefixes, strict=True):
            if _is_under(path, prefix) and _wanted(path, prefix):
                out.setdefault(_shown(given, prefix, path), path)
    return out


def files_at(
    ref: str, paths: Sequence[str], *, repo: str | Path = ".", missing_ok: bool = False
) -> list[SourceFile]:
    """The desired-state files under given ``paths`` as they are in commit ``ref``; the work tree is not read.

    Each file is named as the disk loader would name it, so diagnostics and ``Desired.sources`` look the
    same whichever way the files were read. A path missing in ``ref`` is an error unless ``missing_ok``.
    """
    root = repo_root(repo)
    prefixes = to_repo_paths(paths, root)
    files = {f.path: f.data for f in tree_files(root, ref, prefixes, missing_ok=missing_ok)}
    out: dict[str, SourceFile] = {}
    for given, prefix in zip(paths, prefixes, strict=True):
        for path, data in files.items():
            if _is_under(path, prefix) and _wanted(path, prefix):
                name = _shown(given, prefix, path)
                out.setdefault(name, SourceFile(name, data))
    return [out[k] for k in sorted(out)]


# --------------------------------------------------------------------------------------------------
# history


def changed_files(
    base: str,
    prefixes: Sequence[str],
    *,
    head: str | None = None,
    repo: str | Path = ".",
) -> frozenset[str]:
    """Desired-state files (those the loader reads) under ``prefixes`` that differ between two commits.

    Paths are repository paths. Without ``head`` the comparison is with the work tree, uncommitted and
    untracked (not ignored) files included. A renamed file counts as its old path deleted and its new
    path added.
    """
    import git

    r = _open(repo)
    base_sha = _commit(r, base).hexsha
    args = ["--raw", "-z", "--no-renames", "--no-ext-diff", "--no-textconv", base_sha]
    if head is not None:
        args.append(_commit(r, head).hexsha)
    specs = _pathspecs(prefixes)
    try:
        raw = r.git.diff(*args, "--", *specs)
        others = r.git.ls_files("--others", "--exclude-standard", "-z", "--", *specs) if head is None else ""
    except git.GitCommandError as exc:
        raise GitError(f"cannot compare with {base}: {_git_message(exc)}") from exc
    # --raw -z: ":MODE MODE SHA SHA STATUS" NUL path NUL, one pair per file.
    fields = raw.split("\0")
    paths = [p for p in others.split("\0") if p]
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        modes = meta.lstrip(":").split(" ")[:2]
        if "160000" in modes and not any(part.startswith(".") for part in path.split("/")):
            _gitlink(path)
        paths.append(path)
    return frozenset(p for p in paths if p and any(_is_under(p, x) and _wanted(p, x) for x in prefixes))


def commits_touching(
    base: str,
    head: str,
    prefixes: Sequence[str],
    *,
    repo: str | Path = ".",
    limit: int | None = None,
) -> list[CommitInfo]:
    """Commits reachable from ``head`` but not ``base`` that change files under ``prefixes``, newest first.

    Children always come before their parents (topological order).
    """
    import git

    r = _open(repo)
    rng = f"{_commit(r, base).hexsha}..{_commit(r, head).hexsha}"
    args = ["--topo-order", f"--format={_LOG_FORMAT}"]
    if limit is not None:
        args.append(f"--max-count={limit}")
    try:
        out = r.git.log(*args, rng, "--", *_pathspecs(prefixes))
    except git.GitCommandError as exc:
        raise GitError(f"cannot read the history {rng}: {_git_message(exc)}") from exc
    commits = []
    for line in out.splitlines():
        sha, parents, author, email, date, summary = line.split(_FIELD, 5)
        commits.append(CommitInfo(sha, author, email, date, summary, tuple(parents.split())))
    return commits


# --------------------------------------------------------------------------------------------------
# the reconcile loop's clone


def check_source(source: str) -> None:
    """Refuse a repository source that is not a local folder or an https, ssh or file URL."""
    if source.startswith("-") or any(ch in source for ch in "\0\r\n"):
        raise GitError(f"{source!r} is not a repository URL or folder")
    if os.path.isdir(source) or source.startswith(_ALLOWED_SCHEMES):
        return
    if "://" not in source and _SCP_LIKE.fullmatch(source) and "::" not in source:
        return  # [user@]host:path, git's short form of ssh
    raise GitError(
        f"{redact(source)!r}: only a local folder or an https://, ssh:// or file:// URL (or user@host:path) "
        "can be a repository source"
    )


def source_url(source: str) -> str:
    """What ``sync_branch`` fetches from: a folder's absolute path, or the URL as given."""
    # A local folder is cloned by its absolute path, so that the cache does not depend on the current folder.
    check_source(source)
    return os.path.abspath(source) if os.path.exists(source) else source


def cache_folder(source: str, cache_root: str | Path) -> Path:
    key = hashlib.sha256(source_url(source).encode()).hexdigest()[:16]
    return Path(cache_root) / f"{key}.git"


def sync_branch(source: str, branch: str, cache_root: str | Path) -> tuple[str, CommitInfo]:
    """Fetch ``branch`` of ``source`` (a folder or a URL) into a bare repository under ``cache_root``.

    Returns the repository's folder and the branch's head commit. The URL is given to each fetch and
    never stored, so credentials in it do not end up in the state folder. The repository is made in a
    temporary folder and moved into place, so an interrupted first run leaves nothing half made.
    """
    import git

    url = source_url(source)
    folder = cache_folder(source, cache_root)
    ref = f"refs/heads/{branch}"
    if branch.startswith("-") or not _BRANCH.fullmatch(branch) or ".." in branch:
        raise GitError(f"{branch!r} is not a branch name")
    try:
        if not (folder / "HEAD").exists():
            Path(cache_root).mkdir(parents=True, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=".init-", dir=cache_root)
            try:
                git.Repo.init(tmp, bare=True)
                with contextlib.suppress(OSError):  # another loop made it first
                    os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        r = _safe(git.Repo(str(folder)))
        r.git.fetch(
            "--no-tags", "--force", "--", url, f"+{ref}:{ref}", kill_after_timeout=GIT_NETWORK_TIMEOUT
        )
        return str(folder), _info(_commit(r, ref))
    except git.GitCommandError as exc:
        raise GitError(f"cannot fetch branch {branch} from {redact(url)}: {_git_message(exc)}") from exc
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(f"the cached clone at {folder} is broken; delete it and retry") from exc
