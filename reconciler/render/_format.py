"""Wording and value formatting shared by the text and Markdown renderers. Pure, no I/O.

Both renderers say the same things in the same words; only the markup differs. Everything here turns
plan data into plain one-line strings: control characters are made visible, so a value can neither
break a line nor send escape sequences to a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.core.observed import JobStatus
from reconciler.core.plan import Action, Change, Plan
from reconciler.render.escape import printable

__all__ = [
    "SYMBOLS",
    "Row",
    "by_configuration",
    "describe_status",
    "format_value",
    "origin_parts",
    "partial_line",
    "printable",
    "rows",
    "summary_line",
]

SYMBOLS: dict[Action, str] = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.RESTART: "↻",
    Action.APPROVE_DELETES: "!",
    Action.START: "▶",
    Action.PAUSE: "⏸",
}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _format_mapping(m: dict[str, Any]) -> str:
    kind = m.get("kind")
    source = str(m.get("value", ""))
    if kind == "direct":
        text = f"[{source}]"
    elif kind == "constant":
        text = _json(source)
    else:
        text = source
    notes = []
    if m.get("default") is not None:
        notes.append(f"default {_json(m['default'])}")
    if m.get("apply") == "onCreate":
        notes.append("on create only")
    if m.get("matchingPriority"):
        notes.append(f"matching priority {m['matchingPriority']}")
    if notes:
        text += " (" + ", ".join(notes) + ")"
    return text


def _format_clause(c: Any) -> str:
    if not isinstance(c, dict):
        return _json(c)
    text = f"{c.get('attribute')} {c.get('operator')}"
    return text if c.get("value") is None else f"{text} {_json(c.get('value'))}"


def _format_scope(s: dict[str, Any]) -> str:
    """``all``; ``all where A OP "v" and ... or ...`` (Entra ID -> AD attribute filters: clauses ANDed in
    a filter, filters ORed); or the kind and its entries."""
    if s.get("kind") == "all":
        filters = [f for f in s.get("filters") or () if isinstance(f, list)]
        if not filters:
            return "all"
        parts = [" and ".join(_format_clause(c) for c in f) for f in filters]
        if len(parts) > 1:
            parts = [f"({p})" if len(f) > 1 else p for p, f in zip(parts, filters, strict=True)]
        return "all where " + " or ".join(parts)
    return f"{s.get('kind')} {_json(list(s.get('entries') or ()))}"


def format_value(path: str, value: Any) -> str:
    """One field value as a reviewer reads it: mappings as in the portal, the scope by kind, else JSON."""
    if isinstance(value, dict) and "kind" in value:
        if path.startswith("mappings."):
            return printable(_format_mapping(value))
        if path == "scope":
            return printable(_format_scope(value))
    return printable(_json(value))


@dataclass(frozen=True, slots=True)
class Row:
    """One field of a change: ``sign`` is ``+`` (added), ``-`` (removed) or ``~`` (changed)."""

    sign: str
    path: str
    before: str | None
    after: str | None


# A delete is named by its domain; every other field it held would only lengthen the review.
_DELETE_FIELDS = frozenset({"settings.domain"})


def rows(change: Change) -> Iterator[Row]:
    fields = change.fields
    if change.action is Action.DELETE:
        fields = tuple(f for f in fields if f.path in _DELETE_FIELDS)
    for f in fields:
        # A field absent on both sides (a create's unset restartToken) has nothing to show.
        if f.before is None and f.after is None:
            continue
        entries = _list_change(f.path, f.before, f.after)
        if entries is not None:
            yield from entries
            continue
        before = None if f.before is None else format_value(f.path, f.before)
        after = None if f.after is None else format_value(f.path, f.after)
        sign = "+" if before is None else "-" if after is None else "~"
        yield Row(sign, printable(f.path), before, after)


def _entries(path: str, value: Any) -> tuple[str, list[Any]] | None:
    """A list-valued field as (the path its entries are shown under, the entries); None for others."""
    if isinstance(value, list):
        return path, value
    if path == "scope" and isinstance(value, dict) and value.get("kind") not in (None, "all"):
        return f"scope.{value['kind']}", list(value.get("entries") or ())
    return None


def _list_change(path: str, before: Any, after: Any) -> list[Row] | None:
    """A change of a list (scope OUs or groups, any list value) as one row per entry added or removed,
    instead of the whole list before and after; None when the change is not between two lists of the
    same kind."""
    old, new = _entries(path, before), _entries(path, after)
    if old is None or new is None or old[0] != new[0]:
        return None
    shown = printable(old[0])
    # Entries compare as the service compares DNs and names: without regard to case.
    kept = {_fold(e) for e in new[1]}
    had = {_fold(e) for e in old[1]}
    out = [Row("-", shown, format_value("", e), None) for e in old[1] if _fold(e) not in kept]
    out += [Row("+", shown, None, format_value("", e)) for e in new[1] if _fold(e) not in had]
    return out


def _fold(entry: Any) -> Any:
    return entry.casefold() if isinstance(entry, str) else json.dumps(entry, sort_keys=True)


def by_configuration(plan: Plan) -> list[list[Change]]:
    """The plan's changes grouped per configuration, by name; each group keeps the plan's order."""
    groups: dict[str, list[Change]] = {}
    for c in plan.changes:
        groups.setdefault(c.name, []).append(c)
    return [groups[name] for name in sorted(groups)]


def summary_line(plan: Plan) -> str:
    """The plan in one line. It stands alone (``--quiet`` prints nothing else), so a partial plan says
    here too that it is partial and how much it covers."""
    covered = _covered(plan)
    if not plan.changes and not plan.held:
        if covered is not None:
            return f"No changes in the {covered} this partial plan covers (--changed-since)."
        return "No changes. The target matches the desired state."
    counts = plan.summary()
    parts = [f"{counts['create']} to create", f"{counts['update']} to update"]
    # Starts and pauses are rare; they are named only when the plan has some.
    parts += [f"{counts[a]} to {a}" for a in ("start", "pause") if counts[a]]
    parts.append(f"{counts['restart']} to restart")
    if counts.get("approveDeletes"):
        parts.append(f"{counts['approveDeletes']} held-delete approval(s)")
    parts.append(f"{counts['delete']} to delete")
    held = f"{counts['held']} held back"
    if counts["held"]:
        # Held-back changes are differences the plan leaves in place; say so where CI logs show it.
        held += " (not applied: the target still differs)"
    parts.append(held)
    partial = f" Partial plan (--changed-since): it covers only {covered}." if covered is not None else ""
    return "Plan: " + ", ".join(parts) + "." + partial


# How many names a partial plan's note lists before it says "and N more".
_COVERED_NAMES = 20


def _covered(plan: Plan) -> str | None:
    """``3 configurations`` for a partial plan (``--changed-since``) of three; None for a whole plan."""
    only = plan.options.only
    if only is None:
        return None
    return f"{len(only)} configuration{'s' if len(only) != 1 else ''}"


def partial_line(plan: Plan) -> str | None:
    """For a plan of some configurations only (``--changed-since``): that it is partial, and of which."""
    count = _covered(plan)
    if count is None:
        return None
    names = sorted(plan.options.only or ())
    shown = ", ".join(names[:_COVERED_NAMES])
    more = f" and {len(names) - _COVERED_NAMES} more" if len(names) > _COVERED_NAMES else ""
    listed = f": {shown}{more}" if names else ""
    return printable(
        f"Partial plan (--changed-since): it covers only the {count} whose files changed{listed}."
    )


def describe_status(name: str, status: JobStatus) -> str:
    parts = [f"job {status.code}"]
    if status.quarantine_reason:
        parts.append(f"quarantine reason: {status.quarantine_reason}")
    if status.quarantine_since:
        parts.append(f"since {status.quarantine_since}")
    if status.last_run_state:
        run = f"last run {status.last_run_state}"
        if status.last_run_end:
            run += f" at {status.last_run_end}"
        parts.append(run)
    if status.last_error:
        parts.append(f"last error: {status.last_error}")
    return printable(f"{name}: " + "; ".join(parts))


def origin_parts(plan: Plan, code: Callable[[str], str], target_label: str) -> list[str]:
    """Where the plan comes from, one part each: its target, its commit (and whether files were
    uncommitted). ``code`` formats a name for the renderer's markup."""
    p = plan.provenance
    parts = [f"{target_label} {code(plan.target)}"] if plan.target else []
    if p.commit:
        parts.append(f"commit {code(p.commit[:12])}" + (" with uncommitted changes" if p.dirty else ""))
    elif p.dirty:
        parts.append("uncommitted files")
    return parts
