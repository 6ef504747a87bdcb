"""What the documents declare before they are joined, and the report every stage writes its problems to.

The loader reads each document into one of these records (a configuration, a Scope document, an
AttributeMappings document); the cross-document checks (``resolve``) join them; ``load`` turns the
joined configurations into the model. ``Report`` collects every diagnostic on the way.

Pure data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.config.yamlio import Document, Locator
from reconciler.core.model import DirectoryExtension, MappingOverride, Origin, Scope, Settings
from reconciler.core.onprem import OnPremisesAttribute
from reconciler.errors import Diagnostic

__all__ = ["Declared", "Documents", "MappingsDoc", "Report", "ScopeDecl", "ScopeDoc"]


class Report:
    """The diagnostics of one loading pass, errors and warnings, in the order found."""

    __slots__ = ("diagnostics",)

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics

    def error(self, file: str, loc: Locator | Origin, message: str) -> None:
        self.diagnostics.append(Diagnostic(file, loc.line, loc.col, message))

    def warn(self, file: str, loc: Locator | Origin, message: str) -> None:
        self.diagnostics.append(Diagnostic(file, loc.line, loc.col, message, severity="warning"))

    def extend(self, problems: list[Diagnostic]) -> None:
        self.diagnostics.extend(problems)

    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


@dataclass(slots=True)
class ScopeDecl:
    """A scope, and where it was written (a configuration's ``spec.scope`` or a Scope document)."""

    scope: Scope
    origin: Origin


@dataclass(slots=True)
class Declared:
    """One configuration as its document declares it; Scope and AttributeMappings documents add to it."""

    name: str
    origin: Origin
    settings: Settings
    labels: tuple[tuple[str, str], ...]
    deletion_protection: bool
    restart_token: str | None
    scope: ScopeDecl | None
    approve_deletes: str | None = None
    # Directory extensions declared (with where) and removed (with where), by folded name.
    extensions: dict[str, tuple[DirectoryExtension, Origin]] = field(default_factory=dict)
    extension_removals: dict[str, tuple[str, Origin]] = field(default_factory=dict)
    # On-premises attributes declared (``spec.onPremisesAttributes``), with where, by folded name.
    onprem: dict[str, tuple[OnPremisesAttribute, Origin]] = field(default_factory=dict)
    overrides: dict[tuple[str, str], MappingOverride] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)


@dataclass(slots=True)
class ScopeDoc:
    """A Scope document: checked once the configuration it names (and so its domain) is known."""

    doc: Document
    name: str
    origin: Origin
    spec: dict[str, Any]


@dataclass(slots=True)
class MappingsDoc:
    """An AttributeMappings document: its entries, read, and the configurations it is for."""

    doc: Document
    name: str
    origin: Origin
    names: list[str] | None
    match_labels: dict[str, str] | None
    overrides: list[MappingOverride]


@dataclass(slots=True)
class Documents:
    """Every document of a desired state read so far, by kind."""

    configs: list[Declared] = field(default_factory=list)
    scopes: list[ScopeDoc] = field(default_factory=list)
    shared: list[MappingsDoc] = field(default_factory=list)
    # Names of configurations whose documents failed their schema: references to them are not
    # reported as unknown, which would only repeat the schema problem.
    broken_names: set[str] = field(default_factory=set)
