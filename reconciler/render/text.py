"""The plan as terminal text, in the manner of ``terraform plan``. Pure, except ``use_color``.

``render`` only formats the plan it is given. Whether to colour is the caller's decision, and
``use_color`` is the one place that decides it: it reads the ``NO_COLOR`` environment variable and asks
the output stream whether it is a terminal. Nothing here writes anywhere.
"""

from __future__ import annotations

import os
from typing import TextIO

from reconciler.core.plan import TITLES, Action, Plan
from reconciler.render._format import (
    SYMBOLS,
    by_configuration,
    describe_status,
    origin_parts,
    partial_line,
    printable,
    rows,
    summary_line,
)

__all__ = ["render", "use_color"]

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"
_RED = "\x1b[31m"
_CYAN = "\x1b[36m"

_ACTION_COLORS: dict[Action, str] = {
    Action.CREATE: _GREEN,
    Action.START: _GREEN,
    Action.UPDATE: _YELLOW,
    Action.PAUSE: _YELLOW,
    Action.RESTART: _CYAN,
    Action.APPROVE_DELETES: _RED,
    Action.DELETE: _RED,
}
_SIGN_COLORS = {"+": _GREEN, "~": _YELLOW, "-": _RED}


def use_color(stream: TextIO) -> bool:
    """Colour only for a terminal, and never when ``NO_COLOR`` is set (to any value, even empty)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def render(plan: Plan, *, color: bool) -> str:
    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    out: list[str] = []
    origin = origin_parts(plan, printable, "Target:")
    if origin:
        out += [", ".join(origin), ""]
    partial = partial_line(plan)
    if partial:
        out += [paint(partial, _BOLD), ""]

    if plan.changes:
        out += ["The following changes will be made:", ""]
        for changes in by_configuration(plan):
            address = printable(changes[0].address)
            for c in changes:
                symbol = paint(SYMBOLS[c.action], _ACTION_COLORS[c.action])
                out.append(f"  {symbol} {paint(address, _BOLD)} {TITLES[c.action]}")
                for r in rows(c):
                    sign = paint(r.sign, _SIGN_COLORS[r.sign])
                    if r.before is None or r.after is None:
                        value = r.after if r.before is None else r.before
                    else:
                        value = f"{r.before} -> {r.after}"
                    out.append(f"      {sign} {r.path}: {value}")
                out += [f"      reason: {printable(reason)}" for reason in c.reasons]
                if c.reset_scope:
                    out.append(f"      reset scope: {printable(c.reset_scope)}")
            out.append("")

    def section(title: str, lines: list[str]) -> None:
        if lines:
            out.extend([paint(title, _BOLD), "", *lines, ""])

    held: list[str] = []
    for h in plan.held:
        symbol = paint(SYMBOLS[h.action], _ACTION_COLORS[h.action])
        held.append(f"  {symbol} {paint(printable(h.address), _BOLD)}: {h.action.value} held back")
        held += [f"      {printable(reason)}" for reason in h.reasons]
        if h.override:
            held.append(f"      include it with {printable(h.override)}")
    section("Held back (not part of this plan):", held)
    section("Warnings:", [f"  {paint('!', _YELLOW)} {printable(w)}" for w in plan.warnings])
    section(
        "Provisioning jobs that are not healthy:",
        [f"  {paint('!', _RED)} {describe_status(n, s)}" for n, s in plan.statuses],
    )
    section("Not managed by reconciler; never changed:", [f"  {printable(u)}" for u in plan.unmanaged])
    section(
        "Unmanaged scoping filters (kept as they are; they narrow the scope too):",
        [f"  {printable(u)}" for u in plan.unmanaged_scoping],
    )

    out.append(paint(summary_line(plan), _BOLD))
    return "\n".join(out) + "\n"
