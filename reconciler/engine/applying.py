"""The task ``reconciler apply`` runs, in its three forms, decided here and nowhere else:

- a saved plan file (``apply PLANFILE``): applied exactly, on the target the plan records, refused when
  stale or when ``--target`` names another target;
- ``apply --auto-approve PATH...``: planned and applied as one task under the target's lock, so what is
  shown is what is applied;
- ``apply PATH...``: planned, shown, approved by the user, then applied exactly (refused if the target
  moved on meanwhile).

I/O: reads the plan file or the desired-state files, opens the target (and its state store early, while
the files load), applies under the target's lock with the journal. How a plan is shown and approved and
how progress is displayed belong to the command (``ApplyUI``); this module prints nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from reconciler.core.holds import check_delete_request
from reconciler.errors import Diagnostic, StalePlanError

if TYPE_CHECKING:
    from reconciler.core.plan import Plan, PlanOptions
    from reconciler.engine.apply import Progress
    from reconciler.engine.operations import AppliedRun
    from reconciler.providers.base import Provider

__all__ = ["ApplyRequest", "ApplyUI", "is_plan_file", "run_apply"]


class ApplyUI(Protocol):
    """What the command shows and asks while ``run_apply`` works."""

    def warn(self, warnings: Sequence[Diagnostic]) -> None:
        """The desired state's warnings, once it is loaded."""

    def show(self, plan: Plan) -> None:
        """The plan about to be approved (or, with --auto-approve, applied)."""

    def approve(self, plan: Plan) -> None:
        """Ask for approval of a plan with changes; raise ``UserAbort`` when it is not given."""

    def applying(self) -> AbstractContextManager[Progress | None]:
        """Held around the apply alone: the progress callback, or None for none."""


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    paths: tuple[str, ...]
    target: str | None
    options: PlanOptions
    auto_approve: bool = False
    lock_timeout: float = 0.0
    parallelism: int = 10


def is_plan_file(paths: Sequence[str]) -> bool:
    # Whatever it holds: a plan file cut short or emptied must be refused as a plan, not read as an
    # empty desired state (which plans nothing and exits 0 as if the plan had been applied).
    return len(paths) == 1 and os.path.isfile(paths[0]) and not paths[0].endswith((".yaml", ".yml"))


def run_apply(request: ApplyRequest, ui: ApplyUI) -> AppliedRun | None:
    """Carry out one ``reconciler apply``; None when the plan shown had nothing to apply (or was made
    without the lock and was not applied)."""
    if is_plan_file(request.paths):
        return _apply_plan_file(request, ui)
    from reconciler.engine.operations import load_desired, make_plan, plan_and_apply, provenance_for
    from reconciler.providers import open_target

    roots = list(request.paths) or ["."]
    if request.auto_approve:
        # The lock is taken after loading: its state store is opened meanwhile.
        from reconciler.state import canonical_target, open_early

        open_early(canonical_target(request.target))
    loaded = load_desired(roots)
    ui.warn(loaded.warnings)
    provenance = provenance_for(roots)
    provider = open_target(request.target)
    try:
        if request.auto_approve:

            def approve(plan: Plan) -> bool:
                ui.show(plan)
                check_delete_request(plan)
                return plan.has_changes

            with ui.applying() as progress:
                return plan_and_apply(
                    loaded.state,
                    provider,
                    request.options,
                    provenance,
                    lock_timeout=request.lock_timeout,
                    parallelism=request.parallelism,
                    progress=progress,
                    approve=approve,
                )
        plan = make_plan(loaded.state, provider, request.options, provenance)
        ui.show(plan)
        check_delete_request(plan)
        if not plan.has_changes:
            return None
        ui.approve(plan)
        try:
            return _apply_exactly(plan, provider, request, ui, check_desired=False)
        except StalePlanError as exc:
            # Nothing was saved here: say so in terms of the plan the user just approved.
            raise StalePlanError(
                "the target changed after the plan shown above was made, so nothing was applied; "
                "run apply again to see a fresh plan",
                exc.reasons,
            ) from exc
    finally:
        provider.close()


def _apply_plan_file(request: ApplyRequest, ui: ApplyUI) -> AppliedRun:
    from reconciler.engine.operations import read_plan_file
    from reconciler.state import open_early

    saved = read_plan_file(request.paths[0])
    provider = _open_for_saved_plan(saved, request.target)
    open_early(provider.target)  # while the plan's desired state is loaded again
    try:
        return _apply_exactly(saved, provider, request, ui, check_desired=True)
    finally:
        provider.close()


def _apply_exactly(
    plan: Plan, provider: Provider, request: ApplyRequest, ui: ApplyUI, *, check_desired: bool
) -> AppliedRun:
    from reconciler.engine.operations import apply_saved_plan

    with ui.applying() as progress:
        return apply_saved_plan(
            plan,
            provider,
            lock_timeout=request.lock_timeout,
            parallelism=request.parallelism,
            progress=progress,
            check_desired=check_desired,
        )


def _open_for_saved_plan(plan: Plan, target: str | None) -> Provider:
    """The target a saved plan records; a --target (or RECONCILER_TARGET) naming another is refused."""
    from reconciler.providers import open_target, target_name

    if target:
        named = target_name(target)
        if named != plan.target:
            raise StalePlanError(
                f"this plan was made for target {plan.target}, not {named}; "
                "`reconciler apply PLANFILE` applies it to the target it records: leave out --target"
            )
    return open_target(plan.target)
