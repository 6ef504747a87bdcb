"""Fixtures for the desired-state loader: config folders built from a dict of file texts."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from support.config import MakeDir

from reconciler.config.load import LoadResult, load_paths
from reconciler.errors import LoadError


@pytest.fixture
def make_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeDir:
    """Write ``{relative name: text}`` under a fresh folder and make it the current folder.

    Texts are dedented, so tests can indent them with the code; bytes are written as they are.
    """
    monkeypatch.chdir(tmp_path)

    def make(files: dict[str, str | bytes]) -> Path:
        for name, content in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content), encoding="utf-8")
        return tmp_path

    return make


@pytest.fixture
def load(make_config_dir: MakeDir) -> Callable[[dict[str, str | bytes]], LoadResult]:
    """Load the given files from the current folder; the result, or the LoadError raised."""

    def run(files: dict[str, str | bytes]) -> LoadResult:
        make_config_dir(files)
        return load_paths(["."])

    return run


@pytest.fixture
def problems(make_config_dir: MakeDir) -> Callable[[dict[str, str | bytes]], list[str]]:
    """Every diagnostic of loading the given files, as ``FILE:LINE:COL: message`` lines."""

    def run(files: dict[str, str | bytes]) -> list[str]:
        make_config_dir(files)
        with pytest.raises(LoadError) as info:
            load_paths(["."])
        return [str(d) for d in info.value.diagnostics]

    return run
