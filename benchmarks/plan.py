"""Benchmark: a plan with no changes over N configurations (60 mappings each) against a local tenant.

The baseline, measured in the same run on the same files, is PyYAML's C loader parsing them and nothing
else. Target: the full no-change plan (load + validate + read the tenant + plan) within 2x of that parse.
Peak memory of a plan process is measured in a child process; target under 1 GiB at 10,000 configurations.

    python -m benchmarks.plan [--configs 1000] [--memory-configs 10000]

Writes only to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from reconciler.testing.corpus import write_corpus


def _best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def _parse_only(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as fh:
            list(yaml.load_all(fh, Loader=yaml.CSafeLoader))


def _populate(folder: Path, db: Path) -> float:
    from reconciler.core.plan import PlanOptions, Provenance
    from reconciler.engine.operations import load_desired, plan_and_apply
    from reconciler.providers.local import LocalProvider

    provider = LocalProvider(str(db))
    began = time.perf_counter()
    state = load_desired([str(folder)]).state
    run = plan_and_apply(state, provider, PlanOptions(), Provenance(), parallelism=4)
    assert run.result.ok, [o.error for o in run.result.outcomes if o.error][:3]
    provider.close()
    return time.perf_counter() - began


def _plan_once(folder: Path, db: Path) -> int:
    from reconciler.core.plan import PlanOptions
    from reconciler.engine.operations import run_plan
    from reconciler.providers.local import LocalProvider

    provider = LocalProvider(str(db))
    plan, _ = run_plan([str(folder)], provider, PlanOptions())
    provider.close()
    return len(plan.changes)


def _child(folder: str, db: str) -> None:
    changes = _plan_once(Path(folder), Path(db))
    print(json.dumps({"changes": changes, "peak_kib": _peak_kib()}))


def _peak_kib() -> int:
    # VmHWM belongs to this process image; ru_maxrss would also count the parent's peak, which Linux
    # carries over a fork and exec.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--mappings", type=int, default=60)
    parser.add_argument("--memory-configs", type=int, default=10000, help="0 skips the memory measurement")
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "configs"
        paths = write_corpus(folder, args.configs, args.mappings)
        db = Path(tmp) / "tenant.db"
        setup = _populate(folder, db)
        assert _plan_once(folder, db) == 0, "the plan after apply must have no changes"
        parse = _best(lambda: _parse_only(paths))
        plan = _best(lambda: _plan_once(folder, db))
        ratio = plan / parse
        print(f"configurations: {args.configs} x {args.mappings} mappings")
        print(f"initial apply (create + start all): {setup:.2f}s")
        print(f"baseline, C loader parse only:      {parse:.3f}s")
        print(f"plan with no changes:               {plan:.3f}s")
        verdict = "OK" if ratio <= 2 else "MISSED"
        print(f"ratio plan / parse:                 {ratio:.2f}x (target <= 2.0x) {verdict}")

        if args.memory_configs:
            big = Path(tmp) / "big"
            write_corpus(big, args.memory_configs, args.mappings)
            big_db = Path(tmp) / "big.db"
            _populate(big, big_db)
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.plan", "--child", str(big), str(big_db)],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout)
            peak_mib = result["peak_kib"] / 1024
            print(
                f"peak memory, no-change plan of {args.memory_configs} configurations: {peak_mib:.0f} MiB "
                f"(target < 1024 MiB) {'OK' if peak_mib < 1024 else 'MISSED'}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
