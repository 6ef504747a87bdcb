"""Benchmark: the Graph provider against the emulator, with a fixed latency on every HTTP request.

1. A plan with no changes over N configurations (default 1,000, 60 mappings each). Reported: time,
   HTTP requests made, the floor = requests / concurrency x latency, and time / floor (target <= 2x);
   and the same plan with no latency at all, which is the CPU part (client, emulator, planner) that
   the floor leaves out.
2. Apply of M changed configurations (default 200; one mapping changed each, so an update and a
   restart) with parallelism 10 and with parallelism 1, each from the same starting tenant. Reported:
   the apply alone and plan + apply, and the speed-up (target >= 8x).

    python -m benchmarks.graph [--configs 1000] [--changed 200] [--latency-ms 50] [--concurrency 10]

Writes only to a temporary folder. The emulator runs as a child process on 127.0.0.1, so that it does
not share an interpreter lock with the client being measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.testing.corpus import write_corpus

if TYPE_CHECKING:
    from reconciler.core.model import DesiredState
    from reconciler.graph.provider import GraphProvider

PlanTiming = tuple[float, float, int]

# Mapping rows the corpus writes; the changed configurations get another constant in one of them.
_ROW = "{target: extensionAttribute1, constant: C1}"
_CHANGED_ROW = "{target: extensionAttribute1, constant: changed}"


@contextlib.contextmanager
def _emulator(db: Path, latency_ms: float, token: str | None = None) -> Iterator[str]:
    """A child ``reconciler emulator`` over ``db`` (asking for ``token`` when given); yields its base URL
    (http://127.0.0.1:PORT)."""
    command = [sys.executable, "-m", "reconciler", "emulator", "--store", str(db), "--host", "127.0.0.1"]
    command += ["--port", "0", "--latency-ms", str(latency_ms)]
    if token is not None:
        command += ["--token", token]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _provider(url: str, concurrency: int) -> GraphProvider:
    from reconciler.graph.provider import GraphProvider
    from reconciler.graph.tokens import NoToken

    return GraphProvider(url + "/v1.0", target="graph+" + url, tokens=NoToken(), concurrency=concurrency)


def _copy_db(source: Path, target: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


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


def _timed_plans(
    state: DesiredState, db: Path, latency_ms: float, concurrency: int, repeat: int
) -> PlanTiming:
    """The best of ``repeat`` no-change plans: (total, reading the target, requests)."""
    from reconciler.core.plan import PlanOptions, Provenance
    from reconciler.engine.operations import make_plan

    best: PlanTiming | None = None
    with _emulator(db, latency_ms) as url:
        for _ in range(repeat):
            provider = _provider(url, concurrency)
            began = time.perf_counter()
            provider.read_all()
            read = time.perf_counter() - began
            provider.close()
            provider = _provider(url, concurrency)
            began = time.perf_counter()
            plan = make_plan(state, provider, PlanOptions(), Provenance())
            elapsed = time.perf_counter() - began
            requests = provider.client.requests_sent
            provider.close()
            assert not plan.changes, f"expected no changes, got {len(plan.changes)}"
            if best is None or elapsed < best[0]:
                best = (elapsed, read, requests)
    assert best is not None
    return best


def _no_change_plan(folder: Path, db: Path, latency_ms: float, concurrency: int, repeat: int) -> None:
    from reconciler.engine.operations import load_desired

    state = load_desired([str(folder)]).state
    elapsed, read, requests = _timed_plans(state, db, latency_ms, concurrency, repeat)
    # The same plan with no latency at all: what the client, the emulator and the planner cost in CPU.
    cpu_only, cpu_read, _ = _timed_plans(state, db, 0, concurrency, repeat)
    floor = requests / concurrency * latency_ms / 1000
    ratio = elapsed / floor
    print(f"no-change plan over {len(state.configurations)} configurations, {latency_ms:g} ms per request:")
    print(f"  time                {elapsed:.3f}s (best of {repeat}; reading the target alone {read:.3f}s)")
    print(f"  requests            {requests} (concurrency {concurrency})")
    print(f"  floor               {floor:.3f}s = {requests} / {concurrency} x {latency_ms:g} ms")
    print(f"  ratio time / floor  {ratio:.2f}x (target <= 2.0x) {'OK' if ratio <= 2 else 'MISSED'}")
    print(f"  same, no latency    {cpu_only:.3f}s (reading {cpu_read:.3f}s): the CPU part, not the network")


def _apply_run(
    changed: Path, base_db: Path, run_db: Path, latency_ms: float, concurrency: int, parallelism: int
) -> tuple[int, float, float]:
    from reconciler.core.plan import PlanOptions, Provenance
    from reconciler.engine.apply import apply_plan
    from reconciler.engine.journal import Journal
    from reconciler.engine.operations import load_desired, make_plan

    _copy_db(base_db, run_db)
    state = load_desired([str(changed)]).state
    with _emulator(run_db, latency_ms) as url:
        provider = _provider(url, concurrency)
        began = time.perf_counter()
        plan = make_plan(state, provider, PlanOptions(), Provenance())
        planned = time.perf_counter()
        result = apply_plan(plan, provider, journal=Journal(provider.target), parallelism=parallelism)
        done = time.perf_counter()
        assert result.ok, [o.error for o in result.outcomes if o.error][:3]
        after = make_plan(state, provider, PlanOptions(), Provenance())
        assert not after.changes, f"{len(after.changes)} changes left after the apply"
        provider.close()
    return len(plan.changes), done - planned, done - began


def _changed_apply(
    folder: Path, base_db: Path, tmp: Path, count: int, latency_ms: float, concurrency: int
) -> None:
    changed = tmp / "changed"
    changed.mkdir()
    for i, path in enumerate(sorted(folder.glob("*.yaml"))):
        text = path.read_text(encoding="utf-8")
        if i < count:
            assert _ROW in text
            text = text.replace(_ROW, _CHANGED_ROW)
        (changed / path.name).write_text(text, encoding="utf-8")
    runs = {}
    for parallelism in (10, 1):
        runs[parallelism] = _apply_run(
            changed, base_db, tmp / f"run-{parallelism}.db", latency_ms, concurrency, parallelism
        )
    changes = runs[10][0]
    apply_ratio = runs[1][1] / runs[10][1]
    total_ratio = runs[1][2] / runs[10][2]
    print(f"apply of {count} changed configurations ({changes} changes), {latency_ms:g} ms per request:")
    print(f"  parallelism 10      apply {runs[10][1]:.2f}s, plan + apply {runs[10][2]:.2f}s")
    print(f"  parallelism 1       apply {runs[1][1]:.2f}s, plan + apply {runs[1][2]:.2f}s")
    print(f"  speed-up, apply     {apply_ratio:.2f}x (target >= 8x) {'OK' if apply_ratio >= 8 else 'MISSED'}")
    print(f"  speed-up, plan+apply {total_ratio:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--mappings", type=int, default=60)
    parser.add_argument("--changed", type=int, default=200, help="0 skips the apply measurement")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=10, help="the Graph client's request limit")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["RECONCILER_STATE_DIR"] = str(tmp / "state")
        folder = tmp / "configs"
        write_corpus(folder, args.configs, args.mappings)
        db = tmp / "tenant.db"
        setup = _populate(folder, db)
        print(f"setup: {args.configs} configurations created in the local tenant in {setup:.1f}s")
        _no_change_plan(folder, db, args.latency_ms, args.concurrency, args.repeat)
        if args.changed:
            _changed_apply(folder, db, tmp, args.changed, args.latency_ms, args.concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
