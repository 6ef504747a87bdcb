"""The desired-state and observed-state model: frozen values, no I/O.

A Cloud Sync *configuration* is, on the service, a service principal made from the AD2AAD provisioning
template with its synchronization job(s), secrets and schema (or, for the Entra ID -> AD ``Direction``,
from the group provisioning template). Here it is one ``Desired`` value (what git says) or one
``Observed`` value (what a target holds, in ``core.observed``). Both share ``Settings`` (with the
direction and the add-on jobs), ``Scope`` (with Entra ID -> AD selected groups and attribute filters)
and ``Mapping`` so that the planner can compare them field by field.

Mappings are keyed by ``(object, target)``: the object type (``user``, ``inetOrgPerson``, ``group``,
``contact``) and the target attribute name, which the service matches case-insensitively
(``folded_key``). The desired state speaks about some rows only: overrides (set a row) and removals
(delete a row). Every other row of the service's schema is the service's own and is kept as it is
(``edit_mappings``). Password hash sync adds ``CredentialData <- [PasswordHash]`` to the user and
inetOrgPerson object mappings that the schema has.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.onprem import OnPremisesAttribute

__all__ = [
    "CREDENTIAL_DATA",
    "DEFAULT_DELETE_THRESHOLD",
    "ENTRA_TO_AD_OBJECTS",
    "EXTENSION_DATA_TYPES",
    "EXTENSION_REF",
    "EXTENSION_TARGETS",
    "FILTER_OPERATORS",
    "MAX_ON_DEMAND_MEMBERS",
    "OBJECT_TYPES",
    "PHS_OBJECTS",
    "PROTECTED_TARGETS",
    "RESET_FORCE_DELETES",
    "RESET_FULL",
    "TARGET_CONTAINER",
    "TOO_MANY_DELETES",
    "UNARY_OPERATORS",
    "ApplyMode",
    "Desired",
    "DesiredState",
    "Direction",
    "DirectoryExtension",
    "ExtensionsSeen",
    "FilterClause",
    "Mapping",
    "MappingKind",
    "MappingOverride",
    "Origin",
    "Scope",
    "ScopeKind",
    "Settings",
    "edit_mappings",
    "effective_mappings",
    "extension_attribute",
    "folded_key",
    "mapping_key",
    "password_hash_mapping",
    "resolve_extension_removals",
    "resolve_extensions",
]

OBJECT_TYPES: tuple[str, ...] = ("user", "inetOrgPerson", "group", "contact")
# The service docs add the password-hash mapping to these two object mappings only.
PHS_OBJECTS: tuple[str, ...] = ("user", "inetOrgPerson")
CREDENTIAL_DATA = "CredentialData"
DEFAULT_DELETE_THRESHOLD = 500
# The quarantine reason of a job the accidental-delete threshold stopped (synchronizationStatus).
TOO_MANY_DELETES = "TooManyDeletes"
# The restart flag that releases the deletes the threshold holds back; only ever on a person's approval.
RESET_FORCE_DELETES = "ForceDeletes"

# Entra ID -> AD (group provisioning, users in preview): the object types its job maps, the pseudo
# attribute that names the container objects are created in, and the rows the docs say the service owns
# (cloud-sync-directions.md 1.5 and 2): changing one would break matching or membership.
ENTRA_TO_AD_OBJECTS: tuple[str, ...] = ("group", "user")
TARGET_CONTAINER = "parentDistinguishedName"
PROTECTED_TARGETS: dict[str, frozenset[str]] = {
    "group": frozenset(
        t.casefold()
        for t in (
            "adminDescription",
            "msDS-ExternalDirectoryObjectId",
            "member",
            "isSecurityGroup",
            "UniversalScope",
            "ObjectGUID",
        )
    ),
    "user": frozenset(
        t.casefold() for t in ("adminDescription", "msDS-ExternalDirectoryObjectId", "ObjectGUID")
    ),
}
# provisionOnDemand of an Entra ID -> AD job: one group and at most this many of its members a request
# (how-to-on-demand-provision-entra-to-active-directory.md, CONFIRMED).
MAX_ON_DEMAND_MEMBERS = 5
# The provisioning scoping-filter operators (API names); the unary ones take no value.
UNARY_OPERATORS: frozenset[str] = frozenset(("IS_TRUE", "IS_FALSE", "IS_NULL", "IS_NOT_NULL"))
FILTER_OPERATORS: tuple[str, ...] = (
    "EQUALS",
    "NOT_EQUALS",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUALS",
    "IS_TRUE",
    "IS_FALSE",
    "IS_NULL",
    "IS_NOT_NULL",
    "REGEX_MATCH",
    "NOT_REGEX_MATCH",
)
# The restart flag (synchronizationJobRestartScope, Graph v1.0) Full = ConnectorDataStore|Escrows|Watermark|
# QuarantineState: every object evaluated again.
RESET_FULL = "Full"


class Direction(enum.StrEnum):
    """Which way a configuration provisions: AD to Entra ID (users, groups, contacts), or Entra ID to AD
    (cloud security groups; users in preview)."""

    AD_TO_ENTRA = "adToEntra"
    ENTRA_TO_AD = "entraToAd"


class MappingKind(enum.StrEnum):
    """The portal's mapping types; on the service Direct = Attribute, Expression = Function."""

    DIRECT = "direct"
    CONSTANT = "constant"
    EXPRESSION = "expression"


class ApplyMode(enum.StrEnum):
    """'Apply this mapping': always, or only during object creation (service flowType ObjectAddOnly)."""

    ALWAYS = "always"
    ON_CREATE = "onCreate"


class ScopeKind(enum.StrEnum):
    ALL = "all"
    GROUPS = "groups"
    ORGANIZATIONAL_UNITS = "organizationalUnits"
    # Entra ID -> AD: the Entra group object ids assigned to the configuration's service principal.
    SELECTED_GROUPS = "selectedGroups"


@dataclass(frozen=True, slots=True)
class FilterClause:
    """One clause of an Entra ID -> AD attribute filter: ``attribute OPERATOR value``."""

    attribute: str
    operator: str
    value: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = {"attribute": self.attribute, "operator": self.operator}
        if self.value is not None:
            data["value"] = self.value
        return data


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value was written in the desired state: file and 1-based line/column."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Mapping:
    """One effective attribute mapping: ``target`` is filled from ``value`` as ``kind`` says."""

    object: str
    target: str
    kind: MappingKind
    value: str  # source attribute name, constant text, or expression text
    default: str | None = None
    apply: ApplyMode = ApplyMode.ALWAYS
    matching_priority: int = 0  # >0: a matching (joining) attribute; kept as the template has it
    # Every field as a plain value, for digests and fingerprints: made once, since one Mapping is
    # shared by the many configurations that hold the same row.
    canonical: tuple[Any, ...] = field(init=False, repr=False, compare=False, hash=False)
    # ``folded_key(object, target)``, made once: planning looks every row up by it, many times.
    folded: tuple[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "folded", (self.object, self.target.casefold()))
        object.__setattr__(
            self,
            "canonical",
            (
                self.object,
                self.target,
                self.kind._value_,
                self.value,
                self.default,
                self.apply._value_,
                self.matching_priority,
            ),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.object, self.target)

    @property
    def folded_key(self) -> tuple[str, str]:
        return self.folded

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "value": self.value}
        if self.default is not None:
            data["default"] = self.default
        if self.apply is not ApplyMode.ALWAYS:
            data["apply"] = self.apply.value
        if self.matching_priority:
            data["matchingPriority"] = self.matching_priority
        return data

    def describe(self) -> str:
        """Short human form: ``[department]``, ``"FTE"``, ``Join(" ", [a], [b])``."""
        if self.kind is MappingKind.DIRECT:
            text = f"[{self.value}]"
        elif self.kind is MappingKind.CONSTANT:
            text = '"' + self.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            text = self.value
        if self.default is not None:
            text += f" (default {self.default!r})"
        if self.apply is ApplyMode.ON_CREATE:
            text += " (on create only)"
        return text


@dataclass(frozen=True, slots=True)
class MappingOverride:
    """A mapping as written in the desired state: set (``mapping``) or remove a template default."""

    object: str
    target: str
    mapping: Mapping | None  # None: remove the template default for (object, target)
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.object, self.target)

    @property
    def folded_key(self) -> tuple[str, str]:
        return folded_key(self.object, self.target)

    @property
    def remove(self) -> bool:
        return self.mapping is None


# The loader makes an Origin and a MappingOverride for every mapping entry of a repository (60,000 in
# a large one). A frozen dataclass's __init__ sets each field with object.__setattr__, which looks the
# field up by name each time; these two set the same slots through their descriptors, for about half
# the cost. Nothing else is skipped: neither class has a __post_init__ (a test holds them equal).
_new = object.__new__
_ORIGIN_SLOTS: tuple[Any, ...] = tuple(vars(Origin)[name].__set__ for name in ("file", "line", "col"))
_OVERRIDE_SLOTS: tuple[Any, ...] = tuple(
    vars(MappingOverride)[name].__set__ for name in ("object", "target", "mapping", "origin")
)


def make_origin(file: str, line: int, col: int) -> Origin:
    """``Origin(file, line, col)``, made faster."""
    origin: Origin = _new(Origin)
    set_file, set_line, set_col = _ORIGIN_SLOTS
    set_file(origin, file)
    set_line(origin, line)
    set_col(origin, col)
    return origin


def make_override(obj: str, target: str, mapping: Mapping | None, origin: Origin | None) -> MappingOverride:
    """``MappingOverride(obj, target, mapping, origin)``, made faster."""
    override: MappingOverride = _new(MappingOverride)
    set_object, set_target, set_mapping, set_origin = _OVERRIDE_SLOTS
    set_object(override, obj)
    set_target(override, target)
    set_mapping(override, mapping)
    set_origin(override, origin)
    return override


@dataclass(frozen=True, slots=True)
class Scope:
    """Which objects are in scope: all, selected security groups, or selected OUs (DNs); for Entra ID ->
    AD, selected cloud groups (object ids), or all groups that pass ``filters``.

    ``filters``: OR across filters, AND across the clauses of one (the service's scoping filters)."""

    kind: ScopeKind = ScopeKind.ALL
    entries: tuple[str, ...] = ()
    filters: tuple[tuple[FilterClause, ...], ...] = ()

    @staticmethod
    def all() -> Scope:
        return Scope(ScopeKind.ALL, ())

    def normalized(self) -> Scope:
        # DNs and object ids compare case-insensitively; keep the written form but order and dedupe by
        # casefold. Filters keep their order: it is how the service lists them.
        seen: dict[str, str] = {}
        for entry in self.entries:
            seen.setdefault(entry.casefold(), entry)
        return Scope(self.kind, tuple(seen[k] for k in sorted(seen)), self.filters)

    def filters_as_list(self) -> list[list[dict[str, str]]]:
        return [[c.as_dict() for c in f] for f in self.filters]

    def as_dict(self) -> dict[str, object]:
        if self.kind is ScopeKind.ALL:
            return {"all": True, "filters": self.filters_as_list()} if self.filters else {"all": True}
        return {self.kind.value: list(self.entries)}


@dataclass(frozen=True, slots=True)
class Settings:
    """The configuration's basics, as the portal shows them."""

    domain: str
    notification_email: str
    enabled: bool = True
    password_hash_sync: bool = True
    accidental_deletes_enabled: bool = True
    accidental_deletes_threshold: int = DEFAULT_DELETE_THRESHOLD
    direction: Direction = Direction.AD_TO_ENTRA
    # AD -> Entra ID add-on jobs on the same service principal.
    exchange_hybrid_writeback: bool = False
    device_sync: bool = False
    # Entra ID -> AD: users too (preview), besides groups.
    preview_users: bool = False

    def as_dict(self) -> dict[str, object]:
        # The fields added with other directions appear only when they are not their defaults, so that
        # an AD -> Entra ID configuration reads (and digests) as it always has.
        data: dict[str, object] = {
            "domain": self.domain,
            "enabled": self.enabled,
            "passwordHashSync": self.password_hash_sync,
            "notificationEmail": self.notification_email,
            "accidentalDeletes": {
                "enabled": self.accidental_deletes_enabled,
                "threshold": self.accidental_deletes_threshold,
            },
        }
        if self.direction is not Direction.AD_TO_ENTRA:
            data["direction"] = self.direction.value
        if self.exchange_hybrid_writeback:
            data["exchangeHybridWriteback"] = True
        if self.device_sync:
            data["deviceSync"] = True
        if self.preview_users:
            data["previewUsers"] = True
        return data


# Directory extensions (extension properties of the Cloud Sync extensions application): the data types
# and target objects Graph documents for extensionProperty, and how a mapping names one (``ext:Name``).
EXTENSION_DATA_TYPES: tuple[str, ...] = ("Binary", "Boolean", "DateTime", "Integer", "LargeInteger", "String")
EXTENSION_TARGETS: tuple[str, ...] = (
    "User",
    "Group",
    "AdministrativeUnit",
    "Application",
    "Device",
    "Organization",
)
EXTENSION_REF = "ext:"


@dataclass(frozen=True, slots=True)
class DirectoryExtension:
    """An extension property ``name`` of the Cloud Sync extensions application."""

    name: str
    data_type: str = "String"
    target_objects: tuple[str, ...] = ("User",)
    multi_valued: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "dataType": self.data_type,
            "isMultiValued": self.multi_valued,
            "targetObjects": list(self.target_objects),
        }

    def same_property(self, other: DirectoryExtension) -> bool:
        """Whether ``other`` is this property as the service holds it (names and types without case)."""
        return (
            self.name.casefold() == other.name.casefold()
            and self.data_type.casefold() == other.data_type.casefold()
            and self.multi_valued == other.multi_valued
            and {t.casefold() for t in self.target_objects} == {t.casefold() for t in other.target_objects}
        )


@dataclass(frozen=True, slots=True)
class ExtensionsSeen:
    """The tenant's Cloud Sync extensions application as a target holds it: its ``appId`` and extension
    properties (``property_ids``: (folded name, property id))."""

    app_id: str
    properties: tuple[DirectoryExtension, ...] = ()
    property_ids: tuple[tuple[str, str], ...] = ()

    def find(self, name: str) -> DirectoryExtension | None:
        folded = name.casefold()
        return next((p for p in self.properties if p.name.casefold() == folded), None)


def extension_attribute(app_id: str, name: str) -> str:
    """``extension_<appId without hyphens>_<name>``: the attribute extension property ``name`` is."""
    return f"extension_{app_id.replace('-', '').lower()}_{name}"


def _resolved(text: str, app_id: str) -> str:
    if text.startswith(EXTENSION_REF):
        return extension_attribute(app_id, text[len(EXTENSION_REF) :])
    return text


def resolve_extensions(mappings: Iterable[Mapping], app_id: str | None) -> tuple[Mapping, ...]:
    """``mappings`` with ``ext:Name`` targets and direct sources spelled as the service names them
    (as written while the extensions application is not known)."""
    if app_id is None:
        return tuple(mappings)
    out = []
    for m in mappings:
        target = _resolved(m.target, app_id)
        value = _resolved(m.value, app_id) if m.kind is MappingKind.DIRECT else m.value
        if (target, value) == (m.target, m.value):
            out.append(m)
        else:
            out.append(Mapping(m.object, target, m.kind, value, m.default, m.apply, m.matching_priority))
    return tuple(out)


def resolve_extension_removals(
    removals: Iterable[tuple[str, str]], app_id: str | None
) -> tuple[tuple[str, str], ...]:
    if app_id is None:
        return tuple(removals)
    return tuple((obj, _resolved(target, app_id)) for obj, target in removals)


@dataclass(frozen=True, slots=True)
class Desired:
    """One configuration as the repository describes it, with scope and overrides already gathered."""

    name: str
    settings: Settings
    scope: Scope = field(default_factory=Scope.all)
    overrides: tuple[MappingOverride, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    deletion_protection: bool = False
    restart_token: str | None = None
    # ``approveDeletes.quarantinedSince``: approve the deletes held by the quarantine that began at this
    # time (as the service reports it); no other quarantine, earlier or later.
    approve_deletes: str | None = None
    # Directory extensions this configuration declares (created when missing), and those it removes.
    extensions: tuple[DirectoryExtension, ...] = ()
    extension_removals: tuple[str, ...] = ()
    # AD attributes its mappings read that the job schema may lack (``spec.onPremisesAttributes``).
    onprem_attributes: tuple[OnPremisesAttribute, ...] = ()
    origin: Origin | None = field(default=None, compare=False)
    # Files that contributed to this configuration (its own, shared Scope/AttributeMappings files).
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything loaded from the given paths: configurations by name, plus warnings."""

    configurations: tuple[Desired, ...] = ()
    paths: tuple[str, ...] = ()

    def by_name(self) -> dict[str, Desired]:
        return {c.name: c for c in self.configurations}


def mapping_key(m: Mapping | MappingOverride) -> tuple[str, str]:
    return (m.object, m.target)


def folded_key(obj: str, target: str) -> tuple[str, str]:
    """The key two rows are the same row by: the service matches target names case-insensitively."""
    return (obj, target.casefold())


def password_hash_mapping(obj: str) -> Mapping:
    return Mapping(obj, CREDENTIAL_DATA, MappingKind.DIRECT, "PasswordHash")


def edit_mappings(
    rows: Iterable[Mapping],
    overrides: Iterable[Mapping],
    removals: Iterable[tuple[str, str]],
) -> tuple[Mapping, ...]:
    """``rows`` (the service's, in its order) with ``overrides`` set and ``removals`` taken out.

    Rows are matched case-insensitively by (object, target). An overridden row keeps the service's
    spelling of its target and its matching priority (the desired state cannot say either); a new row
    goes after the others. CredentialData is never touched here: it follows password hash sync.
    """
    wanted = {m.folded: m for m in overrides if m.target != CREDENTIAL_DATA}
    gone = {folded_key(o, t) for o, t in removals}
    result: list[Mapping] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = row.folded
        if key in gone or (key in seen and key in wanted):
            continue
        want = wanted.get(key)
        if want is not None:
            if want.target == row.target and want.matching_priority == row.matching_priority:
                row = want  # already as the service spells it: the same value, not made again
            else:
                # The constructor, not dataclasses.replace: this runs for thousands of rows a plan.
                row = Mapping(
                    want.object,
                    row.target,
                    want.kind,
                    want.value,
                    want.default,
                    want.apply,
                    row.matching_priority,
                )
        seen.add(key)
        result.append(row)
    result.extend(m for k, m in wanted.items() if k not in seen)
    return tuple(result)


def effective_mappings(
    defaults: Iterable[Mapping],
    overrides: Iterable[MappingOverride],
) -> dict[tuple[str, str], Mapping]:
    """Template defaults, then overrides (set or replace), minus removals. CredentialData excluded.

    Keyed by ``folded_key``; an overridden default keeps the template's spelling of its target.
    """
    sets = [o.mapping for o in overrides if o.mapping is not None]
    removals = [o.key for o in overrides if o.mapping is None]
    rows = edit_mappings((m for m in defaults if m.target != CREDENTIAL_DATA), sets, removals)
    return {m.folded_key: m for m in rows}


def freeze_labels(labels: AbcMapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((labels or {}).items()))
