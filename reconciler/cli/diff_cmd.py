"""``reconciler diff``: what a range of commits changes in the desired state, for a reviewer. No target."""

from __future__ import annotations

import os

import click

from reconciler.cli.errors import EXIT_CHANGES, ExitCode
from reconciler.cli.options import format_option
from reconciler.git.history import diff_refs
from reconciler.render.diff import render_diff

__all__ = ["diff"]


@click.command(short_help="What a change between two commits means for the desired state.")
@click.argument("base")
@click.argument("rest", nargs=-1, metavar="[HEAD] [PATH]...")
@format_option("text", "markdown", "json")
@click.option("--exit-code", is_flag=True, help="Exit 2 when the desired state changed, 0 when it did not.")
def diff(base: str, rest: tuple[str, ...], fmt: str, exit_code: bool) -> None:
    """Show the meaning of the change to the desired state from commit BASE to HEAD (default: HEAD).

    Reordering, comments and moving a configuration to another file are no change. Each changed field
    names the commit and author that introduced it, and a configuration that will need a restart of its
    provisioning job says so. HEAD is taken as a commit unless it names an existing file or folder;
    PATH... default to the current folder.
    """
    head = "HEAD"
    paths = list(rest)
    if paths and not os.path.exists(paths[0]):
        head = paths.pop(0)
    result = diff_refs(base, head, paths or ["."])
    click.echo(render_diff(result, fmt), nl=False)
    if exit_code and result.diff.has_changes:
        raise ExitCode(EXIT_CHANGES)
