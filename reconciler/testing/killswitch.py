"""Test support: run the command line and end it with SIGKILL right after a chosen write (crash tests).

``python -m reconciler.testing.killswitch ARGS...`` runs ``reconciler ARGS...`` with every target it
opens wrapped as ``RECONCILER_TEST_KILL_AFTER`` says; the product itself never reads that variable.

- ``N``: killed once the Nth provider write (``create``, ``update_settings``, ``start``, ...) has
  returned, before apply journals its outcome: the target holds the write, the journal does not.
- ``http:N``: killed once the Nth write request (POST, PUT, PATCH or DELETE; a ``$batch`` of reads does
  not count) of a Graph target has its answer, which is in the middle of a provider write (between
  ``instantiate`` and tagging the new service principal, for instance).

I/O: none besides the wrapped provider's and the command line's; the signal ends the process.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.core.model import Mapping, Scope, Settings
from reconciler.core.observed import Observed
from reconciler.errors import ConfigError
from reconciler.providers.base import RESET_FULL, Provider

__all__ = ["KILL_ENV", "KillSwitch", "main", "with_kill_switch"]

KILL_ENV = "RECONCILER_TEST_KILL_AFTER"

_HTTP_WRITES = frozenset(("POST", "PUT", "PATCH", "DELETE"))


class _Counter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self.count += 1
            if self.count >= self.limit:
                os.kill(os.getpid(), signal.SIGKILL)


class KillSwitch:
    """A provider that behaves as ``inner`` and kills the process after the counted write."""

    def __init__(self, inner: Provider, limit: int, *, http: bool = False) -> None:
        self._inner = inner
        self._counter = _Counter(limit)
        self._count_calls = not http
        self.target = inner.target
        if http:
            client = getattr(inner, "client", None)
            if client is None:
                raise ConfigError(f"{KILL_ENV}=http:N needs a Graph target")
            setattr(client, "request", self._counting_request(client.request))  # noqa: B010

    def _counting_request(self, request: Callable[..., Any]) -> Callable[..., Any]:
        def counted(method: str, path: str, **kwargs: Any) -> Any:
            result = request(method, path, **kwargs)
            reads_only = path.endswith("/$batch") and kwargs.get("idempotent") is True
            if method.upper() in _HTTP_WRITES and not reads_only:
                self._counter.tick()
            return result

        return counted

    def _wrote(self) -> None:
        if self._count_calls:
            self._counter.tick()

    def __getattr__(self, name: str) -> Any:
        # Reads (read_all, read_named, template_defaults, ...) go straight through.
        return getattr(self._inner, name)

    def read_all(self) -> tuple[Observed, ...]:
        return self._inner.read_all()

    def template_defaults(self) -> tuple[Mapping, ...]:
        return self._inner.template_defaults()

    def create(
        self,
        name: str,
        settings: Settings,
        scope: Scope,
        mappings: Sequence[Mapping],
        *,
        removals: Sequence[tuple[str, str]] = (),
        deletion_protection: bool = False,
        restart_token: str | None = None,
    ) -> str:
        id = self._inner.create(
            name,
            settings,
            scope,
            mappings,
            removals=removals,
            deletion_protection=deletion_protection,
            restart_token=restart_token,
        )
        self._wrote()
        return id

    def update_settings(
        self, id: str, settings: Settings, *, deletion_protection: bool, restart_token: str | None
    ) -> None:
        self._inner.update_settings(
            id, settings, deletion_protection=deletion_protection, restart_token=restart_token
        )
        self._wrote()

    def edit_schema(
        self, id: str, scope: Scope, mappings: Sequence[Mapping], removals: Sequence[tuple[str, str]] = ()
    ) -> None:
        self._inner.edit_schema(id, scope, mappings, removals)
        self._wrote()

    def start(self, id: str) -> None:
        self._inner.start(id)
        self._wrote()

    def pause(self, id: str) -> None:
        self._inner.pause(id)
        self._wrote()

    def restart(self, id: str, reset_scope: str = RESET_FULL) -> None:
        self._inner.restart(id, reset_scope)
        self._wrote()

    def set_restart_pending(self, id: str, pending: bool) -> None:
        self._inner.set_restart_pending(id, pending)
        self._wrote()

    def delete(self, id: str) -> None:
        self._inner.delete(id)
        self._wrote()

    def adopt(self, id: str, name: str) -> None:
        self._inner.adopt(id, name)
        self._wrote()

    def rename(self, id: str, old: str, new: str) -> None:
        self._inner.rename(id, old, new)
        self._wrote()

    def provision_on_demand(self, id: str, subject: str, object_type: str = "user") -> dict[str, Any]:
        return self._inner.provision_on_demand(id, subject, object_type)

    def close(self) -> None:
        self._inner.close()


def with_kill_switch(provider: Provider, setting: str) -> Provider:
    """``provider`` wrapped as ``setting`` (the value of ``RECONCILER_TEST_KILL_AFTER``) asks."""
    text = setting.strip()
    http = text.startswith("http:")
    number = text[len("http:") :] if http else text
    try:
        limit = int(number)
    except ValueError:
        raise ConfigError(f"{KILL_ENV}={setting!r}: expected N or http:N") from None
    if limit < 1:
        raise ConfigError(f"{KILL_ENV} must be at least 1")
    return KillSwitch(provider, limit, http=http)


def main(argv: Sequence[str] | None = None) -> int:
    """``reconciler ARGV`` with every opened target wrapped as ``$RECONCILER_TEST_KILL_AFTER`` says.

    The wrapper replaces ``open_target`` in the registry before any command module is imported, so
    each command's own ``from reconciler.providers import open_target`` finds the wrapping one.
    """
    import sys

    import reconciler.providers as registry

    setting = os.environ.get(KILL_ENV, "")
    if setting:
        opener = registry.open_target

        def open_target(*args: Any, **kwargs: Any) -> Provider:
            return with_kill_switch(opener(*args, **kwargs), setting)

        registry.open_target = open_target
    from reconciler.cli.main import main as cli_main

    return cli_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
