"""``reconciler status`` (health of every configuration) and ``reconciler restart`` (the escape hatch)."""

from __future__ import annotations

import click

from reconciler.cli.errors import EXIT_CHANGES, ExitCode
from reconciler.cli.options import format_option, lock_timeout_option, target_option
from reconciler.engine.operations import restart_configuration
from reconciler.errors import NotFoundError
from reconciler.providers import open_target
from reconciler.providers.base import RESET_FORCE_DELETES, RESET_FULL
from reconciler.render.escape import json_text, printable

__all__ = ["restart", "status"]


@click.command(short_help="Each configuration's job status, quarantine and last run.")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@target_option
@format_option("text", "json")
def status(names: tuple[str, ...], target: str | None, fmt: str) -> None:
    """Show each configuration's job status, quarantine and last run. Exit 2 when any is unhealthy."""
    provider = open_target(target, read_only=True)
    try:
        observed = provider.read_all()
    finally:
        provider.close()
    rows = [o for o in observed if not names or o.name in names or o.id in names]
    if names and not rows:
        raise NotFoundError(f"no configuration named {', '.join(names)} on {provider.target}")
    unhealthy = [o for o in rows if not o.status.healthy]
    if fmt == "json":
        click.echo(
            json_text(
                [
                    {
                        "name": o.name,
                        "id": o.id,
                        "managed": o.managed,
                        "domain": o.settings.domain,
                        "enabled": o.settings.enabled,
                        "healthy": o.status.healthy,
                        "status": o.status.as_dict(),
                    }
                    for o in rows
                ],
                indent=2,
            )
        )
    elif not rows:
        click.echo(f"No configurations on {provider.target}.")
    else:
        for o in sorted(rows, key=lambda x: x.display):
            s = o.status
            health = "healthy" if s.healthy else "UNHEALTHY"
            line = f"{o.display:<30} {health:<10} job {s.code:<11}"
            if not o.managed:
                line += " (unmanaged)"
            if s.quarantine_reason:
                line += f" quarantine: {s.quarantine_reason}" + (
                    f" since {s.quarantine_since}" if s.quarantine_since else ""
                )
            if s.last_run_state:
                line += f" last run: {s.last_run_state}" + (f" at {s.last_run_end}" if s.last_run_end else "")
            if s.last_error:
                line += f" error: {s.last_error}"
            click.echo(printable(line, None))
    if unhealthy:
        raise ExitCode(EXIT_CHANGES)


@click.command(short_help="Restart one configuration's provisioning job now.")
@click.argument("name")
@target_option
@click.option(
    "--approve-deletes",
    is_flag=True,
    help="Release the deletes the accidental-delete threshold is holding back (resetScope ForceDeletes).",
)
@lock_timeout_option
def restart(name: str, target: str | None, approve_deletes: bool, lock_timeout: float) -> None:
    """Restart configuration NAME's provisioning job now (a full restart). Journaled."""
    provider = open_target(target)
    try:
        reset = RESET_FORCE_DELETES if approve_deletes else RESET_FULL
        run_id = restart_configuration(provider, name, reset, lock_timeout=lock_timeout)
    finally:
        provider.close()
    click.echo(f"Restarted {name} (resetScope {reset}; run {run_id}).")
