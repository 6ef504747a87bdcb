"""Hostile input through the command line: saved plan files, YAML, expressions and Graph answers.

Each must end in one clear error (exit 1, an ``error:`` line) or, where the input is valid after all,
be accepted; never a traceback, an unexpected error (exit 3), a hang, a write to the target, or the
token in the output. The cases live in ``reconciler.testing.hostile`` and feed the reliability figures too.
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.testing.hostile import (
    GRAPH_CASES,
    REJECT,
    Case,
    Outcome,
    Project,
    expression_cases,
    graph_case,
    plan_file_cases,
    run_case,
    tenant_digest,
    yaml_cases,
)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def failures(outcomes: list[Outcome]) -> list[str]:
    return [f"{o.name}: {o.problem}" for o in outcomes if o.problem is not None]


def run_all(project: Project, cases: list[Case], folder: Path, marker: Path | None = None) -> list[Outcome]:
    return [run_case(project, case, folder / f"case-{i}", marker) for i, case in enumerate(cases)]


def test_plan_files_truncated_edited_or_made_elsewhere_are_refused(project: Project, tmp_path: Path) -> None:
    outcomes = run_all(project, plan_file_cases(project), tmp_path)
    assert failures(outcomes) == []
    assert all(o.ran.code == 1 for o in outcomes)


@pytest.mark.parametrize("seed", [1, 2])
def test_plan_files_cut_or_flipped_at_random_are_refused(project: Project, tmp_path: Path, seed: int) -> None:
    cases = plan_file_cases(project, random.Random(seed), 8)[-16:]
    assert failures(run_all(project, cases, tmp_path)) == []


def test_a_plan_edited_to_delete_an_unmanaged_configuration_leaves_it_alone(
    project: Project, tmp_path: Path
) -> None:
    (case,) = [c for c in plan_file_cases(project) if "unmanaged" in c.name]
    before = tenant_digest(project.db)
    outcome = run_case(project, case, tmp_path / "case")
    assert outcome.problem is None and "does not match what the desired state" in outcome.ran.err
    assert tenant_digest(project.db) == before


@SETTINGS
@given(data=st.binary(max_size=3000))
def test_any_bytes_as_a_plan_file_are_refused(project: Project, data: bytes) -> None:
    case = Case("plan file", "random bytes", lambda folder: _write(folder / "p.json", data), REJECT)
    with tempfile.TemporaryDirectory() as tmp:
        outcome = run_case(project, case, Path(tmp) / "case")
    assert outcome.problem is None, outcome.problem


def _write(path: Path, data: bytes) -> list[str]:
    path.write_bytes(data)
    return ["apply", str(path)]


def _places(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _places(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _places(item, (*at, index))
    return found


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@SETTINGS
@given(data=st.data())
def test_a_plan_edited_by_hand_anywhere_is_refused(project: Project, data: st.DataObject) -> None:
    doc = json.loads(project.plan.read_bytes())
    edited = copy.deepcopy(doc)
    place = data.draw(st.sampled_from(_places(doc)[1:]))
    parent = edited
    for step in place[:-1]:
        parent = parent[step]
    parent[place[-1]] = data.draw(JSON_VALUES)
    if edited == doc:
        # The edit wrote the value that was there: that is the plan itself, which would apply and change
        # the tenant the module's other tests share.
        return
    text = json.dumps(edited).encode()
    case = Case("plan file", f"edited at {place}", lambda folder: _write(folder / "p.json", text), REJECT)
    with tempfile.TemporaryDirectory() as tmp:
        outcome = run_case(project, case, Path(tmp) / "case")
    assert outcome.problem is None, outcome.problem


def test_yaml_that_could_run_code_or_read_outside_is_refused(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    outcomes = run_all(project, yaml_cases(marker), tmp_path, marker)
    assert failures(outcomes) == []
    assert not marker.exists()
    python = [o for o in outcomes if "python" in o.name or "tag" in o.name]
    assert python and all(o.ran.code == 1 for o in python)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_yaml_is_loaded_or_refused_cleanly(project: Project, tmp_path: Path, seed: int) -> None:
    marker = tmp_path / "PWNED"
    cases = yaml_cases(marker, random.Random(seed), 25)[-25:]
    assert failures(run_all(project, cases, tmp_path, marker)) == []


def test_hostile_expressions_are_refused_cleanly(project: Project, tmp_path: Path) -> None:
    assert failures(run_all(project, expression_cases(), tmp_path)) == []


@pytest.mark.parametrize("seed", [1, 2])
def test_mutated_expressions_are_accepted_or_refused_cleanly(
    project: Project, tmp_path: Path, seed: int
) -> None:
    cases = expression_cases(random.Random(seed), 15)[-30:]
    assert failures(run_all(project, cases, tmp_path)) == []


@pytest.mark.parametrize("name", sorted(GRAPH_CASES))
def test_hostile_graph_answers_end_in_a_clear_error_and_no_write(
    project: Project, tmp_path: Path, name: str
) -> None:
    outcomes = graph_case(project, name, tmp_path)
    assert failures(outcomes) == []
    if GRAPH_CASES[name][1] == REJECT:
        assert all(o.ran.code == 1 and "error:" in o.ran.err for o in outcomes)
