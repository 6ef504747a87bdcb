"""The provider contract fixture: every provider in ``PROVIDER_FACTORIES`` runs the same tests.

A factory takes a temporary directory and returns a ``Harness`` (``support.providers``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.providers import Harness, store_harness

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.graph.provider import GraphProvider
from reconciler.graph.tokens import StaticToken
from reconciler.providers.base import Provider
from reconciler.providers.local import LocalProvider
from reconciler.providers.memory import MemoryProvider


def _memory(tmp_path: Path) -> Harness:
    provider = MemoryProvider(uuid.uuid4().hex)

    def hold_deletes(id: str, objects: list[dict[str, str]]) -> str:
        (o,) = [c for c in provider.read_all() if c.id == id]
        # A job already held stays in the same quarantine, as on the service.
        since = o.status.quarantine_since if o.status.holds_deletes() else None
        since = since or datetime.now(UTC).isoformat()
        provider.quarantine(id, "TooManyDeletes", since, staged=objects)
        return since

    return Harness(
        provider=provider,
        add_unmanaged=lambda domain: provider.add_unmanaged(domain),
        add_incomplete=provider.add_incomplete,
        quarantine=lambda id: provider.quarantine(id, "TooManyDeletes"),
        hold_deletes=hold_deletes,
    )


def _local(tmp_path: Path) -> Harness:
    provider = LocalProvider(tmp_path / "tenant.db")
    return store_harness(provider, provider.store)


class _EmulatedGraph(GraphProvider):
    """The Graph provider over real HTTP to an in-process emulator, which stops with it."""

    def __init__(self, emulator: Emulator, token: str) -> None:
        super().__init__(emulator.url + "/v1.0", target=emulator.target, tokens=StaticToken(token))
        self.emulator = emulator

    def close(self) -> None:
        super().close()
        self.emulator.stop()


def _graph_emulator(tmp_path: Path) -> Harness:
    token = uuid.uuid4().hex
    emulator = Emulator(tmp_path / "tenant.db", EmulatorConfig(token=token)).start()
    return store_harness(_EmulatedGraph(emulator, token), emulator.store)


PROVIDER_FACTORIES: dict[str, Callable[[Path], Harness]] = {
    "memory": _memory,
    "local": _local,
    "graph-emulator": _graph_emulator,
}


@pytest.fixture(params=sorted(PROVIDER_FACTORIES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = PROVIDER_FACTORIES[request.param](tmp_path)
    yield h
    h.provider.close()


@pytest.fixture
def provider(harness: Harness) -> Provider:
    return harness.provider


@pytest.fixture
def tenant(harness: Harness) -> Harness:
    """The harness of a provider backed by a tenant (local, Graph emulator); skipped for the others."""
    if harness.store is None:
        pytest.skip("this provider has no service tenant behind it")
    return harness
