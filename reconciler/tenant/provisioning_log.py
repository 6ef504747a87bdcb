"""The provisioning logs of an embedded tenant (``GET /auditLogs/provisioning``): the entries the
service writes, here only the staged deletes of a job the accidental-delete threshold quarantined.

I/O: the tenant's SQLite file, through ``database.Database``. ``store.TenantStore`` inherits these
operations; ``TenantStore.hold_deletes`` writes the entries when it quarantines a job.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.tenant.database import JSON, Database, dumps, loads

__all__ = ["ProvisioningLog"]


class ProvisioningLog(Database):
    """``provisioningObjectSummary`` entries, oldest first."""

    def log_provisioning(self, entries: Sequence[JSON]) -> None:
        with self.transaction():
            conn = self._conn()
            for entry in entries:
                self._exec(
                    conn,
                    "INSERT INTO provisioning_log (job_id, data) VALUES (?, ?)",
                    (str(entry.get("jobId") or ""), dumps(entry)),
                )

    def provisioning_log(self, job_id: str | None = None) -> list[JSON]:
        """Every entry (of job ``job_id``), oldest first."""
        if job_id is None:
            rows = self._q("SELECT data FROM provisioning_log ORDER BY seq", ())
        else:
            rows = self._q("SELECT data FROM provisioning_log WHERE job_id = ? ORDER BY seq", (job_id,))
        return [loads(r[0]) for r in rows]
