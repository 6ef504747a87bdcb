"""Test support: seeded fault and crash runs of the real command line, and the checks on what they leave.

- A fault run applies a changing desired state (creates, updates, a pause or start, restarts and a
  delete) through the Graph emulator while it throttles, fails, drops and stalls a share of the
  requests (20% by default; or it fails the first sending of every request). Then a fault-free apply
  must succeed, the next plan must be empty, and the tenant must hold exactly the desired state
  (``check_tenant``).
- A crash run kills ``reconciler apply`` with SIGKILL (through ``reconciler.testing.killswitch``) after
  a chosen provider write, after a chosen HTTP write, or after a random delay, once or twice, on a local
  or an emulated target. The next apply must say it recovered the lock, ``reconciler history`` must show
  the interrupted runs, and the tenant must converge.

Every run plants a configuration made outside reconciler (as the portal would) and an extra secret
key on a managed one, and checks both survive byte for byte; every run's output and files are
searched for its bearer token. ``tests/adversarial`` calls these functions with a few seeds;
``benchmarks/reliability.py`` with many, and prints the figures. The runs are made of the desired
states of ``desired_states``, the checks of ``tenant_checks`` and the child processes of ``commands``.

I/O: the folders it is given; emulators listen on 127.0.0.1; the command line runs as child processes
(killed by this module in crash runs).
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.engine.journal import RunRecord, read_runs
from reconciler.engine.lock import APPLY_LOCK
from reconciler.state import StateStore, canonical_target, default_sqlite_path
from reconciler.state.sqlite import SqliteStore
from reconciler.testing.commands import Result, child_env, cli, find_secret, killed_cli, token_for
from reconciler.testing.desired_states import ConfigSpec, Scenario, make_scenario, write_desired
from reconciler.testing.killswitch import KILL_ENV
from reconciler.testing.tenant_checks import Findings, Planted, check_tenant, plant, plant_extra_secret

__all__ = ["RunReport", "crash_run", "fault_run", "runs_of", "state_store"]

# How long the client waits for an answer in fault runs, and how long a stalled answer is held.
CLIENT_TIMEOUT = 1.0
STALL_SECONDS = 1.5


@dataclass(slots=True)
class RunReport:
    kind: str  # fault | crash
    seed: int
    target: str = ""
    mode: str = ""
    requests: int = 0
    faults: int = 0  # throttled, failed, dropped and timed-out requests
    fault_kinds: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    crash_kinds: list[str] = field(default_factory=list)  # after a write | in a write | at a moment
    converged: bool = False
    findings: Findings = field(default_factory=Findings)
    leaks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what went wrong besides the tenant
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, result: Result) -> Result:
        n = len(self.outputs) // 2
        self.outputs[f"{n}: stdout of {' '.join(result.args)}"] = result.out
        self.outputs[f"{n}: stderr of {' '.join(result.args)}"] = result.err
        if result.hung:
            self.problems.append("hung: " + result.describe())
        elif "Traceback" in result.out + result.err:
            self.problems.append("traceback: " + result.describe())
        elif result.code not in (0, 1, 2, -signal.SIGKILL):
            self.problems.append(result.describe())
        return result

    def expect(self, result: Result, code: int, what: str) -> Result:
        self.record(result)
        if result.code != code and not result.hung:
            self.problems.append(f"{what}: {result.describe()}")
        return result

    def summary(self) -> str:
        status = "converged" if self.converged else "NOT CONVERGED"
        line = (
            f"{self.kind} seed {self.seed} ({self.target}{', ' + self.mode if self.mode else ''}): {status}"
        )
        details = self.problems + self.findings.all() + [f"token found in {x}" for x in self.leaks]
        return line + "".join(f"\n    {d}" for d in details)


def _finish(
    report: RunReport, folder: Path, db: Path, expected: Sequence[ConfigSpec], planted: Planted, token: str
) -> RunReport:
    report.findings = check_tenant(db, expected, planted)
    report.leaks = find_secret(token, report.outputs, [folder])
    report.converged = not report.problems and report.findings.clean
    return report


def _first_apply(
    folder: Path, seed: int, kind: str, scenario: Scenario, report: RunReport
) -> tuple[str, Path, Path, dict[str, str], Planted]:
    """A run's start: a tenant with unmanaged objects planted, ``scenario.before`` applied to it on the
    local target, and a secret key we do not manage added. (token, db, configs, env, planted)."""
    token = token_for(seed, kind)
    db, configs = folder / "tenant.db", folder / "configs"
    env = child_env(folder, token)
    planted = plant(db)
    write_desired(configs, scenario.before)
    report.expect(
        cli(folder, "apply", "configs", "--auto-approve", "--target", f"local:{db}", env=env),
        0,
        "the first apply",
    )
    return token, db, configs, env, plant_extra_secret(db, planted, scenario.keeper)


def fault_run(seed: int, folder: Path, *, share: float = 0.2, every_request_once: bool = False) -> RunReport:
    """One fault run in ``folder`` (see the module docstring). ``share`` of the requests is hit:
    40% of that throttled, 50% failed or dropped, 10% timed out."""
    began = time.monotonic()
    scenario = make_scenario(seed)
    report = RunReport(
        "fault", seed, target="graph", mode="every request once" if every_request_once else f"{share:.0%}"
    )
    token, db, configs, env, planted = _first_apply(folder, seed, "fault", scenario, report)

    faulty = EmulatorConfig(
        token=token,
        seed=seed,
        throttle_rate=share * 0.4,
        fault_rate=share * 0.5,
        timeout_rate=share * 0.1,
        stall_seconds=STALL_SECONDS,
        fault_once=every_request_once,
        retry_after=0,
    )
    write_desired(configs, scenario.after)
    with Emulator(db, faulty) as emulator:
        faulty_env = child_env(folder, token, RECONCILER_GRAPH_TIMEOUT=str(CLIENT_TIMEOUT))
        report.record(
            cli(
                folder,
                "apply",
                "configs",
                "--auto-approve",
                "--allow-delete",
                "--target",
                emulator.target,
                env=faulty_env,
            )
        )
        report.requests = emulator.stats["requests"]
        stats = emulator.stats
        report.fault_kinds = {
            "429": stats["throttled"],
            "5xx or dropped": stats["faults"],
            "timed out": stats["timeouts"],
        }
        report.faults = sum(report.fault_kinds.values())
    with Emulator(db, EmulatorConfig(token=token)) as emulator:
        target = ("--target", emulator.target)
        report.expect(
            cli(folder, "apply", "configs", "--auto-approve", "--allow-delete", *target, env=env),
            0,
            "the fault-free apply",
        )
        report.expect(
            cli(folder, "plan", "configs", "--detailed-exitcode", "--allow-delete", *target, env=env),
            0,
            "the plan after it",
        )
    report.seconds = time.monotonic() - began
    return _finish(report, folder, db, scenario.after, planted, token)


def state_store(folder: Path, target: str) -> StateStore:
    """The state store the commands run in ``folder`` use for ``target`` (the default SQLite one)."""
    key = canonical_target(target)
    return SqliteStore(default_sqlite_path(key, folder / "state"))


def runs_of(folder: Path, target: str) -> list[RunRecord]:
    """Every run the journal of ``target`` holds, as the commands run in ``folder`` recorded it."""
    return read_runs(target, state_store(folder, target))


def _holder_left(folder: Path, target: str) -> bool:
    return state_store(folder, target).lock_holder(canonical_target(target), APPLY_LOCK) is not None


def _interrupted(folder: Path, target: str) -> int:
    return sum(1 for r in runs_of(folder, target) if r.result == "interrupted")


def _planned_changes(
    report: RunReport, folder: Path, target: str, env: Mapping[str, str]
) -> tuple[int, float]:
    """How many changes the next apply will make, and how long planning them took (start-up included)."""
    began = time.monotonic()
    result = report.expect(
        cli(folder, "plan", "configs", "--allow-delete", "--format", "json", "--target", target, env=env),
        0,
        "the plan before a crash",
    )
    took = time.monotonic() - began
    try:
        return len(json.loads(result.out)["changes"]), took
    except (ValueError, KeyError, TypeError):
        report.problems.append("the plan before a crash is not JSON")
        return 0, took


def _crash_once(
    report: RunReport,
    rng: random.Random,
    folder: Path,
    target: str,
    env: Mapping[str, str],
    modes: Sequence[str],
) -> None:
    changes, planning = _planned_changes(report, folder, target, env)
    if changes == 0:
        return
    mode = rng.choice(modes)
    args = ("apply", "configs", "--auto-approve", "--allow-delete", "--target", target)
    began_runs = len(runs_of(folder, target))
    if mode == "timer":
        # The apply plans as long as the plan did, then writes: a moment from start-up to the writes.
        after = rng.uniform(0.5, 1.5) * planning
        result = killed_cli(folder, *args, env=env, after=after)
        label = f"timer {after:.2f}s" + ("" if result.code == -signal.SIGKILL else " (it finished first)")
    else:
        limit = rng.randint(1, changes) if mode == "write" else rng.randint(1, 3 * changes)
        setting = str(limit) if mode == "write" else f"http:{limit}"
        result = killed_cli(folder, *args, env={**env, KILL_ENV: setting}, after=None)
        label = f"{KILL_ENV}={setting}"
    report.record(result)
    report.mode = ", ".join(filter(None, (report.mode, label)))
    if result.code != -signal.SIGKILL:
        return
    report.crashes += 1
    report.crash_kinds.append(
        {"write": "after a write", "http": "inside a write", "timer": "at a random moment"}[mode]
    )
    if mode != "timer":
        # Killed after a write: the run had journaled its start, and not its end.
        runs = runs_of(folder, target)
        if len(runs) <= began_runs or runs[-1].result != "interrupted":
            report.problems.append(f"the journal does not show the run killed by {label} as interrupted")


def crash_run(
    seed: int,
    folder: Path,
    *,
    graph: bool | None = None,
    modes: Sequence[str] | None = None,
    kills: int | None = None,
) -> RunReport:
    """One crash run in ``folder`` (see the module docstring). Unless given: the target is the
    emulator for odd seeds and the local tenant for even ones; the kill is after a provider write, an
    HTTP write (Graph only) or a random delay; one kill, or two (the second in the recovering run)."""
    began = time.monotonic()
    rng = random.Random(seed * 7919)
    scenario = make_scenario(seed)
    graph = seed % 2 == 1 if graph is None else graph
    modes = modes or (("write", "http", "timer") if graph else ("write", "timer"))
    report = RunReport("crash", seed, target="graph" if graph else "local")
    token, db, configs, env, planted = _first_apply(folder, seed, "crash", scenario, report)
    write_desired(configs, scenario.after)
    with contextlib.ExitStack() as stack:
        target = f"local:{db}"
        if graph:
            target = stack.enter_context(Emulator(db, EmulatorConfig(token=token))).target
        for _ in range(kills or (1 if rng.random() < 0.7 else 2)):
            _crash_once(report, rng, folder, target, env, modes)
        holder = _holder_left(folder, target)
        interrupted = _interrupted(folder, target)
        recovery = report.expect(
            cli(folder, "apply", "configs", "--auto-approve", "--allow-delete", "--target", target, env=env),
            0,
            "the apply after the crash",
        )
        if holder and "it was recovered" not in recovery.err:
            report.problems.append("the apply after the crash did not say it recovered the lock")
        if _holder_left(folder, target):
            report.problems.append("a lock holder is left after the recovering apply")
        history = report.expect(
            cli(folder, "history", "--format", "json", "-n", "100", "--target", target, env=env), 0, "history"
        )
        try:
            shown = sum(1 for r in json.loads(history.out) if r.get("result") == "interrupted")
        except ValueError:
            shown = -1
        if shown != interrupted:
            report.problems.append(
                f"history shows {shown} interrupted run(s), the journal holds {interrupted}"
            )
        report.expect(
            cli(
                folder,
                "plan",
                "configs",
                "--detailed-exitcode",
                "--allow-delete",
                "--target",
                target,
                env=env,
            ),
            0,
            "the plan after recovery",
        )
    report.seconds = time.monotonic() - began
    return _finish(report, folder, db, scenario.after, planted, token)
