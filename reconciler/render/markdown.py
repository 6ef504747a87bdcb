"""The plan as a GitHub-flavoured Markdown pull-request comment. Pure, no I/O.

The comment must stay under the host's size limit (GitHub refuses comments over 65,536 characters), so
``render`` fits the plan into ``limit``: the title and summary table are always there, and when the rest
does not fit, the sections at the end are left out and a closing note says how many configurations are
not shown. Every piece of plan text is escaped for the context it lands in (Markdown text, code span,
code block, HTML), so a name, reason or mapping expression cannot change the comment's structure.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.core.plan import TITLES, Action, Change, Plan
from reconciler.render._format import (
    SYMBOLS,
    by_configuration,
    describe_status,
    origin_parts,
    partial_line,
    rows,
    summary_line,
)
from reconciler.render.escape import mentions, printable

__all__ = ["DEFAULT_LIMIT", "render"]

DEFAULT_LIMIT = 65536

_TABLE_ROWS: tuple[tuple[str, str], ...] = (
    *((a.value, a.value.capitalize()) for a in Action if a is not Action.APPROVE_DELETES),
    ("held", "Held back"),
)

# Characters that start emphasis, links, code, tables or strikethrough anywhere in a line.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
# Text that would start a list, quote or heading when it opens a line or a list item.
_BLOCK_START = re.compile(r"^(\s*)([-+>]|\d+[.)])")
_BACKTICKS = re.compile(r"`+")


def _plain(value: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", html.escape(value, quote=False))


def _text(value: str) -> str:
    """Plain Markdown text: HTML entities for ``<>&``, backslashes before Markdown punctuation, and
    mentions (``@org/team``) as code spans, which never notify anyone."""
    pieces = mentions(printable(value))
    escaped = "".join(_code(part) if is_mention else _plain(part) for is_mention, part in pieces)
    return _BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped, count=1)


def _longest_backtick_run(value: str) -> int:
    return max((len(m) for m in _BACKTICKS.findall(value)), default=0)


def _code(value: str) -> str:
    """A code span whose delimiter is longer than any run of backticks inside it (CommonMark 6.1)."""
    value = printable(value)
    fence = "`" * (_longest_backtick_run(value) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _code_block(lines: Iterable[str], info: str) -> str:
    body = "\n".join(lines)
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _html(value: str) -> str:
    return html.escape(printable(value))


@dataclass(frozen=True, slots=True)
class _Block:
    """A piece of the comment after the head; ``section`` is the heading printed before the first one."""

    section: str
    text: str
    configuration: bool = False


def _change_body(c: Change) -> list[str]:
    title = f"**{SYMBOLS[c.action]} {TITLES[c.action]}**"
    if c.reset_scope:
        title += f" (reset scope: {_code(c.reset_scope)})"
    parts = [title]
    diff: list[str] = []
    for r in rows(c):
        if r.before is not None:
            diff.append(f"- {r.path}: {r.before}")
        if r.after is not None:
            diff.append(f"+ {r.path}: {r.after}")
    if diff:
        parts.append(_code_block(diff, "diff"))
    if c.reasons:
        parts.append("\n".join(f"- {_text(reason)}" for reason in c.reasons))
    return parts


def _configuration_block(changes: list[Change]) -> str:
    symbols = " ".join(SYMBOLS[c.action] for c in changes)
    titles = ", ".join(TITLES[c.action] for c in changes)
    summary = f"<code>{_html(symbols)}</code> <code>{_html(changes[0].address)}</code> {_html(titles)}"
    body = [f"<details><summary>{summary}</summary>"]
    for c in changes:
        body += _change_body(c)
    body.append("</details>")
    return "\n\n".join(body)


def _head(plan: Plan) -> str:
    title = "## Reconciler plan" + (f" for {_code(plan.target)}" if plan.target else "")
    counts = plan.summary()
    table = ["| Action | Count |", "| :-- | --: |"]
    table += [f"| {label} | {counts[key]} |" for key, label in _TABLE_ROWS]
    if counts.get(Action.APPROVE_DELETES.value):
        table.insert(-1, f"| Approve held deletes | {counts[Action.APPROVE_DELETES.value]} |")
    p = plan.provenance
    origin = origin_parts(plan, _code, "Target")
    if p.created_at:
        origin.append(f"made {_text(p.created_at)}" + (f" by {_text(p.user)}" if p.user else ""))
    parts = [title, f"**{_text(summary_line(plan))}**"]
    partial = partial_line(plan)
    if partial:
        parts.append(f"> {_text(partial)}")
    parts.append("\n".join(table))
    if origin:
        parts.append(" · ".join(origin))
    return "\n\n".join(parts)


def _blocks(plan: Plan) -> list[_Block]:
    blocks: list[_Block] = []
    for h in plan.held:
        text = f"- {_code(h.address)} ({h.action.value}): " + "; ".join(_text(r) for r in h.reasons)
        if h.override:
            text += f"; include it with {_code(h.override)}"
        blocks.append(_Block("### Held back", text))
    blocks += [_Block("### Warnings", f"- {_text(w)}") for w in plan.warnings]
    blocks += [_Block("### Changes", _configuration_block(cs), True) for cs in by_configuration(plan)]
    blocks += [
        _Block("### Provisioning jobs that are not healthy", f"- {_text(describe_status(n, s))}")
        for n, s in plan.statuses
    ]
    unmanaged = "### Not managed by reconciler (never changed)"
    blocks += [_Block(unmanaged, f"- {_text(u)}") for u in plan.unmanaged]
    scoping = "### Unmanaged scoping filters (kept as they are; they narrow the scope too)"
    blocks += [_Block(scoping, f"- {_text(u)}") for u in plan.unmanaged_scoping]
    return blocks


def _separator(previous: _Block | None, block: _Block) -> str:
    """What goes before ``block``: its section heading when it opens one, else a line or paragraph break."""
    if previous is None or previous.section != block.section:
        return f"\n\n{block.section}\n\n"
    # List items stay one list; configurations are separate paragraphs of <details>.
    return "\n\n" if block.configuration else "\n"


def _omitted_note(configurations: int, others: int) -> str:
    what = []
    if configurations:
        what.append(f"{configurations} configuration{'s' if configurations != 1 else ''}")
    if others:
        what.append(f"{others} other entr{'ies' if others != 1 else 'y'}")
    return f"_… {' and '.join(what)} not shown; the full plan is in the JSON artifact._"


def render(plan: Plan, *, limit: int = DEFAULT_LIMIT) -> str:
    head = _head(plan)
    blocks = _blocks(plan)
    pieces = [head]
    previous = None
    for b in blocks:
        pieces += [_separator(previous, b), b.text]
        previous = b
    full = "".join(pieces) + "\n"
    if len(full) <= limit:
        return full

    # Room for the note at its longest: its counts' digits only shrink as more is shown, and
    # counts of 0 or 1 change the wording.
    total_configs = sum(b.configuration for b in blocks)
    total_others = len(blocks) - total_configs
    longest_note = max(
        len(_omitted_note(c, o)) for c in {0, 1, total_configs} for o in {0, 1, total_others} if c or o
    )
    room = limit - len("\n\n") - longest_note - len("\n")
    pieces = [head]
    size = len(head)
    previous = None
    shown = 0
    for b in blocks:
        sep = _separator(previous, b)
        if size + len(sep) + len(b.text) > room:
            break
        pieces += [sep, b.text]
        size += len(sep) + len(b.text)
        previous = b
        shown += 1
    configs_left = sum(b.configuration for b in blocks[shown:])
    note = _omitted_note(configs_left, len(blocks) - shown - configs_left)
    text = "".join(pieces) + "\n\n" + note + "\n"
    # Only a limit too small for the head itself gets here: cut the head rather than break the limit.
    return text if len(text) <= limit else text[:limit]
