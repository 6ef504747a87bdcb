"""Reading saved plan files: whatever is in the file, a PlanFileError that names it, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine.operations import read_plan_file
from reconciler.errors import PlanFileError


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"format_version": 1', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"changes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
        (b"[]", "plan"),
        (b'{"kind": "something else"}', "plan"),
    ],
)
def test_a_file_that_is_not_a_plan_is_refused_with_its_name(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    with pytest.raises(PlanFileError, match=problem) as info:
        read_plan_file(str(path))
    assert str(path) in str(info.value)


def test_a_missing_plan_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot read the plan file"):
        read_plan_file(str(tmp_path / "nope.json"))
