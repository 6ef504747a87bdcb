"""Targets: the registry of providers, chosen by a target string (``--target``, ``RECONCILER_TARGET``).

A target string is ``<scheme>:<rest>``: ``local:<path of the tenant database>``, ``memory:<name>``,
``graph`` (Microsoft Graph) or ``graph+http://HOST:PORT`` (the Graph emulator, or a proxy).
No I/O happens here beyond what the chosen provider does when it is opened.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from reconciler.errors import ConfigError, NotFoundError
from reconciler.providers.base import Provider
from reconciler.state.folder import DEFAULT_TARGET, TARGET_ENV, default_target

__all__ = [
    "DEFAULT_TARGET",
    "PROVIDERS",
    "TARGET_ENV",
    "Provider",
    "open_target",
    "reset_memory_targets",
    "target_name",
]


_memory_lock = threading.Lock()
_memory_targets: dict[str, Provider] = {}


def _open_local(rest: str) -> Provider:
    from reconciler.providers.local import LocalProvider

    if not rest:
        raise ConfigError("a local target needs a path: local:<file>")
    return LocalProvider(rest)


def _open_local_to_read(rest: str, *, default: bool) -> Provider:
    """A local tenant for a command that only reads: an existing file is opened; none is ever created.

    The default tenant not made yet reads as empty (the first plan of the quick start); any other
    missing file is an error, since a mistyped path would otherwise plan against nothing.
    """
    if not rest or os.path.exists(rest):
        return _open_local(rest)
    if default:
        from reconciler.providers.local import EmptyLocalTenant

        return EmptyLocalTenant(rest)
    raise NotFoundError(
        f"there is no local tenant at {rest}; a command that only reads never creates one "
        "(`reconciler apply` does); check the path given to --target"
    )


def _open_memory(rest: str) -> Provider:
    from reconciler.providers.memory import MemoryProvider

    # One instance per name in a process, so that a test and the code under test see the same target.
    name = rest or "default"
    with _memory_lock:
        provider = _memory_targets.get(name)
        if provider is None:
            provider = _memory_targets[name] = MemoryProvider(name)
        return provider


def _open_graph(scheme: str) -> Callable[[str], Provider]:
    def open_(rest: str) -> Provider:
        from reconciler.graph.provider import open_graph

        return open_graph(f"{scheme}:{rest}" if rest else scheme)

    return open_


PROVIDERS: dict[str, Callable[[str], Provider]] = {
    "local": _open_local,
    "memory": _open_memory,
    **{scheme: _open_graph(scheme) for scheme in ("graph", "graph+http", "graph+https")},
}


def open_target(
    target: str | None = None, *, read_only: bool = False, missing_is_empty: bool = False
) -> Provider:
    """Open the provider for ``target``; None means ``$RECONCILER_TARGET``, else the state folder's tenant.

    ``read_only``: the command only reads, so a local tenant that does not exist is not created; it is
    an error, except for the default tenant or with ``missing_is_empty``, which read it as empty.
    """
    default = not target and not os.environ.get(TARGET_ENV)
    text = default_target(create=not read_only) if default else (target or os.environ[TARGET_ENV])
    scheme, sep, rest = text.partition(":")
    if read_only and scheme == "local" and sep:
        empty = missing_is_empty or default
        return _open_local_to_read(rest, default=empty)
    # "graph" alone is a whole target (Microsoft Graph itself).
    factory = PROVIDERS.get(scheme) if sep or scheme == "graph" else None
    if factory is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(
            f"unknown target {text!r}: the scheme must be one of {known} (e.g. {DEFAULT_TARGET})"
        )
    return factory(rest)


def target_name(target: str) -> str:
    """The canonical form of ``target`` (as providers record it in plans), without creating anything."""
    scheme, sep, rest = target.partition(":")
    if scheme == "local" and sep and rest:
        return "local:" + os.path.abspath(rest)
    provider = open_target(target, read_only=True)
    provider.close()
    return provider.target


def reset_memory_targets() -> None:
    """Forget every ``memory:`` target of this process (between tests)."""
    with _memory_lock:
        _memory_targets.clear()
