"""The operations behind ``plan`` and ``apply``: load, read the target, plan, lock, check, apply, journal.

Each function is one use case the CLI (and the reconcile loop) calls; they return values and raise
errors from the project's tree, and print nothing.

I/O: the desired files, the target (through its provider), git (for provenance), the plan file, the lock
and the journal.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.config.files import read_bounded
from reconciler.config.load import LoadResult, load_paths
from reconciler.core.collector import collector_paused
from reconciler.core.digest import desired_digest
from reconciler.core.model import (
    TOO_MANY_DELETES,
    DesiredState,
    Mapping,
)
from reconciler.core.observed import HeldDeletes, JobStatus, Observed
from reconciler.core.plan import Plan, PlanOptions, Provenance
from reconciler.core.planner import compute_plan
from reconciler.core.serialize import from_document, to_document
from reconciler.engine.plan_inputs import (
    look_up_domains,
    read_extensions,
    read_group_sizes,
    read_observed,
    to_ad_defaults,
    with_preconditions,
)
from reconciler.errors import ConflictError, FileReadError, NotFoundError, PlanFileError, StalePlanError
from reconciler.git.repo import WorktreeInfo, check_merged, describe_worktree
from reconciler.git.source import AtRef, choose
from reconciler.git.source import load as load_source
from reconciler.providers.base import (
    RESET_FORCE_DELETES,
    ApprovesDeletes,
    Provider,
)
from reconciler.state.folder import write_private

if TYPE_CHECKING:
    from reconciler.engine.apply import ApplyResult, Progress

# Applying (its thread pool, the state store with its lock and journal) is imported by the functions
# that apply: a plan, which only reads, starts faster without it.

if TYPE_CHECKING:
    from reconciler.engine.apply import ApplyResult, Progress

# Applying (its thread pool, the state store with its lock and journal) is imported by the functions
# that apply: a plan, which only reads, starts faster without it.

__all__ = [
    "AppliedRun",
    "apply_saved_plan",
    "approve_deletes",
    "load_desired",
    "look_up_domains",
    "make_plan",
    "plan_and_apply",
    "plan_observed",
    "provenance_for",
    "read_observed",
    "read_plan_file",
    "restart_configuration",
    "run_plan",
    "with_preconditions",
    "write_plan_file",
]

# How many times plan_and_apply reads the target before it gives up on two reads that agree.
CONSISTENT_READS = 3

MAX_PLAN_FILE_BYTES = 256 * 1024 * 1024


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return None


def load_desired(paths: Sequence[str]) -> LoadResult:
    with collector_paused():
        return load_paths(list(paths))


def provenance_for(paths: Sequence[str]) -> Provenance:
    return _provenance(paths, describe_worktree(paths[0] if paths else ".", only=paths))


def _provenance(paths: Sequence[str], info: WorktreeInfo | None) -> Provenance:
    return Provenance(
        created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        commit=info.commit if info else None,
        dirty=info.dirty if info else False,
        paths=tuple(paths),
        user=_user(),
    )


def make_plan(
    state: DesiredState,
    provider: Provider,
    options: PlanOptions,
    provenance: Provenance,
    *,
    seen: Callable[[tuple[Observed, ...]], None] | None = None,
) -> Plan:
    """Plan ``state`` against what ``provider`` holds now; ``seen`` is shown what was read."""
    look_up_domains(provider, state)
    with collector_paused():
        observed = with_preconditions(provider, state, read_observed(provider, options.only))
        if seen is not None:
            seen(observed)
        plan = plan_observed(state, observed, provider, options)
    return replace(plan, provenance=provenance)


def plan_observed(
    state: DesiredState,
    observed: tuple[Observed, ...],
    provider: Provider,
    options: PlanOptions,
    *,
    defaults: tuple[Mapping, ...] | None = None,
) -> Plan:
    """The plan of ``state`` against ``observed`` (read from ``provider``), with every input the
    commands plan with: the provider's template defaults (``defaults`` when already read), the
    extensions application when the state uses it, and the Entra ID -> AD template's rows. Every
    command and loop that plans calls this, so that they all plan alike."""
    return compute_plan(
        state,
        observed,
        provider.template_defaults() if defaults is None else defaults,
        options,
        target=provider.target,
        extensions=read_extensions(provider, state),
        to_ad_defaults=to_ad_defaults(),
        group_sizes=read_group_sizes(provider, state, observed, options.only),
    )


def run_plan(
    paths: Sequence[str],
    provider: Provider,
    options: PlanOptions,
    *,
    ref: str | None = None,
    changed_since: str | None = None,
) -> tuple[Plan, LoadResult]:
    """Load the desired state (from the work tree, or from commit ``ref``) and plan it.

    ``changed_since``: plan only the configurations whose own or shared files changed since that ref.
    """
    with collector_paused():
        loaded = load_source(choose(paths, ref=ref, changed_since=changed_since))
    if loaded.commit is not None:
        # Read from a commit: the work tree is neither read nor asked about, only the commit is.
        provenance = replace(_provenance(paths, None), commit=loaded.commit, dirty=False, ref=loaded.commit)
    else:
        provenance = provenance_for(paths)
    if changed_since is not None:
        options = replace(options, only=loaded.only)
    return make_plan(loaded.result.state, provider, options, provenance), loaded.result


def write_plan_file(plan: Plan, path: str) -> None:
    doc = to_document(plan, tool_version=__version__)
    # 0600 whatever the umask: a plan names configurations and values nobody else on the machine needs.
    write_private(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_plan_file(path: str) -> Plan:
    try:
        data = read_bounded(path, MAX_PLAN_FILE_BYTES, what="plan file")
    except FileReadError as exc:
        raise PlanFileError(f"{path}: {exc.reason}") from exc
    try:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PlanFileError(f"{path}: not a plan file (it is not valid JSON: {exc})") from exc
        try:
            return from_document(doc)
        except PlanFileError as exc:
            raise PlanFileError(f"{path}: {exc}") from exc
    except RecursionError:
        # JSON nested deeper than the interpreter can follow; no plan file is.
        raise PlanFileError(f"{path}: not a plan file (it is nested too deeply)") from None


@dataclass(frozen=True, slots=True)
class AppliedRun:
    plan: Plan
    result: ApplyResult
    run_id: str
    recovered_lock: dict[str, object] | None
    # False when the plan made under the lock was not approved (or had nothing to do): nothing ran.
    applied: bool = True


def _execute_locked(
    plan: Plan,
    provider: Provider,
    *,
    kind: str,
    parallelism: int,
    progress: Progress | None,
    recovered: dict[str, object] | None,
    stop: threading.Event | None = None,
) -> AppliedRun:
    from reconciler.engine.apply import apply_plan
    from reconciler.engine.journal import Event, Journal, RunResult

    journal = Journal(provider.target)
    journal.write(
        Event.RUN_START,
        kind=kind,
        target=provider.target,
        user=_user(),
        commit=plan.provenance.commit,
        dirty=plan.provenance.dirty,
        plan_digest=to_document(plan, tool_version=__version__)["checksum"],
        changes=len(plan.changes),
        recovered_lock=recovered,
    )
    try:
        result = apply_plan(
            plan, provider, journal=journal, parallelism=parallelism, progress=progress, stop=stop
        )
    except BaseException:
        journal.write(Event.RUN_END, result=RunResult.ERROR)
        raise
    journal.write(
        Event.RUN_END,
        result=RunResult.OK if result.ok else RunResult.FAILED,
        **result.counts(),
    )
    return AppliedRun(plan, result, journal.run_id, recovered)


def _pinned_state(plan: Plan) -> LoadResult:
    """The desired state a saved plan pins: its paths (in this repository), at its commit if it has one."""
    if not plan.provenance.paths or not plan.desired_digest:
        raise PlanFileError(
            "the plan file does not pin the desired state it was made from (no paths or no digest), so "
            "it cannot be checked; make a new plan with `reconciler plan PATH... --out FILE`"
        )
    paths = plan.provenance.paths
    if plan.provenance.ref:
        # Made from a commit: compare with that commit, whatever the work tree holds. Only a commit
        # already merged into what is checked out counts, never one from a branch nobody merged.
        check_merged(plan.provenance.ref)
        return load_source(AtRef(plan.provenance.ref, tuple(paths))).result
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise StalePlanError("the desired files this plan was made from are not here: " + ", ".join(missing))
    return load_desired(paths)


def apply_saved_plan(
    plan: Plan,
    provider: Provider,
    *,
    lock_timeout: float = 0.0,
    parallelism: int = 10,
    progress: Progress | None = None,
    check_desired: bool = True,
) -> AppliedRun:
    """Apply a plan read from a file: refused if the desired files or the target moved on, or if its
    changes are not exactly what planning again from its desired state and the target gives.

    ``check_desired=False`` is for a plan this process has just made and shown (``apply PATH...``).
    """
    from reconciler.engine.apply import check_plan_fresh, check_plan_proved, check_target
    from reconciler.engine.lock import target_lock

    check_target(plan, provider)
    loaded: LoadResult | None = None
    if check_desired:
        loaded = _pinned_state(plan)
        look_up_domains(provider, loaded.state)
        defaults = provider.template_defaults()
        digest = desired_digest(loaded.state, defaults, plan.options.only)
        if digest != plan.desired_digest:
            raise StalePlanError(
                "the saved plan is stale: the desired files changed since it was made; make a new plan"
            )
    with target_lock(provider.target, timeout=lock_timeout, command="reconciler apply") as info:
        observed = read_observed(provider, plan.options.only)
        check_plan_fresh(plan, provider, observed)
        if loaded is not None:
            observed = with_preconditions(provider, loaded.state, observed)
            with collector_paused():
                derived = plan_observed(loaded.state, observed, provider, plan.options, defaults=defaults)
            check_plan_proved(plan, derived)
        return _execute_locked(
            plan,
            provider,
            kind="apply",
            parallelism=parallelism,
            progress=progress,
            recovered=info.recovered_from,
        )


def plan_and_apply(
    state: DesiredState,
    provider: Provider,
    options: PlanOptions,
    provenance: Provenance,
    *,
    lock_timeout: float = 0.0,
    parallelism: int = 10,
    progress: Progress | None = None,
    kind: str = "apply",
    stop: threading.Event | None = None,
    approve: Callable[[Plan], bool] | None = None,
    seen: Callable[[tuple[Observed, ...]], None] | None = None,
) -> AppliedRun:
    """Plan and apply as one task under one lock (``apply --auto-approve PATH...``, the reconcile loop).

    The plan is made after the lock is taken, so no other run can change the target between planning
    and applying. A plan with changes is checked against a second read of the target before anything
    is written: a service that answered one read inconsistently (a lost or cut answer) must not cause
    writes, so the plan is made again, a few times at most. ``approve`` is shown the plan that will be
    applied (to render it, or to decide); when it returns False nothing is applied or journaled
    (``applied`` is False). Setting ``stop`` skips the changes not started yet. ``seen`` is shown
    what each plan was made from.
    """
    from reconciler.engine.apply import ApplyResult, check_plan_fresh
    from reconciler.engine.lock import target_lock

    with target_lock(provider.target, timeout=lock_timeout, command=f"reconciler {kind}") as info:
        for attempt in range(CONSISTENT_READS):
            plan = make_plan(state, provider, options, provenance, seen=seen)
            if not plan.has_changes:
                break
            try:
                check_plan_fresh(plan, provider, read_observed(provider, options.only))
                break
            except StalePlanError as exc:
                if attempt == CONSISTENT_READS - 1:
                    raise StalePlanError(
                        "the target answered differently from one read to the next, so nothing was "
                        "applied; run again",
                        exc.reasons,
                    ) from exc
        if approve is not None and not approve(plan):
            return AppliedRun(plan, ApplyResult(()), "", info.recovered_from, applied=False)
        return _execute_locked(
            plan,
            provider,
            kind=kind,
            parallelism=parallelism,
            progress=progress,
            recovered=info.recovered_from,
            stop=stop,
        )


def _journaled_restart(
    provider: Provider,
    name: str,
    reset_scope: str,
    *,
    kind: str,
    lock_timeout: float,
    check: Callable[[Observed], dict[str, Any]] | None = None,
) -> tuple[str, Observed]:
    """Restart configuration ``name`` (by name or id) with ``reset_scope`` under the target's lock, as a
    journaled run of ``kind``; ``check`` may refuse (raise) first, or return more to journal."""
    from reconciler.engine.journal import ChangeOutcome, Event, Journal, RunResult
    from reconciler.engine.lock import target_lock

    journal = Journal(provider.target)
    with target_lock(provider.target, timeout=lock_timeout, command=f"reconciler {kind}") as info:
        found = [o for o in provider.read_all() if name in (o.name, o.id)]
        if not found:
            raise NotFoundError(f"no configuration named {name} on {provider.target}")
        config = found[0]
        extra = check(config) if check is not None else {}
        journal.write(
            Event.RUN_START,
            kind=kind,
            target=provider.target,
            user=_user(),
            commit=None,
            reset_scope=reset_scope,
            recovered_lock=info.recovered_from,
            **extra,
        )
        journal.write(Event.CHANGE_START, name=config.display, action=kind, id=config.id)
        try:
            since = config.status.quarantine_since
            if kind == "approve-deletes" and isinstance(provider, ApprovesDeletes) and since:
                # Recorded on the target as an approveDeletes apply records it: a field in git naming
                # this quarantine then releases nothing more.
                provider.approve_deletes(config.id, since)
            else:
                provider.restart(config.id, reset_scope)
        except Exception as exc:
            journal.write(
                Event.CHANGE_END,
                name=config.display,
                action=kind,
                outcome=ChangeOutcome.FAILED,
                error=str(exc),
            )
            journal.write(Event.RUN_END, result=RunResult.FAILED)
            raise
        journal.write(Event.CHANGE_END, name=config.display, action=kind, outcome=ChangeOutcome.OK)
        journal.write(Event.RUN_END, result=RunResult.OK)
    return journal.run_id, config


def _deletes_held(config: Observed) -> dict[str, Any]:
    status = config.status
    if not status.holds_deletes():
        now = status.code + (f" ({status.quarantine_reason})" if status.quarantine_reason else "")
        raise ConflictError(
            f"{config.display} holds no deletes to approve: its provisioning job is {now}, not in "
            f"quarantine for {TOO_MANY_DELETES}"
        )
    return {
        "configuration": config.display,
        "quarantine_since": status.quarantine_since,
        "service_message": status.last_error,
    }


def approve_deletes(
    provider: Provider, name: str, *, lock_timeout: float = 0.0
) -> tuple[str, JobStatus, HeldDeletes]:
    """Release the deletes the accidental-delete threshold holds for configuration ``name`` (by name or
    id): the documented restart with ``ForceDeletes``, only while its provisioning job is quarantined
    for ``TooManyDeletes``. Journaled as an ``approve-deletes`` run with who approved, when, how many
    deletes the provisioning logs list (or why that is unknown) and the quarantine as the service
    reported it; returns the run id, that status and the held deletes."""
    from reconciler.engine.held import held_deletes_of

    seen: list[HeldDeletes] = []

    def check(config: Observed) -> dict[str, Any]:
        extra = _deletes_held(config)
        held = held_deletes_of(provider, config)
        seen.append(held)
        return {**extra, "held_deletes": held.count, "held_deletes_unknown": held.unknown}

    run_id, config = _journaled_restart(
        provider,
        name,
        RESET_FORCE_DELETES,
        kind="approve-deletes",
        lock_timeout=lock_timeout,
        check=check,
    )
    return run_id, config.status, seen[0]


def restart_configuration(
    provider: Provider, name: str, reset_scope: str, *, lock_timeout: float = 0.0
) -> str:
    """Restart one managed or unmanaged configuration by name or id, journaled; returns the run id."""
    return _journaled_restart(provider, name, reset_scope, kind="restart", lock_timeout=lock_timeout)[0]
