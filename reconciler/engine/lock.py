"""The apply lock: two applies (or an apply and a reconcile loop) never run against one target at once.

The lock is an OS file lock (``filelock``: ``flock`` on POSIX) in the state folder, one per target. The
kernel releases it when its holder dies, even on SIGKILL, so a killed run never leaves the target locked;
a holder file next to it names the current holder (pid, host, user, command, since when) for the error
message, and tells the next holder that the previous run ended without releasing it.

I/O: the lock and holder files in the state folder.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock

from reconciler.engine.state import ensure_state_dir
from reconciler.errors import LockError

__all__ = ["LockInfo", "target_lock"]


@dataclass(frozen=True, slots=True)
class LockInfo:
    """What the run that took the lock found: the previous holder if it died holding it."""

    recovered_from: dict[str, object] | None


def _lock_paths(target: str) -> tuple[Path, Path]:
    key = hashlib.sha256(target.encode()).hexdigest()[:16]
    folder = ensure_state_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}.lock", folder / f"{key}.holder.json"


def _read_holder(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, object] | None) -> str:
    if not holder:
        return "another run"
    return (
        f"{holder.get('command', 'a run')} (pid {holder.get('pid')} on {holder.get('host')}, "
        f"user {holder.get('user')}, since {holder.get('since')})"
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return str(os.getuid())


@contextmanager
def target_lock(target: str, *, timeout: float, command: str) -> Iterator[LockInfo]:
    """Hold the target's lock for the block; wait up to ``timeout`` seconds, then fail naming the holder."""
    lock_path, holder_path = _lock_paths(target)
    lock = filelock.FileLock(str(lock_path), timeout=timeout, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockError(
            f"the target {target} is locked by {_describe(_read_holder(holder_path))}; "
            f"gave up after waiting {timeout:g}s (--lock-timeout)"
        ) from None
    try:
        # A holder file still present means its run never reached release: it was killed.
        previous = _read_holder(holder_path)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "user": _user(),
            "command": command,
            "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        holder_path.write_text(json.dumps(holder), encoding="utf-8")
        try:
            yield LockInfo(recovered_from=previous)
        finally:
            holder_path.unlink(missing_ok=True)
    finally:
        lock.release()
