"""Where the tool keeps its own files in a folder: ``.reconciler`` or ``RECONCILER_STATE_DIR``.

It holds the embedded tenant by default (``default_target``, the target when neither ``--target`` nor
``RECONCILER_TARGET`` names one), the reconcile loop's git cache and crash logs, and, from
earlier releases, a journal and status files that ``reconciler.state`` imports into the target's state
store (locks, the journal and status documents live in that store). Nothing in it is secret: tokens are
never written anywhere. It is still private to its owner whatever the umask (0700, files written through
``write_private`` 0600): other local users have no business reading journals or plans, nor planting
files where the tool will read them.

I/O: ``ensure_state_dir`` creates the folder; ``write_private`` writes one file.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_TARGET",
    "TARGET_ENV",
    "default_target",
    "ensure_state_dir",
    "private_dir",
    "state_dir",
    "write_private",
]

DEFAULT_TARGET = "local:.reconciler/tenant.db"
TARGET_ENV = "RECONCILER_TARGET"


def state_dir() -> Path:
    return Path(os.environ.get("RECONCILER_STATE_DIR") or ".reconciler")


def private_dir(path: Path) -> Path:
    """``path`` as a folder, created 0700 when missing (the umask can only take bits away from that)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def ensure_state_dir() -> Path:
    """The state folder, created private to its owner when it does not exist yet."""
    return private_dir(state_dir())


def default_target(*, create: bool) -> str:
    """The local tenant in the state folder (``RECONCILER_STATE_DIR`` when set), made private to its owner."""
    if create:
        ensure_state_dir()
    if state_dir() == Path(".reconciler"):
        return DEFAULT_TARGET  # the same canonical name plans made before have recorded
    return f"local:{state_dir() / 'tenant.db'}"


def write_private(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` as a file only its owner can read (0600), replacing it atomically.

    The file is written beside the target and renamed over it; the temporary name is never followed
    through a link.
    """
    final = os.fspath(path)
    tmp = f"{final}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover temporary file keeps its old mode through O_TRUNC
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, final)
