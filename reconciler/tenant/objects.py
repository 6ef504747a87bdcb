"""The directory objects of an embedded tenant: the on-premises directory and the cloud objects.

I/O: the tenant's SQLite file, through ``database.Database``. The on-premises side is a small directory
of objects by DN and group membership (DNs compare without regard to case, as in AD), the sample that
on-demand provisioning reads; the cloud side holds the users and groups on-demand provisioning wrote,
with the attributes their mappings gave them. ``store.TenantStore`` inherits these operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.tenant.database import JSON, Database, dumps, loads, now

__all__ = ["DirectoryObjects"]


class DirectoryObjects(Database):
    """On-premises objects and memberships, and the cloud objects provisioning wrote."""

    # ----------------------------------------------------------------------------------------------
    # the on-premises directory

    def put_onprem_object(self, dn: str, object_type: str, attributes: Mapping[str, Any]) -> None:
        """Insert or replace one on-premises object (DNs compare case-insensitively, as in AD)."""
        with self.transaction():
            self._exec(
                self._conn(),
                "INSERT INTO onprem_objects (dn, object_type, attributes) VALUES (?, ?, ?) "
                "ON CONFLICT (dn) DO UPDATE SET object_type = excluded.object_type, "
                "attributes = excluded.attributes",
                (dn, object_type, dumps(dict(attributes))),
            )

    def get_onprem_object(self, dn: str) -> JSON | None:
        """``{"dn", "objectType", "attributes"}``, or None when there is no such object."""
        row = self._one("SELECT dn, object_type, attributes FROM onprem_objects WHERE dn = ?", (dn,))
        return None if row is None else {"dn": row[0], "objectType": row[1], "attributes": loads(row[2])}

    def list_onprem_objects(self, object_type: str | None = None) -> list[JSON]:
        sql = "SELECT dn, object_type, attributes FROM onprem_objects"
        rows = self._q_where(sql, "object_type", object_type, "dn")
        return [{"dn": r[0], "objectType": r[1], "attributes": loads(r[2])} for r in rows]

    def delete_onprem_object(self, dn: str) -> None:
        with self.transaction():
            conn = self._conn()
            self._exec(conn, "DELETE FROM onprem_objects WHERE dn = ?", (dn,))
            self._exec(conn, "DELETE FROM onprem_members WHERE group_dn = ? OR member_dn = ?", (dn, dn))

    def add_member(self, group_dn: str, member_dn: str) -> None:
        with self.transaction():
            self._exec(
                self._conn(), "INSERT OR IGNORE INTO onprem_members VALUES (?, ?)", (group_dn, member_dn)
            )

    def remove_member(self, group_dn: str, member_dn: str) -> None:
        with self.transaction():
            self._exec(
                self._conn(),
                "DELETE FROM onprem_members WHERE group_dn = ? AND member_dn = ?",
                (group_dn, member_dn),
            )

    def list_members(self, group_dn: str) -> list[str]:
        rows = self._q(
            "SELECT member_dn FROM onprem_members WHERE group_dn = ? ORDER BY member_dn", (group_dn,)
        )
        return [str(r[0]) for r in rows]

    def member_of(self, member_dn: str) -> list[str]:
        rows = self._q(
            "SELECT group_dn FROM onprem_members WHERE member_dn = ? ORDER BY group_dn", (member_dn,)
        )
        return [str(r[0]) for r in rows]

    # ----------------------------------------------------------------------------------------------
    # cloud objects written by on-demand provisioning

    def put_cloud_object(self, id: str, object_type: str, attributes: Mapping[str, Any]) -> JSON:
        """Create or replace the cloud object ``id`` (``User``, ``Group``, ...) with these attributes."""
        stamp = now()
        with self.transaction():
            self._exec(
                self._conn(),
                "INSERT INTO cloud_objects (id, object_type, attributes, created, modified) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET object_type = excluded.object_type, "
                "attributes = excluded.attributes, modified = excluded.modified",
                (id, object_type, dumps(dict(attributes)), stamp, stamp),
            )
            found = self.get_cloud_object(id)
        assert found is not None
        return found

    def get_cloud_object(self, id: str) -> JSON | None:
        """``{"id", "objectType", "attributes", "createdDateTime", "modifiedDateTime"}``, or None."""
        row = self._one(
            "SELECT id, object_type, attributes, created, modified FROM cloud_objects WHERE id = ?", (id,)
        )
        return None if row is None else _cloud_object(row)

    def list_cloud_objects(self, object_type: str | None = None) -> list[JSON]:
        """Cloud objects, oldest first, of one type (``User``, ``Group``) or all."""
        sql = "SELECT id, object_type, attributes, created, modified FROM cloud_objects"
        rows = self._q_where(sql, "object_type", object_type, "seq")
        return [_cloud_object(r) for r in rows]

    def delete_cloud_object(self, id: str) -> None:
        with self.transaction():
            self._exec(self._conn(), "DELETE FROM cloud_objects WHERE id = ?", (id,))


def _cloud_object(row: Any) -> JSON:
    return {
        "id": row[0],
        "objectType": row[1],
        "attributes": loads(row[2]),
        "createdDateTime": row[3],
        "modifiedDateTime": row[4],
    }
