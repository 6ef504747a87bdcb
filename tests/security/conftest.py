"""Fixtures for the security regression tests (the helpers are in ``support.security``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.security import Sandbox, configuration


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "RECONCILER_"))}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Alice Example",
        GIT_AUTHOR_EMAIL="alice@example.com",
        GIT_COMMITTER_NAME="Alice Example",
        GIT_COMMITTER_EMAIL="alice@example.com",
    )
    box = Sandbox(tmp_path, env)
    box.repo.mkdir()
    box.git("init", "-q", "-b", "main")
    box.write(".gitignore", ".reconciler/\n*.json\n")
    return box


@pytest.fixture
def box(sandbox: Sandbox) -> Sandbox:
    """The sandbox with one configuration, alpha, committed."""
    sandbox.write("configs/alpha.yaml", configuration("alpha"))
    sandbox.commit("alpha")
    return sandbox
