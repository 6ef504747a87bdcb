"""Across documents: the checks and joins that need every document of the desired state.

Configuration names are unique, a domain has one configuration per direction (and a tenant at most
``MAX_ENTRA_TO_AD_CONFIGURATIONS`` Entra ID -> AD ones), Scope and AttributeMappings documents name
configurations that exist, and a configuration's scope and each (object, target) mapping come from one
place only. Directory extensions are checked last, once every mapping is in place.

Pure: no I/O. Problems go to the ``Report``.
"""

from __future__ import annotations

from reconciler.config.declared import Declared, Documents, MappingsDoc, Report, ScopeDoc
from reconciler.config.extensions import check_extensions
from reconciler.config.schema import did_you_mean
from reconciler.config.scopes import ad_scope
from reconciler.config.yamlio import Document, Locator
from reconciler.core.model import Direction, Origin

__all__ = ["MAX_ENTRA_TO_AD_CONFIGURATIONS", "join"]

# Entra ID -> AD (cloud-sync-directions.md 1.1): at most 20 such configurations per tenant.
MAX_ENTRA_TO_AD_CONFIGURATIONS = 20


def join(report: Report, docs: Documents) -> dict[str, Declared]:
    """The configurations of ``docs`` by name, joined with their Scope and AttributeMappings documents;
    every problem met is reported (a configuration defined twice keeps its first definition)."""
    return _Join(report, docs).join()


class _Join:
    def __init__(self, report: Report, docs: Documents) -> None:
        self.report = report
        self.docs = docs
        self.by_name: dict[str, Declared] = {}

    def join(self) -> dict[str, Declared]:
        """The configurations by name, each with the scope and mappings other documents give it."""
        for config in self.docs.configs:
            earlier = self.by_name.get(config.name)
            if earlier is not None:
                self.report.error(
                    config.origin.file,
                    config.origin,
                    f"configuration '{config.name}' is already defined at {earlier.origin}",
                )
                continue
            self.by_name[config.name] = config
        self.one_per_domain()
        for kind, named in (("Scope", self.docs.scopes), ("AttributeMappings", self.docs.shared)):
            first: dict[str, Origin] = {}
            for item in named:
                if item.name in first:
                    message = f"{kind} '{item.name}' is already defined at {first[item.name]}"
                    self.report.error(item.origin.file, item.origin, message)
                else:
                    first[item.name] = item.origin
        for scope_doc in self.docs.scopes:
            self.resolve_scope(scope_doc)
        for shared in self.docs.shared:
            self.resolve_mappings(shared)
        check_extensions(self.report, self.by_name)
        return self.by_name

    def one_per_domain(self) -> None:
        """Two configurations for one AD domain would run two provisioning jobs over the same objects."""
        by_domain: dict[tuple[Direction, str], Declared] = {}
        to_ad = 0
        for config in self.by_name.values():
            direction = config.settings.direction
            # DNS names compare without case and without the root's trailing dot.
            key = (direction, config.settings.domain.casefold().rstrip("."))
            earlier = by_domain.setdefault(key, config)
            if earlier is not config:
                way = "" if direction is Direction.AD_TO_ENTRA else f" (direction {direction.value})"
                self.report.error(
                    config.origin.file,
                    config.origin,
                    f"configuration '{config.name}' is for domain {config.settings.domain}{way}, "
                    f"as configuration '{earlier.name}' at {earlier.origin} is already; a domain has one "
                    "configuration per direction (to rename a configuration, change its name in its file)",
                )
            elif direction is Direction.ENTRA_TO_AD:
                to_ad += 1
                if to_ad == MAX_ENTRA_TO_AD_CONFIGURATIONS + 1:
                    self.report.error(
                        config.origin.file,
                        config.origin,
                        f"configuration '{config.name}' is Entra ID -> AD configuration number "
                        f"{to_ad}; a tenant has at most {MAX_ENTRA_TO_AD_CONFIGURATIONS}",
                    )

    def unknown(self, doc: Document, loc: Locator, name: str) -> None:
        if name in self.docs.broken_names:
            return
        hint = did_you_mean(name, self.by_name)
        self.report.error(doc.file, loc, f"no configuration named '{name}'{hint}")

    def resolve_scope(self, scope_doc: ScopeDoc) -> None:
        doc, spec = scope_doc.doc, scope_doc.spec
        name: str = spec["configuration"]
        config = self.by_name.get(name)
        decl = ad_scope(
            self.report, doc, ("spec",), spec, config.settings.domain if config is not None else None
        )
        if config is None:
            self.unknown(doc, doc.root.find(("spec", "configuration")), name)
            return
        if decl is None:
            return
        if config.settings.direction is not Direction.AD_TO_ENTRA:
            problem = (
                f"configuration '{config.name}' provisions Entra ID -> AD; a Scope document holds AD "
                "groups or organizational units, so give its scope in its own spec.scope"
            )
        elif config.scope is not None:
            problem = (
                f"configuration '{config.name}' already takes its scope from {config.scope.origin}; "
                "a scope comes from one place only"
            )
        else:
            config.scope = decl
            config.sources.add(doc.file)
            return
        self.report.error(doc.file, doc.root.find(("spec", "configuration")), problem)

    def resolve_mappings(self, shared: MappingsDoc) -> None:
        doc = shared.doc
        targets: list[Declared] = []
        if shared.names is not None:
            listed = doc.root.find(("spec", "configurations")).items()
            seen: set[str] = set()
            for name, loc in zip(shared.names, listed, strict=True):
                if name in seen:
                    self.report.error(doc.file, loc, f"configuration '{name}' is listed twice")
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
                    self.report.error(doc.file, loc, message)
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
                self.report.warn(doc.file, where, "selector matches no configuration")
        for config in targets:
            config.sources.add(doc.file)
            for override in shared.overrides:
                key = (override.object, override.target.casefold())
                previous = config.overrides.get(key)
                if previous is not None and override.origin is not None:
                    self.report.error(
                        doc.file,
                        override.origin,
                        f"{override.object} mapping of '{override.target}' for configuration '{config.name}' "
                        f"is already set at {previous.origin}",
                    )
                    continue
                config.overrides[key] = override
