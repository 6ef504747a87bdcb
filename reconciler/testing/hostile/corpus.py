"""The whole hostile corpus: every fixed case plus seeded random ones, run and tallied (``run_corpus``).

I/O: files under the folder it is given, and what each case does.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from reconciler.testing.commands import find_secret
from reconciler.testing.hostile.cases import (
    Case,
    Outcome,
    Project,
    Tally,
    _judge,
    make_project,
    run_main,
    tenant_digest,
)
from reconciler.testing.hostile.files import expression_cases, plan_file_cases, yaml_cases
from reconciler.testing.hostile.graph import GRAPH_CASES, graph_case

# --------------------------------------------------------------------------------------------------
# running cases


def run_case(project: Project, case: Case, folder: Path, marker: Path | None = None) -> Outcome:
    folder.mkdir(parents=True)
    args = case.prepare(folder)
    before = tenant_digest(project.db)
    ran = run_main(args, project.env(folder))
    changed = tenant_digest(project.db) != before
    leaked = find_secret(project.token, {"stdout": ran.out, "stderr": ran.err}, [folder])
    extra = f"{marker} was created: YAML ran a command" if marker is not None and marker.exists() else None
    problem = _judge(case, ran, changed, leaked, extra)
    return Outcome(case.kind, case.name, case.expect, ran, problem, bool(leaked))


def run_corpus(folder: Path, seeds: Iterable[int], *, random_cases: int = 20) -> Tally:
    """Every fixed case, plus ``random_cases`` random ones of each kind per seed."""
    tally = Tally()
    project = make_project(folder / "project")
    marker = folder / "PWNED"
    cases = plan_file_cases(project) + yaml_cases(marker) + expression_cases()
    for seed in seeds:
        rng = random.Random(seed)
        cases += plan_file_cases(project, rng, random_cases)
        cases += yaml_cases(marker, rng, random_cases)
        cases += expression_cases(rng, random_cases)
    for i, case in enumerate(cases):
        tally.add(run_case(project, case, folder / f"case-{i}", marker))
    for i, name in enumerate(GRAPH_CASES):
        for outcome in graph_case(project, name, folder / f"graph-{i}"):
            tally.add(outcome)
    return tally
