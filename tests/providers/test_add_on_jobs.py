"""The add-on jobs of an AD -> Entra ID configuration (Exchange hybrid writeback, device sync) on every
provider backed by a tenant: the local tenant, and Graph over real HTTP to the emulator.

What is checked is what the service holds afterwards: the jobs on the principal, their schedule, and
the configuration read back; and the Exchange precondition as a directory discover finds it."""

from __future__ import annotations

from dataclasses import replace

from support.providers import Harness

from reconciler.core.model import Scope, Settings
from reconciler.graph.identity import (
    DEVICE_SYNC_TEMPLATE,
    EXCHANGE_WRITEBACK_TEMPLATE,
    PASSWORD_HASH_TEMPLATE,
    PROVISIONING_TEMPLATE,
    job_enabled,
)
from reconciler.providers.base import ChecksExchangeSchema

SETTINGS = Settings(domain="contoso.com", notification_email="ops@contoso.com")
BOTH = replace(SETTINGS, exchange_hybrid_writeback=True, device_sync=True)


def jobs(h: Harness, id: str) -> dict[str, bool]:
    assert h.store is not None
    return {str(j["templateId"]): job_enabled(j) for j in h.store.list_jobs(id)}


def test_add_on_jobs_are_created_started_with_the_configuration_and_removed(tenant: Harness) -> None:
    p = tenant.provider
    id = p.create("prod", BOTH, Scope.all(), [])
    assert jobs(tenant, id) == {
        PROVISIONING_TEMPLATE: False,
        PASSWORD_HASH_TEMPLATE: False,
        EXCHANGE_WRITEBACK_TEMPLATE: False,
        DEVICE_SYNC_TEMPLATE: False,
    }
    (o,) = p.read_all()
    assert o.settings == replace(BOTH, enabled=False)
    assert {t for t, _ in o.jobs} == set(jobs(tenant, id))
    p.start(id)
    assert set(jobs(tenant, id).values()) == {True}

    # Turned off: the job is gone (its schema is the service's, nothing of ours is lost); the rest runs on.
    p.update_settings(id, replace(BOTH, device_sync=False), deletion_protection=False, restart_token=None)
    assert jobs(tenant, id) == {
        PROVISIONING_TEMPLATE: True,
        PASSWORD_HASH_TEMPLATE: True,
        EXCHANGE_WRITEBACK_TEMPLATE: True,
    }
    # Turned on with the configuration running: created and started at once.
    p.update_settings(id, BOTH, deletion_protection=False, restart_token=None)
    assert jobs(tenant, id)[DEVICE_SYNC_TEMPLATE] is True
    (o,) = p.read_all()
    assert o.settings == BOTH
    p.pause(id)
    assert set(jobs(tenant, id).values()) == {False}


def test_the_exchange_precondition_is_what_a_directory_discover_finds(tenant: Harness) -> None:
    p = tenant.provider
    assert isinstance(p, ChecksExchangeSchema)
    assert tenant.store is not None
    id = p.create("prod", SETTINGS, Scope.all(), [])
    assert p.exchange_schema_ready(id) is True
    tenant.store.set_ad_schema(exchange=False)
    assert p.exchange_schema_ready(id) is False


def test_deleting_a_configuration_takes_its_add_on_jobs_with_it(tenant: Harness) -> None:
    p = tenant.provider
    assert tenant.store is not None
    id = p.create("prod", BOTH, Scope.all(), [])
    p.start(id)
    p.delete(id)
    assert p.read_all() == ()
    assert tenant.store.list_service_principals() == []
    # Deleting again (an interrupted delete finished) is no error.
    p.delete(id)
