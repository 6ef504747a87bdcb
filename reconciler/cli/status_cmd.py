"""``reconciler status`` (health of every job of every configuration), ``reconciler restart`` (the escape
hatch) and ``reconciler approve-deletes`` (release deletes the accidental-delete threshold holds)."""

from __future__ import annotations

import click

from reconciler.cli.errors import EXIT_CHANGES, ExitCode
from reconciler.cli.options import format_option, lock_timeout_option, target_option
from reconciler.core.model import JobStatus, Observed
from reconciler.engine.operations import approve_deletes as approve
from reconciler.engine.operations import restart_configuration
from reconciler.errors import GuardError, NotFoundError
from reconciler.graph.shapes import PROVISIONING_TEMPLATE
from reconciler.providers import open_target
from reconciler.providers.base import RESET_FORCE_DELETES, RESET_FULL
from reconciler.render.escape import json_text, printable

__all__ = ["approve_deletes", "restart", "status"]


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
    unhealthy = [o for o in rows if not _healthy(o)]
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
                        "healthy": _healthy(o),
                        "status": o.status.as_dict(),
                        "jobs": [
                            {
                                "templateId": template,
                                "healthy": job.healthy,
                                "status": job.as_dict(),
                                "lastRunCounts": dict(job.last_run_counts),
                            }
                            for template, job in o.jobs
                        ],
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
            health = "healthy" if _healthy(o) else "UNHEALTHY"
            line = f"{o.display:<30} {health:<10} job {_describe(o.status)}"
            if not o.managed:
                line += " (unmanaged)"
            click.echo(printable(line, None))
            # Every other job of the configuration (password hash sync, Exchange writeback, device sync).
            for template, job in o.jobs:
                if template != PROVISIONING_TEMPLATE:
                    click.echo(printable(f"  {template:<39} {_describe(job)}", None))
    if unhealthy:
        raise ExitCode(EXIT_CHANGES)


def _healthy(o: Observed) -> bool:
    return o.status.healthy and all(job.healthy for _, job in o.jobs)


def _describe(s: JobStatus) -> str:
    text = f"{s.code:<11}"
    if s.quarantine_reason:
        text += f" quarantine: {s.quarantine_reason}" + (
            f" since {s.quarantine_since}" if s.quarantine_since else ""
        )
    if s.last_run_state:
        text += f" last run: {s.last_run_state}" + (f" at {s.last_run_end}" if s.last_run_end else "")
    known = dict(s.last_run_counts)
    counts = [
        f"{known[key]} {what}"
        for key, what in (("countExported", "exported"), ("countEscrowed", "escrowed"))
        if key in known
    ]
    if counts:
        text += f" ({', '.join(counts)})"
    if s.last_error:
        text += f" error: {s.last_error}"
    return text


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


@click.command("approve-deletes", short_help="Release the deletes a configuration's delete threshold holds.")
@click.argument("name")
@target_option
@click.option(
    "--allow-delete",
    is_flag=True,
    help="Required: approving releases every held delete; like a delete, it is never implied.",
)
@lock_timeout_option
def approve_deletes(name: str, target: str | None, allow_delete: bool, lock_timeout: float) -> None:
    """Approve the deletes held back for configuration NAME by its accidental-delete threshold.

    Only while its provisioning job is in quarantine for TooManyDeletes: restarts it with
    resetScope ForceDeletes. History records who approved, when, and the quarantine."""
    if not allow_delete:
        raise GuardError(
            f"approving the held deletes of {name} deletes those objects; say so with --allow-delete "
            "(look at them first in the service's provisioning logs)"
        )
    provider = open_target(target)
    try:
        run_id, held = approve(provider, name, lock_timeout=lock_timeout)
    finally:
        provider.close()
    since = f" (held since {held.quarantine_since})" if held.quarantine_since else ""
    click.echo(
        printable(
            f"Approved the held deletes of {name}{since}: restarted with ForceDeletes (run {run_id}).", None
        )
    )
