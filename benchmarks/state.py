"""Benchmark and concurrency runs of the state store (SQLite and PostgreSQL).

* **lock and journal**: the median of lock acquire+release and of one journal append, per backend;
* **no-op overhead**: whole processes, ``reconciler plan`` (touches no state) against ``reconciler apply
  --auto-approve`` of N in-sync configurations (the same plan under the lock: the store opened, the
  lock taken and released, nothing journaled), run in turns so that both meet the same load; the
  overhead is their difference as a share of the plan's time, in wall-clock and in CPU seconds (CPU
  time is what a machine shared with other work measures steadily);
* **store cost**: the store's part of that, alone: a whole process that opens the store and takes and
  releases the lock, against one that only imports the same modules of ours (the driver's import and
  the connection are the difference);
* **concurrent appliers**: N ``reconciler apply`` processes from N checkouts at once against one target;
  counts journaled runs that overlap in time, journal entries lost (a change started and never ended, a
  run never ended) or repeated, and processes that did not exit 0.

    python -m benchmarks.state [--postgresql URL] [--configs 1000] [--appliers 20]

Without ``--postgresql`` only SQLite is measured. Writes only to a temporary folder (and, with
``--postgresql``, to that database: use an empty one).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.state import open_url
from reconciler.state.base import JournalEntry, StateStore, runner_identity
from reconciler.testing.appliers import COMMAND_TIMEOUT, command, command_env, concurrent_applies
from reconciler.testing.corpus import write_corpus

__all__ = ["lock_and_append", "noop_overhead", "store_cost"]


def lock_and_append(store: StateStore, rounds: int = 200) -> dict[str, float]:
    """Median seconds of one lock acquire+release and of one journal append on ``store``."""
    target = f"memory:bench-{uuid.uuid4().hex[:8]}"
    holder = runner_identity("benchmark")
    locks, appends = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        with store.lock(target, "apply", timeout=10, holder=holder):
            pass
        locks.append(time.perf_counter() - began)
    for i in range(rounds):
        entry = JournalEntry(uuid.uuid4().hex, "bench", "change-end", "", {"name": f"c{i}", "outcome": "ok"})
        began = time.perf_counter()
        store.append(target, [entry])
        appends.append(time.perf_counter() - began)
    return {"lock_s": statistics.median(locks), "append_s": statistics.median(appends)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_process(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one process."""
    cpu, began = _cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=COMMAND_TIMEOUT)
    took, used = time.perf_counter() - began, _cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return took, used


def _timed(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> float:
    return _timed_process(command(args), cwd, env)[0]


def _best(runs: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def noop_overhead(folder: Path, state_url: str, configs: int, repeat: int = 5) -> dict[str, float]:
    """Best-of-``repeat`` whole-process seconds (wall and CPU) of a no-op plan and a no-op apply, run in
    turns so that both meet the same load, and the overhead shares."""
    folder.mkdir(parents=True, exist_ok=True)
    write_corpus(folder / "configs", configs)
    target = f"local:{folder / 'tenant.db'}"
    env = command_env(state_url, RECONCILER_TARGET=target)
    _timed(["apply", "configs", "--auto-approve", "--parallelism", "4"], folder, env)
    plans, applies = [], []
    for _ in range(repeat):
        plans.append(_timed_process(command(["plan", "configs"]), folder, env))
        applies.append(_timed_process(command(["apply", "configs", "--auto-approve"]), folder, env))
    (plan, plan_cpu), (apply, apply_cpu) = _best(plans), _best(applies)
    return {
        "plan_s": plan,
        "apply_s": apply,
        "overhead_share": (apply - plan) / plan,
        "plan_cpu_s": plan_cpu,
        "apply_cpu_s": apply_cpu,
        "overhead_cpu_share": (apply_cpu - plan_cpu) / plan_cpu,
    }


_IMPORT_ONLY = "import reconciler.state, reconciler.state.base"
_OPEN_AND_LOCK = """
import sys
from reconciler.state import open_url
from reconciler.state.base import runner_identity
store = open_url(sys.argv[1])
with store.lock("memory:store-cost", "apply", timeout=60, holder=runner_identity("benchmark")):
    pass
store.close()
"""


def store_cost(state_url: str, repeat: int = 5) -> dict[str, float]:
    """Best-of-``repeat`` whole-process seconds (wall and CPU) that opening the store and taking and
    releasing the lock add to a process, the driver's import and the connection included."""
    env = command_env(state_url)
    bare, used = [], []
    for _ in range(repeat):
        bare.append(_timed_process([sys.executable, "-c", _IMPORT_ONLY], Path.cwd(), env))
        used.append(_timed_process([sys.executable, "-c", _OPEN_AND_LOCK, state_url], Path.cwd(), env))
    (bare_s, bare_cpu), (used_s, used_cpu) = _best(bare), _best(used)
    return {"store_s": used_s - bare_s, "store_cpu_s": used_cpu - bare_cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql", metavar="URL", help="an empty PostgreSQL database to measure too")
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--appliers", type=int, default=20)
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="reconciler-state-bench-") as tmp:
        backends = {"sqlite": f"sqlite:{Path(tmp) / 'state.db'}"}
        if args.postgresql:
            backends["postgresql"] = args.postgresql
        for name, url in backends.items():
            store = open_url(url)
            try:
                out[name] = lock_and_append(store)
            finally:
                store.close()
            out[name]["noop"] = noop_overhead(Path(tmp) / f"noop-{name}", url, args.configs)
            out[name]["store"] = store_cost(url)
            report = concurrent_applies(Path(tmp) / f"race-{name}", url, args.appliers)
            out[name]["concurrent"] = {
                "appliers": report.appliers,
                "failed": report.failed,
                "journaled_runs": report.runs,
                "overlaps": report.overlaps,
                "problems": report.problems,
                "seconds": round(report.seconds, 2),
            }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
