"""Benchmark: what checking the documented limits of Entra ID -> AD scopes costs a ``plan``, measured on
whole ``reconciler plan`` processes against the emulator (a child process on 127.0.0.1, with a fixed
latency on every HTTP request).

The tenant holds G cloud security groups (default 2,000) of M members each (default 20), S of them
(default 200) named ``sec-N``. Three plans, each the median of ``--runs`` fresh processes:

- baseline: a plan with no changes, the configuration selecting the S groups already applied (it reads
  no count: the same reads as before the limits were checked);
- selected: the plan that creates that configuration, which counts the S groups' members
  (S / 20 ``$batch`` requests);
- filtered: the plan that creates a configuration scoping all groups by ``displayName REGEX_MATCH
  "^sec-"``, which lists the G groups (G / 999 pages), evaluates the filter and counts the S selected.

Reported: each time and its ratio to the baseline, and the requests each plan sends (counted in-process
with the same provider). The ratios are what a reviewer's plan costs when a pull request widens a scope.

    python -m benchmarks.group_limits [--groups 2000] [--members 20] [--selected 200]
        [--latency-ms 50] [--runs 5]

Writes only to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.graph import _copy_db, _emulator

_TOKEN = "group-limits-benchmark"
_CONFIG = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: groups
spec:
  direction: entraToAd
  domain: contoso.com
  notificationEmail: ops@contoso.com
  scope:
{scope}"""


def _tenant(db: Path, groups: int, members: int, selected: int) -> list[str]:
    """The cloud groups, as a directory load writes them; returns the ids of the ``sec-`` ones."""
    from reconciler.tenant.store import TenantStore

    store = TenantStore(db)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(groups)]
    with store.transaction():
        for i, id in enumerate(ids):
            member_ids = [str(uuid.UUID(int=(i + 1) * 1_000_000 + m)) for m in range(members)]
            attributes = {
                "displayName": f"sec-{i}" if i < selected else f"team-{i}",
                "securityEnabled": True,
                "mailEnabled": False,
                "members": member_ids,
            }
            store.put_cloud_object(id, "Group", attributes, from_directory=True)
    store.close()
    return ids[:selected]


def _write(folder: Path, scope: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "groups.yaml").write_text(_CONFIG.format(scope=scope))
    return folder


def _apply(folder: Path, db: Path) -> None:
    from reconciler.core.plan import PlanOptions, Provenance
    from reconciler.engine.operations import load_desired, plan_and_apply
    from reconciler.providers.local import LocalProvider

    provider = LocalProvider(str(db))
    run = plan_and_apply(load_desired([str(folder)]).state, provider, PlanOptions(), Provenance())
    assert run.result.ok
    provider.close()


def _requests(folder: Path, url: str) -> int:
    """The requests one plan of ``folder`` sends, counted by the provider in this process."""
    from reconciler.core.plan import PlanOptions, Provenance
    from reconciler.engine.operations import load_desired, make_plan
    from reconciler.graph.provider import GraphProvider
    from reconciler.graph.tokens import StaticToken

    provider = GraphProvider(url + "/v1.0", target="graph+" + url, tokens=StaticToken(_TOKEN))
    make_plan(load_desired([str(folder)]).state, provider, PlanOptions(), Provenance())
    sent = provider.client.requests_sent
    provider.close()
    return sent


def _timed(folder: Path, url: str, runs: int, env: dict[str, str]) -> float:
    """The median wall time of ``runs`` whole ``reconciler plan`` processes (after one warm-up)."""
    command = [sys.executable, "-m", "reconciler", "plan", str(folder), "--target", "graph+" + url]
    times = []
    for i in range(runs + 1):
        began = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"plan failed ({done.returncode}): {done.stderr[-500:]}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--selected", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp / "state"), "RECONCILER_GRAPH_TOKEN": _TOKEN}
        env["NO_COLOR"] = "1"
        os.environ.update({"RECONCILER_STATE_DIR": env["RECONCILER_STATE_DIR"]})
        fresh, applied = tmp / "fresh.db", tmp / "applied.db"
        chosen = _tenant(fresh, args.groups, args.members, args.selected)
        _copy_db(fresh, applied)
        selected = _write(tmp / "selected", "    selectedGroups: [" + ", ".join(chosen) + "]\n")
        filtered = _write(
            tmp / "filtered",
            '    filters:\n      - [{attribute: displayName, operator: REGEX_MATCH, value: "^sec-"}]\n',
        )
        _apply(selected, applied)
        print(
            f"tenant: {args.groups:,} groups of {args.members} members, {args.selected} named sec-N; "
            f"{args.latency_ms:g} ms a request; median of {args.runs} whole processes"
        )
        with _emulator(applied, args.latency_ms, token=_TOKEN) as url:
            baseline = _timed(selected, url, args.runs, env)
            print(f"  baseline (no changes)   {baseline:.3f}s  requests {_requests(selected, url)}")
        with _emulator(fresh, args.latency_ms, token=_TOKEN) as url:
            for label, folder in (("selected (create)", selected), ("filtered (create)", filtered)):
                elapsed = _timed(folder, url, args.runs, env)
                print(
                    f"  {label:<22}  {elapsed:.3f}s  {elapsed / baseline:.2f}x the baseline  "
                    f"requests {_requests(folder, url)}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
