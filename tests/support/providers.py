"""What a provider contract test gets: the provider plus back doors to set a scene.

A back door does what the provider itself cannot: make a configuration in the portal, quarantine a job,
leave a create interrupted. Providers backed by a ``TenantStore`` (local, and the Graph emulator) get
them from ``store_harness``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.core.model import Settings
from reconciler.graph.identity import PASSWORD_HASH_TEMPLATE, PROVISIONING_TEMPLATE, find_job, tags_for
from reconciler.graph.secrets import settings_to_secrets
from reconciler.providers.base import Provider
from reconciler.tenant.store import TenantStore


@dataclass
class Harness:
    provider: Provider
    #: make a configuration outside reconciler (as in the portal) for a domain; returns its id
    add_unmanaged: Callable[[str], str]
    #: make a managed configuration whose create stopped before the job was made; returns its id
    add_incomplete: Callable[[str, Settings], str]
    #: put the configuration's provisioning job in quarantine
    quarantine: Callable[[str], None]
    #: the tenant behind the provider, when there is one (service shapes can be checked there)
    store: TenantStore | None = None
    #: quarantine the job for TooManyDeletes holding the deletes of these objects, as the service logs
    #: them (``id``, ``displayName``); returns when the quarantine began
    hold_deletes: Callable[[str, list[dict[str, str]]], str] | None = None


def portal_create(store: TenantStore, domain: str, *, password_hash_sync: bool = False) -> str:
    """A configuration made the way the portal makes it: no reconciler tags, template schema."""
    sp = store.instantiate(domain)["servicePrincipal"]
    store.create_job(sp["id"], PROVISIONING_TEMPLATE)
    if password_hash_sync:
        store.create_job(sp["id"], PASSWORD_HASH_TEMPLATE)
    settings = Settings(domain, f"admin@{domain}", password_hash_sync=password_hash_sync)
    store.put_secrets(sp["id"], settings_to_secrets(settings, []))
    return str(sp["id"])


def add_cloud_groups(
    store: TenantStore, members: Mapping[str, int], names: Mapping[str, str] | None = None
) -> None:
    """Cloud security groups in the tenant's directory, as a directory load writes them: each id with
    that many direct members (user ids made up for it), and its name in ``names`` when given."""
    for id, count in members.items():
        ids = [str(uuid.UUID(int=(int(id.replace("-", ""), 16) + n + 1) % 2**128)) for n in range(count)]
        name = (names or {}).get(id, f"Group {id[:8]}")
        attributes = {"displayName": name, "securityEnabled": True, "mailEnabled": False}
        store.put_cloud_object(id, "Group", {**attributes, "members": ids}, from_directory=True)


def store_harness(provider: Provider, store: TenantStore) -> Harness:
    def add_incomplete(name: str, settings: Settings) -> str:
        sp = store.instantiate(settings.domain)["servicePrincipal"]
        store.patch_service_principal(sp["id"], {"tags": tags_for([], name=name)})
        return str(sp["id"])

    def quarantine(id: str) -> None:
        job = find_job(store.list_jobs(id), PROVISIONING_TEMPLATE)
        assert job is not None
        store.quarantine(id, job["id"], reason="TooManyDeletes")

    def hold_deletes(id: str, objects: list[dict[str, str]]) -> str:
        job = find_job(store.list_jobs(id), PROVISIONING_TEMPLATE)
        assert job is not None
        return str(store.hold_deletes(id, job["id"], objects)["status"]["quarantine"]["seriesBegan"])

    return Harness(
        provider=provider,
        add_unmanaged=lambda domain: portal_create(store, domain),
        add_incomplete=add_incomplete,
        quarantine=quarantine,
        store=store,
        hold_deletes=hold_deletes,
    )
