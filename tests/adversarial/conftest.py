"""Fixtures for the adversarial suite: the shared machinery in ``benchmarks/`` on the import path, a
bearer token whose every trace is searched for after the test, and a project to feed hostile input to.

The checkout's top folder is appended to ``sys.path`` (after the installed package, which is still what
``import reconciler`` finds) so that ``benchmarks.reliability`` and ``benchmarks.hostile`` import, and
``tests/git`` for the git repository helpers (``gitrepos``).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT, ROOT / "tests" / "git"):
    if str(folder) not in sys.path:
        sys.path.append(str(folder))

from benchmarks.hostile import Project, make_project  # noqa: E402
from benchmarks.reliability import find_secret  # noqa: E402


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
