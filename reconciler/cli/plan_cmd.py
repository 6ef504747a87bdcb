"""``reconciler plan``: compare the desired state with the target and show (or save) the plan."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from reconciler.cli.errors import EXIT_CHANGES, ExitCode
from reconciler.cli.options import (
    delete_options,
    format_option,
    paths_argument,
    quiet_option,
    target_option,
    verbose_option,
)
from reconciler.core.collector import collector_paused
from reconciler.errors import LoadError

if TYPE_CHECKING:
    from reconciler.core.plan import Plan, PlanOptions

__all__ = ["finish_plan_output", "plan", "plan_options_from"]


def plan_options_from(allow_delete: bool, allow_mass_delete: bool, max_deletes: int) -> PlanOptions:
    from reconciler.core.plan import PlanOptions

    return PlanOptions(
        allow_delete=allow_delete, allow_mass_delete=allow_mass_delete, max_deletes=max_deletes
    )


def finish_plan_output(plan: Plan, fmt: str, out: str | None, detailed_exitcode: bool, quiet: bool) -> None:
    from reconciler.cli.output import render_plan
    from reconciler.core.holds import check_delete_request
    from reconciler.engine.operations import write_plan_file
    from reconciler.render._format import summary_line

    if quiet and fmt == "text":
        click.echo(summary_line(plan))
    else:
        click.echo(render_plan(plan, fmt, sys.stdout), nl=False)
    check_delete_request(plan)
    if out:
        write_plan_file(plan, out)
        if fmt == "text":
            click.echo(f"\nSaved the plan to {out}. Apply exactly this plan with: reconciler apply {out}")
    # Held-back changes are changes: the target still differs from the desired state.
    if detailed_exitcode and (plan.has_changes or plan.held):
        raise ExitCode(EXIT_CHANGES)


@click.command(short_help="Show (or save) what apply would change on the target.")
@paths_argument
@target_option
@format_option("text", "markdown", "json")
@click.option(
    "--out", "-o", type=click.Path(dir_okay=False), help="Save the plan to FILE for `reconciler apply FILE`."
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are changes or held-back changes, 1 on error.",
)
@click.option(
    "--ref", metavar="REF", help="Read the desired state from commit REF; the work tree is left alone."
)
@click.option(
    "--changed-since",
    metavar="REF",
    help="Plan only the configurations whose files, or shared Scope/AttributeMappings files, "
    "changed since REF.",
)
@click.option(
    "--remote",
    is_flag=True,
    help="Also have the target's service parse every expression (Graph parseExpression).",
)
@quiet_option
@verbose_option
@delete_options
# The collector resumes only once the loaded state and the plan are freed, on return: resumed while they
# lived, it would walk every one of them once.
@collector_paused()
def plan(
    paths: tuple[str, ...],
    target: str | None,
    fmt: str,
    out: str | None,
    detailed_exitcode: bool,
    ref: str | None,
    changed_since: str | None,
    remote: bool,
    quiet: bool,
    verbose: bool,
    allow_delete: bool,
    allow_mass_delete: bool,
    max_deletes: int,
) -> None:
    """Show what apply would change on the target to match PATH... (default: the current folder)."""
    if ref and changed_since:
        raise click.UsageError("--ref and --changed-since cannot be combined")
    from reconciler.cli.output import echo_warnings
    from reconciler.engine.operations import run_plan
    from reconciler.providers import open_target

    provider = open_target(target, read_only=True)
    try:
        result, loaded = run_plan(
            list(paths) or ["."],
            provider,
            plan_options_from(allow_delete, allow_mass_delete, max_deletes),
            ref=ref,
            changed_since=changed_since,
        )
        if remote:
            from reconciler.engine.remote_check import remote_expression_check

            rejected = remote_expression_check(loaded.state, provider)
            if rejected:
                raise LoadError([*rejected, *loaded.warnings])
    finally:
        provider.close()
    echo_warnings(loaded.warnings, verbose=verbose)
    finish_plan_output(result, fmt, out, detailed_exitcode, quiet)
