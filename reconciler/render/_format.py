"""Wording and value formatting shared by the text and Markdown renderers. Pure, no I/O.

Both renderers say the same things in the same words; only the markup differs. Everything here turns
plan data into plain one-line strings: control characters are made visible, so a value can neither
break a line nor send escape sequences to a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.core.model import JobStatus
from reconciler.core.plan import Action, Change, Plan

__all__ = [
    "SYMBOLS",
    "Row",
    "by_configuration",
    "describe_status",
    "format_value",
    "printable",
    "rows",
    "summary_line",
]

SYMBOLS: dict[Action, str] = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.RESTART: "↻",
    Action.START: "▶",
    Action.PAUSE: "⏸",
}

# C0 and C1 controls (ESC and CSI start terminal sequences; newlines would split a row) and the
# bidirectional overrides that can make text read differently from what it is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    return _UNPRINTABLE.sub(_escape_char, text)


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


def _format_scope(s: dict[str, Any]) -> str:
    if s.get("kind") == "all":
        return "all"
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


def rows(change: Change) -> Iterator[Row]:
    for f in change.fields:
        # A field absent on both sides (a create's unset restartToken) has nothing to show.
        if f.before is None and f.after is None:
            continue
        before = None if f.before is None else format_value(f.path, f.before)
        after = None if f.after is None else format_value(f.path, f.after)
        sign = "+" if before is None else "-" if after is None else "~"
        yield Row(sign, printable(f.path), before, after)


def by_configuration(plan: Plan) -> list[list[Change]]:
    """The plan's changes grouped per configuration, by name; each group keeps the plan's order."""
    groups: dict[str, list[Change]] = {}
    for c in plan.changes:
        groups.setdefault(c.name, []).append(c)
    return [groups[name] for name in sorted(groups)]


def summary_line(plan: Plan) -> str:
    if not plan.changes and not plan.held:
        return "No changes. The target matches the desired state."
    counts = plan.summary()
    parts = [f"{counts['create']} to create", f"{counts['update']} to update"]
    # Starts and pauses are rare; they are named only when the plan has some.
    parts += [f"{counts[a]} to {a}" for a in ("start", "pause") if counts[a]]
    parts += [f"{counts[a]} to {a}" for a in ("restart", "delete")]
    parts.append(f"{counts['held']} held back")
    return "Plan: " + ", ".join(parts) + "."


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
