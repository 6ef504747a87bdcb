"""What a target holds of one configuration, as the planner compares it: frozen values, no I/O.

``Observed`` is one configuration as a target (the local tenant, Graph, the memory provider) reads it;
``JobStatus`` is its jobs' health as the service reports it (``synchronizationStatus``), and
``HeldDeletes`` what a ``TooManyDeletes`` quarantine holds back, from the provisioning logs. The desired
side and the values both sides share (``Settings``, ``Scope``, ``Mapping``) are in ``core.model``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.model import TOO_MANY_DELETES, Mapping, Scope, Settings
from reconciler.core.onprem import OnPremisesAttributesSeen

__all__ = ["HeldDeletes", "JobStatus", "Observed", "quarantine_instant"]


@dataclass(frozen=True, slots=True)
class JobStatus:
    """The provisioning job's health as the service reports it (``synchronizationStatus``)."""

    code: str = "NotRun"  # NotConfigured | NotRun | Active | Paused | Quarantine
    quarantine_reason: str | None = None
    quarantine_since: str | None = None
    last_run_state: str | None = None  # Succeeded | Failed | EntryLevelErrors
    last_run_end: str | None = None
    last_error: str | None = None
    # The last run's object counts as the service reports them (countEntitled, countExported, ...);
    # shown by serve, not part of plans.
    last_run_counts: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    @property
    def healthy(self) -> bool:
        return self.code != "Quarantine" and self.last_run_state in (None, "Succeeded")

    def holds_deletes(self, since: str | None = None) -> bool:
        """Whether the job is in quarantine for too many deletes (with ``since``: in the one that began
        at that instant, as ``quarantine_instant`` reads it)."""
        if self.code != "Quarantine" or self.quarantine_reason != TOO_MANY_DELETES:
            return False
        if since is None:
            return True
        began = quarantine_instant(self.quarantine_since)
        return began is not None and began == quarantine_instant(since)

    def state_text(self) -> str:
        """``Quarantine (TooManyDeletes) since 2026-...``, ``Active``: the state in a few words."""
        text = self.code + (f" ({self.quarantine_reason})" if self.quarantine_reason else "")
        return text + (f" since {self.quarantine_since}" if self.quarantine_since else "")

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "quarantineReason": self.quarantine_reason,
            "quarantineSince": self.quarantine_since,
            "lastRunState": self.last_run_state,
            "lastRunEnd": self.last_run_end,
            "lastError": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class HeldDeletes:
    """How many deletes a ``TooManyDeletes`` quarantine holds back, as the service's provisioning logs
    list them (the job status has no field for it): the distinct objects with a staged delete since the
    quarantine began. ``count`` is None when the logs could not be read; ``unknown`` then says why."""

    since: str | None
    count: int | None
    unknown: str | None = None

    def text(self) -> str:
        """``3 deletes held since 2026-...``, or why the number is not known."""
        if self.count is None:
            why = self.unknown or "the provisioning logs were not read"
            return f"the number of held deletes is unknown: {why}"
        noun = "delete" if self.count == 1 else "deletes"
        return f"{self.count} {noun} held" + (f" since {self.since}" if self.since else "")

    def as_dict(self) -> dict[str, object]:
        return {"count": self.count, "since": self.since, "unknown": self.unknown}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeldDeletes:
        """From ``as_dict``'s keys (as a status row or the journal holds them); anything else is unknown."""
        count, since, unknown = data.get("count"), data.get("since"), data.get("unknown")
        return cls(
            since if isinstance(since, str) else None,
            count if isinstance(count, int) and not isinstance(count, bool) else None,
            unknown if isinstance(unknown, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Observed:
    """One configuration as a target holds it.

    ``mappings`` is the full effective set found in the job schema, *without* the CredentialData
    mapping: that one is reported through ``settings.password_hash_sync`` and
    ``credential_data_count`` (which must be exactly 1 per PHS object when on, 0 when off).
    """

    id: str
    name: str | None  # the managed name (from the target's tag); None when unmanaged
    managed: bool
    settings: Settings
    scope: Scope
    mappings: tuple[Mapping, ...]
    status: JobStatus = field(default_factory=JobStatus)
    deletion_protection: bool = False
    restart_token: str | None = None
    credential_data_count: dict[str, int] = field(default_factory=dict, compare=False)
    # False when a create was interrupted part-way: the planner plans a resumed create.
    complete: bool = True
    # An apply changed this configuration and meant to restart it, but the restart did not happen.
    restart_pending: bool = False
    # Every job of the configuration, (templateId, status): the provisioning job and its add-ons.
    jobs: tuple[tuple[str, JobStatus], ...] = field(default=(), compare=False)
    # Exchange hybrid writeback's precondition, when it was looked up (directory discover): whether
    # the AD schema has the Exchange attributes. None: not looked up.
    exchange_schema: bool | None = field(default=None, compare=False)
    # Scoping-filter clauses the tool does not manage (kept as they are on every write), as text.
    unmanaged_scoping: tuple[str, ...] = ()
    # The start of the TooManyDeletes quarantine whose held deletes an approveDeletes apply released.
    deletes_approved: str | None = field(default=None, compare=False)
    # The declared on-premises attributes as the job schema and a directory discover hold them, when
    # they were looked up. None: not looked up.
    onprem_attributes: OnPremisesAttributesSeen | None = field(default=None, compare=False)
    # What a TooManyDeletes quarantine holds, when it was looked up (``engine.held``). None: not looked up.
    held_deletes: HeldDeletes | None = field(default=None, compare=False)

    @property
    def display(self) -> str:
        return self.name or f"{self.settings.domain} ({self.id})"


def quarantine_instant(text: str | None) -> _dt.datetime | None:
    """The instant a quarantine began, from ISO 8601 text with its zone (the service writes up to seven
    fraction digits; they compare to the microsecond); None for anything else."""
    if not text:
        return None
    try:
        when = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when.astimezone(_dt.UTC) if when.tzinfo is not None else None
