"""The apply journal: every apply, restart and reconcile pass, append-only, one JSON object a line.

Each run writes ``run-start``, then ``change-start``/``change-end`` around every write to the target, then
``run-end``. A run killed part-way leaves a start without an end, which ``history`` shows as interrupted.
Entries hold names, actions, outcomes and error messages, never credentials.

I/O: ``journal.jsonl`` in the state folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.engine.state import ensure_state_dir, private_dir, state_dir
from reconciler.errors import StateFileError

__all__ = ["Journal", "RunRecord", "read_runs"]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


class Journal:
    """Appends the entries of one run. Thread-safe; each entry is flushed as it is written."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or ensure_state_dir() / "journal.jsonl"
        private_dir(self.path.parent)
        self.run_id = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()

    def write(self, event: str, **data: Any) -> None:
        entry = {"time": _now(), "run": self.run_id, "event": event, **data}
        line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            # O_NONBLOCK: a named pipe put where the journal belongs must not stall the run.
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    # Checked at every entry; the first one (run-start) comes before any change.
                    raise StateFileError(
                        f"{self.path} is not a regular file; the journal cannot be kept there"
                    )
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # A run killed in the middle of a line left it unfinished: end it, so that this
                    # entry is not glued to it and lost along with it.
                    line = b"\n" + line
                # One write call per entry, so that concurrent runs never interleave inside a line.
                while line:
                    line = line[os.write(fd, line) :]
                if event in ("run-start", "run-end"):
                    os.fsync(fd)
            finally:
                os.close(fd)


@dataclass
class RunRecord:
    run: str
    started: str
    kind: str
    target: str
    user: str | None
    commit: str | None
    ended: str | None = None
    result: str = "interrupted"
    changes: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _entries(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(entry, dict):
                yield entry


def read_runs(path: Path | None = None) -> list[RunRecord]:
    """Every run in the journal, oldest first; runs with no ``run-end`` keep result ``interrupted``."""
    runs: dict[str, RunRecord] = {}
    open_changes: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in _entries(path or state_dir() / "journal.jsonl"):
        run = str(e.get("run"))
        event = e.get("event")
        if event == "run-start":
            runs[run] = RunRecord(
                run=run,
                started=str(e.get("time")),
                kind=str(e.get("kind", "apply")),
                target=str(e.get("target", "")),
                user=e.get("user"),
                commit=e.get("commit"),
                extra={k: v for k, v in e.items() if k not in {"time", "run", "event", "kind", "target"}},
            )
            continue
        rec = runs.get(run)
        if rec is None:
            continue
        if event == "change-start":
            change: dict[str, Any] = {
                "name": e.get("name"),
                "action": e.get("action"),
                "outcome": "interrupted",
                "started": e.get("time"),
            }
            rec.changes.append(change)
            open_changes[(run, str(e.get("name")), str(e.get("action")))] = change
        elif event == "change-end":
            ended = open_changes.pop((run, str(e.get("name")), str(e.get("action"))), None)
            if ended is not None:
                ended["outcome"] = e.get("outcome")
                if e.get("error"):
                    ended["error"] = e.get("error")
        elif event == "run-end":
            rec.ended = str(e.get("time"))
            rec.result = str(e.get("result", "ok"))
    return list(runs.values())
