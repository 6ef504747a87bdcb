"""``reconciler import``: write YAML for the configurations a target holds, and optionally adopt them."""

from __future__ import annotations

import click

from reconciler.cli.options import seconds_option, target_option
from reconciler.engine.importer import import_target
from reconciler.providers import open_target

__all__ = ["import_"]


@click.command("import", short_help="Write YAML for what a target holds; --adopt marks it managed.")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@target_option
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="The folder to write one NAME.yaml per configuration into.",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Also mark the configurations this tool does not manage yet as managed, under the names written.",
)
@click.option("--overwrite", is_flag=True, help="Replace files that exist already.")
@seconds_option("--lock-timeout", 0.0, "How long --adopt waits for another run's apply lock on the target.")
def import_(
    names: tuple[str, ...], target: str | None, out: str, adopt: bool, overwrite: bool, lock_timeout: float
) -> None:
    """Write the YAML of every configuration on the target (or of NAME..., by name, id or domain).

    Each file holds only what differs from the template defaults, so a plan right after the import shows
    no changes. Configurations made outside this tool get a name from their domain; without --adopt the
    plan holds them back rather than create second ones.
    """
    provider = open_target(target, read_only=not adopt)
    try:
        result = import_target(
            provider, out, adopt=adopt, overwrite=overwrite, names=names, lock_timeout=lock_timeout
        )
    finally:
        provider.close()
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for c in result.configurations:
        if c.adopted:
            note = " (adopted: now managed)"
        elif not c.was_managed:
            note = " (not managed by reconciler; --adopt takes it over)"
        else:
            note = ""
        click.echo(f"{c.file}: {c.name}{note}")
    count = len(result.configurations)
    click.echo(f"Wrote {count} file{'s' if count != 1 else ''} to {out}.")
