"""The example configurations and directory on a fresh local tenant, driven through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli.directory_cmd import directory
from reconciler.cli.main import cli, main
from reconciler.cli.preview_cmd import preview
from reconciler.cli.provision_cmd import provision

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "examples" / "configs"
CONTOSO_DIR = REPO / "examples" / "directory" / "contoso.yaml"
FABRIKAM_DIR = REPO / "examples" / "directory" / "fabrikam.yaml"

ADELE = "CN=Adele Vance,OU=Sales,DC=contoso,DC=com"
ALEX = "CN=Alex Wilber,OU=Research and Development,OU=Global,DC=contoso,DC=com"
LIDIA = "CN=Lidia Holloway,OU=Zürich\\, Schweiz,OU=Offices,DC=contoso,DC=com"
MEGAN = "CN=Megan Bowen,OU=Sales,DC=contoso,DC=com"
CASEY = "CN=Casey Jensen,OU=Sales,DC=contoso,DC=com"
PRADEEP = "CN=Pradeep Gupta,OU=Contractors,DC=contoso,DC=com"
SALES_TEAM = "CN=Sales Team,OU=Sales,DC=contoso,DC=com"
NESTOR = "CN=Nestor Wilke,OU=Staff,DC=fabrikam,DC=com"
ISAIAH = "CN=Isaiah Langer,OU=Staff,DC=fabrikam,DC=com"
JONI = "CN=Joni Sherman,OU=Staff,DC=fabrikam,DC=com"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture(autouse=True)
def commands(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The commands are registered in reconciler.cli.main by the lead; here they are added for the test
    # only, so that the tests run whether or not that has happened yet.
    for command in (preview, provision, directory):
        assert command.name is not None
        monkeypatch.setitem(cli.commands, command.name, command)
    yield


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*args: str | Path) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_TARGET", f"local:{tmp_path / 'tenant.db'}")
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


@pytest.fixture
def tenant(project: Path, run: Run) -> Path:
    """The example directories loaded and the example configurations applied."""
    r = run("directory", "load", CONTOSO_DIR, FABRIKAM_DIR)
    assert r.code == 0, r.err
    r = run("apply", CONFIGS, "--auto-approve")
    assert r.code == 0, r.err + r.out
    return project


def decode(response: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two JSON strings of a provisionOnDemand response."""
    assert set(response) == {"key", "value"}
    assert isinstance(response["key"], str) and isinstance(response["value"], str)
    return json.loads(response["key"]), json.loads(response["value"])
