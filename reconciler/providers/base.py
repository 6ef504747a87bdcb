"""The Provider protocol: what the planner and apply need from a target, and nothing more.

A provider reads every Cloud Sync configuration the target holds (managed by us or not) and carries out
the few writes a plan is made of. Implementations: ``memory`` (in-process fake for unit tests),
``local`` (the embedded SQLite tenant, the default) and ``graph`` (Microsoft Graph, or the emulator).
All of them pass ``tests/providers/test_contract.py``.

Rules every implementation keeps:
- ``create`` is idempotent by name: when a create was interrupted, calling it again finishes that
  configuration instead of making a second one.
- Writes touch only what we manage; anything else the target holds (other secret keys, other rules,
  unmanaged configurations) is written back untouched.
- A configuration whose tag says it is ours is ``managed``; every other one is read-only to us.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from typing import Any, Protocol, runtime_checkable

from reconciler.core.group_limits import Filters, FilterSelection, GroupSizes, TenantSize
from reconciler.core.model import RESET_FORCE_DELETES, RESET_FULL, ExtensionsSeen, Mapping, Scope, Settings
from reconciler.core.observed import HeldDeletes, Observed
from reconciler.core.onprem import OnPremisesAttribute, OnPremisesAttributesSeen

__all__ = [
    "RESET_FORCE_DELETES",
    "RESET_FULL",
    "ApprovesDeletes",
    "ChecksExchangeSchema",
    "CountsGroupMembers",
    "CountsHeldDeletes",
    "LooksUpDomains",
    "ParsesExpressions",
    "Provider",
    "ReadsByName",
    "ReadsExtensions",
    "ReadsOnPremisesAttributes",
]


@runtime_checkable
class ReadsByName(Protocol):
    """What a provider may add so that a plan of a few configurations reads only those."""

    def read_named(self, names: frozenset[str]) -> tuple[Observed, ...]:
        """The managed configurations called ``names`` and every unmanaged one, sorted by id."""
        ...


@runtime_checkable
class ChecksExchangeSchema(Protocol):
    """What a provider adds so that a plan can check Exchange hybrid writeback's precondition."""

    def exchange_schema_ready(self, id: str) -> bool:
        """Whether the AD schema of configuration ``id`` has the Exchange attributes, as a directory
        ``discover`` on its provisioning job finds them now (the documented check)."""
        ...


@runtime_checkable
class ReadsExtensions(Protocol):
    """What a provider adds when it can hold directory extensions (the Cloud Sync extensions
    application and its extension properties)."""

    def read_extensions(self) -> ExtensionsSeen | None:
        """The extensions application with its properties; None while the tenant has none."""
        ...


@runtime_checkable
class ReadsOnPremisesAttributes(Protocol):
    """What a provider adds when it can tell where a configuration's declared on-premises attributes
    are: in its job schema's AD directory, or only in a directory discover."""

    def onprem_attributes_seen(
        self, id: str, declared: Sequence[OnPremisesAttribute]
    ) -> OnPremisesAttributesSeen: ...

    def ad_attributes(self, id: str) -> dict[str, frozenset[str]]:
        """The attribute names (folded) configuration ``id``'s job schema defines in its AD directory,
        by folded object name."""
        ...


@runtime_checkable
class ApprovesDeletes(Protocol):
    """What a provider adds when it records on the target which quarantine's deletes it released."""

    def approve_deletes(self, id: str, quarantine_since: str) -> None:
        """Restart with ForceDeletes and record ``quarantine_since`` (``Observed.deletes_approved``)."""
        ...


@runtime_checkable
class CountsHeldDeletes(Protocol):
    """What a provider adds when it can tell how many deletes a ``TooManyDeletes`` quarantine holds
    (the provisioning logs' staged deletes, ``graph.provisioning_logs``)."""

    def held_deletes(self, id: str, since: str | None) -> HeldDeletes:
        """The deletes held since ``since`` by configuration ``id``'s job; a read only. A failed read
        gives an unknown count with its reason, never an error."""
        ...


@runtime_checkable
class CountsGroupMembers(Protocol):
    """What a provider adds when it can count the direct members of cloud groups (the documented
    limits of Entra ID -> AD group provisioning, ``core.group_limits``)."""

    def group_sizes(self, ids: Sequence[str]) -> GroupSizes:
        """The direct-member count of each cloud group ``ids`` names; a read only. A group the tenant
        does not list is ``missing``; a count that cannot be read is unknown, with why, never an error."""
        ...

    def tenant_size(self) -> TenantSize | None:
        """How many users and groups the tenant holds (None: the target cannot tell); a read only."""
        ...

    def filter_selections(self, filters: AbcMapping[str, Filters]) -> dict[str, FilterSelection]:
        """By configuration name, the groups its all-groups scope with these filters selects (absent:
        the target cannot tell); a read only, a failure is an unknown selection with why."""
        ...


@runtime_checkable
class ParsesExpressions(Protocol):
    """What a target whose service parses mapping expressions (Graph ``parseExpression``) offers."""

    def parse_expression(self, expression: str, configuration_id: str | None = None) -> dict[str, Any]:
        """The service's verdict on ``expression`` (``parsingSucceeded``, ``error``, ...)."""
        ...


@runtime_checkable
class LooksUpDomains(Protocol):
    """What a provider adds when it cannot list every configuration by itself (Graph: a principal made
    in the portal may carry no template id) and must be told which AD domains to look for."""

    def look_up_domains(self, domains: Iterable[str] | None) -> None:
        """From now on, every read also finds the configurations of ``domains`` (None: of any domain,
        at the cost of looking at every candidate the target holds)."""
        ...


@runtime_checkable
class Provider(Protocol):
    #: canonical target string, recorded in plans so that a plan is applied only where it was made
    target: str

    def read_all(self) -> tuple[Observed, ...]:
        """Every configuration on the target, managed or not, sorted by id."""
        ...

    def template_defaults(self) -> tuple[Mapping, ...]:
        """The provisioning template's default mappings (without CredentialData)."""
        ...

    def create(
        self,
        name: str,
        settings: Settings,
        scope: Scope,
        mappings: Sequence[Mapping],
        *,
        removals: Sequence[tuple[str, str]] = (),
        deletion_protection: bool = False,
        restart_token: str | None = None,
    ) -> str:
        """Create (or finish creating) managed configuration ``name``, left paused; return its id.

        The new job's schema is the service's: ``mappings`` are set in it and ``removals`` taken out of
        it, and every other row is kept as the service made it."""
        ...

    def update_settings(
        self,
        id: str,
        settings: Settings,
        *,
        deletion_protection: bool,
        restart_token: str | None,
    ) -> None:
        """Domain, notification e-mail, delete threshold, password hash sync and our own metadata."""
        ...

    def edit_schema(
        self, id: str, scope: Scope, mappings: Sequence[Mapping], removals: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Set the scope, set ``mappings`` and take ``removals`` out of the job schema as read; rows
        neither names are kept exactly as the service has them (CredentialData is left as it is)."""
        ...

    def start(self, id: str) -> None: ...

    def pause(self, id: str) -> None: ...

    def restart(self, id: str, reset_scope: str = RESET_FULL) -> None:
        """Restart the provisioning job with the given ``resetScope`` flags."""
        ...

    def set_restart_pending(self, id: str, pending: bool) -> None:
        """Record on the target that a restart is owed (set before the change that needs it);
        ``restart`` clears it. Read back as ``Observed.restart_pending``."""
        ...

    def delete(self, id: str) -> None:
        """Remove the configuration; safe to call again after an interrupted delete."""
        ...

    def adopt(self, id: str, name: str) -> None:
        """Mark an existing configuration as managed under ``name``."""
        ...

    def rename(self, id: str, old: str, new: str) -> None:
        """Give managed configuration ``old`` (id ``id``) the name ``new``; done already is no error."""
        ...

    def provision_on_demand(self, id: str, subject: str, object_type: str = "user") -> dict[str, Any]:
        """Provision one object now; returns the service's response (``key``/``value`` JSON strings)."""
        ...

    def close(self) -> None: ...
