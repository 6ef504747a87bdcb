"""Finding and reading desired-state files.

``collect_files`` walks the paths it is given for ``*.yaml``/``*.yml`` files, in sorted order, and reads
them. It refuses files over ``MAX_FILE_BYTES`` (without reading them) and symbolic links that lead
outside the given paths, given paths that lead (through a link) outside the git repository they are in,
and folders that are another repository (a submodule), and skips hidden entries (``.git``,
``.github``, ...) below a given folder.
``check_source`` holds the checks that apply to a file from anywhere (disk or a git commit): its size
and that it is UTF-8.

``read_bounded`` is the one way the tool reads a file a user names (desired state, sample objects,
directory dumps, plan files): regular files only, opened without blocking (a named pipe with no writer
or a device never stalls the tool), and never more than a limit read into memory.

Reads the file system; writes nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import Diagnostic, FileReadError

__all__ = [
    "MAX_FILE_BYTES",
    "YAML_SUFFIXES",
    "SourceFile",
    "check_source",
    "collect_files",
    "escapes_repository",
    "read_bounded",
]

# A configuration with hundreds of mappings is about 50 KiB; anything near this is not hand-written.
MAX_FILE_BYTES = 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One desired-state file: the path it is reported under and its raw bytes."""

    path: str
    data: bytes


def _too_big(path: str, size: int) -> Diagnostic:
    return Diagnostic(path, 1, 1, f"file is {size} bytes, too large; the limit is {MAX_FILE_BYTES}")


_CHUNK = 1024 * 1024


def read_bounded(path: str, limit: int = MAX_FILE_BYTES, *, what: str = "file") -> bytes:
    """The bytes of regular file ``path``, at most ``limit`` of them; ``FileReadError`` otherwise.

    The file is opened with ``O_NONBLOCK`` and checked on the open descriptor, so a named pipe or a
    device is refused without waiting for a writer and without reading it, and a file swapped for
    something else between a check and the open is still refused. The size is checked before and
    while reading (a file can grow under the reader). ``what`` names the file in messages ("plan file").
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileReadError(path, f"cannot read the {what}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileReadError(path, "not a regular file")
        if info.st_size > limit:
            raise FileReadError(path, f"{what} is {info.st_size} bytes, too large; the limit is {limit}")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(_CHUNK, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileReadError(
                    path, f"{what} is more than {limit} bytes, too large; the limit is {limit}"
                )
        return b"".join(chunks)
    except OSError as exc:
        raise FileReadError(path, f"cannot read the {what}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def check_source(source: SourceFile) -> Diagnostic | None:
    """The problem that keeps a file from being parsed at all: too big or not UTF-8."""
    if len(source.data) > MAX_FILE_BYTES:
        return _too_big(source.path, len(source.data))
    try:
        source.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = source.data[: exc.start]
        line = head.count(b"\n") + 1
        col = len(head[head.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
        return Diagnostic(
            source.path, line, col, f"file is not UTF-8 text (byte 0x{source.data[exc.start]:02x})"
        )
    return None


def _within(real: str, roots: Sequence[str]) -> bool:
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _repository_of(path: str) -> str | None:
    """The top folder of the git repository ``path`` is in, found by name (no link followed), or None."""
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def escapes_repository(path: str) -> str | None:
    """Where ``path`` really leads when a link takes it outside the repository it is named in, else None.

    A committed link to a folder outside the repository would otherwise make the tool read (and quote
    in diagnostics) files nobody reviewed.
    """
    top = _repository_of(path)
    real = os.path.realpath(path)
    if top is None or _within(real, [os.path.realpath(top)]):
        return None
    return real


def _is_repository(folder: str) -> bool:
    return os.path.lexists(os.path.join(folder, ".git"))


class _Walk:
    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = roots
        self.files: list[SourceFile] = []
        self.problems: list[Diagnostic] = []
        self.seen_files: set[str] = set()
        self.seen_dirs: set[str] = set()

    def add_file(self, path: str, real: str) -> None:
        if real in self.seen_files:
            return  # the same file reached twice (two given paths, or a link to it): read it once
        self.seen_files.add(real)
        try:
            data = read_bounded(real)
        except FileReadError as exc:
            self.problems.append(exc.diagnostic(path))
            return
        self.files.append(SourceFile(path, data))

    def walk(self, path: str, real: str) -> None:
        if real in self.seen_dirs:
            return
        self.seen_dirs.add(real)
        try:
            with os.scandir(path) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            self.problems.append(Diagnostic(path, 1, 1, f"cannot read the folder: {exc.strerror or exc}"))
            return
        for name in names:
            if name.startswith("."):
                continue
            child = name if path == os.curdir else os.path.join(path, name)
            if os.path.islink(child):
                target = os.path.realpath(child)
                if not os.path.exists(target):
                    self.problems.append(Diagnostic(child, 1, 1, "symbolic link leads nowhere"))
                    continue
                if not _within(target, self.roots):
                    self.problems.append(
                        Diagnostic(child, 1, 1, f"symbolic link leads outside the given paths (to {target})")
                    )
                    continue
            else:
                target = os.path.join(real, name)
            if os.path.isdir(target):
                if _is_repository(target):
                    self.problems.append(
                        Diagnostic(
                            child,
                            1,
                            1,
                            "is a git submodule (another repository) inside a desired-state folder; "
                            "desired-state files must be part of the repository itself",
                        )
                    )
                    continue
                self.walk(child, target)
            elif name.endswith(YAML_SUFFIXES) and os.path.isfile(target):
                self.add_file(child, target)


def collect_files(paths: Sequence[str]) -> tuple[list[SourceFile], list[Diagnostic]]:
    """The YAML files under ``paths`` (folders walked, files taken whatever their name), and problems.

    A folder with no YAML file at all gets a warning: it is most likely a wrong path.
    """
    roots = [os.path.realpath(p) for p in paths]
    walk = _Walk(roots)
    for given, real in zip(paths, roots, strict=True):
        shown = os.path.normpath(given)
        outside = escapes_repository(given)
        if outside is not None:
            walk.problems.append(
                Diagnostic(shown, 1, 1, f"leads outside its repository (to {outside}); it is not read")
            )
        elif not os.path.exists(real):
            walk.problems.append(Diagnostic(shown, 1, 1, "no such file or folder"))
        elif os.path.isdir(real):
            if real in walk.seen_dirs:
                continue
            before = len(walk.files) + len(walk.problems)
            walk.walk(shown, real)
            if len(walk.files) + len(walk.problems) == before:
                walk.problems.append(
                    Diagnostic(shown, 1, 1, "no .yaml or .yml files here", severity="warning")
                )
        elif os.path.isfile(real):
            walk.add_file(shown, real)
        else:
            walk.problems.append(Diagnostic(shown, 1, 1, "not a regular file"))
    return walk.files, walk.problems
