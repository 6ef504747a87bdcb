"""The reconcile loop: keep a target in line with a branch of a git repository.

Each pass fetches the branch into a cached clone. A head commit that is not applied yet is planned and
applied. Once it is, every later pass compares the target with it: a plan with changes then means drift
(someone changed the target behind git's back), which is reported, or reverted with ``self_heal``.
Deletes follow the plan options as anywhere else, so they still need ``allow_delete``.

Passes are ``interval`` apart plus up to ``jitter`` of it at random, so that loops started together
spread out; after failures the wait doubles, up to ``max_backoff``; ``nudge`` (a push webhook)
ends the wait early. A stop request (SIGTERM or SIGINT when ``run`` owns the signals) is honoured
between changes: the change being written finishes, the rest of the plan is skipped (the run's journal
entry counts them), the status file is written, and the loop ends.

Only one loop is active per target, however many replicas run (two pods, say): the active one holds a
leader lease in the target's state store and renews it every third of its time-to-live; the others
stand by and take over once a lease expires unrenewed (its holder was killed or cut off), so a handover
takes at most the lease time. A loop that fails to renew stops at the next safe point. The loop takes
the target's apply lock for each apply, so a manual ``reconciler apply`` can still run between passes.

After every pass the status document (JSON) says what monitoring needs: the last commit seen and
applied, the last result, the drift per configuration and who runs the loop. It is stored in the state
store (so ``reconciler status`` anywhere sees it) and written to the status file, replaced atomically so
a reader never sees half of it. What a pass that wrote nothing read of the target is recorded as the
health snapshot (``reconciler.engine.health``): every job of every configuration.

I/O: git (fetch into the state folder), the target (through the provider), the state store (lock,
lease, journal, status), the status file, and process signals in ``run``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import getpass
import hashlib
import json
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from reconciler.core.model import DesiredState
from reconciler.core.observed import Observed
from reconciler.core.plan import Plan, PlanOptions, Provenance
from reconciler.engine.apply import ApplyResult
from reconciler.engine.health import LOOP_KEY, record_observed
from reconciler.engine.journal import ChangeOutcome
from reconciler.engine.operations import AppliedRun, make_plan, plan_and_apply
from reconciler.errors import LoadError, LockError, ReconcilerError, StateError
from reconciler.git.repo import CommitInfo, redact, source_url, sync_branch
from reconciler.git.source import Clone
from reconciler.git.source import load as load_source
from reconciler.providers.base import Provider
from reconciler.state import open_store
from reconciler.state.base import describe_holder, runner_identity
from reconciler.state.folder import ensure_state_dir, private_dir, state_dir

__all__ = [
    "EXIT_DRIFT",
    "EXIT_ERROR",
    "EXIT_IN_SYNC",
    "LEADER_LEASE",
    "STATUS_KEY",
    "LoopOptions",
    "PassResult",
    "Reconciler",
    "Status",
    "default_status_file",
]

STATUS_FORMAT_VERSION = 1
# The names of the loop's lease and status document in the target's state store.
LEADER_LEASE = "reconcile-leader"
STATUS_KEY = LOOP_KEY
EXIT_IN_SYNC = 0
EXIT_ERROR = 1
EXIT_DRIFT = 2
# How soon a nudge (``Reconciler.nudge``) ends the wait between passes; a stop ends it at once.
NUDGE_LATENCY = 0.25


class PassResult(enum.StrEnum):
    IN_SYNC = "in-sync"  # the applied commit is the head and the target matches it
    APPLIED = "applied"  # a new head commit was applied
    HEALED = "healed"  # drift was found and reverted
    DRIFT = "drift"  # drift was found and left (no self-heal)
    FAILED = "failed"  # an apply ran and some changes failed or were skipped
    ERROR = "error"  # the pass could not run: fetch, load, lock or target error
    STOPPED = "stopped"  # a stop request cut an apply short


# What ``--once`` exits with after a pass that ended this way.
EXIT_CODES: dict[PassResult, int] = {
    PassResult.IN_SYNC: EXIT_IN_SYNC,
    PassResult.APPLIED: EXIT_IN_SYNC,
    PassResult.HEALED: EXIT_IN_SYNC,
    PassResult.DRIFT: EXIT_DRIFT,
    PassResult.FAILED: EXIT_ERROR,
    PassResult.ERROR: EXIT_ERROR,
    PassResult.STOPPED: EXIT_ERROR,
}


@dataclass(frozen=True, slots=True)
class LoopOptions:
    source: str  # a folder or a URL of a git repository
    branch: str = "main"
    paths: tuple[str, ...] = ("",)  # repository paths of the desired files; "" is the whole tree
    interval: float = 300.0
    jitter: float = 0.1
    max_backoff: float = 3600.0
    self_heal: bool = False
    plan_options: PlanOptions = field(default_factory=PlanOptions)
    status_file: Path | None = None
    lock_timeout: float = 0.0
    parallelism: int = 10
    lease_ttl: float = 30.0


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return None


def _target_key(target: str) -> str:
    return hashlib.sha256(target.encode()).hexdigest()[:16]


def default_status_file(target: str) -> Path:
    """Where the loop for ``target`` writes its status unless told otherwise."""
    return state_dir() / "reconcile" / f"status-{_target_key(target)}.json"


@dataclass
class Status:
    """The status file's content; ``drift`` is per configuration (see ``_drift``)."""

    target: str
    source: str
    branch: str
    paths: list[str]
    state: str = "starting"  # starting | running | stopped
    pid: int = field(default_factory=os.getpid)
    updated_at: str | None = None
    last_seen_commit: str | None = None
    last_applied_commit: str | None = None
    last_applied_at: str | None = None
    last_result: dict[str, Any] = field(default_factory=dict)
    consecutive_failures: int = 0
    next_pass_at: str | None = None
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)
    held: dict[str, list[str]] = field(default_factory=dict)
    # Who runs the loop (host, user, pid, CI run): `status` elsewhere names it.
    runner: dict[str, Any] = field(default_factory=lambda: runner_identity("reconciler reconcile"))

    def to_json(self) -> dict[str, Any]:
        return {
            "formatVersion": STATUS_FORMAT_VERSION,
            "target": self.target,
            "source": self.source,
            "branch": self.branch,
            "paths": self.paths,
            "state": self.state,
            "pid": self.pid,
            "updatedAt": self.updated_at,
            "lastSeenCommit": self.last_seen_commit,
            "lastAppliedCommit": self.last_applied_commit,
            "lastAppliedAt": self.last_applied_at,
            "lastResult": self.last_result,
            "consecutiveFailures": self.consecutive_failures,
            "nextPassAt": self.next_pass_at,
            "inSync": self.last_result.get("result")
            in (PassResult.IN_SYNC, PassResult.APPLIED, PassResult.HEALED),
            "drift": self.drift,
            "held": self.held,
            "runner": self.runner,
        }

    def write(self, path: Path) -> None:
        self.updated_at = _now()
        open_store(self.target).put_status(self.target, STATUS_KEY, self.to_json())
        private_dir(path.parent)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _read_previous(path: Path, fresh: Status) -> None:
    """Carry the applied commit over from an earlier loop for the same target, source and branch.

    The state store's document comes first (it may have been written by another replica or runner);
    the local status file is the fallback.
    """
    data = open_store(fresh.target).get_status(fresh.target, STATUS_KEY)
    if data is None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
    if not isinstance(data, dict):
        return
    key = ("target", "source", "branch", "paths")
    if [data.get(k) for k in key] == [fresh.target, fresh.source, fresh.branch, fresh.paths]:
        fresh.last_seen_commit = data.get("lastSeenCommit")
        fresh.last_applied_commit = data.get("lastAppliedCommit")
        fresh.last_applied_at = data.get("lastAppliedAt")


def _drift(plan: Plan, seen: str) -> dict[str, dict[str, Any]]:
    """Per configuration: the actions a heal would take, the fields that differ, and each field's git
    value, live value and when the difference was seen."""
    out: dict[str, dict[str, Any]] = {}
    for c in plan.changes:
        entry = out.setdefault(c.name, {"actions": [], "fields": [], "changes": []})
        entry["actions"].append(c.action.value)
        entry["fields"] += [f.path for f in c.fields]
        entry["changes"] += [
            {"field": f.path, "git": f.after, "live": f.before, "seenAt": seen} for f in c.fields
        ]
    return out


def drift_lines(plan: Plan, seen: str) -> list[str]:
    """One line per drifted field: configuration, field, git value, live value, when it was seen."""
    lines = []
    for c in plan.changes:
        if not c.fields:
            lines.append(f"{c.name}: {c.action.value} owed (seen {seen})")
        for f in c.fields:
            lines.append(f"{c.name}: {f.path}: git {_short(f.after)}, live {_short(f.before)} (seen {seen})")
    return lines


def _short(value: Any, limit: int = 120) -> str:
    text = "(none)" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _held(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for h in plan.held:
        out.setdefault(h.name, []).extend(f"{h.action.value}: {r}" for r in h.reasons)
    return out


def _failures(result: ApplyResult) -> str:
    failed = [
        f"{o.change.action.value} {o.change.name}: {o.error}"
        for o in result.outcomes
        if o.status != ChangeOutcome.OK
    ]
    return "; ".join(failed[:5]) + (f" (and {len(failed) - 5} more)" if len(failed) > 5 else "")


class Reconciler:
    """One loop over one target. ``run_pass`` is one pass; ``run`` loops until stopped."""

    def __init__(
        self,
        options: LoopOptions,
        provider: Provider,
        *,
        report: Callable[[str], None] = lambda _line: None,
        stop: threading.Event | None = None,
    ) -> None:
        self.options = options
        self.provider = provider
        self.report = report
        self.stop = stop or threading.Event()
        self.status_path = options.status_file or default_status_file(provider.target)
        self.lease_owner = uuid.uuid4().hex
        self.lease_lost = threading.Event()
        self.nudged = threading.Event()
        self.cache = ensure_state_dir() / "git"
        self._seen: tuple[Observed, ...] | None = None
        self.status = Status(
            target=provider.target,
            source=redact(source_url(options.source)),
            branch=options.branch,
            paths=list(options.paths),
        )
        _read_previous(self.status_path, self.status)

    # -- one pass ------------------------------------------------------------------------------------

    def _provenance(self, head: CommitInfo) -> Provenance:
        return Provenance(
            created_at=_now(), commit=head.sha, dirty=False, paths=self.options.paths, user=_user()
        )

    def _finish(self, result: PassResult, head: CommitInfo | None, message: str, **extra: Any) -> PassResult:
        status = self.status
        status.last_result = {
            "result": result.value,
            "at": _now(),
            "commit": head.sha if head else status.last_seen_commit,
            "message": message,
            **extra,
        }
        failed = result in (PassResult.FAILED, PassResult.ERROR)
        status.consecutive_failures = status.consecutive_failures + 1 if failed else 0
        status.write(self.status_path)
        self._record_health()
        self.report(f"{result.value}: {message}")
        return result

    def _observe(self, observed: tuple[Observed, ...]) -> None:
        """Keep what the pass's plan was made from: the pass records it as the health snapshot."""
        self._seen = observed

    def _record_health(self) -> None:
        """Every job's health as the pass read it, in the target's state store (``status --from-state``)."""
        seen, self._seen = self._seen, None
        if seen is None:
            return
        try:
            complete = self.options.plan_options.only is None
            record_observed(self.provider.target, seen, complete=complete, command="reconciler reconcile")
        except ReconcilerError as exc:
            self.report(f"the health snapshot was not stored: {exc}")

    def _apply(
        self,
        head: CommitInfo,
        state: DesiredState,
        kind: str,
        approve: Callable[[Plan], bool] | None = None,
    ) -> AppliedRun:
        return plan_and_apply(
            state,
            self.provider,
            self.options.plan_options,
            self._provenance(head),
            lock_timeout=self.options.lock_timeout,
            parallelism=self.options.parallelism,
            kind=kind,
            stop=self.stop,
            approve=approve,
            seen=self._observe,
        )

    def run_pass(self) -> PassResult:
        """Fetch, then apply a new head commit or look for drift; the status file is written either way."""
        opts = self.options
        try:
            folder, head = sync_branch(opts.source, opts.branch, self.cache)
        except ReconcilerError as exc:
            return self._finish(PassResult.ERROR, None, str(exc))
        self.status.last_seen_commit = head.sha
        try:
            state = load_source(Clone(str(folder), head.sha, tuple(opts.paths))).result.state
        except LoadError as exc:
            problems = [str(d) for d in exc.diagnostics if d.severity == "error"]
            message = f"the desired state at {head.short} does not load: " + "; ".join(problems[:5])
            return self._finish(PassResult.ERROR, head, message)
        except ReconcilerError as exc:
            return self._finish(PassResult.ERROR, head, str(exc))
        try:
            return self._reconcile(head, state)
        except ReconcilerError as exc:
            return self._finish(PassResult.ERROR, head, str(exc))
        except Exception as exc:
            # A loop outlives one bad pass: the error is recorded, and the next pass backs off.
            return self._finish(PassResult.ERROR, head, f"{type(exc).__name__}: {exc}")

    def _reconcile(self, head: CommitInfo, state: DesiredState) -> PassResult:
        status, opts = self.status, self.options
        if head.sha != status.last_applied_commit:
            return self._after_apply(head, self._apply(head, state, "reconcile"), healed=False)
        if opts.self_heal:
            # One task under the target's lock: the drift found is the drift reverted.
            def heal(plan: Plan) -> bool:
                self._record_drift(head, plan, healing=True)
                return plan.has_changes

            run = self._apply(head, state, "self-heal", approve=heal)
            if not run.applied:
                return self._finish(PassResult.IN_SYNC, head, f"the target matches {head.short}")
            return self._after_apply(head, run, healed=True)
        # Only looking: no lock, no write.
        plan = make_plan(state, self.provider, opts.plan_options, self._provenance(head), seen=self._observe)
        self._record_drift(head, plan, healing=False)
        if not plan.has_changes:
            return self._finish(PassResult.IN_SYNC, head, f"the target matches {head.short}")
        names = ", ".join(sorted(status.drift))
        return self._finish(PassResult.DRIFT, head, f"drift from {head.short} in {names}")

    def _record_drift(self, head: CommitInfo, plan: Plan, *, healing: bool) -> None:
        """Put the plan's drift in the status and report one line per drifted field."""
        seen = _now()
        self.status.held = _held(plan)
        self.status.drift = _drift(plan, seen)
        for line in drift_lines(plan, seen):
            self.report(f"drift from {head.short}: {line}" + ("; reverting it" if healing else ""))

    def _after_apply(self, head: CommitInfo, run: AppliedRun, *, healed: bool) -> PassResult:
        status, result = self.status, run.result
        if result.outcomes:
            # Read before the writes, so no longer what the target holds: the next pass records it.
            self._seen = None
        status.held = _held(run.plan)
        count = len(result.outcomes)
        done = {"runId": run.run_id, "changes": count}
        if not result.ok:
            if self.stop.is_set():
                done_count = result.count(ChangeOutcome.OK)
                message = f"stopped while applying {head.short}: {done_count} of {count} change(s) done"
                return self._finish(PassResult.STOPPED, head, message, **done)
            return self._finish(PassResult.FAILED, head, _failures(result), **done)
        status.drift = {}
        if healed:
            message = f"reverted {count} change(s) to match {head.short}"
            return self._finish(PassResult.HEALED, head, message, **done)
        status.last_applied_commit = head.sha
        status.last_applied_at = _now()
        if not result.outcomes:
            return self._finish(PassResult.IN_SYNC, head, f"the target matches {head.short}", **done)
        message = f"applied {head.short} ({count} change(s))"
        return self._finish(PassResult.APPLIED, head, message, **done)

    # -- the loop ------------------------------------------------------------------------------------

    def delay(self) -> float:
        """Seconds until the next pass: the interval, doubled per consecutive failure, plus jitter."""
        opts = self.options
        base = opts.interval
        failures = self.status.consecutive_failures
        if failures:
            base = min(opts.interval * 2 ** min(failures, 16), max(opts.interval, opts.max_backoff))
        return base * (1 + random.uniform(0, opts.jitter))

    def run(self, *, once: bool = False) -> int:
        """Loop until stopped (or one pass with ``once``); returns the exit code.

        A loop that was asked to stop exits 0; ``once`` exits with the code of its pass.
        """
        with self._leadership(once=once) as leading:
            if not leading:
                return EXIT_IN_SYNC  # stopped while standing by
            self.status.state = "running"
            last = PassResult.IN_SYNC
            try:
                while not self.stop.is_set():
                    last = self.run_pass()
                    if once or self.stop.is_set():
                        break
                    wait = self.delay()
                    self.status.next_pass_at = (
                        _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=wait)
                    ).isoformat(timespec="seconds")
                    self.status.write(self.status_path)
                    self._pause(wait)
            finally:
                self.status.state = "stopped"
                self.status.next_pass_at = None
                self.status.write(self.status_path)
        if self.lease_lost.is_set():
            raise StateError(
                f"this loop lost its leader lease on {self.provider.target} (the state store could not "
                "renew it); it stopped so that another replica can take over"
            )
        if self.stop.is_set() and not once:
            return EXIT_IN_SYNC  # a requested stop of a loop is a clean end, wherever it came
        return EXIT_CODES[last]

    def nudge(self) -> None:
        """Start the next pass now rather than at the end of the interval (a push webhook asks this).

        A nudge during a pass starts another pass right after it: the push may have come after the fetch.
        """
        self.nudged.set()

    def _pause(self, seconds: float) -> None:
        """Wait between passes: until the interval ends, a stop comes (at once) or a nudge (soon)."""
        end = time.monotonic() + seconds
        while not self.nudged.is_set():
            left = end - time.monotonic()
            if left <= 0 or self.stop.wait(min(left, NUDGE_LATENCY)):
                break
        self.nudged.clear()

    # -- the leader lease ----------------------------------------------------------------------------

    @contextmanager
    def _leadership(self, *, once: bool) -> Iterator[bool]:
        """Stand by until this loop holds the target's leader lease, keep it renewed, release it at the end.

        Yields False when a stop came while standing by. With ``once`` a held lease fails at once.
        """
        target, ttl = self.provider.target, self.options.lease_ttl
        store = open_store(target)
        holder = runner_identity("reconciler reconcile")
        announced = False
        while True:
            current = store.try_lease(target, LEADER_LEASE, owner=self.lease_owner, ttl=ttl, holder=holder)
            if current is None:
                break
            if once:
                raise LockError(f"another reconcile loop is active on {target}: {describe_holder(current)}")
            if not announced:
                self.report(f"standing by: {describe_holder(current)} is the active loop on {target}")
                announced = True
            if self.stop.wait(min(ttl / 3, float(current.get("expires_in", ttl)) + 0.05)):
                yield False
                return
        if announced:
            self.report(f"took over as the active loop on {target}")
            # What the previous active loop applied, so that it is not applied again.
            _read_previous(self.status_path, self.status)
        done = threading.Event()

        def renew() -> None:
            while not done.wait(ttl / 3):
                try:
                    lost = store.try_lease(
                        target, LEADER_LEASE, owner=self.lease_owner, ttl=ttl, holder=holder
                    )
                except ReconcilerError:
                    lost = {}
                if lost is not None:
                    # Another replica may take over now: stop at the next safe point.
                    self.lease_lost.set()
                    self.stop.set()
                    return

        renewer = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        renewer.start()
        try:
            yield True
        finally:
            done.set()
            renewer.join()
            if not self.lease_lost.is_set():
                store.release_lease(target, LEADER_LEASE, owner=self.lease_owner)


@contextmanager
def stop_on_signals(
    stop: threading.Event, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGINT ask for a stop instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
