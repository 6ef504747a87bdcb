"""Fixtures: a real git repository in a temporary folder (git pinned by the root ``pinned_git``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.testing.gitrepos import GitRepo, make_repo


@pytest.fixture
def repo(tmp_path: Path, pinned_git: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """An empty repository on branch main; the test runs inside it."""
    r = make_repo(tmp_path / "repo", pinned_git)
    monkeypatch.chdir(r.path)
    return r
