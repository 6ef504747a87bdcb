"""The directory objects of an embedded tenant: the on-premises directory and the cloud objects.

I/O: the tenant's SQLite file, through ``database.Database``. The on-premises side is a small directory
of objects by DN and group membership (DNs compare without regard to case, as in AD), the sample that
on-demand provisioning reads; the cloud side holds the users and groups on-demand provisioning wrote,
with the attributes their mappings gave them, and the cloud groups a directory load wrote (recorded as
such, so that the next load replaces them and nothing else). ``store.TenantStore`` inherits these operations.

The on-premises directory also has a schema of its own beyond the job template's: the AD schema
extensions (attributes added to AD classes) that the provisioning agent has found. A directory
``discover`` of a job's AD directory lists them (``with_schema_extensions``), shaped as the service
hands out attribute definitions (the real job schema in ``../shared/reference/real/`` has that shape:
``anchor``, ``caseExact``, ``defaultValue``, ``multivalued``, ``mutability``, ``name``, ``required``,
``type``, ``apiExpressions``, ``metadata``, ``referencedObjects``). Discover does not write them into the
job schema: whether the service does is not documented, and this tenant takes the reading that makes
the client copy them. Besides those loaded, a discover lists the 20 ``msDS-cloudExtensionAttribute``
strings of every AD since Windows Server 2012, which the job template lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.tenant.database import JSON, Database, dumps, loads, now

__all__ = ["SCHEMA_EXTENSION_TYPES", "DirectoryObjects", "schema_extension", "with_schema_extensions"]

# The attribute types of a job schema's directory that an AD schema extension may have.
SCHEMA_EXTENSION_TYPES = ("String", "Integer", "Boolean", "DateTime", "Binary")
# Attributes every AD schema has had since Windows Server 2012 that the job template's AD directory lacks:
# the msDS-CloudExtensions auxiliary class's 20 single-valued strings (MS-ADSC 2.134; on user: INFERRED).
# A discover lists them as it lists a loaded schema extension.
_BUILT_IN = tuple(
    {"name": f"msDS-cloudExtensionAttribute{i}", "objects": ["user"], "type": "String", "multivalued": False}
    for i in range(1, 21)
)


def schema_extension(
    name: str, objects: Sequence[str], type: str = "String", multivalued: bool = False
) -> JSON:
    """An AD schema extension as the tenant keeps it: an attribute ``name`` of AD classes ``objects``."""
    return {"name": name, "objects": list(objects), "type": type, "multivalued": multivalued}


def _definition(extension: Mapping[str, Any]) -> JSON:
    return {
        "anchor": False,
        "caseExact": False,
        "defaultValue": None,
        "multivalued": bool(extension.get("multivalued")),
        "mutability": "ReadWrite",
        "name": str(extension["name"]),
        "required": False,
        "type": str(extension.get("type") or "String"),
        "apiExpressions": [],
        "metadata": [],
        "referencedObjects": [],
    }


def with_schema_extensions(directory: Mapping[str, Any], extensions: Sequence[Mapping[str, Any]]) -> JSON:
    """A copy of ``directory`` (a discovered AD directory) whose objects also list ``extensions`` (AD
    class names compare without case; an attribute listed already stays as it is)."""
    found = dict(directory)
    objects = []
    for obj in directory.get("objects") or []:
        attributes = list(obj.get("attributes") or [])
        names = {str(a.get("name") or "").casefold() for a in attributes}
        for extension in extensions:
            wanted = {str(o).casefold() for o in extension.get("objects") or []}
            if str(obj.get("name") or "").casefold() in wanted and extension["name"].casefold() not in names:
                attributes.append(_definition(extension))
                names.add(extension["name"].casefold())
        objects.append({**obj, "attributes": attributes})
    found["objects"] = objects
    return found


class DirectoryObjects(Database):
    """On-premises objects and memberships, and the cloud objects provisioning or a directory load wrote."""

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

    def set_schema_extensions(self, extensions: Sequence[Mapping[str, Any]], *, replace: bool = True) -> None:
        """The AD schema extensions the agent has found (``schema_extension`` values); with ``replace``
        exactly these, otherwise these added to (or replacing by name) the ones there are."""
        with self.transaction():
            kept = [] if replace else self.schema_extensions()
            names = {str(e["name"]).casefold() for e in extensions}
            merged = [e for e in kept if str(e["name"]).casefold() not in names] + [
                dict(e) for e in extensions
            ]
            self._exec(
                self._conn(),
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('ad_schema_extensions', ?)",
                (dumps(merged),),
            )

    def schema_extensions(self) -> list[JSON]:
        row = self._one("SELECT value FROM meta WHERE key = 'ad_schema_extensions'")
        return [] if row is None else list(loads(row[0]))

    def discoverable_attributes(self) -> list[JSON]:
        """What a discover of the AD directory lists beyond the job template: the attributes of the
        built-in cloud extensions class, and the schema extensions loaded."""
        return [*(dict(b) for b in _BUILT_IN), *self.schema_extensions()]

    # ----------------------------------------------------------------------------------------------
    # cloud objects: written by on-demand provisioning, or by a directory load

    def put_cloud_object(
        self, id: str, object_type: str, attributes: Mapping[str, Any], *, from_directory: bool = False
    ) -> JSON:
        """Create or replace the cloud object ``id`` (``User``, ``Group``, ...) with these attributes.

        ``from_directory`` records that a directory load wrote it (``directory load`` replaces those,
        and only those)."""
        stamp = now()
        with self.transaction():
            conn = self._conn()
            self._exec(
                conn,
                "INSERT INTO cloud_objects (id, object_type, attributes, created, modified) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET object_type = excluded.object_type, "
                "attributes = excluded.attributes, modified = excluded.modified",
                (id, object_type, dumps(dict(attributes)), stamp, stamp),
            )
            if from_directory:
                self._exec(conn, "INSERT OR IGNORE INTO directory_cloud_objects VALUES (?)", (id,))
            found = self.get_cloud_object(id)
        assert found is not None
        return found

    def get_cloud_object(self, id: str) -> JSON | None:
        """``{"id", "objectType", "attributes", "createdDateTime", "modifiedDateTime"}``, or None.

        Object ids are GUIDs, which compare without case; the tenant writes them in lowercase (as Graph
        does), so an id written in another case is looked up in lowercase too."""
        sql = "SELECT id, object_type, attributes, created, modified FROM cloud_objects WHERE id = ?"
        row = self._one(sql, (id,))
        if row is None and id != id.lower():
            row = self._one(sql, (id.lower(),))
        return None if row is None else _cloud_object(row)

    def list_cloud_objects(self, object_type: str | None = None) -> list[JSON]:
        """Cloud objects, oldest first, of one type (``User``, ``Group``) or all."""
        sql = "SELECT id, object_type, attributes, created, modified FROM cloud_objects"
        rows = self._q_where(sql, "object_type", object_type, "seq")
        return [_cloud_object(r) for r in rows]

    def cloud_group_members(self, id: str) -> list[str] | None:
        """The direct members (object ids, its ``members`` attribute) of cloud group ``id``, its id
        compared without case as the directory does; None when the tenant holds no such group."""
        # The id as given, then as written in lowercase (as loads store them): two index lookups,
        # where lower(id) would read the whole table.
        row = self._one(
            "SELECT attributes FROM cloud_objects WHERE id IN (?, ?) AND lower(object_type) = 'group'",
            (id, id.lower()),
        )
        if row is None:  # written in another case (by provisioning): the slow way
            row = self._one(
                "SELECT attributes FROM cloud_objects "
                "WHERE lower(id) = lower(?) AND lower(object_type) = 'group'",
                (id,),
            )
        if row is None:
            return None
        members = loads(row[0]).get("members")
        return [str(m) for m in members] if isinstance(members, list) else []

    def groups_among(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` (compared without case) are cloud groups the tenant holds, folded."""
        found: set[str] = set()
        wanted = sorted({i.lower() for i in ids} | set(ids))
        for start in range(0, len(wanted), 500):  # SQLite's bound on parameters is 999 or more
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id FROM cloud_objects WHERE id IN ({marks}) AND lower(object_type) = 'group'"
            found.update(str(r[0]).casefold() for r in self._q(sql, chunk))
        return found

    def cloud_object_ids(self, object_type: str) -> list[str]:
        """The ids of the cloud objects of one type (``User``, ``Group``), without reading their
        attributes."""
        rows = self._q("SELECT id FROM cloud_objects WHERE lower(object_type) = lower(?)", (object_type,))
        return [str(r[0]) for r in rows]

    def holds_cloud_groups(self) -> bool:
        """Whether the tenant holds any cloud group (loaded, or written by provisioning)."""
        return self._one("SELECT 1 FROM cloud_objects WHERE lower(object_type) = 'group' LIMIT 1") is not None

    def delete_cloud_object(self, id: str) -> None:
        with self.transaction():
            conn = self._conn()
            self._exec(conn, "DELETE FROM cloud_objects WHERE id = ?", (id,))
            self._exec(conn, "DELETE FROM directory_cloud_objects WHERE id = ?", (id,))

    def directory_cloud_ids(self) -> list[str]:
        """The ids of the cloud objects a directory load wrote, oldest first."""
        rows = self._q(
            "SELECT c.id FROM cloud_objects c JOIN directory_cloud_objects d ON d.id = c.id ORDER BY c.seq"
        )
        return [str(r[0]) for r in rows]


def _cloud_object(row: Any) -> JSON:
    return {
        "id": row[0],
        "objectType": row[1],
        "attributes": loads(row[2]),
        "createdDateTime": row[3],
        "modifiedDateTime": row[4],
    }
