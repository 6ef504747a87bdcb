"""``reconciler apply``: carry out a saved plan, or plan and apply in one step.

``apply PLANFILE`` applies exactly that plan, on the target the plan records (refused when stale, or when
``--target`` names another target). ``apply [PATH]...`` makes a plan, shows it and asks on a terminal
(with no terminal and no ``--auto-approve`` it refuses); an approved plan is applied exactly, or refused
if the target moved on. ``--auto-approve`` plans and applies as one task under the target's lock, so
what is shown is what is applied.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import click

from reconciler.cli.options import (
    delete_options,
    format_option,
    lock_options,
    paths_argument,
    quiet_option,
    target_option,
    verbose_option,
)
from reconciler.errors import ApplyError, Diagnostic, UserAbort

if TYPE_CHECKING:
    from reconciler.core.plan import Plan
    from reconciler.engine.apply import Progress
    from reconciler.engine.operations import AppliedRun

__all__ = ["apply", "report_run"]


def _note_recovered(holder: dict[str, object]) -> None:
    click.echo(
        f"note: the previous run on this target (pid {holder.get('pid')}) ended without "
        "releasing its lock; it was recovered. `reconciler history` shows that run as interrupted.",
        err=True,
    )


def _run_document(run: AppliedRun) -> dict[str, object]:
    from reconciler.engine.journal import RunResult

    result = run.result
    return {
        "target": run.plan.target,
        "runId": run.run_id or None,
        "applied": run.applied,
        "result": RunResult.OK if result.ok else RunResult.FAILED,
        "counts": result.counts(),
        "outcomes": [
            {
                "name": o.change.name,
                "action": o.change.action.value,
                "status": o.status,
                "error": o.error,
                "seconds": round(o.seconds, 3),
            }
            for o in result.outcomes
        ],
        "held": [
            {"name": h.name, "action": h.action.value, "reasons": list(h.reasons), "override": h.override}
            for h in run.plan.held
        ],
        "dirty": run.plan.provenance.dirty,
    }


def report_run(run: AppliedRun, *, progress_shown: bool = False, fmt: str = "text") -> None:
    """The end of an apply: notes on stderr, the summary (or the JSON run document) on stdout."""
    from reconciler.cli.progress import failure_line
    from reconciler.engine.journal import ChangeOutcome

    result = run.result
    if run.recovered_lock:
        _note_recovered(run.recovered_lock)
    if not progress_shown:
        # Without the progress lines (--quiet, or JSON) the reasons would be in the journal only.
        for o in result.outcomes:
            if o.status == ChangeOutcome.FAILED:
                click.echo(failure_line(o), err=True)
    if run.plan.provenance.dirty:
        click.echo("note: this plan was made from a work tree with uncommitted changes.", err=True)
    ok, failed, skipped = result.counts().values()
    if fmt == "json":
        click.echo(json.dumps(_run_document(run), indent=2, ensure_ascii=False))
    elif not result.outcomes:
        click.echo("Nothing to apply: the target already matches the desired state.")
    else:
        click.echo(f"Apply complete: {ok} succeeded, {failed} failed, {skipped} skipped. (run {run.run_id})")
    if run.plan.held and fmt != "json":
        click.echo(f"{len(run.plan.held)} change(s) were held back; see the plan for why.")
    if failed or skipped:
        raise ApplyError(
            f"{failed} change(s) failed and {skipped} were skipped; run `reconciler plan` to see what is left"
        )


def _show_plan(plan: Plan, fmt: str, quiet: bool) -> None:
    from reconciler.cli.output import render_plan
    from reconciler.render._format import summary_line

    if fmt == "json":
        return
    if quiet:
        click.echo(summary_line(plan))
    else:
        click.echo(render_plan(plan, "text", sys.stdout), nl=False)


@click.command(short_help="Apply a saved plan, or plan and apply after approval.")
@paths_argument
@target_option
@click.option("--auto-approve", is_flag=True, help="Plan and apply without asking, under one lock.")
@format_option(
    "text",
    "json",
    help="json: the run's outcomes as one JSON document on stdout, instead of the plan and summary.",
)
@quiet_option
@verbose_option
@lock_options
@delete_options
def apply(
    paths: tuple[str, ...],
    target: str | None,
    auto_approve: bool,
    fmt: str,
    quiet: bool,
    verbose: bool,
    lock_timeout: float,
    parallelism: int,
    allow_delete: bool,
    allow_mass_delete: bool,
    max_deletes: int,
) -> None:
    """Apply a saved plan (PLANFILE), or plan PATH... and apply after approval."""
    from reconciler.cli.plan_cmd import plan_options_from
    from reconciler.engine.applying import ApplyRequest, run_apply

    request = ApplyRequest(
        paths,
        target,
        plan_options_from(allow_delete, allow_mass_delete, max_deletes),
        auto_approve=auto_approve,
        lock_timeout=lock_timeout,
        parallelism=parallelism,
    )
    show_progress = not quiet and fmt == "text"
    run = run_apply(request, _TerminalUI(fmt, quiet, verbose, show_progress))
    if run is None:
        return
    if run.applied or fmt == "json":
        report_run(run, progress_shown=show_progress, fmt=fmt)
    elif run.recovered_lock:
        _note_recovered(run.recovered_lock)


class _TerminalUI:
    """How ``apply`` shows and asks: the plan on stdout, approval on the terminal, progress on stderr."""

    def __init__(self, fmt: str, quiet: bool, verbose: bool, show_progress: bool) -> None:
        self.fmt, self.quiet, self.verbose, self.show_progress = fmt, quiet, verbose, show_progress

    def warn(self, warnings: Sequence[Diagnostic]) -> None:
        from reconciler.cli.output import echo_warnings

        echo_warnings(warnings, verbose=self.verbose)

    def show(self, plan: Plan) -> None:
        _show_plan(plan, self.fmt, self.quiet)

    def approve(self, plan: Plan) -> None:
        if not sys.stdin.isatty():
            raise UserAbort(
                "no terminal to ask for approval; save a plan with `reconciler plan --out FILE` and "
                "apply that file, or pass --auto-approve"
            )
        if not click.confirm("\nApply these changes?", default=False):
            raise UserAbort("apply cancelled; nothing was changed")

    @contextlib.contextmanager
    def applying(self) -> Iterator[Progress | None]:
        from reconciler.cli.progress import ApplyProgress

        with ApplyProgress() as progress:
            yield progress if self.show_progress else None
