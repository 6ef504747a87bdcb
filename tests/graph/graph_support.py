"""Helpers for the Graph tests: emulators in-process or as a child process, and providers pointed at them.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from reconciler.core.model import (
    Desired,
    DesiredState,
    Mapping,
    MappingKind,
    MappingOverride,
    Scope,
    ScopeKind,
    Settings,
)
from reconciler.emulator import Emulator
from reconciler.graph.client import GraphClient, NoToken, RetryPolicy, StaticToken, TokenProvider
from reconciler.graph.provider import GraphProvider
from reconciler.graph.shapes import PASSWORD_HASH_TEMPLATE, PROVISIONING_TEMPLATE, settings_to_secrets
from reconciler.tenant.store import TenantStore

TOKEN = "test-token-3f9c0d2a"

StartEmulator = Callable[..., Emulator]

# Retries as in production, only with short waits.
FAST_RETRY = RetryPolicy(max_attempts=8, base_delay=0.005, max_delay=0.05, max_retry_after=60)


class SleepRecorder:
    """Stands in for time.sleep: remembers every wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider_for(
    emulator: Emulator,
    token: str | None = None,
    *,
    tokens: TokenProvider | None = None,
    sleep: Any = None,
    retry: RetryPolicy = FAST_RETRY,
    concurrency: int = 4,
    timeout: float = 60.0,
) -> GraphProvider:
    base = emulator.url + "/v1.0"
    if tokens is None:
        tokens = StaticToken(token) if token else NoToken()
    client = GraphClient(
        base, tokens, concurrency=concurrency, retry=retry, sleep=sleep or SleepRecorder(), timeout=timeout
    )
    return GraphProvider(base, target=emulator.target, client=client)


def settings(domain: str, **kw: Any) -> Settings:
    kw.setdefault("notification_email", f"ops@{domain}")
    return Settings(domain=domain, **kw)


def desired(name: str, domain: str | None = None, **kw: Any) -> Desired:
    domain = domain or f"{name}.contoso.com"
    scope = kw.pop("scope", Scope(ScopeKind.ORGANIZATIONAL_UNITS, (f"OU=Sync,DC={name},DC=com",)))
    overrides = kw.pop(
        "overrides",
        (
            MappingOverride(
                "user", "department", Mapping("user", "department", MappingKind.DIRECT, "department")
            ),
            MappingOverride(
                "user",
                "jobTitle",
                Mapping("user", "jobTitle", MappingKind.EXPRESSION, 'Join(" ", Trim([title]), "FTE")'),
            ),
            MappingOverride("user", "extensionAttribute3", None),
        ),
    )
    return Desired(name=name, settings=settings(domain, **kw), scope=scope, overrides=overrides)


def state(*configurations: Desired) -> DesiredState:
    return DesiredState(configurations=tuple(configurations))


def renamed_email(d: Desired, email: str) -> Desired:
    return replace(d, settings=replace(d.settings, notification_email=email))


def portal_configuration(store: TenantStore, domain: str, *, password_hash_sync: bool = False) -> str:
    """A configuration made the way the portal makes it: no reconciler tags, the template schema."""
    sp = store.instantiate(domain)["servicePrincipal"]
    store.create_job(sp["id"], PROVISIONING_TEMPLATE)
    if password_hash_sync:
        store.create_job(sp["id"], PASSWORD_HASH_TEMPLATE)
    store.put_secrets(
        sp["id"], settings_to_secrets(settings(domain, password_hash_sync=password_hash_sync), [])
    )
    return str(sp["id"])


def spawn(args: Sequence[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A child ``python -m ...`` with stdout piped (the emulator prints its address there)."""
    child_env = dict(os.environ)
    child_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
    )
