"""Fixtures: a real git repository in a temporary folder (pinned author and dates)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.testing.gitrepos import GitRepo, git_env, make_repo


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


@pytest.fixture
def repo(tmp_path: Path, pinned_git: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """An empty repository on branch main; the test runs inside it."""
    r = make_repo(tmp_path / "repo", pinned_git)
    monkeypatch.chdir(r.path)
    return r
