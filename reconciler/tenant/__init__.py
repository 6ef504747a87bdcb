"""The embedded tenant: a SQLite file that holds Cloud Sync configurations the way the service does.

``store.TenantStore`` keeps applications, service principals, synchronization jobs, secrets and job
schemas in the service's JSON shapes with Graph-like operations; ``objects`` adds a small on-premises
directory for on-demand provisioning and the cloud objects it writes; ``database`` is the SQLite file
under both (connections, transactions, tables); ``documents`` what the service accepts and makes.
The local provider works on the store directly; the Graph emulator serves it over HTTP. The job
templates it hands out are the embedded ones in ``reconciler.graph.template``; provisioning one
object on demand is ``reconciler.provisioning.on_demand``.
"""

from __future__ import annotations

from reconciler.tenant.store import FORMAT_VERSION, TenantStore

__all__ = ["FORMAT_VERSION", "TenantStore"]
