"""``reconciler preview``: the Entra ID attributes a configuration's mappings give sample objects.

Evaluates the configuration's effective mappings (template defaults, overrides, removals) for each
on-premises object of ``--object FILE`` (a directory file, one object, or a list of objects) and shows
the resulting attributes, with each object's scope. ``--against`` evaluates the mappings the target
holds now as well and shows before and after side by side, which is what a reviewer of a mapping change
wants to see.

Exit 1 when an object meets an error in the desired mappings (an ``Error("...")`` call or an expression
that cannot be evaluated), so that CI can catch it.

I/O: reads the desired files and the object file; reads the target only with ``--against`` or an
explicit ``--target`` (otherwise the embedded AD2AAD template gives the defaults); writes stdout.
"""

from __future__ import annotations

import click

from reconciler.cli.errors import EXIT_ERROR, ExitCode
from reconciler.cli.options import format_option, paths_argument, target_option

__all__ = ["preview"]


@click.command(short_help="The Entra ID attributes a configuration's mappings give objects.")
@paths_argument
@click.option("--config", "config_name", required=True, metavar="NAME", help="The configuration to preview.")
@click.option(
    "--object",
    "object_file",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Sample on-premises objects: a directory file, one object, or a list of objects (YAML).",
)
@click.option(
    "--against",
    is_flag=True,
    help="Also evaluate the mappings the target holds now, and show before and after side by side.",
)
@click.option(
    "--update",
    is_flag=True,
    help="Evaluate as an update of an existing cloud object: on-create mappings and defaults do not apply.",
)
@click.option("--changes-only", is_flag=True, help="With --against: show only the attributes that change.")
@target_option
@format_option("text", "json")
def preview(
    paths: tuple[str, ...],
    config_name: str,
    object_file: str,
    against: bool,
    update: bool,
    changes_only: bool,
    target: str | None,
    fmt: str,
) -> None:
    """Show the Entra ID attributes configuration NAME's mappings give the objects of FILE.

    PATH... are the desired files (default: the current folder). With --against, the target's current
    mappings are evaluated too (before) next to the desired ones (after). Exit 1 when a desired mapping
    fails for an object (an Error("...") call, or an expression that cannot be evaluated).
    """
    if changes_only and not against:
        raise click.UsageError("--changes-only goes with --against")
    # Imported here, not at the top: what a command needs is loaded only when it runs (start-up time).
    from reconciler.cli.output import echo_warnings
    from reconciler.engine.preview import run_preview
    from reconciler.render.escape import printable
    from reconciler.render.preview import render_preview

    run = run_preview(paths, config_name, object_file, against=against, target=target, create=not update)
    echo_warnings(run.warnings)
    if run.missing_on is not None:
        click.echo(
            printable(f"note: {config_name} is not on {run.missing_on}; every attribute is new"), err=True
        )
    click.echo(render_preview(run.preview, fmt, changes_only=changes_only))
    if run.preview.failed:
        raise ExitCode(EXIT_ERROR)
