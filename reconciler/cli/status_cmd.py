"""``reconciler status`` (health of every job of every configuration), ``reconciler restart`` (the escape
hatch) and ``reconciler approve-deletes`` (release deletes the accidental-delete threshold holds)."""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.errors import EXIT_CHANGES, ExitCode
from reconciler.cli.options import format_option, lock_timeout_option, target_option
from reconciler.core.observed import HeldDeletes
from reconciler.engine.operations import approve_deletes as approve
from reconciler.engine.operations import restart_configuration
from reconciler.errors import GuardError, NotFoundError, ReconcilerError
from reconciler.graph.identity import PROVISIONING_TEMPLATE
from reconciler.providers import open_target
from reconciler.providers.base import RESET_FORCE_DELETES, RESET_FULL
from reconciler.render.escape import json_text, printable
from reconciler.state.base import describe_holder

__all__ = ["approve_deletes", "restart", "status"]


@click.command(short_help="Each configuration's job status, quarantine and last run.")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@target_option
@format_option("text", "json")
@click.option(
    "--from-state",
    is_flag=True,
    help="Do not read the target: show the health the last status, reconcile or serve pass recorded in "
    "the target's state store, who recorded it and when.",
)
def status(names: tuple[str, ...], target: str | None, fmt: str, from_state: bool) -> None:
    """Show every job of each configuration: status, quarantine and last run. Exit 2 when any is unhealthy.

    What it reads is recorded in the target's state store, beside the reconcile loop's last pass, so
    that `status --from-state` on any machine sharing that store shows the same.
    """
    if from_state:
        _from_state(names, target, fmt)
        return
    from reconciler.engine.health import loop_document, observed_row, record_snapshot
    from reconciler.engine.held import with_held_deletes
    from reconciler.providers.local import EmptyLocalTenant

    provider = open_target(target, read_only=True)
    try:
        # The held deletes of a TooManyDeletes quarantine are looked up (of the configurations asked for).
        observed = with_held_deletes(provider, provider.read_all(), names or None)
    finally:
        provider.close()
    everything = [observed_row(o) for o in observed]
    loop: dict[str, Any] | None = None
    # A local tenant that does not exist yet is given no state store either.
    if not isinstance(provider, EmptyLocalTenant):
        try:
            record_snapshot(provider.target, everything, complete=True, command="reconciler status")
            loop = loop_document(provider.target)
        except ReconcilerError as exc:
            # What the target says is shown all the same.
            click.echo(printable(f"warning: could not use the state store: {exc}", None), err=True)
    rows = _chosen(everything, names)
    if names and not rows:
        raise NotFoundError(f"no configuration named {', '.join(names)} on {provider.target}")
    if fmt == "json":
        click.echo(json_text(rows, indent=2))
    elif not rows:
        click.echo(f"No configurations on {provider.target}.")
    else:
        _echo_rows(rows)
    if fmt != "json":
        for line in _loop_lines(loop):
            click.echo(line)
    if any(not r["healthy"] for r in rows):
        raise ExitCode(EXIT_CHANGES)


def _from_state(names: tuple[str, ...], target: str | None, fmt: str) -> None:
    """``status --from-state``: the snapshot the store holds, rendered as ``status`` renders the target."""
    from reconciler.engine.health import loop_document, read_snapshot
    from reconciler.state import canonical_target

    key = canonical_target(target)
    snapshot = read_snapshot(key)
    if snapshot is None:
        raise NotFoundError(
            f"the state store of {key} holds no health snapshot this release can read; run "
            "`reconciler status` (or a reconcile loop) against the target first"
        )
    rows = _chosen(snapshot["configurations"], names)
    if names and not rows:
        raise NotFoundError(f"no configuration named {', '.join(names)} in the health snapshot of {key}")
    loop = loop_document(key)
    if fmt == "json":
        click.echo(json_text({**snapshot, "configurations": rows, "reconcile": loop}, indent=2))
    else:
        by = snapshot.get("by")
        who = describe_holder(by if isinstance(by, dict) else None)
        partial = "" if snapshot.get("complete") else " (a read of some configurations only)"
        click.echo(printable(f"As seen at {snapshot.get('takenAt')} by {who}{partial}:", None))
        if not rows:
            click.echo(f"No configurations on {key}.")
        _echo_rows(rows)
        for line in _loop_lines(loop):
            click.echo(line)
    if any(not r.get("healthy") for r in rows):
        raise ExitCode(EXIT_CHANGES)


def _chosen(rows: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [r for r in rows if not names or r.get("name") in names or r.get("id") in names]


def _display(row: dict[str, Any]) -> str:
    return str(row.get("name") or f"{row.get('domain')} ({row.get('id')})")


def _echo_rows(rows: list[dict[str, Any]]) -> None:
    """Each configuration's line (its provisioning job), then one line per other job."""
    for row in sorted(rows, key=_display):
        jobs: list[dict[str, Any]] = row.get("jobs") or []
        main = next((j for j in jobs if j.get("templateId") == PROVISIONING_TEMPLATE), None)
        health = "healthy" if row.get("healthy") else "UNHEALTHY"
        counts = main.get("lastRunCounts") if main else None
        line = f"{_display(row):<30} {health:<10} job {_describe(row['status'], counts)}"
        if not row.get("managed"):
            line += " (unmanaged)"
        click.echo(printable(line, None))
        held = row.get("heldDeletes")
        if isinstance(held, dict):
            click.echo(printable(f"  held deletes: {HeldDeletes.from_dict(held).text()}", None))
        # Every other job of the configuration (password hash sync, Exchange writeback, device sync).
        for job in jobs:
            if job is not main:
                text = _describe(job["status"], job.get("lastRunCounts"))
                click.echo(printable(f"  {job.get('templateId')!s:<39} {text}", None))


def _describe(s: dict[str, Any], counts: Any) -> str:
    """One job's status (``JobStatus.as_dict``) and last-run counts as text."""
    text = f"{s.get('code')!s:<11}"
    if s.get("quarantineReason"):
        since = s.get("quarantineSince")
        text += f" quarantine: {s['quarantineReason']}" + (f" since {since}" if since else "")
    if s.get("lastRunState"):
        end = s.get("lastRunEnd")
        text += f" last run: {s['lastRunState']}" + (f" at {end}" if end else "")
    known = counts if isinstance(counts, dict) else {}
    shown = [
        f"{known[key]} {what}"
        for key, what in (("countExported", "exported"), ("countEscrowed", "escrowed"))
        if key in known
    ]
    if shown:
        text += f" ({', '.join(shown)})"
    if s.get("lastError"):
        text += f" error: {s['lastError']}"
    return text


def _loop_lines(doc: dict[str, Any] | None) -> list[str]:
    """The reconcile loop's last pass, as the state store holds it."""
    if doc is None:
        return []
    last: dict[str, Any] = doc["lastResult"] if isinstance(doc.get("lastResult"), dict) else {}
    runner = doc.get("runner")
    where = describe_holder(runner) if isinstance(runner, dict) else f"(pid {doc.get('pid')})"
    lines = [
        f"Reconcile loop {where}, {doc.get('branch')} of {doc.get('source')}: last pass "
        f"{last.get('result', 'none yet')}"
        + (f" at {last['at']}" if last.get("at") else "")
        + (f": {last['message']}" if last.get("message") else "")
    ]
    drift = doc.get("drift")
    if isinstance(drift, dict) and drift:
        lines.append(f"  drift in {len(drift)} configuration(s): {', '.join(sorted(map(str, drift)))}")
    return [printable(line, None) for line in lines]


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
    resetScope ForceDeletes. History records who approved, when, how many deletes the service's
    provisioning logs list as held (or why that is unknown), and the quarantine."""
    if not allow_delete:
        raise GuardError(
            f"approving the held deletes of {name} deletes those objects; say so with --allow-delete "
            "(look at them first in the service's provisioning logs)"
        )
    provider = open_target(target)
    try:
        run_id, _status, held = approve(provider, name, lock_timeout=lock_timeout)
    finally:
        provider.close()
    click.echo(
        printable(
            f"Approved the held deletes of {name} ({held.text()}): restarted with ForceDeletes "
            f"(run {run_id}).",
            None,
        )
    )
