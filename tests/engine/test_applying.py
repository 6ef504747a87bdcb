"""engine/applying: the three forms of `reconciler apply`, decided in one place, with a recording UI
(real YAML files and a real SQLite tenant; no terminal)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from support.config import CONTOSO

from reconciler.core.plan import Plan, PlanOptions
from reconciler.engine.apply import Progress
from reconciler.engine.applying import ApplyRequest, is_plan_file, run_apply
from reconciler.engine.operations import write_plan_file
from reconciler.errors import Diagnostic, StalePlanError, UserAbort
from reconciler.providers.local import LocalProvider


class RecordingUI:
    def __init__(self, approve: bool = True) -> None:
        self.approves = approve
        self.events: list[str] = []
        self.shown: list[Plan] = []

    def warn(self, warnings: Sequence[Diagnostic]) -> None:
        self.events.append("warn")

    def show(self, plan: Plan) -> None:
        self.events.append("show")
        self.shown.append(plan)

    def approve(self, plan: Plan) -> None:
        self.events.append("approve")
        if not self.approves:
            raise UserAbort("no")

    @contextlib.contextmanager
    def applying(self) -> Iterator[Progress | None]:
        self.events.append("applying")
        yield None


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "contoso.yaml").write_text(CONTOSO, encoding="utf-8")
    return folder


def names_on(target: str) -> list[str | None]:
    provider = LocalProvider(target.removeprefix("local:"))
    try:
        return sorted(o.name for o in provider.read_all() if o.name)
    finally:
        provider.close()


def request(configs: Path, target: str, **kw: object) -> ApplyRequest:
    return ApplyRequest((str(configs),), target, PlanOptions(), **kw)  # type: ignore[arg-type]


def test_a_refused_approval_applies_nothing(configs: Path, tmp_path: Path) -> None:
    target = f"local:{tmp_path / 'tenant.db'}"
    ui = RecordingUI(approve=False)
    with pytest.raises(UserAbort):
        run_apply(request(configs, target), ui)
    assert ui.events == ["warn", "show", "approve"]
    assert names_on(target) == []


def test_an_approved_plan_is_applied_and_a_second_run_has_nothing_to_ask(
    configs: Path, tmp_path: Path
) -> None:
    target = f"local:{tmp_path / 'tenant.db'}"
    ui = RecordingUI()
    run = run_apply(request(configs, target), ui)
    assert run is not None and run.applied and run.result.ok
    assert ui.events == ["warn", "show", "approve", "applying"]
    assert names_on(target) == ["contoso"]
    again = RecordingUI()
    assert run_apply(request(configs, target), again) is None
    assert again.events == ["warn", "show"]  # nothing to approve, nothing applied


def test_auto_approve_shows_the_plan_it_applies(configs: Path, tmp_path: Path) -> None:
    target = f"local:{tmp_path / 'tenant.db'}"
    ui = RecordingUI()
    run = run_apply(request(configs, target, auto_approve=True), ui)
    assert run is not None and run.applied
    assert "approve" not in ui.events  # --auto-approve never asks
    assert ui.shown and ui.shown[-1].changes == run.plan.changes
    assert names_on(target) == ["contoso"]


def test_a_saved_plan_goes_to_the_target_it_records_only(configs: Path, tmp_path: Path) -> None:
    target = f"local:{tmp_path / 'tenant.db'}"
    shown = RecordingUI(approve=False)
    with pytest.raises(UserAbort):
        run_apply(request(configs, target), shown)
    plan_file = tmp_path / "plan.bin"
    write_plan_file(shown.shown[0], str(plan_file))
    assert is_plan_file([str(plan_file)]) and not is_plan_file([str(configs / "contoso.yaml")])
    other = f"local:{tmp_path / 'other.db'}"
    with pytest.raises(StalePlanError, match="made for target"):
        run_apply(ApplyRequest((str(plan_file),), other, PlanOptions()), RecordingUI())
    ui = RecordingUI()
    run = run_apply(ApplyRequest((str(plan_file),), None, PlanOptions()), ui)
    assert run is not None and run.result.ok
    assert ui.events == ["applying"]  # a saved plan was reviewed already: nothing shown or asked
    assert names_on(target) == ["contoso"]
