"""Loading the desired state: YAML files in, a checked and frozen ``DesiredState`` out.

Stages, each reporting every problem it finds:

1. each file: size, UTF-8 and YAML (``files``, ``yamlio``);
2. each document: kind and JSON Schema (``schema``), then what can be checked inside the document alone
   (DNs against the domain, mappings, duplicate targets);
3. across documents: duplicate names, one configuration per domain, references to configurations, and
   that a configuration's scope and each of its (object, target) mappings come from one place only.

A document that fails its schema is not checked further, so that one mistake is not reported several
times over. Every error found, with the warnings, is raised at the end as one ``LoadError``.

I/O: ``load_paths`` reads the files under the given paths; ``load_files`` does no I/O, so the same
checks apply to files read from a git commit.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.config.dn import DNError, dn_domain, dn_key, parse_dn
from reconciler.config.files import SourceFile, check_source, collect_files
from reconciler.config.schema import KINDS, check, did_you_mean, dotted
from reconciler.config.yamlio import Document, Locator, parse_documents
from reconciler.core.collector import collector_paused
from reconciler.core.model import (
    CREDENTIAL_DATA,
    DEFAULT_DELETE_THRESHOLD,
    ENTRA_TO_AD_OBJECTS,
    EXTENSION_REF,
    OBJECT_TYPES,
    PROTECTED_TARGETS,
    TARGET_CONTAINER,
    UNARY_OPERATORS,
    ApplyMode,
    Desired,
    DesiredState,
    Direction,
    DirectoryExtension,
    FilterClause,
    Mapping,
    MappingKind,
    MappingOverride,
    Origin,
    Scope,
    ScopeKind,
    Settings,
    make_override,
    quarantine_instant,
)
from reconciler.errors import Diagnostic, ExpressionError, LoadError

__all__ = [
    "MAX_ENTRA_TO_AD_CONFIGURATIONS",
    "MAX_SCOPE_ENTRIES",
    "MAX_SELECTED_GROUPS",
    "LoadResult",
    "load_files",
    "load_paths",
]

# The service keeps scoping in one 4 MB setting, which it documents as about 50 OUs or groups.
MAX_SCOPE_ENTRIES = 50
# Entra ID -> AD (cloud-sync-directions.md 1.1, 1.3): at most 20 such configurations per tenant, and
# "selected groups" scoping is documented up to 10,000 groups (the portal's picker stops at 999).
MAX_ENTRA_TO_AD_CONFIGURATIONS = 20
MAX_SELECTED_GROUPS = 10_000
_PORTAL_PICKER_LIMIT = 999
# Fields that belong to one direction only, and the direction they belong to.
_AD_TO_ENTRA_ONLY = ("passwordHashSync", "exchangeHybridWriteback", "deviceSync")
_ENTRA_TO_AD_ONLY = ("targetContainer", "preview")

_VALUE_KEYS = ("source", "constant", "expression", "remove")
_KINDS_BY_KEY = {
    "source": MappingKind.DIRECT,
    "constant": MappingKind.CONSTANT,
    "expression": MappingKind.EXPRESSION,
}
_APPLY_MODES = {mode.value: mode for mode in ApplyMode}
_CREDENTIAL_DATA = CREDENTIAL_DATA.casefold()
_SCOPE_KEYS = (("groups", ScopeKind.GROUPS), ("organizationalUnits", ScopeKind.ORGANIZATIONAL_UNITS))
_OBJECT_ORDER = {name: i for i, name in enumerate(OBJECT_TYPES)}


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded desired state, the warnings met on the way, and the files that were read."""

    state: DesiredState
    warnings: tuple[Diagnostic, ...] = ()
    files: tuple[str, ...] = ()


def load_paths(paths: Sequence[str]) -> LoadResult:
    """Load every ``*.yaml``/``*.yml`` file under ``paths``; raises ``LoadError`` listing every problem."""
    files, problems = collect_files(paths)
    return load_files(files, paths=paths, problems=problems)


def load_files(
    files: Sequence[SourceFile], *, paths: Sequence[str] = (), problems: Sequence[Diagnostic] = ()
) -> LoadResult:
    """Load already-read files (from disk or a git commit); raises ``LoadError`` listing every problem.

    ``paths`` is recorded in the result as where the state came from; ``problems`` are diagnostics found
    while collecting the files, reported together with the loader's own.
    """
    run = _Run(list(problems))
    with collector_paused():
        for source in files:
            run.read(source)
        run.resolve()
        if any(d.severity == "error" for d in run.diagnostics):
            raise LoadError(run.diagnostics)
        state = DesiredState(configurations=run.build(), paths=tuple(paths))
    warnings = tuple(sorted(d for d in run.diagnostics if d.severity != "error"))
    return LoadResult(state, warnings, tuple(f.path for f in files))


@functools.cache
def _template_targets(obj: str, direction: Direction = Direction.AD_TO_ENTRA) -> frozenset[str]:
    """The target attributes of the template's default mappings of object type ``obj``.

    Loaded on the first removal only: most repositories remove nothing, and the template costs a read.
    """
    from reconciler.graph.template import template_defaults_for

    return frozenset(m.target for m in template_defaults_for(direction) if m.object == obj)


def switch_expression(value: dict[str, Any]) -> str:
    """``{switch: attr, cases: {v: dn}, default: dn}`` as ``Switch([attr], default, v, dn, ...)``."""

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    parts = [f"[{value['switch']}]", quoted(value["default"])]
    for key, dn in value["cases"].items():
        parts += [quoted(str(key)), quoted(dn)]
    return f"Switch({', '.join(parts)})"


def _regex_problem(pattern: str) -> str | None:
    import re

    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None


def _override_order(key: tuple[str, str]) -> tuple[int, str]:
    return _OBJECT_ORDER[key[0]], key[1]


# Graph writes at most this many extension values to one object (extensionProperty, v1.0 docs).
MAX_EXTENSION_VALUES = 100
# The Entra ID object type each AD -> Entra ID object mapping writes.
_ENTRA_OBJECT = {"user": "User", "inetOrgPerson": "User", "group": "Group"}


@dataclass(slots=True)
class _ScopeDecl:
    scope: Scope
    origin: Origin


@dataclass(slots=True)
class _Config:
    name: str
    origin: Origin
    settings: Settings
    labels: tuple[tuple[str, str], ...]
    deletion_protection: bool
    restart_token: str | None
    scope: _ScopeDecl | None
    approve_deletes: str | None = None
    # Directory extensions declared (with where) and removed (with where), by folded name.
    extensions: dict[str, tuple[DirectoryExtension, Origin]] = field(default_factory=dict)
    extension_removals: dict[str, tuple[str, Origin]] = field(default_factory=dict)
    overrides: dict[tuple[str, str], MappingOverride] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _ScopeDoc:
    doc: Document
    name: str
    origin: Origin
    spec: dict[str, Any]


@dataclass(slots=True)
class _MappingsDoc:
    doc: Document
    name: str
    origin: Origin
    names: list[str] | None
    match_labels: dict[str, str] | None
    overrides: list[MappingOverride]


def _attribute_checks() -> tuple[Any, Any, Any]:
    """The expression library's attribute catalog, reference lister and spelling warnings."""
    from reconciler.expressions import (
        KNOWN_ATTRIBUTES,
        expression_warnings,
        parse,
        referenced_attributes,
    )

    def referenced(text: str) -> set[str]:
        return set(referenced_attributes(parse(text)))

    return KNOWN_ATTRIBUTES, referenced, expression_warnings


def _check_expression(
    text: str, origin: Origin, *, quoted: bool = False, single_line: bool = True
) -> list[Diagnostic]:
    """Problems of one expression, placed at FILE:LINE:COL of the offending character in the YAML.

    ``origin`` is where the scalar starts; a quoted scalar's text starts one column later. The exact
    column is known only for a scalar on one line; otherwise the scalar's start is given, and the
    column inside the expression is named in the message.
    """
    if not text.strip():
        return [Diagnostic(origin.file, origin.line, origin.col, "expression is empty")]
    from reconciler.expressions import parse

    try:
        parse(text)
    except ExpressionError as exc:
        if single_line:
            col = origin.col + exc.column - 1 + (1 if quoted else 0)
            return [Diagnostic(origin.file, origin.line, col, f"invalid expression: {exc.message}")]
        return [
            Diagnostic(
                origin.file,
                origin.line,
                origin.col,
                f"invalid expression: {exc.message} (column {exc.column} of the expression)",
            )
        ]
    return []


class _Run:
    """One loading pass: collects documents, then resolves them, keeping every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        self.attribute_results: dict[tuple[str, str, str], list[str]] = {}
        self.configs: list[_Config] = []
        self.scopes: list[_ScopeDoc] = []
        self.shared: list[_MappingsDoc] = []
        # Names of configurations whose documents failed their schema: references to them are not
        # reported as unknown, which would only repeat the schema problem.
        self.broken_names: set[str] = set()
        self.by_name: dict[str, _Config] = {}
        self.expression_results: dict[tuple[str, bool, bool], list[Diagnostic]] = {}
        # Mapping entries read without a problem, by object type and entry: see mapping().
        self.clean_mappings: dict[tuple[Any, ...], Mapping | None] = {}

    # -- reporting ---------------------------------------------------------------------------------

    def error(self, file: str, loc: Locator | Origin, message: str) -> None:
        self.diagnostics.append(Diagnostic(file, loc.line, loc.col, message))

    def warn(self, file: str, loc: Locator | Origin, message: str) -> None:
        self.diagnostics.append(Diagnostic(file, loc.line, loc.col, message, severity="warning"))

    # -- stage 1 and 2: one file, one document ---------------------------------------------------------

    def read(self, source: SourceFile) -> None:
        problem = check_source(source)
        if problem is not None:
            self.diagnostics.append(problem)
            return
        docs, problems = parse_documents(source.path, source.data)
        self.diagnostics.extend(problems)
        for doc in docs:
            self.document(doc)

    def document(self, doc: Document) -> None:
        value = doc.value
        if value is None:
            return  # an empty document, such as the one before a leading '---'
        if not isinstance(value, dict):
            what = "a list" if isinstance(value, list) else "a single value"
            message = f"a document must be a mapping (apiVersion, kind, metadata, spec), not {what}"
            self.error(doc.file, doc.root, message)
            return
        kind = value.get("kind")
        if kind not in KINDS:
            if "kind" not in value:
                self.error(doc.file, doc.root, f"missing required field 'kind' (one of {', '.join(KINDS)})")
            else:
                hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
                message = f"unknown kind '{kind}'; expected one of {', '.join(KINDS)}{hint}"
                self.error(doc.file, doc.root.find(("kind",)), message)
            return
        problems = check(doc, kind)
        if problems:
            self.diagnostics.extend(problems)
            if kind == "Configuration":
                metadata = value.get("metadata")
                if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
                    self.broken_names.add(metadata["name"])
            return
        name_loc = doc.root.find(("metadata", "name"))
        origin = name_loc.origin(doc.file)
        spec: dict[str, Any] = value["spec"]
        if kind == "Configuration":
            self.configuration(doc, origin, value["metadata"], spec)
        elif kind == "Scope":
            self.scopes.append(_ScopeDoc(doc, value["metadata"]["name"], origin, spec))
        else:
            self.mapping_set(doc, value["metadata"]["name"], origin, spec)

    def configuration(
        self, doc: Document, origin: Origin, metadata: dict[str, Any], spec: dict[str, Any]
    ) -> None:
        deletes: dict[str, Any] = spec.get("accidentalDeletes", {})
        direction = Direction(spec.get("direction", Direction.AD_TO_ENTRA.value))
        to_ad = direction is Direction.ENTRA_TO_AD
        if not self.direction_fields(doc, spec, direction):
            return
        settings = Settings(
            domain=spec["domain"],
            notification_email=spec["notificationEmail"],
            enabled=spec.get("enabled", True),
            password_hash_sync=False if to_ad else spec.get("passwordHashSync", True),
            accidental_deletes_enabled=deletes.get("enabled", True),
            accidental_deletes_threshold=int(deletes.get("threshold", DEFAULT_DELETE_THRESHOLD)),
            direction=direction,
            exchange_hybrid_writeback=spec.get("exchangeHybridWriteback", False),
            device_sync=spec.get("deviceSync", False),
            preview_users=bool(spec.get("preview", {}).get("users", False)),
        )
        token = spec.get("restartToken")
        scope = None
        if to_ad:
            scope = self.entra_scope(doc, spec.get("scope"))
        elif "scope" in spec:
            scope = self.scope(doc, ("spec", "scope"), spec["scope"], settings.domain)
        config = _Config(
            name=metadata["name"],
            origin=origin,
            settings=settings,
            labels=tuple(sorted(metadata.get("labels", {}).items())),
            deletion_protection=spec.get("deletionProtection", False),
            restart_token=None if token is None else str(token),
            scope=scope,
            sources={doc.file},
            approve_deletes=self.approve_deletes(doc, spec.get("approveDeletes")),
        )
        self.directory_extensions(doc, config, spec.get("directoryExtensions") or [])
        mappings: dict[str, list[dict[str, Any]]] = spec.get("attributeMappings", {})
        for obj, entries in mappings.items():
            path = ("spec", "attributeMappings", obj)
            if to_ad and not self.entra_to_ad_object(doc, path, obj, settings.preview_users):
                continue
            for override in self.mappings(doc, path, obj, entries, direction):
                config.overrides[override.object, override.target.casefold()] = override
        if to_ad and "targetContainer" in spec:
            container = self.target_container(doc, spec["targetContainer"], settings.domain)
            if container is not None:
                key = ("group", TARGET_CONTAINER.casefold())
                if key in config.overrides:
                    where = config.overrides[key].origin
                    self.error(
                        doc.file,
                        doc.root.find(("spec", "targetContainer"), key=True),
                        f"targetContainer and the group mapping of '{TARGET_CONTAINER}' at {where} both set "
                        "the target container; give one",
                    )
                else:
                    config.overrides[key] = container
        self.configs.append(config)

    def approve_deletes(self, doc: Document, spec: dict[str, Any] | None) -> str | None:
        """``approveDeletes.quarantinedSince``: a time with its zone (the service's ``seriesBegan``)."""
        if spec is None:
            return None
        since = str(spec["quarantinedSince"])
        if quarantine_instant(since) is None:
            self.error(
                doc.file,
                doc.root.find(("spec", "approveDeletes", "quarantinedSince")),
                f"spec.approveDeletes.quarantinedSince: {since!r} is not a time with its zone, such as "
                "2026-12-06T09:12:00Z (copy it from `reconciler status`: 'quarantined since')",
            )
            return None
        return since

    def directory_extensions(self, doc: Document, config: _Config, entries: list[dict[str, Any]]) -> None:
        """``spec.directoryExtensions``: extension properties to have (or, with ``remove``, not to have)."""
        path = ("spec", "directoryExtensions")
        for entry, loc in zip(entries, doc.root.find(path).items(), strict=True):
            name: str = entry["name"]
            origin = loc.origin(doc.file)
            folded = name.casefold()
            earlier = config.extensions.get(folded) or config.extension_removals.get(folded)
            if earlier is not None:
                self.error(doc.file, loc, f"directory extension '{name}' is already listed at {earlier[1]}")
                continue
            if entry.get("remove"):
                extra = sorted(set(entry) - {"name", "remove"})
                if extra:
                    message = f"directory extension '{name}': remove: true takes only a name, not {extra[0]}"
                    self.error(doc.file, loc.child(extra[0]) or loc, message)
                    continue
                config.extension_removals[folded] = (name, origin)
                continue
            extension = DirectoryExtension(
                name=name,
                data_type=entry.get("dataType", "String"),
                target_objects=tuple(entry.get("targetObjects", ["User"])),
                multi_valued=bool(entry.get("isMultiValued", False)),
            )
            config.extensions[folded] = (extension, origin)

    def check_extensions(self) -> None:
        """Each ``ext:`` mapping names an extension its configuration declares, on an object the
        extension targets; a configuration never removes what another declares, nor two declare one
        name differently (one extension property of one application serves them all)."""
        seen: dict[str, tuple[DirectoryExtension, Origin]] = {}
        removed: dict[str, Origin] = {}
        for config in self.by_name.values():
            for folded, (extension, origin) in config.extensions.items():
                first = seen.setdefault(folded, (extension, origin))
                if first[0] != extension:
                    self.error(
                        origin.file,
                        origin,
                        f"directory extension '{extension.name}' is declared as {extension.as_dict()} here "
                        f"and as {first[0].as_dict()} at {first[1]}; it is one extension property",
                    )
            for folded, (_name, origin) in config.extension_removals.items():
                removed.setdefault(folded, origin)
            for override in config.overrides.values():
                self.check_extension_mapping(config, override)
        for folded, origin in removed.items():
            if folded in seen:
                extension, where = seen[folded]
                self.error(
                    origin.file,
                    origin,
                    f"directory extension '{extension.name}' is removed here but declared at {where}",
                )
        for obj in ("User", "Group"):
            count = sum(1 for e, _ in seen.values() if obj in e.target_objects)
            if count > MAX_EXTENSION_VALUES:
                extension, where = next(v for v in seen.values() if obj in v[0].target_objects)
                self.error(
                    where.file,
                    where,
                    f"{count} directory extensions target {obj}; Graph writes at most "
                    f"{MAX_EXTENSION_VALUES} extension values to one object",
                )

    def check_extension_mapping(self, config: _Config, override: MappingOverride) -> None:
        m = override.mapping
        names = [override.target]
        if m is not None and m.kind is MappingKind.DIRECT:
            names.append(m.value)
        for text in names:
            if not text.startswith(EXTENSION_REF):
                continue
            where = override.origin or config.origin
            name = text[len(EXTENSION_REF) :]
            declared = config.extensions.get(name.casefold())
            if declared is None:
                if m is None and name.casefold() in config.extension_removals:
                    continue  # the row of an extension that goes with it
                self.error(
                    where.file,
                    where,
                    f"the {override.object} mapping names directory extension '{name}', which configuration "
                    f"'{config.name}' does not declare (spec.directoryExtensions)",
                )
                continue
            entra = _ENTRA_OBJECT.get(override.object)
            if text == override.target and entra not in declared[0].target_objects:
                self.error(
                    where.file,
                    where,
                    f"directory extension '{name}' targets {', '.join(declared[0].target_objects)}; the "
                    f"{override.object} mapping writes to {entra or 'an object it does not target'}",
                )

    # -- the other direction and the add-on jobs -------------------------------------------------------

    def direction_fields(self, doc: Document, spec: dict[str, Any], direction: Direction) -> bool:
        """Refuse fields of the other direction; False when one was given (reported)."""
        ok = True
        to_ad = direction is Direction.ENTRA_TO_AD
        wrong = _AD_TO_ENTRA_ONLY if to_ad else _ENTRA_TO_AD_ONLY
        for key in wrong:
            if key in spec:
                belongs = "adToEntra" if to_ad else "entraToAd"
                message = (
                    f"spec.{key} applies to direction {belongs} only; this configuration's direction is "
                    f"{direction.value}"
                )
                self.error(doc.file, doc.root.find(("spec",)).key(key) or doc.root, message)
                ok = False
        scope = spec.get("scope")
        if isinstance(scope, dict):
            keys = ("groups", "organizationalUnits") if to_ad else ("selectedGroups", "filters")
            for key in keys:
                if key in scope:
                    hint = (
                        "selectedGroups (Entra group object ids) or filters"
                        if to_ad
                        else "groups or organizationalUnits (DNs)"
                    )
                    message = (
                        f"spec.scope.{key} does not apply to direction {direction.value}; its scope is {hint}"
                    )
                    self.error(doc.file, doc.root.find(("spec", "scope")).key(key) or doc.root, message)
                    ok = False
        return ok

    def entra_to_ad_object(self, doc: Document, path: tuple[str, ...], obj: str, users: bool) -> bool:
        """Whether an Entra ID -> AD configuration may map ``obj``; reported when not."""
        loc = doc.root.find(path[:-1]).key(obj) or doc.root
        if obj not in ENTRA_TO_AD_OBJECTS:
            message = f"{dotted(path)}: an entraToAd configuration provisions groups (and users, in preview)"
            self.error(doc.file, loc, message)
            return False
        if obj == "user" and not users:
            message = (
                f"{dotted(path)}: provisioning users to AD is a preview feature; "
                "set spec.preview.users: true to use it"
            )
            self.error(doc.file, loc, message)
            return False
        return True

    def entra_scope(self, doc: Document, spec: dict[str, Any] | None) -> _ScopeDecl | None:
        """An Entra ID -> AD scope: selected groups by object id, or all groups that pass the filters."""
        if spec is None or not ("selectedGroups" in spec or "filters" in spec):
            where = doc.root.find(("spec",), key=True)
            self.warn(
                doc.file,
                where,
                "every cloud security group of the tenant is in scope: the docs ask for at least one "
                "attribute filter (spec.scope.filters) when all groups are provisioned, or select groups "
                "(spec.scope.selectedGroups)",
            )
            return None
        path = ("spec", "scope")
        here = doc.root.find(path)
        origin = doc.root.find(path, key=True).origin(doc.file)
        if "selectedGroups" in spec and "filters" in spec:
            self.error(
                doc.file, here.key("filters") or here, "spec.scope: give selectedGroups or filters, not both"
            )
            return None
        if "selectedGroups" in spec:
            ids: list[str] = spec["selectedGroups"]
            list_loc = here.child("selectedGroups") or here
            if len(ids) > MAX_SELECTED_GROUPS:
                message = (
                    f"spec.scope.selectedGroups: {len(ids)} groups; the service documents at most "
                    f"{MAX_SELECTED_GROUPS:,} selected groups per configuration"
                )
                self.error(doc.file, here.key("selectedGroups") or here, message)
                return None
            if len(ids) > _PORTAL_PICKER_LIMIT:
                message = (
                    f"spec.scope.selectedGroups: {len(ids)} groups; the portal shows at most "
                    f"{_PORTAL_PICKER_LIMIT} of them (the service takes them all)"
                )
                self.warn(doc.file, here.key("selectedGroups") or here, message)
            seen: dict[str, Locator] = {}
            ok = True
            for entry, loc in zip(ids, list_loc.items(), strict=True):
                key = entry.casefold()
                if key in seen:
                    self.error(
                        doc.file, loc, f"group '{entry}' is listed twice (first on line {seen[key].line})"
                    )
                    ok = False
                    continue
                seen[key] = loc
            return _ScopeDecl(Scope(ScopeKind.SELECTED_GROUPS, tuple(ids)), origin) if ok else None
        filters: list[tuple[FilterClause, ...]] = []
        ok = True
        for filt, floc in zip(spec["filters"], (here.child("filters") or here).items(), strict=True):
            clauses: list[FilterClause] = []
            for clause, cloc in zip(filt, floc.items(), strict=True):
                op: str = clause["operator"]
                unary = op in UNARY_OPERATORS
                if unary and "value" in clause:
                    self.error(doc.file, cloc.key("value") or cloc, f"operator {op} takes no value")
                    ok = False
                elif not unary and "value" not in clause:
                    self.error(doc.file, cloc, f"operator {op} needs a value")
                    ok = False
                elif op in ("REGEX_MATCH", "NOT_REGEX_MATCH"):
                    problem = _regex_problem(clause["value"])
                    if problem:
                        where = cloc.child("value") or cloc
                        self.error(doc.file, where, f"value is not a regular expression: {problem}")
                        ok = False
                clauses.append(FilterClause(clause["attribute"], op, clause.get("value")))
            filters.append(tuple(clauses))
        return _ScopeDecl(Scope(ScopeKind.ALL, (), tuple(filters)), origin) if ok else None

    def target_container(self, doc: Document, value: Any, domain: str) -> MappingOverride | None:
        """``targetContainer`` as the group mapping of parentDistinguishedName: a DN (Constant) or a
        ``Switch()`` on an attribute (Expression); every DN must be in the configuration's domain."""
        path = ("spec", "targetContainer")
        loc = doc.root.find(path)
        origin = doc.root.find(path, key=True).origin(doc.file)
        if isinstance(value, str):
            dns: list[tuple[str, Locator]] = [(value, loc)]
        else:
            cases_loc = loc.child("cases") or loc
            dns = [(dn, cases_loc.child(key) or cases_loc) for key, dn in value["cases"].items()]
            dns.append((value["default"], loc.child("default") or loc))
        checked = [self.dn_in_domain(doc.file, dn, where, domain) for dn, where in dns]
        if any(rdns is None for rdns in checked):
            return None
        if isinstance(value, str):
            mapping = Mapping("group", TARGET_CONTAINER, MappingKind.CONSTANT, value)
        else:
            mapping = Mapping("group", TARGET_CONTAINER, MappingKind.EXPRESSION, switch_expression(value))
            self.diagnostics.extend(_check_expression(mapping.value, origin))
        return MappingOverride("group", TARGET_CONTAINER, mapping, origin)

    def scope(
        self, doc: Document, path: tuple[str, ...], spec: dict[str, Any], domain: str | None
    ) -> _ScopeDecl | None:
        """The scope written at ``path`` (a ``scope:`` mapping or a Scope's spec), checked; None if wrong."""
        here = doc.root.find(path)
        given = [(key, kind) for key, kind in _SCOPE_KEYS if key in spec]
        if len(given) != 1:
            if given:
                later = max((here.key(key) or here for key, _ in given), key=lambda loc: (loc.line, loc.col))
                self.error(doc.file, later, f"{dotted(path)}: give groups or organizationalUnits, not both")
            else:
                self.error(
                    doc.file,
                    doc.root.find(path, key=True),
                    f"{dotted(path)}: give groups or organizationalUnits"
                    + (" (or leave scope out to take the whole domain)" if path[-1] == "scope" else ""),
                )
            return None
        key, kind = given[0]
        entries: list[str] = spec[key]
        list_loc = here.child(key) or here
        ok = True
        if len(entries) > MAX_SCOPE_ENTRIES:
            count = f"{len(entries)} entries; the service takes at most {MAX_SCOPE_ENTRIES}"
            self.error(doc.file, here.key(key) or here, f"{dotted((*path, key))}: {count}")
            ok = False
        if list_loc.flow and len(entries) > 1 and any("," not in entry for entry in entries):
            # [OU=Sales,DC=contoso,DC=com] is a list of three strings in YAML; every DN in a domain
            # has a comma, so an entry without one is a piece of a DN that YAML split.
            message = (
                f"{dotted((*path, key))}: inside [ ] a comma separates list items, so the DNs were split "
                "apart; put quotes around each DN or write one DN per '- ' line"
            )
            self.error(doc.file, list_loc, message)
            return None
        seen: dict[Any, Locator] = {}
        for entry, loc in zip(entries, list_loc.items(), strict=True):
            rdns = self.dn_in_domain(doc.file, entry, loc, domain)
            if rdns is None:
                ok = False
                continue
            dup = dn_key(rdns)
            if dup in seen:
                self.error(doc.file, loc, f"'{entry}' is listed twice (first on line {seen[dup].line})")
                ok = False
                continue
            seen[dup] = loc
        if not ok:
            return None
        return _ScopeDecl(Scope(kind, tuple(entries)), doc.root.find(path, key=True).origin(doc.file))

    def dn_in_domain(self, file: str, dn: str, loc: Locator, domain: str | None) -> Any:
        """``dn`` parsed, when it is a valid DN inside ``domain`` (any domain when None); else None,
        with the problem reported at ``loc``."""
        try:
            rdns = parse_dn(dn)
        except DNError as exc:
            self.error(file, loc, f"'{dn}' is not a valid DN: {exc.message} (at character {exc.offset + 1})")
            return None
        if domain is not None:
            found = dn_domain(rdns)
            if found.casefold() != domain.casefold():
                where = f"its domain is {found}" if found else "it has no DC= parts"
                self.error(file, loc, f"'{dn}' is outside the configuration's domain {domain} ({where})")
                return None
        return rdns

    def mappings(
        self,
        doc: Document,
        path: tuple[str, ...],
        obj: str,
        entries: list[dict[str, Any]],
        direction: Direction = Direction.AD_TO_ENTRA,
    ) -> list[MappingOverride]:
        """The mapping entries of one list, checked; entries with problems are reported and left out."""
        file = doc.file
        out: list[MappingOverride] = []
        first: dict[str, Origin] = {}
        protected = PROTECTED_TARGETS.get(obj, frozenset()) if direction is Direction.ENTRA_TO_AD else ()
        clean = self.clean_mappings
        for entry, loc in zip(entries, doc.root.find(path).items(), strict=True):
            origin = loc.origin(file)
            target: str = entry["target"]
            folded = target.casefold()
            if folded in first:
                message = f"target '{target}' is mapped twice for {obj} (first on line {first[folded].line})"
                self.error(file, loc.child("target") or loc, message)
                continue
            first[folded] = origin
            if folded in protected:
                message = (
                    f"the {obj} mapping of '{target}' is the service's own for Entra ID -> AD (it matches "
                    "objects or carries membership); the docs say it must not be changed"
                )
                self.error(file, loc.child("target") or loc, message)
                continue
            # The same entry met before without a problem: the same mapping, and nothing to report.
            # Whether an entry has a problem depends on its values only (where it is only places the
            # message). This runs once per entry of every list, so it is written out here.
            try:
                mapping = clean[(obj, direction, *entry.items())]
            except (KeyError, TypeError):  # new, or a value that cannot be a key: read it
                # A group mapping of the target container is the long form of spec.targetContainer and
                # is read like any other; giving both is reported by configuration().
                override = self.mapping(file, obj, entry, loc, origin, direction)
                if override is not None:
                    out.append(override)
                continue
            out.append(make_override(obj, target, mapping, origin))
        return out

    def mapping(
        self,
        file: str,
        obj: str,
        entry: dict[str, Any],
        loc: Locator,
        origin: Origin,
        direction: Direction = Direction.AD_TO_ENTRA,
    ) -> MappingOverride | None:
        """One mapping entry not met before as an override, or None when it has problems (reported);
        remembered when it has none, for ``mappings`` to take without reading it again."""
        reported = len(self.diagnostics)
        override = self._mapping(file, obj, entry, loc, origin, direction)
        if override is not None and len(self.diagnostics) == reported:
            with contextlib.suppress(TypeError):  # a value that cannot be a key is not remembered
                self.clean_mappings[(obj, direction, *entry.items())] = override.mapping
        return override

    def _mapping(
        self,
        file: str,
        obj: str,
        entry: dict[str, Any],
        loc: Locator,
        origin: Origin,
        direction: Direction,
    ) -> MappingOverride | None:
        target: str = entry["target"]
        given = [key for key in entry if key in _VALUE_KEYS]
        if len(given) != 1:
            if given:
                message = f"mapping of '{target}' has both {given[0]} and {given[1]}; give only one"
                self.error(file, loc.key(given[1]) or loc, message)
            else:
                message = f"mapping of '{target}' needs one of source, constant, expression or remove"
                self.error(file, loc, message)
            return None
        how = given[0]
        ok = True
        if target.casefold() == _CREDENTIAL_DATA:
            message = f"'{target}' cannot be mapped: password hash sync sets it; use spec.passwordHashSync"
            self.error(file, loc.child("target") or loc, message)
            ok = False
        if how == "remove":
            for extra in ("default", "apply"):
                if extra in entry:
                    self.error(file, loc.key(extra) or loc, f"a removal of '{target}' takes no {extra}")
                    ok = False
            defaults = _template_targets(obj, direction)
            # The service matches target names without regard to case: so does this check.
            if ok and target.casefold() not in {d.casefold() for d in defaults}:
                # Removing what is not there would change nothing: it is a typo, or a misunderstanding.
                message = (
                    f"'{target}' is not a template default mapping of {obj}, so there is nothing to remove"
                    + (did_you_mean(target, defaults) or "; a removal names a template default mapping")
                )
                self.error(file, loc.child("target") or loc, message)
                ok = False
            return MappingOverride(obj, target, None, origin) if ok else None
        if how == "constant" and "default" in entry:
            message = f"mapping of '{target}': default goes with source or expression, not with constant"
            self.error(file, loc.key("default") or loc, message)
            ok = False
        elif how == "expression":
            problems = self.expression(file, entry["expression"], loc.child("expression") or loc)
            if problems:
                self.diagnostics.extend(problems)
                ok = False
        if not ok:
            return None
        if how in ("source", "expression") and direction is Direction.AD_TO_ENTRA:
            # The catalog is of AD attributes: an Entra ID -> AD mapping reads Entra attributes.
            for message in self.attribute_warnings(obj, how, entry[how]):
                self.warn(file, loc.child(how) or loc, f"mapping of '{target}': {message}")
        apply = _APPLY_MODES[entry["apply"]] if "apply" in entry else ApplyMode.ALWAYS
        mapping = Mapping(obj, target, _KINDS_BY_KEY[how], entry[how], entry.get("default"), apply)
        return MappingOverride(obj, target, mapping, origin)

    def attribute_warnings(self, obj: str, how: str, value: str) -> list[str]:
        """Source attributes not known for ``obj``, and spellings the reference writes otherwise.

        Only warnings: directory schemas are extended (extension attributes, custom AD attributes),
        so an unknown name may be right; most often it is a typo that would sync nothing."""
        key = (obj, how, value)
        cached = self.attribute_results.get(key)
        if cached is not None:
            return cached
        messages: list[str] = []
        known, referenced, warnings_of = _attribute_checks()
        catalog = known.get(obj.casefold())
        names: set[str] = {value} if how == "source" else set()
        if how == "expression":
            try:
                names = set(referenced(value))
                messages.extend(w.message for w in warnings_of(value))
            except ExpressionError:
                names = set()  # already reported as an error
        if catalog:
            for name in sorted(names):
                if name.casefold() not in catalog:
                    close = difflib.get_close_matches(name.casefold(), catalog, n=1, cutoff=0.8)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    messages.append(f"'{name}' is not a known {obj} attribute of Active Directory{hint}")
        self.attribute_results[key] = messages
        return messages

    def expression(self, file: str, text: str, loc: Locator) -> list[Diagnostic]:
        # Mapping sets repeat the same expressions: check each text once, then move the result into place.
        cache_key = (text, loc.quoted, loc.single_line)
        cached = self.expression_results.get(cache_key)
        if cached is None:
            cached = _check_expression(text, Origin("", 1, 1), quoted=loc.quoted, single_line=loc.single_line)
            self.expression_results[cache_key] = cached
        return [Diagnostic(file, d.line + loc.line - 1, d.col + loc.col - 1, d.message) for d in cached]

    def mapping_set(self, doc: Document, name: str, origin: Origin, spec: dict[str, Any]) -> None:
        file = doc.file
        names: list[str] | None = spec.get("configurations")
        selector: dict[str, Any] | None = spec.get("selector")
        if (names is None) == (selector is None):
            message = (
                "spec: give configurations or selector, not both"
                if names is not None
                else "spec: give configurations (a list of names) or selector.matchLabels"
            )
            self.error(file, doc.root.find(("spec",), key=True), message)
            return
        obj: str = spec["object"]
        overrides = self.mappings(doc, ("spec", "mappings"), obj, spec["mappings"])
        match_labels = None if selector is None else dict(selector["matchLabels"])
        self.shared.append(_MappingsDoc(doc, name, origin, names, match_labels, overrides))

    # -- stage 3: across documents -------------------------------------------------------------------

    def resolve(self) -> None:
        for config in self.configs:
            earlier = self.by_name.get(config.name)
            if earlier is not None:
                self.error(
                    config.origin.file,
                    config.origin,
                    f"configuration '{config.name}' is already defined at {earlier.origin}",
                )
                continue
            self.by_name[config.name] = config
        self.one_per_domain()
        for kind, named in (("Scope", self.scopes), ("AttributeMappings", self.shared)):
            first: dict[str, Origin] = {}
            for item in named:
                if item.name in first:
                    message = f"{kind} '{item.name}' is already defined at {first[item.name]}"
                    self.error(item.origin.file, item.origin, message)
                else:
                    first[item.name] = item.origin
        for scope_doc in self.scopes:
            self.resolve_scope(scope_doc)
        for shared in self.shared:
            self.resolve_mappings(shared)
        self.check_extensions()

    def one_per_domain(self) -> None:
        """Two configurations for one AD domain would run two provisioning jobs over the same objects."""
        by_domain: dict[tuple[Direction, str], _Config] = {}
        to_ad = 0
        for config in self.by_name.values():
            direction = config.settings.direction
            # DNS names compare without case and without the root's trailing dot.
            key = (direction, config.settings.domain.casefold().rstrip("."))
            earlier = by_domain.setdefault(key, config)
            if earlier is not config:
                way = "" if direction is Direction.AD_TO_ENTRA else f" (direction {direction.value})"
                self.error(
                    config.origin.file,
                    config.origin,
                    f"configuration '{config.name}' is for domain {config.settings.domain}{way}, "
                    f"as configuration '{earlier.name}' at {earlier.origin} is already; a domain has one "
                    "configuration per direction (to rename a configuration, change its name in its file)",
                )
            elif direction is Direction.ENTRA_TO_AD:
                to_ad += 1
                if to_ad == MAX_ENTRA_TO_AD_CONFIGURATIONS + 1:
                    self.error(
                        config.origin.file,
                        config.origin,
                        f"configuration '{config.name}' is Entra ID -> AD configuration number "
                        f"{to_ad}; a tenant has at most {MAX_ENTRA_TO_AD_CONFIGURATIONS}",
                    )

    def unknown(self, doc: Document, loc: Locator, name: str) -> None:
        if name in self.broken_names:
            return
        hint = did_you_mean(name, self.by_name)
        self.error(doc.file, loc, f"no configuration named '{name}'{hint}")

    def resolve_scope(self, scope_doc: _ScopeDoc) -> None:
        doc, spec = scope_doc.doc, scope_doc.spec
        name: str = spec["configuration"]
        config = self.by_name.get(name)
        decl = self.scope(doc, ("spec",), spec, config.settings.domain if config is not None else None)
        if config is None:
            self.unknown(doc, doc.root.find(("spec", "configuration")), name)
            return
        if decl is None:
            return
        if config.settings.direction is not Direction.AD_TO_ENTRA:
            self.error(
                doc.file,
                doc.root.find(("spec", "configuration")),
                f"configuration '{config.name}' provisions Entra ID -> AD; a Scope document holds AD "
                "groups or organizational units, so give its scope in its own spec.scope",
            )
            return
        if config.scope is not None:
            self.error(
                doc.file,
                doc.root.find(("spec", "configuration")),
                f"configuration '{config.name}' already takes its scope from {config.scope.origin}; "
                "a scope comes from one place only",
            )
            return
        config.scope = decl
        config.sources.add(doc.file)

    def resolve_mappings(self, shared: _MappingsDoc) -> None:
        doc = shared.doc
        targets: list[_Config] = []
        if shared.names is not None:
            listed = doc.root.find(("spec", "configurations")).items()
            seen: set[str] = set()
            for name, loc in zip(shared.names, listed, strict=True):
                if name in seen:
                    self.error(doc.file, loc, f"configuration '{name}' is listed twice")
                    continue
                seen.add(name)
                config = self.by_name.get(name)
                if config is None:
                    self.unknown(doc, loc, name)
                elif config.settings.direction is not Direction.AD_TO_ENTRA:
                    message = (
                        f"configuration '{name}' provisions Entra ID -> AD; AttributeMappings documents hold "
                        "AD -> Entra ID mappings, so give its mappings in its own spec.attributeMappings"
                    )
                    self.error(doc.file, loc, message)
                else:
                    targets.append(config)
        else:
            wanted = shared.match_labels or {}
            # Shared mapping sets are AD -> Entra ID mappings: a selector never reaches the other direction.
            targets = [
                c
                for c in self.by_name.values()
                if wanted.items() <= dict(c.labels).items() and c.settings.direction is Direction.AD_TO_ENTRA
            ]
            if not targets:
                where = doc.root.find(("spec", "selector"), key=True)
                self.warn(doc.file, where, "selector matches no configuration")
        for config in targets:
            config.sources.add(doc.file)
            for override in shared.overrides:
                key = (override.object, override.target.casefold())
                previous = config.overrides.get(key)
                if previous is not None and override.origin is not None:
                    self.error(
                        doc.file,
                        override.origin,
                        f"{override.object} mapping of '{override.target}' for configuration '{config.name}' "
                        f"is already set at {previous.origin}",
                    )
                    continue
                config.overrides[key] = override

    # -- the model -----------------------------------------------------------------------------------

    def build(self) -> tuple[Desired, ...]:
        out = []
        for config in self.by_name.values():
            overrides = [config.overrides[key] for key in sorted(config.overrides, key=_override_order)]
            out.append(
                Desired(
                    name=config.name,
                    settings=config.settings,
                    scope=config.scope.scope if config.scope is not None else Scope.all(),
                    overrides=tuple(overrides),
                    labels=config.labels,
                    deletion_protection=config.deletion_protection,
                    restart_token=config.restart_token,
                    approve_deletes=config.approve_deletes,
                    extensions=tuple(e for e, _ in config.extensions.values()),
                    extension_removals=tuple(n for n, _ in config.extension_removals.values()),
                    origin=config.origin,
                    sources=tuple(sorted(config.sources)),
                )
            )
        return tuple(sorted(out, key=lambda d: d.name))
