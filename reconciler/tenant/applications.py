"""Applications made directly (not from a template), their service principals, and their extension
properties (directory extensions) in an embedded tenant.

I/O: the tenant's SQLite file, through ``database.Database``. This is what the directory extensions
recipe needs of the service (ED ``custom-attribute-mapping.md``): ``POST /applications`` with an
identifier URI, ``POST /servicePrincipals`` for it, and ``GET``/``POST``/``DELETE``
``/applications/{id}/extensionProperties``, answering in the documented shapes (extensionProperty,
v1.0): a property's ``name`` is returned as ``extension_<appId without hyphens>_<name>``. What the docs
leave open (the answer to a second property of the same name, or to a second identifier URI) is
answered as a conflict; docs/graph.md lists it. ``store.TenantStore`` inherits these operations.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.core.model import EXTENSION_DATA_TYPES, EXTENSION_TARGETS, extension_attribute
from reconciler.errors import ConflictError
from reconciler.tenant.database import JSON, Database, dumps, loads, now
from reconciler.tenant.documents import bad_request, not_found

__all__ = ["Applications"]


class Applications(Database):
    """Applications with identifier URIs, their principals, and their extension properties."""

    def create_application(self, display_name: str, identifier_uris: Sequence[str]) -> JSON:
        """``POST /applications``: a new application (and no principal: that is a call of its own)."""
        uris = [str(u) for u in identifier_uris]
        application: JSON = {
            "id": str(uuid.uuid4()),
            "appId": str(uuid.uuid4()),
            "applicationTemplateId": None,
            "displayName": display_name,
            "identifierUris": uris,
            "createdDateTime": now(),
            "notes": None,
            "tags": [],
        }
        with self.transaction():
            taken = {u.casefold() for app in self._applications() for u in app.get("identifierUris") or []}
            clash = next((u for u in uris if u.casefold() in taken), None)
            if clash is not None:
                raise ConflictError(
                    f"Another object with the same value for property identifierUris already exists: {clash}",
                    code="Request_MultipleObjectsWithSameKeyValue",
                    status=409,
                )
            self._exec(
                self._conn(),
                "INSERT INTO applications (id, app_id, data) VALUES (?, ?, ?)",
                (application["id"], application["appId"], dumps(application)),
            )
        return copy.deepcopy(application)

    def _applications(self) -> list[JSON]:
        return [loads(r[0]) for r in self._q("SELECT data FROM applications ORDER BY seq")]

    def applications_with_uri(self, uri: str) -> list[JSON]:
        """The applications whose identifier URIs include ``uri`` (compared without case, as Graph does)."""
        folded = uri.casefold()
        return [
            app
            for app in self._applications()
            if any(str(u).casefold() == folded for u in app.get("identifierUris") or [])
        ]

    def principal_of(self, app_id: str) -> JSON | None:
        row = self._one("SELECT data FROM service_principals WHERE app_id = ? ORDER BY seq", (app_id,))
        return None if row is None else dict(loads(row[0]))

    def create_service_principal(self, app_id: str) -> JSON:
        """``POST /servicePrincipals`` ``{"appId": …}`` for an application of this tenant."""
        with self.transaction():
            row = self._one("SELECT data FROM applications WHERE app_id = ?", (app_id,))
            if row is None:
                raise bad_request(f"no application with appId {app_id} in this tenant", "Request_BadRequest")
            if self.principal_of(app_id) is not None:
                raise ConflictError(
                    f"a service principal for appId {app_id} already exists",
                    code="Request_MultipleObjectsWithSameKeyValue",
                    status=409,
                )
            app = loads(row[0])
            principal: JSON = {
                "id": str(uuid.uuid4()),
                "accountEnabled": True,
                "appId": app_id,
                "appDisplayName": app.get("displayName"),
                "applicationTemplateId": None,
                "displayName": app.get("displayName"),
                "notes": None,
                "servicePrincipalNames": [app_id, *(app.get("identifierUris") or [])],
                "servicePrincipalType": "Application",
                "tags": [],
            }
            self._exec(
                self._conn(),
                "INSERT INTO service_principals (id, app_id, data) VALUES (?, ?, ?)",
                (principal["id"], app_id, dumps(principal)),
            )
        return copy.deepcopy(principal)

    # ----------------------------------------------------------------------------------------------
    # extension properties

    def _application(self, id: str) -> JSON:
        row = self._one("SELECT data FROM applications WHERE id = ?", (id,))
        if row is None:
            raise not_found(f"application {id}")
        return dict(loads(row[0]))

    def list_extension_properties(self, app_object_id: str) -> list[JSON]:
        self._application(app_object_id)
        rows = self._q(
            "SELECT data FROM extension_properties WHERE app_object_id = ? ORDER BY seq", (app_object_id,)
        )
        return [loads(r[0]) for r in rows]

    def get_extension_property(self, app_object_id: str, property_id: str) -> JSON:
        row = self._one(
            "SELECT data FROM extension_properties WHERE app_object_id = ? AND id = ?",
            (app_object_id, property_id),
        )
        if row is None:
            raise not_found(f"extension property {property_id}")
        return dict(loads(row[0]))

    def create_extension_property(self, app_object_id: str, body: Mapping[str, Any]) -> JSON:
        """``POST /applications/{id}/extensionProperties``: checked as the docs describe the body."""
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request("name is required", "Request_BadRequest")
        data_type = body.get("dataType")
        if data_type not in EXTENSION_DATA_TYPES:
            allowed = ", ".join(EXTENSION_DATA_TYPES)
            raise bad_request(f"dataType must be one of {allowed}", "Request_BadRequest")
        targets = body.get("targetObjects")
        if not isinstance(targets, list) or not targets or any(t not in EXTENSION_TARGETS for t in targets):
            raise bad_request(
                f"targetObjects must list some of {', '.join(EXTENSION_TARGETS)}", "Request_BadRequest"
            )
        multi = body.get("isMultiValued", False)
        if not isinstance(multi, bool):
            raise bad_request("isMultiValued must be a boolean", "Request_BadRequest")
        with self.transaction():
            app = self._application(app_object_id)
            full = extension_attribute(str(app["appId"]), name)
            existing = self.list_extension_properties(app_object_id)
            if any(p["name"].casefold() == full.casefold() for p in existing):
                raise ConflictError(
                    f"an extension property named {full} already exists",
                    code="Request_MultipleObjectsWithSameKeyValue",
                    status=409,
                )
            item: JSON = {
                "id": str(uuid.uuid4()),
                "deletedDateTime": None,
                "appDisplayName": app.get("displayName"),
                "dataType": data_type,
                "isMultiValued": multi,
                "isSyncedFromOnPremises": False,
                "name": full,
                "targetObjects": list(targets),
            }
            self._exec(
                self._conn(),
                "INSERT INTO extension_properties (id, app_object_id, data) VALUES (?, ?, ?)",
                (item["id"], app_object_id, dumps(item)),
            )
        return copy.deepcopy(item)

    def delete_extension_property(self, app_object_id: str, property_id: str) -> None:
        with self.transaction():
            self.get_extension_property(app_object_id, property_id)
            self._exec(
                self._conn(),
                "DELETE FROM extension_properties WHERE app_object_id = ? AND id = ?",
                (app_object_id, property_id),
            )

    def _delete_extension_properties_of(self, app_object_id: str) -> None:
        self._exec(self._conn(), "DELETE FROM extension_properties WHERE app_object_id = ?", (app_object_id,))
