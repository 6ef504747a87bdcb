"""The memory provider's test helpers (its Provider behaviour is in the contract suite)."""

from __future__ import annotations

import pytest

from reconciler.core.model import Scope, Settings
from reconciler.core.observed import JobStatus
from reconciler.errors import TransientProviderError
from reconciler.providers.memory import MemoryProvider

SETTINGS = Settings("contoso.com", "ops@contoso.com")


def test_call_log_and_injected_failures() -> None:
    p = MemoryProvider("t")
    p.fail("create", TransientProviderError("throttled"), times=1)
    with pytest.raises(TransientProviderError):
        p.create("a", SETTINGS, Scope.all(), [])
    id = p.create("a", SETTINGS, Scope.all(), [])
    p.start(id)
    assert [name for name, _ in p.calls] == ["create", "create", "start"]
    assert p.calls_of("start") == [(id,)]


def test_status_drift_and_restarts() -> None:
    p = MemoryProvider("t")
    id = p.create("a", SETTINGS, Scope.all(), [])
    p.set_status(id, "Active", last_run_state="Failed", last_error="boom")
    (o,) = p.read_all()
    assert o.status == JobStatus(code="Active", last_run_state="Failed", last_error="boom")
    p.set_status(id, JobStatus())
    p.set_credential_data_count(id, {"user": 2, "inetOrgPerson": 1})
    p.edit(id, scope=Scope.all(), mappings=[])
    (o,) = p.read_all()
    assert o.credential_data_count == {"user": 2, "inetOrgPerson": 1} and o.mappings == ()
    p.restart(id, "Full")
    assert p.restarts == [(id, "Full")]
    with pytest.raises(TypeError):
        p.edit(id, nope=1)


def test_unmanaged_with_defaults() -> None:
    p = MemoryProvider("t")
    id = p.add_unmanaged("portal.com")
    (o,) = p.read_all()
    assert o.id == id and not o.managed and o.mappings == p.template_defaults()
