"""The state-store interface: what every backend keeps per target, and the helpers they share.

A state store holds, per target (its canonical target string): the apply lock and its holder, the journal
of runs (append-only entries with unique ids, so a retried or re-imported entry is never counted twice),
named status documents (the reconcile loop's last result, the health snapshot) and leader leases for
replicas of the reconcile loop. Backends: ``reconciler.state.sqlite`` (embedded, the default) and
``reconciler.state.postgres`` (shared, for teams with many runners).

I/O: none here; the backends do theirs.
"""

from __future__ import annotations

import abc
import datetime as _dt
import getpass
import json
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "JournalEntry",
    "StateStore",
    "describe_holder",
    "json_object",
    "runner_identity",
]

# The version of the tables this release writes; each backend migrates older stores up to it.
SCHEMA_VERSION = 1

# CI systems' run identifiers, first found wins: a journal entry names the pipeline run that made it.
_CI_RUN_VARIABLES = (
    "GITHUB_RUN_ID",
    "CI_PIPELINE_ID",  # GitLab
    "BUILD_BUILDID",  # Azure Pipelines
    "BUILDKITE_BUILD_ID",
    "CIRCLE_WORKFLOW_ID",
    "JENKINS_BUILD_TAG",
    "BUILD_TAG",  # Jenkins
)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal line: ``id`` is unique across all runs (appending it twice keeps one)."""

    id: str
    run: str
    event: str
    time: str
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time, "run": self.run, "event": self.event, **self.data}

    def data_json(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, default=str, sort_keys=True)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return str(os.getuid())


def runner_identity(command: str | None = None) -> dict[str, Any]:
    """Who is running: host, user, pid, the CI run id when there is one, and since when."""
    out: dict[str, Any] = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": _user(),
        "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    for name in _CI_RUN_VARIABLES:
        value = os.environ.get(name)
        if value:
            out["ci_run"] = f"{name}={value[:200]}"
            break
    if command:
        out["command"] = command
    return out


def json_object(value: Any) -> dict[str, Any] | None:
    """A stored document as a dict: JSON text is parsed (PostgreSQL's jsonb arrives parsed already);
    anything that is not a JSON object, including unreadable text and None, is None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another run"
    text = (
        f"{holder.get('command', 'a run')} (pid {holder.get('pid')} on {holder.get('host')}, "
        f"user {holder.get('user')}, since {holder.get('since')}"
    )
    if holder.get("ci_run"):
        text += f", CI run {holder['ci_run']}"
    return text + ")"


class StateStore(abc.ABC):
    """One backend instance; every method takes the canonical target string it is about.

    Implementations are safe to use from several threads of one process.
    """

    #: where the store is, for messages (never with a password)
    location: str

    @abc.abstractmethod
    def lock(
        self, target: str, name: str, *, timeout: float, holder: dict[str, Any]
    ) -> AbstractContextManager[dict[str, Any] | None]:
        """Hold the lock ``name`` of ``target`` for the block; waits up to ``timeout`` seconds.

        Yields the previous holder when it died holding the lock (None otherwise); raises ``LockError``
        naming the holder after the timeout. A holder that dies (even by SIGKILL) releases the lock.
        """

    @abc.abstractmethod
    def lock_holder(self, target: str, name: str) -> dict[str, Any] | None:
        """Who holds (or, after a killed run, last held without releasing) the lock ``name``."""

    @abc.abstractmethod
    def append(self, target: str, entries: Sequence[JournalEntry]) -> None:
        """Add journal entries in one transaction; an entry whose id is already there is skipped."""

    @abc.abstractmethod
    def entries(self, target: str) -> Iterator[dict[str, Any]]:
        """Every journal entry of ``target``, in the order they were appended."""

    @abc.abstractmethod
    def put_status(self, target: str, key: str, doc: dict[str, Any]) -> None:
        """Replace the status document ``key`` of ``target`` (atomic: a reader sees old or new)."""

    @abc.abstractmethod
    def get_status(self, target: str, key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def try_lease(
        self, target: str, name: str, *, owner: str, ttl: float, holder: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Take or renew the lease ``name`` for ``owner`` for ``ttl`` seconds.

        Returns None when ``owner`` holds it now, else the current holder (with ``expires``).
        """

    @abc.abstractmethod
    def release_lease(self, target: str, name: str, *, owner: str) -> None: ...

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def schema_version(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...
