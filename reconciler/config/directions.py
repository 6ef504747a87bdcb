"""What is particular to a configuration's direction: the fields only one direction takes, the objects
an Entra ID -> AD configuration maps, and its ``targetContainer`` (a DN, or a ``Switch()`` over DNs).

Pure: no I/O. Problems go to the ``Report``.
"""

from __future__ import annotations

from typing import Any

from reconciler.config.declared import Report
from reconciler.config.mappings import check_expression
from reconciler.config.onprem import FIELD as ONPREM_FIELD
from reconciler.config.onprem import WHY_AD_TO_ENTRA_ONLY
from reconciler.config.schema import dotted
from reconciler.config.scopes import dn_in_domain
from reconciler.config.yamlio import Document, Locator
from reconciler.core.model import (
    ENTRA_TO_AD_OBJECTS,
    TARGET_CONTAINER,
    Direction,
    Mapping,
    MappingKind,
    MappingOverride,
)

__all__ = ["direction_fields", "entra_to_ad_object", "switch_expression", "target_container"]

# Fields that belong to one direction only, and the direction they belong to.
_AD_TO_ENTRA_ONLY = ("passwordHashSync", "exchangeHybridWriteback", "deviceSync", ONPREM_FIELD)
_ENTRA_TO_AD_ONLY = ("targetContainer", "preview")


def direction_fields(report: Report, doc: Document, spec: dict[str, Any], direction: Direction) -> bool:
    """Refuse fields of the other direction; False when one was given (reported)."""
    ok = True
    to_ad = direction is Direction.ENTRA_TO_AD
    wrong = _AD_TO_ENTRA_ONLY if to_ad else _ENTRA_TO_AD_ONLY
    for key in wrong:
        if key in spec:
            belongs = "adToEntra" if to_ad else "entraToAd"
            message = (
                f"spec.{key} applies to direction {belongs} only; this configuration's direction is "
                f"{direction.value}" + (WHY_AD_TO_ENTRA_ONLY.get(key, "") if to_ad else "")
            )
            report.error(doc.file, doc.root.find(("spec",)).key(key) or doc.root, message)
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
                report.error(doc.file, doc.root.find(("spec", "scope")).key(key) or doc.root, message)
                ok = False
    return ok


def entra_to_ad_object(report: Report, doc: Document, path: tuple[str, ...], obj: str, users: bool) -> bool:
    """Whether an Entra ID -> AD configuration may map ``obj``; reported when not."""
    loc = doc.root.find(path[:-1]).key(obj) or doc.root
    if obj not in ENTRA_TO_AD_OBJECTS:
        message = f"{dotted(path)}: an entraToAd configuration provisions groups (and users, in preview)"
        report.error(doc.file, loc, message)
        return False
    if obj == "user" and not users:
        message = (
            f"{dotted(path)}: provisioning users to AD is a preview feature; "
            "set spec.preview.users: true to use it"
        )
        report.error(doc.file, loc, message)
        return False
    return True


def target_container(report: Report, doc: Document, value: Any, domain: str) -> MappingOverride | None:
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
    checked = [dn_in_domain(report, doc.file, dn, where, domain) for dn, where in dns]
    if any(rdns is None for rdns in checked):
        return None
    if isinstance(value, str):
        mapping = Mapping("group", TARGET_CONTAINER, MappingKind.CONSTANT, value)
    else:
        mapping = Mapping("group", TARGET_CONTAINER, MappingKind.EXPRESSION, switch_expression(value))
        report.extend(check_expression(mapping.value, origin))
    return MappingOverride("group", TARGET_CONTAINER, mapping, origin)


def switch_expression(value: dict[str, Any]) -> str:
    """``{switch: attr, cases: {v: dn}, default: dn}`` as ``Switch([attr], default, v, dn, ...)``."""

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    parts = [f"[{value['switch']}]", quoted(value["default"])]
    for key, dn in value["cases"].items():
        parts += [quoted(str(key)), quoted(dn)]
    return f"Switch({', '.join(parts)})"
