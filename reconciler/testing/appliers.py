"""Many ``reconciler apply`` processes at once against one target, and the checks on the journal they leave.

``concurrent_applies`` starts N appliers, each in its own checkout of the same desired state (a corpus
from ``corpus``), waits for them, and reports exit codes, journaled runs that overlapped in time, and
entries lost or repeated (``journal_problems``); the state-store tests and ``benchmarks.state`` run it.

I/O: writes checkouts into the folder the caller gives, runs the command line as child processes, and
reads the target's state store.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.state import canonical_target, open_url
from reconciler.testing.corpus import write_corpus

__all__ = [
    "COMMAND_TIMEOUT",
    "ConcurrencyReport",
    "command",
    "command_env",
    "concurrent_applies",
    "journal_problems",
    "run_intervals",
]

COMMAND_TIMEOUT = 600.0


def command_env(state_url: str, **extra: str) -> dict[str, str]:
    """The environment of a child ``reconciler``: no RECONCILER_* of this process, this state store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_STATE=state_url, NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def command(args: Sequence[str]) -> list[str]:
    """The command line that runs ``reconciler ARGS`` with this interpreter."""
    return [sys.executable, "-m", "reconciler", *args]


@dataclass
class ConcurrencyReport:
    appliers: int
    exit_codes: list[int] = field(default_factory=list)
    runs: int = 0
    overlaps: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(code != 0 for code in self.exit_codes)


def run_intervals(entries: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(start, end, run) of every journaled run that ended, by start time."""
    starts: dict[str, str] = {}
    found = []
    for e in entries:
        if e["event"] == "run-start":
            starts[e["run"]] = e["time"]
        elif e["event"] == "run-end" and e["run"] in starts:
            found.append((starts[e["run"]], e["time"], e["run"]))
    return sorted(found)


def _overlaps(intervals: Sequence[tuple[str, str, str]]) -> int:
    return sum(1 for (_, end, _a), (start, _, _b) in itertools.pairwise(intervals) if start < end)


def journal_problems(entries: Sequence[dict[str, Any]], *, interrupted_ok: int = 0) -> list[str]:
    """Entries lost or repeated: every change-start has one change-end, every run one start and end."""
    problems = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for e in entries:
        key = (e["run"], e["event"], str(e.get("name")), str(e.get("action")))
        seen[key] = seen.get(key, 0) + 1
    repeated = [k for k, n in seen.items() if n > 1]
    if repeated:
        problems.append(f"{len(repeated)} journal entries repeated, e.g. {repeated[0]}")
    started = {(r, n, a) for (r, ev, n, a) in seen if ev == "change-start"}
    ended = {(r, n, a) for (r, ev, n, a) in seen if ev == "change-end"}
    runs = {r for (r, ev, _n, _a) in seen if ev == "run-start"}
    finished = {r for (r, ev, _n, _a) in seen if ev == "run-end"}
    unfinished = {r for (r, _n, _a) in started - ended} | (runs - finished)
    if len(unfinished) > interrupted_ok:
        problems.append(f"{len(unfinished)} run(s) with entries missing: {sorted(unfinished)[:3]}")
    if ended - started or finished - runs:
        problems.append("journal ends without their starts")
    return problems


def concurrent_applies(folder: Path, state_url: str, appliers: int, configs: int = 10) -> ConcurrencyReport:
    """``appliers`` processes, each in its own checkout of the same desired state, apply at once."""
    target = f"local:{folder / 'tenant.db'}"
    env = command_env(state_url)
    for i in range(appliers):
        write_corpus(folder / f"checkout-{i}" / "configs", configs, mappings=5)
    report = ConcurrencyReport(appliers)
    args = [
        "apply",
        "configs",
        "--auto-approve",
        "--lock-timeout",
        str(int(COMMAND_TIMEOUT)),
        "--target",
        target,
    ]
    began = time.perf_counter()
    procs = [
        subprocess.Popen(
            command(args),
            cwd=folder / f"checkout-{i}",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(appliers)
    ]
    for p in procs:
        out, err = p.communicate(timeout=COMMAND_TIMEOUT)
        report.exit_codes.append(p.returncode)
        report.outputs.append(out + err)
    report.seconds = time.perf_counter() - began
    key = canonical_target(target)
    store = open_url(state_url)
    try:
        entries = list(store.entries(key))
    finally:
        store.close()
    intervals = run_intervals(entries)
    report.runs = len(intervals)
    report.overlaps = _overlaps(intervals)
    report.problems = journal_problems(entries)
    check = subprocess.run(
        command(["plan", "configs", "--detailed-exitcode", "--target", target]),
        cwd=folder / "checkout-0",
        env=env,
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
    )
    if check.returncode != 0:
        report.problems.append(f"the plan after the applies exits {check.returncode}: not converged")
    return report
