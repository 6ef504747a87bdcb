"""Terminal output helpers shared by commands: plan rendering with colour detection, warnings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from reconciler.core.plan import Plan
    from reconciler.errors import Diagnostic

__all__ = ["echo_warnings", "render_plan"]


def render_plan(plan: Plan, fmt: str, stream: TextIO) -> str:
    # The renderers are loaded by the commands that render a plan, not by every command.
    from reconciler.render import render
    from reconciler.render.text import use_color

    if fmt == "text":
        return render(plan, "text", color=use_color(stream))
    return render(plan, fmt)


def echo_warnings(warnings: Iterable[Diagnostic]) -> None:
    for w in warnings:
        click.echo(str(w), err=True)
