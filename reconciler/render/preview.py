"""Renderings of a preview (``reconciler preview``): a table per object as text, or one JSON document.

Pure: a ``reconciler.provisioning.preview.Preview`` in, a string out. Every text line goes through the one
escaper (``reconciler.render.escape.printable``), so a value from a directory file cannot forge a line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.provisioning.evaluate import Outcome, OutcomeKind, ScopeDecision, show_value
from reconciler.provisioning.preview import ObjectPreview, Preview
from reconciler.render.escape import printable

__all__ = ["render_preview"]

_MAX_CELL = 48
_NOTES = {
    OutcomeKind.DEFAULT: "default",
    OutcomeKind.NULL: "null",
    OutcomeKind.DOES_NOT_FLOW: "does not flow",
    OutcomeKind.NOT_APPLIED: "on create only",
}


def _cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return "-"
    if outcome.kind is OutcomeKind.ERROR:
        prefix = "Error: " if outcome.raised else "failed: "
        return prefix + (outcome.error or "")
    text = show_value(outcome.value)
    note = _NOTES.get(outcome.kind)
    if text is None:
        return f"({note})" if note else "-"
    return f"{text} ({note})" if note and outcome.kind is OutcomeKind.DEFAULT else text


def _clip(text: str, width: int = _MAX_CELL) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [min(_MAX_CELL, max(len(r[i]) for r in rows)) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [_clip(c).ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        lines.append((indent + "  ".join([*cells, row[-1]])).rstrip())
    return lines


def _scope_text(decision: ScopeDecision) -> str:
    return ("in scope: " if decision.in_scope else "OUT OF SCOPE: ") + decision.reason


def _outcome_json(outcome: Outcome | None) -> dict[str, object] | None:
    if outcome is None:
        return None
    data: dict[str, object] = {"outcome": outcome.kind.value, "value": outcome.value}
    if outcome.error is not None:
        data["error"] = outcome.error
        data["raised"] = outcome.raised
    data["mapping"] = outcome.mapping.describe()
    return data


def _compared(p: ObjectPreview) -> list[tuple[str, str, Outcome | None, Outcome | None]]:
    """(mark, target, before, after) for every target either side maps, marks as in a diff."""
    assert p.before is not None
    old, new = p.before.by_target(), p.after.by_target()
    out = []
    for target in sorted(set(old) | set(new), key=lambda t: (t.casefold(), t)):
        o, n = old.get(target), new.get(target)
        mark = "+" if o is None else "-" if n is None else "~" if _cell(o) != _cell(n) else " "
        out.append((mark, target, o, n))
    return out


def _object_json(p: ObjectPreview) -> dict[str, object]:
    data: dict[str, object] = {
        "dn": p.obj.dn,
        "type": p.obj.object_type,
        "scope": {"inScope": p.scope.in_scope, "reason": p.scope.reason},
    }
    if p.before is None or p.before_scope is None:
        data["attributes"] = {t: _outcome_json(o) for t, o in p.after.by_target().items()}
        return data
    data["scopeBefore"] = {"inScope": p.before_scope.in_scope, "reason": p.before_scope.reason}
    data["attributes"] = {
        target: {"before": _outcome_json(o), "after": _outcome_json(n), "changed": mark != " "}
        for mark, target, o, n in _compared(p)
    }
    return data


def _object_lines(p: ObjectPreview, changes_only: bool) -> list[str]:
    lines = [f"{p.obj.dn} ({p.obj.object_type})", "  " + _scope_text(p.scope)]
    if p.before is None or p.before_scope is None:
        rows = [["ATTRIBUTE", "VALUE", "MAPPING"]]
        rows += [[o.target, _cell(o), _clip(o.mapping.describe(), 60)] for o in p.after.outcomes]
        return lines + (_table(rows) if len(rows) > 1 else ["  (no mappings for this object type)"])
    if p.before_scope.in_scope != p.scope.in_scope:
        lines.append("  before: " + _scope_text(p.before_scope))
    compared = _compared(p)
    rows = [[" ", "ATTRIBUTE", "BEFORE (target)", "AFTER (desired)"]]
    rows += [[m, t, _cell(o), _cell(n)] for m, t, o, n in compared if m != " " or not changes_only]
    if len(rows) > 1:
        lines += _table(rows)
    changed = sum(m != " " for m, *_ in compared)
    return [*lines, f"  {changed} of {len(compared)} attributes change"]


def render_preview(preview: Preview, fmt: str, *, changes_only: bool = False) -> str:
    """``preview`` as ``text`` or ``json``; ``changes_only`` leaves unchanged attributes out of the text."""
    if fmt == "json":
        document: dict[str, object] = {"configuration": preview.configuration}
        if preview.before_label is not None:
            document["before"] = preview.before_label
        document.update(
            objects=[_object_json(p) for p in preview.objects], notProvisioned=list(preview.containers)
        )
        return json.dumps(document, indent=2, ensure_ascii=False)
    blocks = []
    if preview.before_label is not None:
        blocks.append(f"Before: the mappings on {preview.before_label}. After: the desired mappings.")
    blocks += ["\n".join(_object_lines(p, changes_only)) for p in preview.objects]
    if preview.containers:
        n = len(preview.containers)
        blocks.append(f"{n} organizational unit(s) or container(s) not shown: not provisioned.")
    if preview.failed:
        blocks.append(f"{preview.failed} object(s) failed a mapping.")
    return "\n".join(printable(line, None) for line in "\n\n".join(blocks).split("\n"))
