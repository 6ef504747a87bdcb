"""``reconciler apply``: carry out a saved plan, or plan and apply in one step.

``apply PLANFILE`` applies exactly that plan (refused when stale or made for another target).
``apply [PATH]...`` makes a plan, shows it and asks on a terminal (``--auto-approve`` skips the question;
with no terminal and no ``--auto-approve`` it refuses). With ``--auto-approve``, a plan another run made
stale while this one waited for the lock is made again (a few times at most); an approved plan is
never replaced by another one.
"""

from __future__ import annotations

import contextlib
import os
import sys

import click

from reconciler.cli.options import delete_options, lock_options, paths_argument, target_option
from reconciler.cli.output import echo_warnings, render_plan
from reconciler.cli.plan_cmd import plan_options_from
from reconciler.engine.apply import FAILED, OK, Outcome
from reconciler.engine.lock import target_lock
from reconciler.engine.operations import (
    AppliedRun,
    apply_saved_plan,
    load_desired,
    make_plan,
    provenance_for,
    read_plan_file,
)
from reconciler.errors import ApplyError, LockError, StalePlanError, UserAbort
from reconciler.providers import open_target

__all__ = ["apply", "report_run"]

# How often an auto-approved apply plans again after other runs changed the target while it waited.
REPLANS = 3


def _is_plan_file(paths: tuple[str, ...]) -> bool:
    # Whatever it holds: a plan file cut short or emptied must be refused as a plan, not read as an
    # empty desired state (which plans nothing and exits 0 as if the plan had been applied).
    return len(paths) == 1 and os.path.isfile(paths[0]) and not paths[0].endswith((".yaml", ".yml"))


def _progress(outcome: Outcome, done: int, total: int) -> None:
    mark = {"ok": "✓", "failed": "✗", "skipped": "·"}[outcome.status]
    line = f"[{done}/{total}] {mark} {outcome.change.action.value} {outcome.change.name}"
    if outcome.status == OK:
        line += f" ({outcome.seconds:.1f}s)"
    elif outcome.error:
        line += f": {outcome.error}"
    click.echo(line, err=outcome.status != OK)


def _note_recovered(holder: dict[str, object]) -> None:
    click.echo(
        f"note: the previous run on this target (pid {holder.get('pid')}) ended without "
        "releasing its lock; it was recovered. `reconciler history` shows that run as interrupted.",
        err=True,
    )


def _recover_idle_lock(target: str) -> None:
    """With nothing to apply, still clear (and report) the lock of a run that died holding it."""
    with contextlib.suppress(LockError), target_lock(target, timeout=0, command="reconciler apply") as info:
        if info.recovered_from:
            _note_recovered(info.recovered_from)


def report_run(run: AppliedRun, *, progress_shown: bool = False) -> None:
    result = run.result
    if run.recovered_lock:
        _note_recovered(run.recovered_lock)
    if not progress_shown:
        # Without the progress lines (no terminal, as in CI) the reasons would be in the journal only.
        for o in result.outcomes:
            if o.status == FAILED:
                click.echo(f"✗ {o.change.action.value} {o.change.name}: {o.error}", err=True)
    if run.plan.provenance.dirty:
        click.echo("note: this plan was made from a work tree with uncommitted changes.", err=True)
    ok, failed, skipped = result.count(OK), result.count(FAILED), result.count("skipped")
    if not result.outcomes:
        click.echo("Nothing to apply: the target already matches the desired state.")
    else:
        click.echo(f"Apply complete: {ok} succeeded, {failed} failed, {skipped} skipped. (run {run.run_id})")
    if run.plan.held:
        click.echo(f"{len(run.plan.held)} change(s) were held back; see the plan for why.")
    if failed or skipped:
        raise ApplyError(
            f"{failed} change(s) failed and {skipped} were skipped; run `reconciler plan` to see what is left"
        )


@click.command(short_help="Apply a saved plan, or plan and apply after approval.")
@paths_argument
@target_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking (plan-and-apply mode).")
@lock_options
@delete_options
def apply(
    paths: tuple[str, ...],
    target: str | None,
    auto_approve: bool,
    lock_timeout: float,
    parallelism: int,
    allow_delete: bool,
    allow_mass_delete: bool,
    max_deletes: int,
) -> None:
    """Apply a saved plan (PLANFILE), or plan PATH... and apply after approval."""
    provider = open_target(target)
    try:
        progress = _progress if sys.stderr.isatty() or os.environ.get("RECONCILER_PROGRESS") else None
        if _is_plan_file(paths):
            saved = read_plan_file(paths[0])
            if saved.provenance.dirty:
                click.echo("note: this plan was made from a work tree with uncommitted changes.", err=True)
            run = apply_saved_plan(
                saved, provider, lock_timeout=lock_timeout, parallelism=parallelism, progress=progress
            )
            report_run(run, progress_shown=progress is not None)
            return
        roots = list(paths) or ["."]
        loaded = load_desired(roots)
        echo_warnings(loaded.warnings)
        options = plan_options_from(allow_delete, allow_mass_delete, max_deletes)
        provenance = provenance_for(roots)
        plan = make_plan(loaded.state, provider, options, provenance)
        click.echo(render_plan(plan, "text", sys.stdout), nl=False)
        if not plan.has_changes:
            _recover_idle_lock(provider.target)
            return
        if not auto_approve:
            if not sys.stdin.isatty():
                raise UserAbort(
                    "no terminal to ask for approval; save a plan with `reconciler plan --out FILE` and "
                    "apply that file, or pass --auto-approve"
                )
            if not click.confirm("\nApply these changes?", default=False):
                raise UserAbort("apply cancelled; nothing was changed")
        for attempt in range(REPLANS + 1):
            try:
                run = apply_saved_plan(
                    plan,
                    provider,
                    lock_timeout=lock_timeout,
                    parallelism=parallelism,
                    progress=progress,
                    check_desired=False,
                )
            except StalePlanError as exc:
                if not auto_approve:
                    # Nothing was saved here: say so in terms of the plan the user just approved.
                    raise StalePlanError(
                        "the target changed after the plan shown above was made, so nothing was applied; "
                        "run apply again to see a fresh plan",
                        exc.reasons,
                    ) from exc
                if attempt == REPLANS:
                    raise
            else:
                report_run(run, progress_shown=progress is not None)
                return
            # Another run applied while this one waited for the lock: what is left to do has changed.
            click.echo(
                "note: the target changed while this apply waited for the lock; planning again.", err=True
            )
            plan = make_plan(loaded.state, provider, options, provenance)
            click.echo(render_plan(plan, "text", sys.stdout), nl=False)
            if not plan.has_changes:
                _recover_idle_lock(provider.target)
                return
    finally:
        provider.close()
