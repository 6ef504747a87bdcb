"""Every test: the user's state folder is the test's own, and the state stores a test opened are closed.
Asked for by name: ``state_dir``, the test's own reconciler state folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.providers import reset_memory_targets
from reconciler.state import reset_stores


@pytest.fixture(autouse=True)
def _own_state_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    yield
    reset_stores()


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "state"
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(folder))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("RECONCILER_TARGET", raising=False)
    yield folder
    reset_memory_targets()
