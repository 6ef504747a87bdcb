"""A Graph-compatible emulator of the synchronization API, over the embedded tenant store.

``reconciler emulator --store PATH`` serves, on a local port, the Microsoft Graph synchronization API on
``/v1.0`` and ``/beta``: the documented calls, with the service's response shapes, query options,
errors, paging and ``$batch``, over the same SQLite file as ``--target local:PATH``: both targets see
one tenant. It can require a bearer token and
inject latency, throttling, server errors and dropped connections, deterministically for a seed. It is
how the Graph provider is tested, and how a pipeline can be tried without a tenant.

- ``service``: the endpoints, as a function from a request to a reply (no sockets): it routes and checks
  each request; the handlers are in ``directory`` and ``synchronization``, the shapes in ``replies``.
- ``odata``: Graph's query options ($filter, $search, $select, $expand, $count, paging).
- ``documented``: the functions and filter operators lists a schema answers with.
- ``server``: HTTP, auth, latency and fault injection (``Emulator``, ``EmulatorConfig``).
- request bodies are checked (``reconciler.graph.metadata``) against the version's metadata extract.
"""

from __future__ import annotations

from reconciler.emulator.server import Emulator, EmulatorConfig, Recorded

__all__ = ["Emulator", "EmulatorConfig", "Recorded"]
