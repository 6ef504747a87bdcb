"""Loading the desired state: YAML files in, a checked and frozen ``DesiredState`` out.

Stages, each reporting every problem it finds:

1. each file: size, UTF-8 and YAML (``files``, ``yamlio``);
2. each document: kind and JSON Schema (``schema``), then what can be checked inside the document alone
   (here, for a configuration's settings; ``scopes``, ``mappings``, ``directions`` and ``extensions``
   for the parts of a spec);
3. across documents (``resolve``): duplicate names, one configuration per domain, references to
   configurations, and that a configuration's scope and each of its (object, target) mappings come from
   one place only.

A document that fails its schema is not checked further, so that one mistake is not reported several
times over. Every error found, with the warnings, is raised at the end as one ``LoadError``.

I/O: ``load_paths`` reads the files under the given paths; ``load_files`` does no I/O, so the same
checks apply to files read from a git commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.config.declared import Declared, Documents, MappingsDoc, Report, ScopeDoc
from reconciler.config.directions import direction_fields, entra_to_ad_object, target_container
from reconciler.config.extensions import read_extensions
from reconciler.config.files import SourceFile, check_source, collect_files
from reconciler.config.mappings import MappingReader
from reconciler.config.onprem import FIELD as ONPREM_FIELD
from reconciler.config.onprem import misplaced_sources, read_declarations
from reconciler.config.resolve import join
from reconciler.config.schema import KINDS, check, did_you_mean
from reconciler.config.scopes import ad_scope, entra_scope
from reconciler.config.yamlio import Document, parse_documents
from reconciler.core.collector import collector_paused
from reconciler.core.model import (
    DEFAULT_DELETE_THRESHOLD,
    OBJECT_TYPES,
    TARGET_CONTAINER,
    Desired,
    DesiredState,
    Direction,
    Origin,
    Scope,
    Settings,
)
from reconciler.core.observed import quarantine_instant
from reconciler.errors import Diagnostic, LoadError

__all__ = ["LoadResult", "load_files", "load_paths"]

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
    report = Report(list(problems))
    reader = _Reader(report)
    with collector_paused():
        for source in files:
            reader.read(source)
        by_name = join(report, reader.docs)
        for config in by_name.values():
            for where, message in misplaced_sources(config.onprem, config.overrides.values()):
                report.error(where.file, where, message)
        if report.has_errors():
            raise LoadError(report.diagnostics)
        state = DesiredState(configurations=_build(by_name), paths=tuple(paths))
    warnings = tuple(sorted(d for d in report.diagnostics if d.severity != "error"))
    return LoadResult(state, warnings, tuple(f.path for f in files))


class _Reader:
    """Stages 1 and 2: reads each file's documents into ``docs``, reporting every problem."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.docs = Documents()
        self.mappings = MappingReader(report)

    def read(self, source: SourceFile) -> None:
        problem = check_source(source)
        if problem is not None:
            self.report.diagnostics.append(problem)
            return
        docs, problems = parse_documents(source.path, source.data)
        self.report.extend(problems)
        for doc in docs:
            self.document(doc)

    def document(self, doc: Document) -> None:
        value = doc.value
        if value is None:
            return  # an empty document, such as the one before a leading '---'
        if not isinstance(value, dict):
            what = "a list" if isinstance(value, list) else "a single value"
            message = f"a document must be a mapping (apiVersion, kind, metadata, spec), not {what}"
            self.report.error(doc.file, doc.root, message)
            return
        kind = value.get("kind")
        if kind not in KINDS:
            if "kind" not in value:
                self.report.error(
                    doc.file, doc.root, f"missing required field 'kind' (one of {', '.join(KINDS)})"
                )
            else:
                hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
                message = f"unknown kind '{kind}'; expected one of {', '.join(KINDS)}{hint}"
                self.report.error(doc.file, doc.root.find(("kind",)), message)
            return
        problems = check(doc, kind)
        if problems:
            self.report.extend(problems)
            if kind == "Configuration":
                metadata = value.get("metadata")
                if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
                    self.docs.broken_names.add(metadata["name"])
            return
        name_loc = doc.root.find(("metadata", "name"))
        origin = name_loc.origin(doc.file)
        spec: dict[str, Any] = value["spec"]
        if kind == "Configuration":
            self.configuration(doc, origin, value["metadata"], spec)
        elif kind == "Scope":
            self.docs.scopes.append(ScopeDoc(doc, value["metadata"]["name"], origin, spec))
        else:
            self.mapping_set(doc, value["metadata"]["name"], origin, spec)

    def configuration(
        self, doc: Document, origin: Origin, metadata: dict[str, Any], spec: dict[str, Any]
    ) -> None:
        deletes: dict[str, Any] = spec.get("accidentalDeletes", {})
        direction = Direction(spec.get("direction", Direction.AD_TO_ENTRA.value))
        to_ad = direction is Direction.ENTRA_TO_AD
        if not direction_fields(self.report, doc, spec, direction):
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
            scope = entra_scope(self.report, doc, spec.get("scope"))
        elif "scope" in spec:
            scope = ad_scope(self.report, doc, ("spec", "scope"), spec["scope"], settings.domain)
        config = Declared(
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
        read_extensions(self.report, doc, config, spec.get("directoryExtensions") or [])
        config.onprem, problems = read_declarations(doc, spec.get(ONPREM_FIELD) or [])
        self.report.extend(problems)
        mappings: dict[str, list[dict[str, Any]]] = spec.get("attributeMappings", {})
        # Its own mappings may read the attributes it declares: no "not a known attribute" for those.
        self.mappings.declaring = config.onprem
        for obj, entries in mappings.items():
            path = ("spec", "attributeMappings", obj)
            if to_ad and not entra_to_ad_object(self.report, doc, path, obj, settings.preview_users):
                continue
            for override in self.mappings.read(doc, path, obj, entries, direction):
                config.overrides[override.object, override.target.casefold()] = override
        self.mappings.declaring = {}
        if to_ad and "targetContainer" in spec:
            container = target_container(self.report, doc, spec["targetContainer"], settings.domain)
            if container is not None:
                key = ("group", TARGET_CONTAINER.casefold())
                if key in config.overrides:
                    where = config.overrides[key].origin
                    self.report.error(
                        doc.file,
                        doc.root.find(("spec", "targetContainer"), key=True),
                        f"targetContainer and the group mapping of '{TARGET_CONTAINER}' at {where} both set "
                        "the target container; give one",
                    )
                else:
                    config.overrides[key] = container
        self.docs.configs.append(config)

    def approve_deletes(self, doc: Document, spec: dict[str, Any] | None) -> str | None:
        """``approveDeletes.quarantinedSince``: a time with its zone (the service's ``seriesBegan``)."""
        if spec is None:
            return None
        since = str(spec["quarantinedSince"])
        if quarantine_instant(since) is None:
            self.report.error(
                doc.file,
                doc.root.find(("spec", "approveDeletes", "quarantinedSince")),
                f"spec.approveDeletes.quarantinedSince: {since!r} is not a time with its zone, such as "
                "2026-12-06T09:12:00Z (copy it from `reconciler status`: 'quarantined since')",
            )
            return None
        return since

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
            self.report.error(file, doc.root.find(("spec",), key=True), message)
            return
        obj: str = spec["object"]
        overrides = self.mappings.read(doc, ("spec", "mappings"), obj, spec["mappings"])
        match_labels = None if selector is None else dict(selector["matchLabels"])
        self.docs.shared.append(MappingsDoc(doc, name, origin, names, match_labels, overrides))


def _override_order(key: tuple[str, str]) -> tuple[int, str]:
    return _OBJECT_ORDER[key[0]], key[1]


def _build(by_name: dict[str, Declared]) -> tuple[Desired, ...]:
    """The joined configurations as the model, sorted by name."""
    out = []
    for config in by_name.values():
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
                onprem_attributes=tuple(a for a, _ in config.onprem.values()),
                origin=config.origin,
                sources=tuple(sorted(config.sources)),
            )
        )
    return tuple(sorted(out, key=lambda d: d.name))
