"""Directory extensions: ``spec.directoryExtensions`` read, and checked across configurations.

A configuration declares the extension properties it maps (``ext:NAME``) or removes them; since all
configurations share the one extensions application of the tenant, a name is one property everywhere.

Pure: no I/O. Problems go to the ``Report``.
"""

from __future__ import annotations

from typing import Any

from reconciler.config.declared import Declared, Report
from reconciler.config.yamlio import Document
from reconciler.core.model import EXTENSION_REF, DirectoryExtension, MappingKind, MappingOverride, Origin

__all__ = ["MAX_EXTENSION_VALUES", "check_extensions", "read_extensions"]

# Graph writes at most this many extension values to one object (extensionProperty, v1.0 docs).
MAX_EXTENSION_VALUES = 100
# The Entra ID object type each AD -> Entra ID object mapping writes.
_ENTRA_OBJECT = {"user": "User", "inetOrgPerson": "User", "group": "Group"}


def read_extensions(report: Report, doc: Document, config: Declared, entries: list[dict[str, Any]]) -> None:
    """``spec.directoryExtensions``: extension properties to have (or, with ``remove``, not to have)."""
    path = ("spec", "directoryExtensions")
    for entry, loc in zip(entries, doc.root.find(path).items(), strict=True):
        name: str = entry["name"]
        origin = loc.origin(doc.file)
        folded = name.casefold()
        earlier = config.extensions.get(folded) or config.extension_removals.get(folded)
        if earlier is not None:
            report.error(doc.file, loc, f"directory extension '{name}' is already listed at {earlier[1]}")
            continue
        if entry.get("remove"):
            extra = sorted(set(entry) - {"name", "remove"})
            if extra:
                message = f"directory extension '{name}': remove: true takes only a name, not {extra[0]}"
                report.error(doc.file, loc.child(extra[0]) or loc, message)
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


def check_extensions(report: Report, by_name: dict[str, Declared]) -> None:
    """Each ``ext:`` mapping names an extension its configuration declares, on an object the
    extension targets; a configuration never removes what another declares, nor two declare one
    name differently (one extension property of one application serves them all)."""
    seen: dict[str, tuple[DirectoryExtension, Origin]] = {}
    removed: dict[str, Origin] = {}
    for config in by_name.values():
        for folded, (extension, origin) in config.extensions.items():
            first = seen.setdefault(folded, (extension, origin))
            if first[0] != extension:
                report.error(
                    origin.file,
                    origin,
                    f"directory extension '{extension.name}' is declared as {extension.as_dict()} here "
                    f"and as {first[0].as_dict()} at {first[1]}; it is one extension property",
                )
        for folded, (_name, origin) in config.extension_removals.items():
            removed.setdefault(folded, origin)
        for override in config.overrides.values():
            _check_extension_mapping(report, config, override)
    for folded, origin in removed.items():
        if folded in seen:
            extension, where = seen[folded]
            report.error(
                origin.file,
                origin,
                f"directory extension '{extension.name}' is removed here but declared at {where}",
            )
    for obj in ("User", "Group"):
        count = sum(1 for e, _ in seen.values() if obj in e.target_objects)
        if count > MAX_EXTENSION_VALUES:
            extension, where = next(v for v in seen.values() if obj in v[0].target_objects)
            report.error(
                where.file,
                where,
                f"{count} directory extensions target {obj}; Graph writes at most "
                f"{MAX_EXTENSION_VALUES} extension values to one object",
            )


def _check_extension_mapping(report: Report, config: Declared, override: MappingOverride) -> None:
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
            report.error(
                where.file,
                where,
                f"the {override.object} mapping names directory extension '{name}', which configuration "
                f"'{config.name}' does not declare (spec.directoryExtensions)",
            )
            continue
        entra = _ENTRA_OBJECT.get(override.object)
        if text == override.target and entra not in declared[0].target_objects:
            report.error(
                where.file,
                where,
                f"directory extension '{name}' targets {', '.join(declared[0].target_objects)}; the "
                f"{override.object} mapping writes to {entra or 'an object it does not target'}",
            )
