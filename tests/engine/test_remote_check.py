"""--remote: expressions are also parsed by the service (parseExpression), once per distinct text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.graph import TOKEN, StartEmulator, portal_configuration

from reconciler.cli.main import main
from reconciler.core.model import (
    Desired,
    DesiredState,
    Mapping,
    MappingKind,
    MappingOverride,
    Origin,
    Settings,
)
from reconciler.engine.remote_check import remote_expression_check
from reconciler.errors import ConfigError
from reconciler.providers.memory import MemoryProvider

CONFIG = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata: {name: contoso}
spec:
  domain: contoso.com
  notificationEmail: ops@contoso.com
  attributeMappings:
    user:
      - {target: displayName, expression: 'Join(" ", [givenName], [sn])'}
      - {target: description, expression: 'Join(" ", [givenName], [sn])'}
      - {target: department, expression: 'Trim([department])'}
"""


def test_validate_and_plan_remote_against_the_emulator(
    start_emulator: StartEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = start_emulator(token=TOKEN)
    portal_configuration(emulator.store, "fabrikam.com")  # parseExpression runs on some configuration
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "c.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_GRAPH_TOKEN", TOKEN)
    emulator.recorded.clear()
    assert main(["validate", "configs", "--remote", "--target", emulator.target]) == 0
    parsed = [r for r in emulator.recorded if r.path.endswith("/parseExpression")]
    assert len(parsed) == 2  # two distinct texts, three mappings
    assert main(["plan", "configs", "--remote", "--target", emulator.target]) == 0
    assert "configuration.contoso will be created" in capsys.readouterr().out


def test_remote_needs_a_target_that_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", ".", "--remote", "--target", "local:t.db"]) == 1


class ParsingFake(MemoryProvider):
    """The memory fake plus a service that refuses one expression text."""

    def __init__(self, refuse: str) -> None:
        super().__init__("parsing")
        self.refuse = refuse
        self.asked: list[str] = []

    def parse_expression(self, expression: str, configuration_id: str | None = None) -> dict[str, Any]:
        self.asked.append(expression)
        if expression == self.refuse:
            return {
                "parsingSucceeded": False,
                "error": {"code": "ParsingError", "message": "no such function"},
            }
        return {"parsingSucceeded": True, "error": None}


def _desired(name: str, text: str, origin: Origin) -> Desired:
    mapping = Mapping("user", "displayName", MappingKind.EXPRESSION, text)
    return Desired(
        name=name,
        settings=Settings(f"{name}.com", f"ops@{name}.com"),
        overrides=(MappingOverride("user", "displayName", mapping, origin),),
    )


def test_refused_expressions_are_reported_once_at_their_file_position() -> None:
    shared = Origin("shared.yaml", 7, 7)
    state = DesiredState((_desired("a", "Foo([x])", shared), _desired("b", "Foo([x])", shared)))
    fake = ParsingFake("Foo([x])")
    (problem,) = remote_expression_check(state, fake)
    assert str(problem) == (
        "shared.yaml:7:7: mapping of 'displayName': the service rejects the expression: no such function"
    )
    assert fake.asked == ["Foo([x])"]
    with pytest.raises(ConfigError, match="--remote needs a target"):
        remote_expression_check(state, MemoryProvider("plain"))
