"""Carry out a plan exactly as it is, against the target it was made for.

``apply_plan`` carries out the changes it is given. Before touching anything the caller checks, under the
target's lock, that the plan was made for this target, that every configuration still looks as it did
when the plan was made (the fingerprints in the plan) and, for a saved plan, that its changes are exactly
those the planner derives again from the desired state the plan pins and the target as read now
(``check_plan_proved``). A saved plan is refused otherwise: its checksum is not a signature, so whoever
can edit the file could recompute it.

Whatever the plan says, the guards are enforced again right before each write (``guard``): a delete
needs the plan's recorded permission and count, and the target's record read at that moment must show a
managed configuration without deletion protection; a restart is only ever ``Full`` (forced deletes are
released by their own command, ``restart --approve-deletes``).

Phases run one after the other in ``ACTION_ORDER`` (creates, updates, starts/pauses, restarts, deletes);
inside a phase, configurations run in parallel (``parallelism`` threads). A failing configuration does
not stop the others; its later changes are skipped; the result lists every outcome. Each write to the
target is bracketed by journal entries, so an interrupted run can be seen and the next plan converges.

I/O: the provider (the target) and the journal.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reconciler.core.digest import fingerprints
from reconciler.core.model import TOO_MANY_DELETES
from reconciler.core.observed import Observed
from reconciler.core.plan import ACTION_ORDER, RESET_FOR_CHANGES, Action, Change, Plan, Spec, in_scope
from reconciler.core.serialize import change_document
from reconciler.engine.journal import ChangeOutcome, Event, Journal
from reconciler.errors import GuardError, PlanFileError, ReconcilerError, StalePlanError
from reconciler.providers.base import RESET_FORCE_DELETES, ApprovesDeletes, Provider, ReadsByName

__all__ = [
    "ApplyResult",
    "Outcome",
    "apply_plan",
    "check_plan_fresh",
    "check_plan_proved",
    "check_target",
    "guard",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    change: Change
    status: ChangeOutcome
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcomes: tuple[Outcome, ...]

    @property
    def ok(self) -> bool:
        return all(o.status == ChangeOutcome.OK for o in self.outcomes)

    def count(self, status: ChangeOutcome) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def counts(self) -> dict[str, int]:
        """How many changes ended each way: ``{"ok": n, "failed": n, "skipped": n}``."""
        return {
            s.value: self.count(s) for s in (ChangeOutcome.OK, ChangeOutcome.FAILED, ChangeOutcome.SKIPPED)
        }


Progress = Callable[[Outcome, int, int], None]


def check_target(plan: Plan, provider: Provider) -> None:
    """Refuse a plan made for another target."""
    if plan.target != provider.target:
        raise StalePlanError(
            f"this plan was made for target {plan.target}, not {provider.target}; make a plan for this target"
        )


def check_plan_fresh(plan: Plan, provider: Provider, observed: Sequence[Observed]) -> None:
    """Refuse a plan made for another target, or one the target has moved on from."""
    check_target(plan, provider)
    # A plan of some configurations (--changed-since) depends on those alone.
    observed = [o for o in observed if in_scope(o, plan.options.only)]
    now = dict(fingerprints(observed))
    then = dict(plan.fingerprints)
    if now == then:
        return
    names = {o.id: o.display for o in observed}
    reasons = []
    for cid in sorted(set(now) | set(then)):
        if cid not in then:
            reasons.append(f"{names.get(cid, cid)}: appeared on the target")
        elif cid not in now:
            reasons.append(f"{cid}: no longer on the target")
        elif now[cid] != then[cid]:
            reasons.append(f"{names.get(cid, cid)}: changed on the target")
    raise StalePlanError("the saved plan is stale: the target changed since it was made", reasons)


def _plain(change: Change) -> dict[str, object]:
    # The JSON form, as the plan file holds it: tuples become lists, so a change read back from a file
    # and one just planned compare equal when they mean the same.
    data: dict[str, object] = json.loads(json.dumps(change_document(change), ensure_ascii=False))
    return data


def _title(doc: dict[str, object] | None) -> str:
    return "nothing" if doc is None else f"{doc.get('action')} configuration.{doc.get('name')}"


def check_plan_proved(saved: Plan, derived: Plan) -> None:
    """Refuse a saved plan unless its changes are exactly the ones ``derived`` (planned again now) holds.

    ``derived`` is the planner's answer for the desired state the saved plan pins, the target as read
    under the lock, and the plan's recorded options. The first difference is named.
    """
    mine = [_plain(c) for c in saved.changes]
    now = [_plain(c) for c in derived.changes]
    if mine == now:
        return
    for i in range(max(len(mine), len(now))):
        a = mine[i] if i < len(mine) else None
        b = now[i] if i < len(now) else None
        if a == b:
            continue
        held = next((h for h in derived.held if a is not None and h.name == a["name"]), None)
        if held is not None and (b is None or b["name"] != held.name):
            # Not edited input: the target changed so that the planner holds this change back now.
            raise PlanFileError(
                f"the saved plan's change {i + 1} ({_title(a)}) is held back when planned again now: "
                f"{'; '.join(held.reasons)}; nothing was applied, make a new plan"
            )
        if a is not None and b is not None and (a["name"], a["action"]) == (b["name"], b["action"]):
            keys = [k for k in a if a.get(k) != b.get(k)]
            what = f"change {i + 1} ({_title(a)}) differs in {', '.join(keys)}"
        else:
            what = f"change {i + 1} is {_title(a)} in the plan file, but planning again gives {_title(b)}"
        raise PlanFileError(
            "the saved plan does not match what the desired state it pins and the target give now "
            f"(it was edited, or made from other input): {what}; nothing was applied, make a new plan"
        )


def _current(provider: Provider, change: Change) -> Observed | None:
    """The target's record of ``change``'s configuration, read now."""
    if isinstance(provider, ReadsByName):
        found = provider.read_named(frozenset({change.name}))
    else:
        found = provider.read_all()
    return next((o for o in found if o.id == change.target_id), None)


def guard(change: Change, plan: Plan, provider: Provider) -> None:
    """Raise ``GuardError`` when ``change`` must not be written, whatever the plan holding it says."""
    if change.action is Action.RESTART and (change.reset_scope or RESET_FOR_CHANGES) != RESET_FOR_CHANGES:
        raise GuardError(
            f"{change.name}: a plan restarts a job only with {RESET_FOR_CHANGES}; forced deletes "
            f"({change.reset_scope}) are released only by `reconciler restart NAME --approve-deletes`, "
            "`reconciler approve-deletes NAME` or an approveDeletes field"
        )
    if change.action is Action.APPROVE_DELETES:
        _guard_approval(change, plan, provider)
        return
    if change.action is not Action.DELETE:
        return
    deletes = sum(1 for c in plan.changes if c.action is Action.DELETE)
    if not plan.options.allow_delete:
        raise GuardError(f"{change.name}: the plan was not made with --allow-delete")
    if deletes > plan.options.max_deletes and not plan.options.allow_mass_delete:
        raise GuardError(
            f"{change.name}: {deletes} deletes is more than the plan's limit of {plan.options.max_deletes} "
            "and the plan was not made with --allow-mass-delete"
        )
    record = _current(provider, change)
    if record is None:
        raise GuardError(f"{change.name}: no configuration {change.target_id} on the target to delete")
    if not record.managed or record.name != change.name:
        raise GuardError(f"{change.name}: {change.target_id} is not the managed configuration of that name")
    if record.deletion_protection:
        raise GuardError(f"{change.name}: the target records deletion protection for it; it is not deleted")


def _guard_approval(change: Change, plan: Plan, provider: Provider) -> None:
    """An approval releases only the quarantine it names, and only while that quarantine lasts: a job
    that left it, or entered a later one, is not restarted with ForceDeletes."""
    if not plan.options.allow_delete:
        raise GuardError(f"{change.name}: approving held deletes needs a plan made with --allow-delete")
    record = _current(provider, change)
    if record is None or not record.managed or record.name != change.name:
        raise GuardError(f"{change.name}: {change.target_id} is not the managed configuration of that name")
    if not record.status.holds_deletes(change.quarantine_since or ""):
        raise GuardError(
            f"{change.name}: approveDeletes approves the {TOO_MANY_DELETES} quarantine that began "
            f"{change.quarantine_since}; the provisioning job is now {record.status.state_text()}, so "
            "nothing is approved"
        )


def _extension_args(spec: Spec, *, removals: bool) -> dict[str, Any]:
    """The directory extension arguments of a write, only when the spec has some: a provider without
    directory extensions is called as before."""
    args: dict[str, Any] = {}
    if spec.extensions:
        args["extensions"] = spec.extensions
    if removals and spec.extension_removals:
        args["extension_removals"] = spec.extension_removals
    if spec.onprem_attributes:
        args["onprem_attributes"] = spec.onprem_attributes
    return args


def _execute(
    change: Change, provider: Provider, ids: dict[str, str], *, restart_follows: bool = False
) -> None:
    target_id = change.target_id or ids.get(change.name)
    if change.action is Action.CREATE:
        assert change.spec is not None
        spec = change.spec
        ids[change.name] = provider.create(
            change.name,
            spec.settings,
            spec.scope,
            spec.mappings,
            removals=spec.removals,
            deletion_protection=spec.deletion_protection,
            restart_token=spec.restart_token,
            **_extension_args(spec, removals=False),
        )
        return
    if target_id is None:
        raise ReconcilerError(f"{change.name}: no configuration id to {change.action.value}")
    if change.action is Action.UPDATE:
        if change.moved_from is not None:
            provider.rename(target_id, change.moved_from, change.name)
        if change.spec is None:
            return  # a rename alone
        spec = change.spec
        if restart_follows:
            # Recorded on the target first: if this run dies before the restart, the next plan sees that
            # a restart is owed even though the update itself already matches the desired state.
            provider.set_restart_pending(target_id, True)
        if change.write_settings:
            provider.update_settings(
                target_id,
                spec.settings,
                deletion_protection=spec.deletion_protection,
                restart_token=spec.restart_token,
            )
        if change.write_schema:
            provider.edit_schema(
                target_id, spec.scope, spec.mappings, spec.removals, **_extension_args(spec, removals=True)
            )
    elif change.action is Action.START:
        provider.start(target_id)
    elif change.action is Action.PAUSE:
        provider.pause(target_id)
    elif change.action is Action.RESTART:
        provider.restart(target_id, change.reset_scope or "Full")
    elif change.action is Action.APPROVE_DELETES:
        if isinstance(provider, ApprovesDeletes) and change.quarantine_since:
            provider.approve_deletes(target_id, change.quarantine_since)
        else:
            provider.restart(target_id, RESET_FORCE_DELETES)
    elif change.action is Action.DELETE:
        provider.delete(target_id)


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ReconcilerError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def apply_plan(
    plan: Plan,
    provider: Provider,
    *,
    journal: Journal,
    parallelism: int = 10,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> ApplyResult:
    """Run every change of ``plan``; the caller holds the lock and has checked freshness.

    Once ``stop`` is set, changes not started yet are skipped (the reconcile loop's clean stop).
    """
    phases: dict[int, list[Change]] = {}
    for change in plan.changes:
        phases.setdefault(ACTION_ORDER[change.action], []).append(change)
    ids: dict[str, str] = {c.name: c.target_id for c in plan.changes if c.target_id}
    restarting = {c.name for c in plan.changes if c.action is Action.RESTART}
    failed_names: set[str] = set()
    outcomes: list[Outcome] = []
    total = len(plan.changes)

    def run(change: Change) -> Outcome:
        if change.name in failed_names:
            outcome = Outcome(change, ChangeOutcome.SKIPPED, "an earlier change of this configuration failed")
        elif stop is not None and stop.is_set():
            outcome = Outcome(change, ChangeOutcome.SKIPPED, "the run was asked to stop before this change")
        else:
            approves: dict[str, Any] = {}
            if change.quarantine_since:
                # An approval of held deletes: which quarantine, and how many deletes it held.
                approves = {"quarantine_since": change.quarantine_since, "held_deletes": change.held_deletes}
            journal.write(
                Event.CHANGE_START,
                name=change.name,
                action=change.action.value,
                id=change.target_id,
                **approves,
            )
            began = time.monotonic()
            try:
                guard(change, plan, provider)
                _execute(change, provider, ids, restart_follows=change.name in restarting)
            except Exception as exc:
                outcome = Outcome(
                    change, ChangeOutcome.FAILED, _describe_error(exc), time.monotonic() - began
                )
            else:
                outcome = Outcome(change, ChangeOutcome.OK, None, time.monotonic() - began)
            journal.write(
                Event.CHANGE_END,
                name=change.name,
                action=change.action.value,
                id=ids.get(change.name),
                outcome=outcome.status,
                error=outcome.error,
            )
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        for order in sorted(phases):
            for outcome in pool.map(run, phases[order]):
                outcomes.append(outcome)
                if outcome.status != ChangeOutcome.OK:
                    failed_names.add(outcome.change.name)
                if progress is not None:
                    progress(outcome, len(outcomes), total)
    return ApplyResult(tuple(outcomes))
