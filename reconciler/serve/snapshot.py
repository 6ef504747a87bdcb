"""The snapshot the active loop stores after each pass, so that every replica serves the same pages.

Per configuration: what the target holds (domain, scope; its jobs' health is in the health snapshot,
``reconciler.engine.health``, stored from the same read) and what a plan from the followed commit would
still change (counts, actions, the plan rendered as the CLI renders it, in text and Markdown), plus what
the plan holds back. It is one status document in the target's state store (``SNAPSHOT_KEY``), replaced
whole, so a reader sees one pass or the next.

Plans hold no secrets and neither does the observed state the snapshot takes (settings, scope, job
status); nothing else is read into it.

Pure, no I/O: the loop (``reconciler.serve.loop``) reads the target and stores the document.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from reconciler.core.model import Scope, ScopeKind
from reconciler.core.observed import Observed
from reconciler.core.plan import Action, Plan
from reconciler.render import render

__all__ = ["SNAPSHOT_KEY", "build", "scope_summary"]

SNAPSHOT_KEY = "serve"
# 2: the job health moved to the health snapshot (``reconciler.engine.health``).
SNAPSHOT_FORMAT_VERSION = 2
# A scope lists at most this many entries on the pages; the count says how many there are.
_SCOPE_ENTRIES_SHOWN = 5


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def scope_summary(scope: Scope) -> dict[str, Any]:
    """The scope for the pages: its kind, how many entries, the first few of them."""
    if scope.kind is ScopeKind.ALL:
        return {"kind": "all", "count": 0, "entries": []}
    return {
        "kind": scope.kind.value,
        "count": len(scope.entries),
        "entries": list(scope.entries[:_SCOPE_ENTRIES_SHOWN]),
    }


def _plan_of(plan: Plan, name: str) -> Plan:
    """The part of ``plan`` about configuration ``name``, for rendering on its own page."""
    return replace(
        plan,
        changes=tuple(c for c in plan.changes if c.name == name),
        held=tuple(h for h in plan.held if h.name == name),
        warnings=(),
        unmanaged=(),
        statuses=tuple(s for s in plan.statuses if s[0] == name),
    )


def _pending(plan: Plan | None, name: str) -> dict[str, Any]:
    if plan is None:
        return {"changes": 0, "actions": [], "held": [], "heldDeletes": 0, "text": "", "markdown": ""}
    own = _plan_of(plan, name)
    return {
        "changes": len(own.changes),
        "actions": [c.action.value for c in own.changes],
        "held": [f"{h.action.value}: {r}" for h in own.held for r in h.reasons],
        "heldDeletes": sum(1 for h in own.held if h.action is Action.DELETE),
        "text": render(own, "text", color=False) if own.changes or own.held else "",
        "markdown": render(own, "markdown") if own.changes or own.held else "",
    }


def build(
    observed: Iterable[Observed],
    plan: Plan | None,
    *,
    commit: str | None,
    plan_error: str | None = None,
) -> dict[str, Any]:
    """The snapshot document from what the target holds and the plan from ``commit`` (None: no plan)."""
    entries: dict[str, dict[str, Any]] = {}
    for o in observed:
        key = o.name if o.managed and o.name else f"{o.settings.domain} ({o.id})"
        entries[key] = {
            "name": key,
            "id": o.id,
            "managed": o.managed,
            "domain": o.settings.domain,
            "enabled": o.settings.enabled,
            "scope": scope_summary(o.scope),
            "pending": _pending(plan, o.name) if o.managed and o.name else _pending(None, key),
        }
    for c in plan.changes if plan else ():
        if c.name not in entries and c.spec is not None:
            # Not on the target yet: what the plan would create.
            entries[c.name] = {
                "name": c.name,
                "id": None,
                "managed": True,
                "domain": c.spec.settings.domain,
                "enabled": c.spec.settings.enabled,
                "scope": scope_summary(c.spec.scope),
                "pending": _pending(plan, c.name),
            }
    return {
        "formatVersion": SNAPSHOT_FORMAT_VERSION,
        "at": _now(),
        "commit": commit,
        "planError": plan_error,
        "configurations": [entries[k] for k in sorted(entries)],
    }
