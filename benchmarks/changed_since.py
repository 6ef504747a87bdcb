"""Benchmark: ``plan --changed-since`` with 1 of N configuration files changed vs a full plan.

N configuration files (60 mappings each) are committed to a git repository in a temporary folder and
applied to a local tenant; then one file is changed in the work tree. Both plans run in this process on
the same files and tenant, best of three each:

- full plan: load every file, read the tenant, plan every configuration (``run_plan``);
- changed since HEAD: pick the changed configurations and load only the files they need
  (``load_changed_since``), then read the tenant and plan those (``make_plan`` with ``only``).

Target: the changed-since plan under 10% of the full plan's time. The changed-since time is also split
into its steps, so that what is left to gain shows.

    python -m benchmarks.changed_since [--configs 1000] [--mappings 60]

Writes only to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from reconciler.testing.corpus import GIT_ENV, configuration_yaml, write_corpus

T = TypeVar("T")


def _best(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    assert result is not None
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--mappings", type=int, default=60)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        os.environ["RECONCILER_STATE_DIR"] = str(Path(tmp) / "state")
        write_corpus(root / "configs", args.configs, args.mappings)
        env = {**os.environ, **GIT_ENV}
        for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "corpus"]):
            subprocess.run(["git", *command], cwd=root, env=env, check=True)
        os.environ.update(GIT_ENV)
        os.chdir(root)

        from reconciler.core.plan import PlanOptions, Provenance
        from reconciler.engine.operations import (
            load_desired,
            make_plan,
            plan_and_apply,
            provenance_for,
            run_plan,
        )
        from reconciler.git.history import load_changed_since
        from reconciler.providers.local import LocalProvider

        paths = ["configs"]
        provider = LocalProvider(str(Path(tmp) / "tenant.db"))
        began = time.perf_counter()
        run = plan_and_apply(load_desired(paths).state, provider, PlanOptions(), Provenance(), parallelism=4)
        assert run.result.ok
        setup = time.perf_counter() - began

        changed = args.configs // 2
        text = configuration_yaml(changed, args.mappings).replace("threshold: 500", "threshold: 400")
        (root / "configs" / f"cfg-{changed:05d}.yaml").write_text(text, encoding="utf-8")

        full, (full_plan, _) = _best(lambda: run_plan(paths, provider, PlanOptions()))

        def changed_since():  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            got = load_changed_since("HEAD", paths)
            picked = time.perf_counter()
            plan = make_plan(got.result.state, provider, PlanOptions(only=got.names), provenance_for(paths))
            return picked - began, time.perf_counter() - picked, got, plan

        select, planning, got, plan = min((changed_since() for _ in range(3)), key=lambda t: t[0] + t[1])
        total = select + planning
        read, _ = _best(provider.read_all)
        provider.close()

    assert got.partial, "one configuration file changed: only its files should be loaded"
    assert [c.name for c in plan.changes] == [c.name for c in full_plan.changes], "the plans must agree"
    ratio = total / full
    print(f"configurations: {args.configs} x {args.mappings} mappings, 1 file changed")
    print(f"initial apply (create + start all):        {setup:.2f}s")
    print(f"full plan:                                 {full:.3f}s")
    print(f"plan --changed-since HEAD:                 {total:.3f}s")
    print(f"  pick the configurations, load {len(got.result.files)} file(s): {select:.3f}s")
    print(f"  read the tenant and plan:                {planning:.3f}s")
    print(f"  (reading all {args.configs} configurations from the tenant alone: {read:.3f}s)")
    verdict = "OK" if ratio < 0.1 else "MISSED"
    print(f"ratio changed-since / full:                {ratio:.1%} (target < 10%) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
