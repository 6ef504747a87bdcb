"""A configuration's secrets (``synchronization/secrets``) <-> its ``Settings``. Pure: no I/O.

The secret set of a principal holds the configuration's domain, its notification and accidental-delete
settings and the tenant-wide ``AppKey`` flags, each a JSON object in text (``graph-sync-api.md`` 1d).
Writing sets only our fields of our three keys; every other key, and every field we do not know, is
written back as it was read.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from typing import Any

from reconciler.core.model import DEFAULT_DELETE_THRESHOLD, Direction, Settings
from reconciler.graph.identity import JSON, PASSWORD_HASH_TEMPLATE, PROVISIONING_TEMPLATE

__all__ = [
    "APP_KEY",
    "DOMAIN",
    "MANAGED_SECRET_KEYS",
    "SYNC_NOTIFICATION_SETTINGS",
    "secrets_to_settings",
    "settings_to_secrets",
]

DOMAIN = "Domain"
APP_KEY = "AppKey"
SYNC_NOTIFICATION_SETTINGS = "SyncNotificationSettings"
MANAGED_SECRET_KEYS: tuple[str, ...] = (DOMAIN, APP_KEY, SYNC_NOTIFICATION_SETTINGS)


def _secret_object(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _dump(data: AbcMapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _merged_secret(existing: str | None, ours: AbcMapping[str, Any]) -> str:
    """Our fields set into the existing JSON object; the original text is kept when nothing changes."""
    current = _secret_object(existing)
    merged = dict(current or {})
    merged.update(ours)
    if current is not None and merged == current and existing is not None:
        return existing
    return _dump(merged)


def settings_to_secrets(settings: Settings, existing: Sequence[AbcMapping[str, Any]]) -> list[JSON]:
    """The full secret set to PUT: ``existing`` with our three keys set; every other key kept in order."""
    ours: dict[str, dict[str, Any]] = {
        DOMAIN: {"domain": settings.domain},
        APP_KEY: {
            "appKeyScenario": PASSWORD_HASH_TEMPLATE if settings.password_hash_sync else PROVISIONING_TEMPLATE
        },
        SYNC_NOTIFICATION_SETTINGS: {
            "Enabled": bool(settings.notification_email),
            "Recipients": settings.notification_email,
            "DeleteThresholdEnabled": settings.accidental_deletes_enabled,
            "DeleteThresholdValue": settings.accidental_deletes_threshold,
        },
    }
    if settings.direction is Direction.ENTRA_TO_AD:
        # No AppKey seen on an Entra ID -> AD configuration (cloud-sync-directions.md 1.2, INFERRED):
        # its flags are about AD -> Entra ID sync. One already there is kept as it is.
        del ours[APP_KEY]
    elif not settings.password_hash_sync and any(item.get("key") == APP_KEY for item in existing):
        # AppKey sets tenant-wide flags (graph-sync-api.md 1d): one configuration turning password hash
        # sync off must not lower them for the tenant, so an AppKey already there is kept as it is.
        del ours[APP_KEY]
    result: list[JSON] = []
    written: set[str] = set()
    for item in existing:
        key = item.get("key")
        if key in ours and key not in written:
            assert isinstance(key, str)
            new = dict(item)
            new["value"] = _merged_secret(item.get("value"), ours[key])
            result.append(new)
            written.add(key)
        elif key in ours:
            continue  # a duplicate of a key we manage: the first copy is the one that counts
        else:
            result.append(copy.deepcopy(dict(item)))
    for key in MANAGED_SECRET_KEYS:
        if key not in written and key in ours:
            result.append({"key": key, "value": _dump(ours[key])})
    return result


def secrets_to_settings(
    secrets: Iterable[AbcMapping[str, Any]],
    *,
    enabled: bool,
    password_hash_job: bool = False,
) -> Settings:
    """``Settings`` from the secret set. ``enabled`` comes from the job schedule, not from secrets.

    Password hash sync is the configuration's own: whether it has an ``AD2AADPasswordHash`` job
    (``password_hash_job``, given by the caller); its CredentialData rows are checked by the planner
    (``Observed.credential_data_count``). ``AppKey`` is not read for it: it sets tenant-wide flags and
    is never lowered for one configuration (``settings_to_secrets``).
    """
    values: dict[str, str | None] = {}
    for item in secrets:
        key = item.get("key")
        if isinstance(key, str) and key not in values:
            values[key] = item.get("value")
    domain = _secret_object(values.get(DOMAIN)) or {}
    notify = _secret_object(values.get(SYNC_NOTIFICATION_SETTINGS)) or {}
    phs = password_hash_job
    threshold = notify.get("DeleteThresholdValue", DEFAULT_DELETE_THRESHOLD)
    try:
        threshold_value = int(threshold)
    except (TypeError, ValueError):
        threshold_value = DEFAULT_DELETE_THRESHOLD
    return Settings(
        domain=str(domain.get("domain") or ""),
        notification_email=str(notify.get("Recipients") or ""),
        enabled=enabled,
        password_hash_sync=bool(phs),
        accidental_deletes_enabled=bool(notify.get("DeleteThresholdEnabled", True)),
        accidental_deletes_threshold=threshold_value,
    )
