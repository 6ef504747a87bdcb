"""``spec.onPremisesAttributes``: the AD attributes a configuration's mappings read that its job schema
may lack (AD schema extensions), read and checked with file and line.

The JSON Schema checks each entry's shape (a name as LDAP spells attribute names, object types of an
AD -> Entra ID configuration); this module checks what spans entries: a name listed twice, and a
mapping whose source names a declared attribute on an object the declaration does not list. An
Entra ID -> AD configuration cannot declare any: its AD schema isn't discoverable and its AD target
attributes are a fixed set (cloud-sync-directions.md 4.2, CONFIRMED).

I/O: none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.config.yamlio import Document
from reconciler.core.model import MappingKind, MappingOverride, Origin
from reconciler.core.onprem import OnPremisesAttribute
from reconciler.errors import Diagnostic

__all__ = ["FIELD", "WHY_AD_TO_ENTRA_ONLY", "OnPremDeclared", "misplaced_sources", "read_declarations"]

FIELD = "onPremisesAttributes"
# Why a field of an AD -> Entra ID configuration is refused in the other direction, when a reason helps.
WHY_AD_TO_ENTRA_ONLY = {
    FIELD: (
        ": an Entra ID -> AD job's AD schema isn't discoverable and its AD target attributes are a fixed "
        "set (docs/format.md, On-premises attributes)"
    ),
}

# OnPremDeclared attributes by folded name, with where each was declared.
OnPremDeclared = dict[str, tuple[OnPremisesAttribute, Origin]]


def read_declarations(
    doc: Document, entries: list[dict[str, Any]]
) -> tuple[OnPremDeclared, list[Diagnostic]]:
    """The entries of ``spec.onPremisesAttributes`` (shape already checked), and the problems found."""
    declared: OnPremDeclared = {}
    problems: list[Diagnostic] = []
    if not entries:
        return declared, problems
    for entry, loc in zip(entries, doc.root.find(("spec", FIELD)).items(), strict=True):
        name: str = entry["name"]
        origin = loc.origin(doc.file)
        earlier = declared.get(name.casefold())
        if earlier is not None:
            message = f"on-premises attribute '{name}' is already listed at {earlier[1]}"
            problems.append(Diagnostic(doc.file, loc.line, loc.col, message))
            continue
        objects: list[str] = entry.get("objects", ["user"])
        declared[name.casefold()] = (OnPremisesAttribute(name, tuple(dict.fromkeys(objects))), origin)
    return declared, problems


def declared_for(declared: OnPremDeclared, obj: str) -> frozenset[str]:
    """The folded names declared for object type ``obj``."""
    return frozenset(k for k, (a, _) in declared.items() if obj in a.objects)


def misplaced_sources(
    declared: OnPremDeclared, overrides: Iterable[MappingOverride]
) -> list[tuple[Origin, str]]:
    """Direct mappings whose source is a declared attribute of other object types only: the job schema
    would define it where the mapping does not read it."""
    out: list[tuple[Origin, str]] = []
    for override in overrides:
        m = override.mapping
        if m is None or m.kind is not MappingKind.DIRECT or override.origin is None:
            continue
        found = declared.get(m.value.casefold())
        if found is not None and m.object not in found[0].objects:
            attribute, where = found
            out.append(
                (
                    override.origin,
                    f"the {m.object} mapping of '{override.target}' reads on-premises attribute "
                    f"'{m.value}', which is declared at {where} for {', '.join(attribute.objects)} only; "
                    f"add {m.object} to its objects",
                )
            )
    return out
