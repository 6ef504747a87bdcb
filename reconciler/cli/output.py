"""Terminal output helpers shared by commands: plan rendering with colour detection, warnings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from reconciler.core.plan import Plan
    from reconciler.errors import Diagnostic

__all__ = ["echo_lines", "echo_warnings", "render_plan"]


def render_plan(plan: Plan, fmt: str, stream: TextIO) -> str:
    # The renderers are loaded by the commands that render a plan, not by every command.
    from reconciler.render import render
    from reconciler.render.text import use_color

    if fmt == "text":
        return render(plan, "text", color=use_color(stream))
    return render(plan, fmt)


def echo_lines(lines: Iterable[str], *, err: bool = False) -> None:
    """Print lines the command made, each one escaped: a value inside cannot break or forge a line."""
    from reconciler.render.escape import printable

    click.echo("\n".join(printable(line, None) for line in lines), err=err)


def echo_warnings(warnings: Iterable[Diagnostic], *, verbose: bool = False) -> None:
    """Warnings on stderr: one line per distinct cause, with the first place and a count of the others
    (a repository of many files repeats one cause thousands of times); ``verbose`` prints every one."""
    from reconciler.render._format import printable

    if verbose:
        for w in warnings:
            click.echo(printable(str(w)), err=True)
        return
    first: dict[str, Diagnostic] = {}
    count: dict[str, int] = {}
    for w in warnings:
        first.setdefault(w.message, w)
        count[w.message] = count.get(w.message, 0) + 1
    for message, w in first.items():
        more = count[message] - 1
        tail = f" (and {more} more like it; --verbose lists all)" if more else ""
        click.echo(printable(str(w)) + tail, err=True)
