"""Renderings of a diff between the desired state of two commits (``reconciler diff``): text, Markdown
for a pull-request comment, and JSON with a format version.

Pure: a ``RefDiff`` (``reconciler.git.history``) in, a string out; every value printed goes through the
one escaper (``reconciler.render.escape``).
"""

from __future__ import annotations

from reconciler.core.diff import FieldChange
from reconciler.core.semantic_diff import ConfigurationDiff, DiffKind, SemanticDiff
from reconciler.git.history import FORMAT_VERSION, MAX_ATTRIBUTED_COMMITS, RefDiff
from reconciler.git.repo import CommitInfo
from reconciler.render._format import format_value, printable
from reconciler.render.escape import json_text
from reconciler.render.markdown import DEFAULT_LIMIT, _code, _code_block, _html, _text

__all__ = ["render_diff"]


_SIGNS = {DiffKind.ADDED: "+", DiffKind.REMOVED: "-", DiffKind.CHANGED: "~"}
_RESTART = "restart will be required"


def _scope_lines(f: FieldChange) -> list[tuple[str, str]] | None:
    """A scope change of one kind as entries added and removed; None when the kind itself changed."""
    b, a = f.before, f.after
    if not (isinstance(b, dict) and isinstance(a, dict) and b.get("kind") == a.get("kind")):
        return None
    old, new = list(b.get("entries") or ()), list(a.get("entries") or ())
    old_keys, new_keys = {e.casefold() for e in old}, {e.casefold() for e in new}
    return [("-", e) for e in old if e.casefold() not in new_keys] + [
        ("+", e) for e in new if e.casefold() not in old_keys
    ]


def _field_lines(f: FieldChange) -> list[tuple[str, str]]:
    """(sign, text) lines of one field, as a reviewer reads them."""
    path = printable(f.path)
    if f.before is None and f.after is None:
        return []  # absent on both sides, like an unset restartToken of a new configuration
    if f.path == "scope" and (entries := _scope_lines(f)) is not None:
        kind = str(f.after.get("kind"))
        return [(sign, f"{path} ({kind}): {printable(e)}") for sign, e in entries]
    if f.before is None:
        return [("+", f"{path}: {format_value(f.path, f.after)}")]
    if f.after is None:
        return [("-", f"{path}: {format_value(f.path, f.before)}")]
    return [("~", f"{path}: {format_value(f.path, f.before)} → {format_value(f.path, f.after)}")]


def _by(c: CommitInfo) -> str:
    return f"{c.short} {c.author}, {c.date[:10]}: {c.summary}"


def _counts(diff: SemanticDiff) -> dict[str, int]:
    out = {k.value: 0 for k in DiffKind}
    for c in diff.configurations:
        out[c.kind.value] += 1
    out["restart"] = sum(1 for c in diff.configurations if c.restart_required)
    return out


def _summary(d: RefDiff) -> str:
    if not d.diff.has_changes:
        return "No change to the desired state."
    n = _counts(d.diff)
    return (
        f"{n['added']} added, {n['changed']} changed, {n['removed']} removed; "
        f"{n['restart']} will need a restart."
    )


def _headline(c: ConfigurationDiff) -> str:
    text = f"{_SIGNS[c.kind]} {c.name}: {c.kind.value}"
    return text + (f"; {_RESTART}" if c.restart_required else "")


def _render_text(d: RefDiff) -> str:
    out = [f"Desired state {d.base.short}..{d.head.short} ({', '.join(d.paths)})", ""]
    for c in d.diff.configurations:
        lines = [
            (sign, text, d.introduced_by(c.name, f.path)) for f in c.fields for sign, text in _field_lines(f)
        ]
        whole = {by for _, _, by in lines}
        if c.kind is not DiffKind.CHANGED and len(whole) == 1 and None not in whole:
            # A configuration added or removed in one commit: name the commit once.
            by = whole.pop()
            out.append(printable(_headline(c)) + (f"  ({printable(_by(by))})" if by else ""))
            lines = [(sign, text, None) for sign, text, _ in lines]
        else:
            out.append(printable(_headline(c)))
        width = max((len(text) for _, text, by in lines if by is not None), default=0)
        for sign, text, by in lines:
            note = "" if by is None else f"  ({printable(_by(by))})"
            out.append(f"  {sign} {text.ljust(width) if note else text}{note}")
        out += [f"  ↻ {printable(r)}" for r in c.restart_reasons]
        out.append("")
    out += [f"Warning: {printable(w)}" for w in d.diff.warnings]
    if not d.attributed_all:
        out.append(
            f"Note: only the newest {MAX_ATTRIBUTED_COMMITS} commits were searched for who changed what."
        )
    out.append(_summary(d))
    return "\n".join(out) + "\n"


def _render_markdown(d: RefDiff, limit: int) -> str:
    head = [
        f"## Desired-state diff {_code(d.base.short)}..{_code(d.head.short)}",
        f"**{_text(_summary(d))}**",
    ]
    n = _counts(d.diff)
    table = ["| Change | Count |", "| :-- | --: |"]
    table += [f"| {label} | {n[key]} |" for key, label in _TABLE_ROWS]
    head.append("\n".join(table))
    head.append(
        f"From {_code(d.base.short)} ({_text(d.base.summary)}) to {_code(d.head.short)} "
        f"({_text(d.head.summary)}) · paths {', '.join(_code(p) for p in d.paths)}"
    )
    blocks: list[str] = []
    if d.diff.warnings:
        blocks.append("### Warnings\n\n" + "\n".join(f"- {_text(w)}" for w in d.diff.warnings))
    for c in d.diff.configurations:
        summary = f"<code>{_html(_SIGNS[c.kind])}</code> <code>{_html(c.name)}</code> {_html(c.kind.value)}"
        if c.restart_required:
            summary += f"; {_RESTART}"
        body = [f"<details><summary>{summary}</summary>"]
        lines = [f"{sign} {text}" for f in c.fields for sign, text in _field_lines(f)]
        if lines:
            body.append(_code_block(lines, "diff"))
        if c.restart_reasons:
            body.append("\n".join(f"- ↻ {_text(r)}" for r in c.restart_reasons))
        commits: dict[str, CommitInfo] = {}
        for f in c.fields:
            by = d.introduced_by(c.name, f.path)
            if by is not None:
                commits.setdefault(by.sha, by)
        if commits:
            body.append(
                "Introduced by:\n"
                + "\n".join(
                    f"- {_code(x.short)} {_text(x.author)}, {_text(x.date[:10])}: {_text(x.summary)}"
                    for x in commits.values()
                )
            )
        body.append("</details>")
        blocks.append("\n\n".join(body))
    text = "\n\n".join(head)
    shown = 0
    for block in blocks:
        # The comment must fit the host's size limit: drop whole configurations from the end.
        if len(text) + len(block) + 200 > limit:
            break
        text += "\n\n" + block
        shown += 1
    if shown < len(blocks):
        text += f"\n\n_… {len(blocks) - shown} more not shown; the full diff is in the JSON output._"
    return text + "\n"


_TABLE_ROWS = (("added", "Added"), ("changed", "Changed"), ("removed", "Removed"), ("restart", "Restart"))


def _render_json(d: RefDiff) -> str:
    doc = {
        "formatVersion": FORMAT_VERSION,
        "base": d.base.as_dict(),
        "head": d.head.as_dict(),
        "paths": list(d.paths),
        "summary": _counts(d.diff),
        "configurations": [
            {
                "name": c.name,
                "change": c.kind.value,
                "restartRequired": c.restart_required,
                "restartReasons": list(c.restart_reasons),
                "fields": [
                    {
                        **f.as_dict(),
                        "introducedBy": (by.as_dict() if (by := d.introduced_by(c.name, f.path)) else None),
                    }
                    for f in c.fields
                ],
            }
            for c in d.diff.configurations
        ],
        "warnings": list(d.diff.warnings),
        "attributedAll": d.attributed_all,
    }
    return json_text(doc, indent=2, ensure_ascii=False) + "\n"


def render_diff(d: RefDiff, fmt: str, *, limit: int = DEFAULT_LIMIT) -> str:
    """The diff as ``text``, ``markdown`` (a pull-request comment within ``limit`` characters) or ``json``."""
    if fmt == "text":
        return _render_text(d)
    if fmt == "markdown":
        return _render_markdown(d, limit)
    if fmt == "json":
        return _render_json(d)
    raise ValueError(f"unknown diff format {fmt!r}")
