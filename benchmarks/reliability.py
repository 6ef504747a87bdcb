"""Reliability figures: seeded fault, crash and hostile-input runs through the real command line.

    python -m benchmarks.reliability --runs 50 [--crash-runs 50] [--hostile-seeds 5] [--jobs 4] [--seed 1]

- A fault run applies a changing desired state (creates, updates, a pause or start, restarts and a
  delete) through the Graph emulator while it throttles, fails, drops and stalls a share of the
  requests (``--fault-share``, 20% by default; every tenth run instead fails the first sending of
  every request). Then a fault-free apply must succeed, the next plan must be empty, and the tenant
  must hold exactly the desired state (``check_tenant``).
- A crash run kills ``reconciler apply`` with SIGKILL, after a chosen provider write (before apply
  journals it), after a chosen HTTP write (in the middle of a provider write), or after a random
  delay, once or twice, on a local or an emulated target. The next apply must say it recovered the
  lock, ``reconciler history`` must show the interrupted runs, and the tenant must converge.
- Hostile runs (``reconciler.testing.hostile``) feed malformed plan files, YAML, expressions and Graph answers
  to the command line; each must end in a clear error (or, for valid input, be accepted), never a
  traceback, a hang or a write.

Every run plants a configuration made outside reconciler (as the portal would) and an extra secret
key on a managed one, and checks both survive byte for byte; every run's output and files are
searched for its bearer token. The runs themselves are ``reconciler.testing.scenarios``, which the
tests in ``tests/adversarial`` call with a few seeds.

I/O: temporary folders only; emulators listen on 127.0.0.1; the command line runs as child
processes (killed by this module in crash runs).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from reconciler.testing.scenarios import RunReport, crash_run, fault_run

# --------------------------------------------------------------------------------------------------
# figures


def _in_temp(kind: str, seed: int, **kwargs: Any) -> RunReport:
    with tempfile.TemporaryDirectory(prefix=f"reliability-{kind}-{seed}-") as tmp:
        folder = Path(tmp)
        if kind == "fault":
            return fault_run(seed, folder, **kwargs)
        return crash_run(seed, folder)


def _hostile(seeds: Sequence[int]) -> Any:
    from reconciler.testing.hostile import run_corpus

    with tempfile.TemporaryDirectory(prefix="reliability-hostile-") as tmp:
        return run_corpus(Path(tmp), seeds)


def _kinds(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50, help="fault runs (default 50)")
    parser.add_argument("--crash-runs", type=int, default=None, help="crash runs (default: as --runs)")
    parser.add_argument("--hostile-seeds", type=int, default=5, help="seeds of random hostile inputs")
    parser.add_argument("--fault-share", type=float, default=0.2, help="share of requests hit in fault runs")
    parser.add_argument("--seed", type=int, default=1, help="first seed")
    parser.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="runs at once")
    parser.add_argument("--verbose", action="store_true", help="a line per run")
    args = parser.parse_args(argv)
    crash_runs = args.runs if args.crash_runs is None else args.crash_runs
    began = time.monotonic()
    seeds = range(args.seed, args.seed + max(args.runs, crash_runs))
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(
                _in_temp, "fault", s, share=args.fault_share, every_request_once=(s - args.seed) % 10 == 9
            )
            for s in seeds[: args.runs]
        ]
        futures += [pool.submit(_in_temp, "crash", s) for s in seeds[:crash_runs]]
        hostile = _hostile(range(args.seed, args.seed + args.hostile_seeds))
        reports: list[RunReport] = [f.result() for f in futures]
    faults = [r for r in reports if r.kind == "fault"]
    crashes = [r for r in reports if r.kind == "crash"]
    fault_kinds: collections.Counter[str] = collections.Counter()
    for r in faults:
        fault_kinds.update(r.fault_kinds)
    crash_kinds = collections.Counter(k for r in crashes for k in r.crash_kinds)
    hostile_kinds = collections.Counter(o.kind for o in hostile.outcomes)
    for r in reports:
        if args.verbose or not r.converged or r.leaks:
            print(r.summary())
    for line in hostile.failures:
        print("hostile input not handled cleanly: " + line)
    leaked = sum(len(r.leaks) for r in reports) + hostile.leaks
    command = (
        f"python -m benchmarks.reliability --runs {args.runs} --crash-runs {crash_runs} "
        f"--hostile-seeds {args.hostile_seeds} --seed {args.seed}"
    )
    print(f"reliability figures ({time.monotonic() - began:.0f}s): {command}")
    rows = [
        ("runs", f"{len(reports)} ({len(faults)} fault, {len(crashes)} crash)"),
        ("requests in faulty applies", f"{sum(r.requests for r in faults)} (HTTP; a $batch counts once)"),
        ("faults injected", f"{sum(r.faults for r in faults)} ({_kinds(fault_kinds)}; in $batch too)"),
        ("crashes injected", f"{sum(r.crashes for r in crashes)} SIGKILL ({_kinds(crash_kinds)})"),
        ("runs converged", f"{sum(r.converged for r in reports)} of {len(reports)}"),
        ("objects lost", f"{sum(len(r.findings.lost) for r in reports)}"),
        ("duplicates", f"{sum(len(r.findings.duplicates) for r in reports)}"),
        ("objects not as desired", f"{sum(len(r.findings.mismatched) for r in reports)}"),
        ("unmanaged objects touched", f"{sum(len(r.findings.touched) for r in reports)}"),
        ("restarts lost", f"{sum(len(r.findings.restarts_lost) for r in reports)}"),
        ("secrets leaked", f"{leaked}"),
        ("hostile inputs tried", f"{hostile.tried} ({_kinds(hostile_kinds)})"),
        ("  rejected cleanly", f"{hostile.rejected}"),
        ("  accepted (valid input)", f"{hostile.accepted}"),
        ("  not handled cleanly", f"{len(hostile.failures)}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    bad = any(not r.converged for r in reports) or leaked or hostile.failures
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
