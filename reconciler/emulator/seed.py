"""A configuration made in the portal, seeded into a tenant store from a real job-schema dump.

``reconciler emulator --seed-config FILE`` puts one into the store before it serves, so that tests and
users can rehearse against what the service really holds (the real dump in
``tests/fixtures/real/``: PascalCase target names, the OU scope as an input-filter clause, no
inetOrgPerson mapping). The configuration is shaped as the portal leaves one: a principal named after
the domain with ``applicationTemplateId`` null, the service's own tag and its app id as its only name;
its ``AD2AADProvisioning`` job holding the dump as its schema (and the password hash job when the dump
maps ``PasswordHash``), both started; the secrets ``Domain``, ``AppKey`` and
``SyncNotificationSettings``. Our tags are not on it: the tool sees it as unmanaged.

I/O: reads the dump file (bounded), writes the tenant store.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.config.files import read_bounded
from reconciler.core.model import Settings
from reconciler.errors import ConfigError, FileReadError, ProviderError
from reconciler.graph.checks import check_schema
from reconciler.graph.editing import without_annotations
from reconciler.graph.identity import PASSWORD_HASH_TEMPLATE, PROVISIONING_TEMPLATE
from reconciler.graph.reading import find_provisioning_rule, read_schema
from reconciler.graph.secrets import settings_to_secrets
from reconciler.tenant.store import TenantStore

__all__ = ["MAX_DUMP_BYTES", "domain_of", "load_schema_dump", "seed_portal_configuration"]

JSON = dict[str, Any]

# A real schema with its directory definitions is a few hundred KiB.
MAX_DUMP_BYTES = 32 * 1024 * 1024
_DC = re.compile(r"(?i)\bDC=([A-Za-z0-9-]{1,63})")


def load_schema_dump(path: str) -> JSON:
    """The job schema in ``path`` (a ``GET .../jobs/{id}/schema`` answer), checked; ``ConfigError``
    naming the file when it is not one."""
    try:
        data = read_bounded(path, MAX_DUMP_BYTES, what="schema dump")
    except FileReadError as exc:
        raise ConfigError(f"{path}: {exc.reason}") from exc
    try:
        schema = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not JSON ({exc})") from None
    try:
        checked = check_schema(schema, path)
        read_schema(checked)
    except ProviderError as exc:
        raise ConfigError(f"{path}: not a job schema the tool can read: {exc}") from None
    if find_provisioning_rule(checked) is None:
        raise ConfigError(f"{path}: the schema has no provisioning rule")
    return checked


def domain_of(schema: JSON) -> str | None:
    """The AD domain the dump's distinguished names name (``DC=mydomain,DC=tld`` -> ``mydomain.tld``),
    when they all name one; None otherwise."""
    found = set()
    for text in re.findall(r"(?i)(?:DC=[A-Za-z0-9-]{1,63},?)+", json.dumps(schema)):
        parts = _DC.findall(text)
        if len(parts) >= 2:
            found.add(".".join(parts).lower())
    return found.pop() if len(found) == 1 else None


def _maps_password_hash(schema: JSON) -> bool:
    for rule in schema.get("synchronizationRules") or []:
        for om in rule.get("objectMappings") or []:
            for am in om.get("attributeMappings") or []:
                source = am.get("source") or {}
                if str(source.get("name", "")).casefold() == "passwordhash":
                    return True
    return False


def seed_portal_configuration(
    store: TenantStore, schema: JSON, domain: str, notification_email: str
) -> str | None:
    """Put a configuration for ``domain`` made in the portal into ``store``, with ``schema`` as its
    provisioning job's schema; its principal's id. None when a principal named ``domain`` is there
    already (seeding again leaves the store as it is)."""
    with store.transaction():
        if any(
            str(sp.get("displayName", "")).casefold() == domain.casefold()
            for sp in store.list_service_principals()
        ):
            return None
        created = store.instantiate(domain, portal_made=True)
        sp_id = str(created["servicePrincipal"]["id"])
        job = store.create_job(sp_id, PROVISIONING_TEMPLATE)
        # The dump is stored as read (beta-only and read-only parts included), less the annotations
        # that describe the answer it came in; the store stamps the job's id and a new version.
        store.put_schema(sp_id, job["id"], without_annotations(schema))
        jobs = [job["id"]]
        password_hash = _maps_password_hash(schema)
        if password_hash:
            jobs.append(store.create_job(sp_id, PASSWORD_HASH_TEMPLATE)["id"])
        settings = Settings(
            domain=domain, notification_email=notification_email, password_hash_sync=password_hash
        )
        store.put_secrets(sp_id, settings_to_secrets(settings, []))
        for job_id in jobs:
            store.start_job(sp_id, job_id)
    return sp_id
