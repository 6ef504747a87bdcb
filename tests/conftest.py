"""Every test: the user's state folder is the test's own, and the state stores a test opened are closed.
Asked for by name: ``state_dir``, the test's own reconciler state folder; ``pinned_git``, git's
environment pinned (author, dates, no user configuration) for the test and the code it runs.

Hypothesis runs without its per-example deadline: on a loaded machine one example can take longer than
200 ms for reasons that have nothing to do with the code under test, and a property test must not fail
on the clock (the bounds the code keeps itself are tested on their own)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from reconciler.providers import reset_memory_targets
from reconciler.state import reset_stores
from reconciler.testing.gitrepos import git_env

settings.register_profile("reconciler", deadline=None)
settings.load_profile("reconciler")


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


@pytest.fixture
def pinned_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Pin git's environment for this test, for the code under test as well as for the helpers."""
    home = tmp_path / "home"
    home.mkdir()
    env = git_env(home)
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("GIT_") or key == "HOME":
            monkeypatch.setenv(key, value)
    return env
