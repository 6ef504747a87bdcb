"""The shared scene of the serve tests; ``tests/git`` is appended to ``sys.path`` for its repository
helpers (after the installed package)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_GIT_HELPERS = Path(__file__).resolve().parents[1] / "git"
if str(_GIT_HELPERS) not in sys.path:
    sys.path.append(str(_GIT_HELPERS))

from served import Scene, staged  # noqa: E402


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One service for the session (see ``served.staged``)."""
    with staged(tmp_path_factory.mktemp("serve")) as staged_scene:
        yield staged_scene
