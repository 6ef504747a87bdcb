"""Every test: the user's state folder is the test's own, and the state stores a test opened are closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.state import reset_stores


@pytest.fixture(autouse=True)
def _own_state_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    yield
    reset_stores()
