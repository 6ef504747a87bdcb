"""A Graph-compatible emulator of the synchronization API, over the embedded tenant store.

``reconciler emulator --store PATH`` serves, on a local port, the Microsoft Graph v1.0 endpoints the
Graph provider uses, with the service's response shapes, errors, paging and ``$batch``, over the same
SQLite file as ``--target local:PATH``: both targets see one tenant. It can require a bearer token and
inject latency, throttling, server errors and dropped connections, deterministically for a seed. It is
how the Graph provider is tested, and how a pipeline can be tried without a tenant.

- ``service``: the endpoints, as a function from a request to a reply (no sockets).
- ``server``: HTTP, auth, latency and fault injection (``Emulator``, ``EmulatorConfig``).
- request bodies are checked (``reconciler.graph.metadata``) against the v1.0 metadata extract.
"""

from __future__ import annotations

from reconciler.emulator.server import Emulator, EmulatorConfig, Recorded

__all__ = ["Emulator", "EmulatorConfig", "Recorded"]
