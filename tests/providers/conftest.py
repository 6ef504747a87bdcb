"""The provider contract fixture: every provider in ``PROVIDER_FACTORIES`` runs the same tests.

A factory takes a temporary directory and returns a ``Harness`` (``provider_harness.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from provider_harness import Harness, store_harness

from reconciler.providers.base import Provider
from reconciler.providers.local import LocalProvider
from reconciler.providers.memory import MemoryProvider


def _memory(tmp_path: Path) -> Harness:
    provider = MemoryProvider(uuid.uuid4().hex)
    return Harness(
        provider=provider,
        add_unmanaged=lambda domain: provider.add_unmanaged(domain),
        add_incomplete=provider.add_incomplete,
        quarantine=lambda id: provider.quarantine(id, "TooManyDeletes"),
    )


def _local(tmp_path: Path) -> Harness:
    provider = LocalProvider(tmp_path / "tenant.db")
    return store_harness(provider, provider.store)


PROVIDER_FACTORIES: dict[str, Callable[[Path], Harness]] = {
    "memory": _memory,
    "local": _local,
}


@pytest.fixture(params=sorted(PROVIDER_FACTORIES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = PROVIDER_FACTORIES[request.param](tmp_path)
    yield h
    h.provider.close()


@pytest.fixture
def provider(harness: Harness) -> Provider:
    return harness.provider
