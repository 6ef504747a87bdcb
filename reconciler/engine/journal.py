"""The apply journal: every apply, restart and reconcile pass, append-only, in the target's state store.

Each run writes ``run-start`` (with the runner's identity: host, user, CI run id, and the commit and plan
digest), then ``change-start``/``change-end`` around every write to the target, then ``run-end``. A run
killed part-way leaves a start without an end, which ``history`` shows as interrupted. Every entry has a
unique id, so an entry written twice (a retried write) is kept once. Entries hold names, actions,
outcomes and error messages, never credentials.

I/O: the state store of the target.
"""

from __future__ import annotations

import datetime as _dt
import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import StateError
from reconciler.state import canonical_target, open_store
from reconciler.state.base import JournalEntry, StateStore, runner_identity

__all__ = ["ChangeOutcome", "Event", "Journal", "RunRecord", "RunResult", "read_runs"]


class Event(enum.StrEnum):
    """The kinds of journal entry, in the order a run writes them."""

    RUN_START = "run-start"
    CHANGE_START = "change-start"  # before one write to the target
    CHANGE_END = "change-end"  # after it, with its outcome
    RUN_END = "run-end"


class ChangeOutcome(enum.StrEnum):
    """How one change ended: what apply reports, and ``outcome`` of its ``change-end``."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # not tried: an earlier change of its configuration failed, or a stop was asked
    INTERRUPTED = "interrupted"  # read back only: a change-start without its change-end


class RunResult(enum.StrEnum):
    """How a run ended: ``result`` of its ``run-end``."""

    OK = "ok"
    FAILED = "failed"  # some change failed or was skipped
    ERROR = "error"  # the run stopped on an error of its own
    INTERRUPTED = "interrupted"  # read back only: a run-start without its run-end


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


class Journal:
    """Appends the entries of one run against ``target``. Thread-safe; each entry is committed as written.

    A store that cannot take an entry raises ``StateError``: the apply stops there, before its next
    write to the target.
    """

    def __init__(self, target: str, store: StateStore | None = None) -> None:
        self.target = target
        self.store = store or open_store(target)
        self.run_id = uuid.uuid4().hex[:12]

    def write(self, event: Event, **data: Any) -> None:
        if event == Event.RUN_START:
            data = {k: v for k, v in runner_identity().items() if k != "since"} | data
        entry = JournalEntry(uuid.uuid4().hex, self.run_id, event, _now(), data)
        try:
            self.store.append(self.target, [entry])
        except StateError as exc:
            if event == Event.RUN_START:
                raise
            raise StateError(
                f"{exc}; the run stopped before its next change to the target (the next plan shows what "
                "is left)"
            ) from None


@dataclass
class RunRecord:
    run: str
    started: str
    kind: str
    target: str
    user: str | None
    commit: str | None
    ended: str | None = None
    result: str = RunResult.INTERRUPTED
    changes: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def read_runs(target: str | None = None, store: StateStore | None = None) -> list[RunRecord]:
    """Every run against ``target`` (None: the default target) in its store (or ``store``), oldest first.

    Runs with no ``run-end`` keep result ``interrupted``.
    """
    target = canonical_target(target)
    store = store or open_store(target)
    runs: dict[str, RunRecord] = {}
    open_changes: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in store.entries(target):
        run = str(e.get("run"))
        event = e.get("event")
        if event == Event.RUN_START:
            runs[run] = RunRecord(
                run=run,
                started=str(e.get("time")),
                kind=str(e.get("kind", "apply")),
                target=str(e.get("target", target)),
                user=e.get("user"),
                commit=e.get("commit"),
                extra={k: v for k, v in e.items() if k not in {"time", "run", "event", "kind", "target"}},
            )
            continue
        rec = runs.get(run)
        if rec is None:
            continue
        if event == Event.CHANGE_START:
            change: dict[str, Any] = {
                "name": e.get("name"),
                "action": e.get("action"),
                "outcome": ChangeOutcome.INTERRUPTED,
                "started": e.get("time"),
            }
            if e.get("quarantine_since"):
                # An approval of held deletes names the quarantine it approved.
                change["quarantine_since"] = e.get("quarantine_since")
                change["held_deletes"] = e.get("held_deletes")
            rec.changes.append(change)
            open_changes[(run, str(e.get("name")), str(e.get("action")))] = change
        elif event == Event.CHANGE_END:
            ended = open_changes.pop((run, str(e.get("name")), str(e.get("action"))), None)
            if ended is not None:
                ended["outcome"] = e.get("outcome")
                if e.get("error"):
                    ended["error"] = e.get("error")
        elif event == Event.RUN_END:
            rec.ended = str(e.get("time"))
            rec.result = str(e.get("result", RunResult.OK))
    return list(runs.values())
