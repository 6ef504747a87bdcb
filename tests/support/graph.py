"""Helpers for the Graph and emulator tests: emulators in-process or as a child process, providers
pointed at them, and the fixtures both folders' conftest.py hand on (``graph_isolation``, autouse there:
after each test no file under its folder may hold the token the tests use; ``start_emulator``,
``emulator``, ``emulator_process``).

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

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
from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.graph.client import GraphClient, RetryPolicy
from reconciler.graph.identity import PASSWORD_HASH_TEMPLATE, PROVISIONING_TEMPLATE
from reconciler.graph.provider import GraphProvider
from reconciler.graph.secrets import settings_to_secrets
from reconciler.graph.tokens import NoToken, StaticToken, TokenProvider
from reconciler.tenant.store import TenantStore
from reconciler.testing.commands import find_secret

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


@pytest.fixture(autouse=True)
def graph_isolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Journals and locks of apply runs go to the test's folder; no real credentials are picked up.
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    for name in ("RECONCILER_GRAPH_TOKEN", "RECONCILER_TARGET", "RECONCILER_EMULATOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield
    assert find_secret(TOKEN, {}, [tmp_path]) == []


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[StartEmulator]:
    """Start an emulator thread over ``db`` (default: the test's tenant.db); stopped after the test."""
    started: list[Emulator] = []

    def start(db: Path | None = None, **config: Any) -> Emulator:
        config.setdefault("record", True)
        emulator = Emulator(db or tmp_path / "tenant.db", EmulatorConfig(**config)).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> Emulator:
    """An emulator that requires ``TOKEN``."""
    return start_emulator(token=TOKEN)


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start the emulator command as a child; returns (process, url). Stopped after the test."""
    children: list[subprocess.Popen[str]] = []

    def start(
        *args: str, module: tuple[str, ...] = ("-m", "reconciler", "emulator")
    ) -> tuple[subprocess.Popen[str], str]:
        proc = spawn([*module, "--store", str(tmp_path / "tenant.db"), "--port", "0", *args])
        children.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:"), (
            line,
            proc.stderr.read() if proc.stderr else "",
        )
        return proc, line.split()[-1]

    yield start
    for proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
