"""The reconcile loop as ``serve`` runs it: the engine's loop, plus metrics and a snapshot after each pass.

After every pass the active loop reads the target once more and plans from the commit it followed,
and stores the result as the health snapshot (``reconciler.engine.health``) and the serve snapshot
(``reconciler.serve.snapshot``) in the state store, where
every replica's pages and metrics read it. A push webhook that reached another replica is passed on
through the store too (``HOOK_KEY``): ``HookWatcher.announce`` records it there, and every replica's
watcher looks at it every ``HOOK_POLL`` seconds and nudges its loop when a new one is there (only the
active loop runs passes; a standby's nudge is dropped when it takes over).

I/O: the engine loop's (git, target, state store), the target read and store writes of the snapshots.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from reconciler.core.model import DesiredState
from reconciler.core.observed import Observed
from reconciler.core.plan import Plan
from reconciler.engine.health import record_observed
from reconciler.engine.operations import AppliedRun, plan_observed
from reconciler.engine.reconcile import LoopOptions, PassResult, Reconciler
from reconciler.errors import LoadError, ReconcilerError
from reconciler.git.repo import CommitInfo, cache_folder
from reconciler.git.source import Clone
from reconciler.git.source import load as load_source
from reconciler.providers.base import Provider
from reconciler.serve import snapshot
from reconciler.serve.metrics import Metrics
from reconciler.state import open_store

__all__ = ["HOOK_KEY", "HOOK_POLL", "HookWatcher", "ServeLoop"]

HOOK_KEY = "serve-hook"
HOOK_POLL = 2.0
# A pass that ended this way ran to its end; drift found is a successful pass (it is its own alert).
_SUCCESS = frozenset((PassResult.IN_SYNC, PassResult.APPLIED, PassResult.HEALED, PassResult.DRIFT))


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class ServeLoop(Reconciler):
    """``Reconciler`` with pass metrics, apply outcomes and the snapshot written after each pass."""

    def __init__(
        self,
        options: LoopOptions,
        provider: Provider,
        metrics: Metrics,
        *,
        report: Callable[[str], None] = lambda _line: None,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(options, provider, report=report, stop=stop)
        self.metrics = metrics
        previous = open_store(provider.target).get_status(provider.target, snapshot.SNAPSHOT_KEY) or {}
        self.last_success_at: str | None = previous.get("lastSuccessAt")
        self.drift_since: dict[str, dict[str, str]] = previous.get("driftSince") or {}

    @property
    def leading(self) -> bool:
        """True while this replica's loop holds the leader lease and runs passes."""
        return self.status.state == "running"

    def run_pass(self) -> PassResult:
        began = time.monotonic()
        result = super().run_pass()
        if result in _SUCCESS:
            self.last_success_at = _now()
        try:
            self.store_snapshot()
        except ReconcilerError as exc:
            self.report(f"the dashboard snapshot was not stored: {exc}")
        self.metrics.pass_finished(result.value, time.monotonic() - began)
        return result

    def _apply(
        self,
        head: CommitInfo,
        state: DesiredState,
        kind: str,
        approve: Callable[[Plan], bool] | None = None,
    ) -> AppliedRun:
        run = super()._apply(head, state, kind, approve)
        self.metrics.applied(run.result)
        return run

    def _observe(self, observed: tuple[Observed, ...]) -> None:
        """Nothing: ``store_snapshot`` records the health snapshot from its read after the pass."""

    def _plan(self, commit: str, observed: tuple[Observed, ...]) -> Plan:
        opts = self.options
        folder = cache_folder(opts.source, self.cache)
        state = load_source(Clone(str(folder), commit, tuple(opts.paths))).result.state
        return plan_observed(state, observed, self.provider, opts.plan_options)

    def _drift_since(self) -> dict[str, dict[str, str]]:
        """Per configuration and drifted field, when the difference was first seen (the loop's status
        says when it was seen last); a field that stops drifting is forgotten."""
        since: dict[str, dict[str, str]] = {}
        for name, entry in self.status.drift.items():
            before = self.drift_since.get(name) or {}
            for change in entry.get("changes") or ():
                field = str(change.get("field"))
                since.setdefault(name, {})[field] = before.get(field) or str(change.get("seenAt"))
        self.drift_since = since
        return since

    def store_snapshot(self) -> None:
        """Read the target, plan from the last commit seen, and store what the pages show: the health
        snapshot (``reconciler.engine.health``, every job) and the serve snapshot (the plan)."""
        target = self.provider.target
        observed = self.provider.read_all()
        record_observed(target, observed, complete=True, command="reconciler serve")
        commit = self.status.last_seen_commit
        plan: Plan | None = None
        plan_error = None
        if commit:
            try:
                plan = self._plan(commit, observed)
            except LoadError as exc:
                problems = [str(d) for d in exc.diagnostics if d.severity == "error"]
                plan_error = f"the desired state at {commit[:12]} does not load: " + "; ".join(problems[:5])
            except ReconcilerError as exc:
                plan_error = str(exc)
        doc: dict[str, Any] = snapshot.build(observed, plan, commit=commit, plan_error=plan_error)
        doc["lastSuccessAt"] = self.last_success_at
        doc["driftSince"] = self._drift_since()
        open_store(target).put_status(target, snapshot.SNAPSHOT_KEY, doc)


class HookWatcher:
    """Nudges ``loop`` when another replica recorded a push (``announce_push``)."""

    def __init__(self, loop: Reconciler, poll: float = HOOK_POLL) -> None:
        self.loop = loop
        self.poll = poll
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hook-watcher", daemon=True)

    def announce(self, branch: str, commit: str | None) -> None:
        """A push reached this replica: nudge the local loop and record it for the active one."""
        marker = uuid.uuid4().hex
        with self._lock:
            self._seen.add(marker)  # this process nudges for it now, not again when it reads it back
        self.loop.nudge()
        target = self.loop.provider.target
        doc = {"id": marker, "at": _now(), "branch": branch, "commit": commit}
        open_store(target).put_status(target, HOOK_KEY, doc)

    def _current(self) -> str | None:
        target = self.loop.provider.target
        doc = open_store(target).get_status(target, HOOK_KEY)
        marker = doc.get("id") if isinstance(doc, dict) else None
        return marker if isinstance(marker, str) else None

    def _watch(self) -> None:
        try:
            last = self._current()
        except ReconcilerError:
            last = None
        while not self._done.wait(self.poll):
            try:
                marker = self._current()
            except ReconcilerError:
                continue  # the store is away for now; /readyz says so
            if marker is None or marker == last:
                continue
            last = marker
            with self._lock:
                ours = marker in self._seen
            if not ours:
                self.loop.nudge()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join()
