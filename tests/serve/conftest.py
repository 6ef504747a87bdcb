"""The shared scene of the serve tests (see ``served.staged``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.serve import Scene, staged


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One service for the session, with drift, a quarantine and a held delete made on purpose."""
    with staged(tmp_path_factory.mktemp("serve")) as staged_scene:
        yield staged_scene
