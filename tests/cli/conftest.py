"""Run the real CLI entry point in-process, in a temporary project folder with its own state folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.tenant.store import TenantStore


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


CONTOSO = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: contoso
spec:
  domain: contoso.com
  notificationEmail: ops@contoso.com
  scope:
    organizationalUnits: ["OU=Sales,DC=contoso,DC=com"]
  attributeMappings:
    user:
      - {target: department, source: department}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILER_TARGET", raising=False)
    monkeypatch.delenv("RECONCILER_STATE_DIR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "contoso.yaml").write_text(CONTOSO)
    return tmp_path


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


EMULATOR_TOKEN = "cli-emulator-token-5b1e"


@pytest.fixture(params=["local", "emulator"])
def target(request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    db = project / ".reconciler" / "tenant.db"
    db.parent.mkdir(exist_ok=True)
    if request.param == "local":
        TenantStore(db).close()  # an empty tenant, as the emulator starts with
        yield f"local:{db}"
        return
    monkeypatch.setenv("RECONCILER_GRAPH_TOKEN", EMULATOR_TOKEN)
    emulator = Emulator(db, EmulatorConfig(token=EMULATOR_TOKEN)).start()
    try:
        yield emulator.target
    finally:
        emulator.stop()
