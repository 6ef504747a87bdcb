"""The example configurations and directory on a fresh local tenant, driven through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.provisioning import CONFIGS, CONTOSO_DIR, FABRIKAM_DIR, Result, Run

from reconciler.cli.main import main


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
