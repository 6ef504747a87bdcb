"""Choosing a provider by target string."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.errors import ConfigError
from reconciler.providers import DEFAULT_TARGET, PROVIDERS, TARGET_ENV, open_target
from reconciler.providers.local import LocalProvider
from reconciler.providers.memory import MemoryProvider


def test_known_schemes() -> None:
    assert {"local", "memory"} <= set(PROVIDERS)
    assert DEFAULT_TARGET == "local:.reconciler/tenant.db"


def test_local_target_is_canonical(tmp_path: Path) -> None:
    p = open_target(f"local:{tmp_path}/t.db")
    assert isinstance(p, LocalProvider) and p.target == f"local:{tmp_path}/t.db"
    p.close()


def test_default_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TARGET_ENV, raising=False)
    p = open_target()
    assert p.target == "local:" + os.path.join(str(tmp_path), ".reconciler", "tenant.db")
    p.close()
    monkeypatch.setenv(TARGET_ENV, "memory:from-env")
    assert open_target(None).target == "memory:from-env"
    assert open_target("memory:explicit").target == "memory:explicit"


def test_memory_targets_are_shared_by_name() -> None:
    a, b, c = open_target("memory:shared"), open_target("memory:shared"), open_target("memory:other")
    assert a is b and a is not c and isinstance(a, MemoryProvider)


@pytest.mark.parametrize("target", ["nope:x", "no-scheme", "local:"])
def test_bad_targets(target: str) -> None:
    with pytest.raises(ConfigError) as err:
        open_target(target)
    if target != "local:":
        assert "local" in str(err.value) and "memory" in str(err.value)
