"""The apply lock: two applies (or an apply and a reconcile loop) never run against one target at once.

The lock lives in the target's state store (``reconciler.state``), so every checkout and every runner
that names the same target shares it: an OS file lock next to the SQLite store, or a session-level
advisory lock in PostgreSQL. Both are released when their holder dies, even on SIGKILL, so a killed run
never leaves the target locked; the store names the current holder (pid, host, user, CI run, command,
since when) for the error message, and tells the next holder that the previous run ended without
releasing it.

I/O: the state store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reconciler.state import open_store
from reconciler.state.base import runner_identity

__all__ = ["LockInfo", "target_lock"]

APPLY_LOCK = "apply"


@dataclass(frozen=True, slots=True)
class LockInfo:
    """What the run that took the lock found: the previous holder if it died holding it."""

    recovered_from: dict[str, object] | None


@contextmanager
def target_lock(target: str, *, timeout: float, command: str) -> Iterator[LockInfo]:
    """Hold the target's lock for the block; wait up to ``timeout`` seconds, then fail naming the holder."""
    store = open_store(target)
    with store.lock(target, APPLY_LOCK, timeout=timeout, holder=runner_identity(command)) as previous:
        yield LockInfo(recovered_from=previous)
