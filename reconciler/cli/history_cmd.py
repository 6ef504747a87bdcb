"""``reconciler history``: the apply journal, newest first."""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.options import format_option
from reconciler.cli.output import echo_lines
from reconciler.core.observed import HeldDeletes
from reconciler.core.plan import Action
from reconciler.engine.journal import ChangeOutcome, read_runs
from reconciler.render.escape import json_text

__all__ = ["history"]


@click.command(short_help="Past applies, restarts and reconcile passes, with outcomes.")
@click.option(
    "--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs."
)
@click.option(
    "--target",
    "-t",
    default=None,
    metavar="TARGET",
    help="The target whose runs to list (default: RECONCILER_TARGET, else the default target).",
)
@format_option("text", "json")
def history(limit: int, target: str | None, fmt: str) -> None:
    """List past applies, restarts and reconcile passes with their outcomes."""
    runs = read_runs(target)
    runs = list(reversed(runs))[:limit]
    if fmt == "json":
        click.echo(json_text([r.__dict__ for r in runs], indent=2, default=str))
        return
    if not runs:
        click.echo("No runs recorded yet.")
        return
    for r in runs:
        changes = r.changes
        failed = sum(1 for c in changes if c["outcome"] == ChangeOutcome.FAILED)
        interrupted = [c for c in changes if c["outcome"] == ChangeOutcome.INTERRUPTED]
        commit = (r.commit or "")[:10] or "-"
        echo_lines(
            [
                f"{r.started}  {r.run}  {r.kind:<9} {r.result:<11} {len(changes)} change(s)"
                f"{f', {failed} failed' if failed else ''}  user {r.user or '-'}  commit {commit}  {r.target}"
            ]
        )
        if r.kind == "approve-deletes":
            said = r.extra.get("service_message")
            echo_lines(
                [
                    f"    {r.user or 'someone'} approved the held deletes of {r.extra.get('configuration')}"
                    + _held(r.extra)
                    + (f"; the service said: {said}" if said else "")
                ]
            )
        for c in changes:
            if c["action"] == Action.APPROVE_DELETES and c["outcome"] == ChangeOutcome.OK:
                echo_lines(
                    [
                        f"    {r.user or 'someone'} approved the held deletes of {c['name']} in git (commit "
                        f"{commit}){_held(c)}"
                    ]
                )
        for c in interrupted:
            echo_lines([f"    interrupted during {c['action']} {c['name']}"])
        for c in changes:
            if c.get("error"):
                echo_lines([f"    {c['action']} {c['name']} failed: {c['error']}"])


def _held(entry: dict[str, Any]) -> str:
    """``: 3 deletes held since ...`` as the journal recorded the approval (runs recorded before the
    count was: the quarantine only)."""
    since = entry.get("quarantine_since")
    if "held_deletes" not in entry:
        return f", held since {since}" if since else ""
    held = {"since": since, "count": entry.get("held_deletes"), "unknown": entry.get("held_deletes_unknown")}
    return ": " + HeldDeletes.from_dict(held).text()
