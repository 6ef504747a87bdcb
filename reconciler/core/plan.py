"""The plan: an immutable value saying, per configuration, what apply will change and what is held back.

Per configuration the plan holds zero or more changes: ``create``, ``update`` (field-level),
``start``/``pause`` (from ``enabled``), ``restart`` (with reasons), ``approveDeletes`` and ``delete``,
each with the ``Spec`` apply writes. Whatever is held back is in ``Plan.held`` with the reason, so the
reviewer sees it. ``planner.compute_plan`` makes plans; ``serialize`` writes and reads them.

``apply`` executes a plan exactly as it is; it never calls back into the planner.
No I/O here: provenance (time, commit) is attached by the caller.
"""

from __future__ import annotations

import enum
import operator
from collections import Counter
from dataclasses import dataclass, field

from reconciler.core.diff import FieldChange
from reconciler.core.model import Desired, DirectoryExtension, Mapping, Scope, Settings, folded_key
from reconciler.core.observed import JobStatus, Observed
from reconciler.core.onprem import OnPremisesAttribute

__all__ = [
    "ACTION_ORDER",
    "FORMAT_VERSION",
    "RESET_FOR_CHANGES",
    "TITLES",
    "Action",
    "Change",
    "Held",
    "Plan",
    "PlanOptions",
    "Provenance",
    "Spec",
    "in_scope",
    "spec_for",
]

FORMAT_VERSION = 1


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    START = "start"
    PAUSE = "pause"
    RESTART = "restart"
    # The documented restart with ForceDeletes, approved in git (``approveDeletes``).
    APPROVE_DELETES = "approveDeletes"
    DELETE = "delete"


# Apply runs the actions in this order, one phase after the other; deletes always last.
ACTION_ORDER: dict[Action, int] = {
    Action.CREATE: 0,
    Action.UPDATE: 1,
    Action.START: 2,
    Action.PAUSE: 2,
    Action.RESTART: 3,
    # After a restart: a restart for changes ends the quarantine, and with it what this approves.
    Action.APPROVE_DELETES: 4,
    Action.DELETE: 5,
}

TITLES: dict[Action, str] = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.START: "will be started (enabled)",
    Action.PAUSE: "will be paused (disabled)",
    Action.RESTART: "will be restarted",
    Action.APPROVE_DELETES: "will have its held deletes approved (restart with ForceDeletes)",
    Action.DELETE: "will be deleted",
}

# Restart flags (synchronizationJobRestartScope). Scope and mapping changes need every object
# re-evaluated, which is what the portal's "Restart sync" and the docs' "Full" do.
RESET_FOR_CHANGES = "Full"


@dataclass(frozen=True, slots=True)
class Spec:
    """The desired values of one configuration: what apply writes.

    ``mappings`` are the rows the desired state sets and ``removals`` the (object, target) rows it
    takes out; every other row of the service's schema is the service's and is kept as it is.
    """

    settings: Settings
    scope: Scope
    mappings: tuple[Mapping, ...]
    deletion_protection: bool = False
    restart_token: str | None = None
    removals: tuple[tuple[str, str], ...] = ()
    # Directory extensions the configuration declares (apply makes any that are missing) and, in a
    # change, those it deletes (only in a plan made with --allow-delete).
    extensions: tuple[DirectoryExtension, ...] = ()
    extension_removals: tuple[str, ...] = ()
    # AD attributes whose definitions apply copies from a directory discover when the schema lacks them.
    onprem_attributes: tuple[OnPremisesAttribute, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    name: str
    action: Action
    target_id: str | None = None  # None: a configuration that does not exist yet
    reasons: tuple[str, ...] = ()
    fields: tuple[FieldChange, ...] = ()
    spec: Spec | None = None  # create / update: the values to write
    write_settings: bool = False  # update: settings or our metadata changed
    write_schema: bool = False  # update: scope or mappings changed
    reset_scope: str | None = None  # restart: resetScope flags
    # update: the managed configuration's name until now; the desired state renamed it (``moved``)
    moved_from: str | None = None
    # approveDeletes: the start of the quarantine it approves, as the service reported it when planned
    quarantine_since: str | None = None
    # approveDeletes: how many deletes the provisioning logs listed as held when planned; None: unknown
    held_deletes: int | None = None

    @property
    def address(self) -> str:
        return f"configuration.{self.name}"


@dataclass(frozen=True, slots=True)
class Held:
    """A change the plan would make but holds back, and why."""

    name: str
    action: Action
    target_id: str | None
    reasons: tuple[str, ...]
    override: str | None = None  # the flag that releases it, when one does

    @property
    def address(self) -> str:
        return f"configuration.{self.name}"


@dataclass(frozen=True, slots=True)
class PlanOptions:
    allow_delete: bool = False
    allow_mass_delete: bool = False
    max_deletes: int = 1
    # Only these configuration names are planned (``--changed-since``); None plans everything.
    only: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Provenance:
    created_at: str = ""
    commit: str | None = None
    dirty: bool = False
    paths: tuple[str, ...] = ()
    user: str | None = None
    # The commit the desired state was read from (``plan --ref``); None: the work tree.
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    target: str
    changes: tuple[Change, ...] = ()
    held: tuple[Held, ...] = ()
    warnings: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    # "CONFIGURATION: clause" for each scoping-filter clause the tool does not manage (read-only).
    unmanaged_scoping: tuple[str, ...] = ()
    statuses: tuple[tuple[str, JobStatus], ...] = ()  # (name, status) of configurations not healthy
    fingerprints: tuple[tuple[str, str], ...] = ()  # (target id, fingerprint) of everything observed
    desired_digest: str = ""
    options: PlanOptions = field(default_factory=PlanOptions)
    provenance: Provenance = field(default_factory=Provenance)
    format_version: int = FORMAT_VERSION

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def summary(self) -> dict[str, int]:
        counts = Counter(c.action.value for c in self.changes)
        # Approvals are counted only when a plan has some: other plans' summaries read as before.
        out = {
            a.value: counts.get(a.value, 0)
            for a in Action
            if a is not Action.APPROVE_DELETES or counts[a.value]
        }
        out["held"] = len(self.held)
        return out

    def names(self) -> tuple[str, ...]:
        return tuple(sorted({c.name for c in self.changes} | {h.name for h in self.held}))


_FOLDED = operator.attrgetter("folded")  # Mapping.folded_key, without a Python call


def spec_for(d: Desired) -> Spec:
    """What the desired configuration ``d`` asks apply to write, in a canonical order."""
    sets = [o.mapping for o in d.overrides if o.mapping is not None]
    return Spec(
        settings=d.settings,
        scope=d.scope.normalized(),
        mappings=tuple(sorted(sets, key=_FOLDED)),
        deletion_protection=d.deletion_protection,
        restart_token=d.restart_token,
        removals=tuple(
            sorted((o.key for o in d.overrides if o.mapping is None), key=lambda k: folded_key(*k))
        ),
        extensions=tuple(sorted(d.extensions, key=lambda e: e.name.casefold())),
        extension_removals=tuple(sorted(d.extension_removals, key=str.casefold)),
        onprem_attributes=tuple(sorted(d.onprem_attributes, key=lambda a: a.name.casefold())),
    )


def in_scope(o: Observed, only: frozenset[str] | None) -> bool:
    """Whether a plan restricted to ``only`` depends on ``o``: unmanaged ones always (for clashes)."""
    return only is None or not o.managed or o.name in only
