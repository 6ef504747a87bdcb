"""Fixtures for the adversarial suite: a bearer token whose every trace is searched for after the test,
and a project to feed hostile input to (the machinery is ``reconciler.testing``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.testing.commands import find_secret
from reconciler.testing.hostile import Project, make_project


class Traces:
    """Texts a test saw (command output) to search for the token besides the files."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def add(self, name: str, *texts: str) -> None:
        for i, text in enumerate(texts):
            self.texts[f"{name} #{len(self.texts)}.{i}"] = text


@pytest.fixture
def traces() -> Traces:
    return Traces()


@pytest.fixture
def secret_token(
    tmp_path: Path, traces: Traces, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A distinctive bearer token, set as ``RECONCILER_GRAPH_TOKEN``. After the test it must not be in
    any output the test recorded or left uncaptured, nor in any file under the test's folder (plan
    files, the journal, lock holders, status files, crash logs, the git cache)."""
    token = f"adversarial-{uuid.uuid4().hex}-secret"
    monkeypatch.setenv("RECONCILER_GRAPH_TOKEN", token)
    yield token
    left = capfd.readouterr()
    found = find_secret(token, {**traces.texts, "stdout": left.out, "stderr": left.err}, [tmp_path])
    assert not found, f"the token leaked into {found}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Two managed configurations and an unmanaged one on a local tenant, and saved plans of a change."""
    return make_project(tmp_path_factory.mktemp("hostile") / "project")
