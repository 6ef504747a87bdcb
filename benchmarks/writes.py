"""Benchmark: the write path. Apply of N new configurations, then of N changed ones (one mapping each),
on the local tenant and through the Graph emulator; optionally the same runs on an earlier revision of
the code, in the same invocation, so that the figures are ratios measured on the same machine load.

    python -m benchmarks.writes [--configs 200] [--latency-ms 0] [--baseline REV] [--repeat 3]

``--baseline REV`` extracts the package as it was at git revision REV (``git archive``) into a
temporary folder and runs the same measurement there in a child process; the report gives each time
of this checkout divided by the baseline's (below 1.00: faster now).

Writes only to temporary folders. Each measurement runs in a child process (the emulator in another),
so that the code measured is the only ``reconciler`` package loaded in it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.graph import _emulator
from reconciler.testing.corpus import write_corpus

# Mapping rows the corpus writes; the changed configurations get another constant in one of them.
_ROW = "{target: extensionAttribute1, constant: C1}"
_CHANGED_ROW = "{target: extensionAttribute1, constant: changed}"
_ROOT = Path(__file__).resolve().parent.parent


def _changed_copy(folder: Path, target: Path) -> None:
    target.mkdir()
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert _ROW in text
        (target / path.name).write_text(text.replace(_ROW, _CHANGED_ROW), encoding="utf-8")


def _apply(folder: Path, target: str) -> tuple[float, int]:
    """Plan and apply ``folder`` on ``target``: the seconds the apply took (the plan is not timed) and
    the HTTP requests it sent (0 for the local tenant)."""
    from reconciler.core.plan import PlanOptions, Provenance
    from reconciler.engine.apply import apply_plan
    from reconciler.engine.journal import Journal
    from reconciler.engine.operations import load_desired, make_plan
    from reconciler.providers import open_target

    state = load_desired([str(folder)]).state
    provider = open_target(target)
    try:
        plan = make_plan(state, provider, PlanOptions(), Provenance())
        client = getattr(provider, "client", None)
        sent = client.requests_sent if client is not None else 0
        began = time.perf_counter()
        result = apply_plan(plan, provider, journal=Journal(provider.target), parallelism=10)
        elapsed = time.perf_counter() - began
        requests = client.requests_sent - sent if client is not None else 0
        assert result.ok, [o.error for o in result.outcomes if o.error][:3]
        after = make_plan(state, provider, PlanOptions(), Provenance())
        assert not after.changes, f"{len(after.changes)} changes left after the apply"
    finally:
        provider.close()
    return elapsed, requests


def measure(configs: int, mappings: int, latency_ms: float) -> dict[str, float]:
    """The timings (and Graph requests) of this process's ``reconciler``, in a fresh temporary folder."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["RECONCILER_STATE_DIR"] = str(tmp / "state")
        folder, changed = tmp / "configs", tmp / "changed"
        write_corpus(folder, configs, mappings)
        _changed_copy(folder, changed)
        timings = {
            "local create": _apply(folder, f"local:{tmp / 'local.db'}")[0],
            "local update": _apply(changed, f"local:{tmp / 'local.db'}")[0],
        }
        with _emulator(tmp / "emulator.db", latency_ms) as url:
            for step, source in (("create", folder), ("update", changed)):
                seconds, requests = _apply(source, "graph+" + url)
                timings[f"emulator {step}"] = seconds
                timings[f"emulator {step} requests"] = requests
        return timings


def _run_child(code_root: Path, args: argparse.Namespace) -> dict[str, float]:
    """``measure`` in a child process that imports ``reconciler`` from ``code_root``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(code_root), str(_ROOT)])
    command = [sys.executable, "-m", "benchmarks.writes", "--child"]
    command += ["--configs", str(args.configs), "--mappings", str(args.mappings)]
    command += ["--latency-ms", str(args.latency_ms)]
    out = subprocess.run(command, env=env, cwd=code_root, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the measurement in {code_root} failed:\n{out.stderr[-4000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _extract(revision: str, target: Path) -> None:
    """The ``reconciler`` package as it was at ``revision``, written under ``target``."""
    archive = subprocess.run(
        ["git", "-C", str(_ROOT), "archive", "--format=tar", revision, "--", "reconciler"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: min(run[key] for run in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--mappings", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    parser.add_argument("--baseline", metavar="REV", help="git revision to compare with")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(measure(args.configs, args.mappings, args.latency_ms)))
        return 0
    with tempfile.TemporaryDirectory() as name:
        baseline_root = Path(name)
        if args.baseline:
            _extract(args.baseline, baseline_root)
        now: list[dict[str, float]] = []
        before: list[dict[str, float]] = []
        # Interleaved, so that a change in the machine's load touches both sides alike.
        for _ in range(args.repeat):
            now.append(_run_child(_ROOT, args))
            if args.baseline:
                before.append(_run_child(baseline_root, args))
    best_now = _best(now)
    print(
        f"apply of {args.configs} configurations ({args.mappings} mappings each), parallelism 10, "
        f"emulator latency {args.latency_ms:g} ms, best of {args.repeat}:"
    )
    best_before = _best(before) if before else {}
    for key, value in best_now.items():
        unit = "" if key.endswith("requests") else "s"
        line = f"  {key:<24} {value:8.2f}{unit}"
        if key in best_before:
            ratio = value / best_before[key] if best_before[key] else float("nan")
            line += f"   baseline {best_before[key]:8.2f}{unit}   ratio {ratio:.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
