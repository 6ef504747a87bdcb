"""Field-level differences between a desired and an observed configuration. Pure, no I/O.

Both sides are first reduced to their *essence*: a plain, normalized dict of what we manage (settings,
scope, effective mappings keyed by object and target, our metadata). Status, ids and anything the
service manages are left out, so they never show as changes. Equal essences are detected with one
``==``; only unequal ones go through deepdiff, whose output never leaves this module: it is rolled up
into our own ``FieldChange`` values at the granularity a reviewer reads (one row per setting, the scope
as a whole, one row per mapping).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.core.model import Mapping, Scope, ScopeKind, Settings

__all__ = ["FieldChange", "essence", "field_changes", "flatten", "mapping_essence", "scope_essence"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed field. ``path`` is dotted (``settings.notificationEmail``, ``mappings.user.department``);
    ``before``/``after`` are JSON values, ``None`` when the field is absent on that side."""

    path: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after}


def scope_essence(scope: Scope) -> dict[str, Any]:
    if scope.kind is ScopeKind.ALL:
        data: dict[str, Any] = {"kind": "all", "entries": []}
    else:
        data = {"kind": scope.kind.value, "entries": list(scope.normalized().entries)}
    if scope.filters:
        data["filters"] = scope.filters_as_list()
    return data


def mapping_essence(mappings: Iterable[Mapping]) -> dict[str, dict[str, dict[str, object]]]:
    out: dict[str, dict[str, dict[str, object]]] = {}
    for m in mappings:
        out.setdefault(m.object, {})[m.target] = m.as_dict()
    return out


def essence(
    settings: Settings,
    scope: Scope,
    mappings: Iterable[Mapping],
    *,
    deletion_protection: bool,
    restart_token: str | None,
) -> dict[str, Any]:
    return {
        "settings": settings.as_dict(),
        "scope": scope_essence(scope),
        "mappings": mapping_essence(mappings),
        "deletionProtection": deletion_protection,
        "restartToken": restart_token,
    }


# How deep a change is reported: a whole mapping, the whole scope, a single setting.
_ROLLUP_DEPTH = {"settings": 3, "scope": 1, "mappings": 3, "deletionProtection": 1, "restartToken": 1}


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def field_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[FieldChange, ...]:
    """Changes from ``before`` to ``after`` (either may be None: a create or a delete)."""
    if before == after:
        return ()
    # Imported on the first change only: a plan with no changes never needs it, and it is slow to load.
    from deepdiff import DeepDiff

    old = before or {}
    new = after or {}
    diff = DeepDiff(old, new, view="tree", ignore_order=False, verbose_level=2)
    paths: set[tuple[Any, ...]] = set()
    for items in diff.values():
        for item in items:
            raw = tuple(item.path(output_format="list"))
            if not raw:
                # the whole document differs (create/delete): report every top-level field
                paths.update((k,) for k in set(old) | set(new))
                continue
            depth = _ROLLUP_DEPTH.get(str(raw[0]), 1)
            if raw[0] == "settings" and len(raw) >= 2 and raw[1] != "accidentalDeletes":
                depth = 2
            if raw[0] == "mappings" and len(raw) < 3:
                # A whole object's rows told apart at once: still one row per mapping for the reviewer.
                paths.update(_mapping_paths(old, new, raw))
                continue
            paths.add(raw[:depth])
    changes = []
    for path in sorted(paths, key=lambda p: tuple(str(x) for x in p)):
        b, a = _get(old, path), _get(new, path)
        if b != a:
            changes.append(FieldChange(".".join(str(p) for p in path), b, a))
    return tuple(changes)


def _mapping_paths(old: dict[str, Any], new: dict[str, Any], prefix: tuple[Any, ...]) -> set[tuple[Any, ...]]:
    objects = (
        {prefix[1]} if len(prefix) > 1 else set(old.get("mappings") or {}) | set(new.get("mappings") or {})
    )
    found: set[tuple[Any, ...]] = set()
    for obj in objects:
        targets = set(_get(old, ("mappings", obj)) or {}) | set(_get(new, ("mappings", obj)) or {})
        found.update(("mappings", obj, t) for t in targets)
    return found


def flatten(data: dict[str, Any], *, removed: bool = False) -> tuple[FieldChange, ...]:
    """Every field of one side as a change from (or, with ``removed``, to) nothing: creates, deletes."""
    rows: list[FieldChange] = []
    for key in sorted(data):
        value = data[key]
        if key == "mappings":
            for obj in sorted(value):
                for target in sorted(value[obj]):
                    rows.append(FieldChange(f"mappings.{obj}.{target}", None, value[obj][target]))
        elif key == "settings":
            for name in sorted(value):
                rows.append(FieldChange(f"settings.{name}", None, value[name]))
        else:
            rows.append(FieldChange(key, None, value))
    if removed:
        return tuple(FieldChange(r.path, r.after, None) for r in rows)
    return tuple(rows)
