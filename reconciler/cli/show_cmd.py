"""``reconciler show``: render a saved plan file, reaching no target (like ``terraform show``).

Reads the plan file (refused when edited by hand or of an unknown format version, as ``apply`` would)
and writes its rendering to stdout.
"""

from __future__ import annotations

import sys

import click

from reconciler.cli.options import format_option

__all__ = ["show"]


@click.command(short_help="Render a saved plan file; no target is read.")
@click.argument("planfile", type=click.Path(dir_okay=False), metavar="PLANFILE")
@format_option("text", "markdown", "json")
def show(planfile: str, fmt: str) -> None:
    """Render the saved plan PLANFILE (from `reconciler plan --out`) as text, Markdown or JSON.

    Nothing is read from any target: this shows what the plan holds, as it was made.
    """
    from reconciler.cli.output import render_plan
    from reconciler.engine.operations import read_plan_file

    plan = read_plan_file(planfile)
    click.echo(render_plan(plan, fmt, sys.stdout), nl=False)
