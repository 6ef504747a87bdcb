"""The embedded tenant: a SQLite file that holds Cloud Sync configurations the way the service does.

``store.TenantStore`` keeps applications, service principals, synchronization jobs, secrets and job
schemas in the service's JSON shapes with Graph-like operations, plus a small on-premises directory for
on-demand provisioning. The local provider works on it directly; the Graph emulator serves it over HTTP.
``template`` reads the embedded AD2AADProvisioning template schema.
"""

from __future__ import annotations

from reconciler.tenant.store import FORMAT_VERSION, TenantStore

__all__ = ["FORMAT_VERSION", "TenantStore"]
