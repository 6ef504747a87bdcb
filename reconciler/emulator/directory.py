"""The directory endpoints the synchronization API leans on: application templates and ``instantiate``,
applications and service principals, app-role assignments (an Entra ID -> AD configuration's selected
groups), cloud groups and their members, the organization, and applications' extension properties
(directory extensions).

I/O: the tenant database, through the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.emulator import odata
from reconciler.emulator.replies import JSON, Reply, Request, Shaper, TextBody, graph_error
from reconciler.errors import ConflictError, NotFoundError
from reconciler.graph.metadata import metadata
from reconciler.graph.template import APPLICATION_TEMPLATES, application_template

__all__ = ["DirectoryEndpoints"]

# Group properties "List groups" never returns, not even when $select names them (its reference page).
_NEVER_RETURNED = ("hasMembersWithLicenseErrors", "isArchived")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class DirectoryEndpoints(Shaper):
    """Handlers of the directory resources; ``GraphService`` routes requests to them."""

    # -- application templates ---------------------------------------------------------------------

    def _list_app_templates(self, request: Request) -> Reply:
        items = [
            self._documented("applicationTemplate", t, request.version)
            for t in map(application_template, APPLICATION_TEMPLATES)
        ]
        return self._collection(
            request, "applicationTemplate", items, "applicationTemplates", directory=False
        )

    def _get_app_template(self, template_id: str, request: Request) -> Reply:
        found = self._documented("applicationTemplate", application_template(template_id), request.version)
        return self._entity(request, "applicationTemplate", found, "applicationTemplates/$entity")

    # -- app-role assignments ("servicePrincipal: list appRoleAssignedTo", "Grant an appRoleAssignment
    # for a service principal", "Delete appRoleAssignedTo"): what an Entra ID -> AD configuration's
    # selected groups are held as.

    def _assignment(self, item: Mapping[str, Any], sp: Mapping[str, Any], version: str) -> JSON:
        """An assignment in the version's shape: the metadata's properties of appRoleAssignment (beta
        calls the creation time creationTimestamp). The store holds no directory of groups, so the
        principal's display name is not known."""
        properties = metadata(version).properties("graph.appRoleAssignment") or {}
        names = [n for n, p in properties.items() if not p.get("navigation")]
        held = dict(item)
        if "createdDateTime" not in names and "creationTimestamp" in names:
            held["creationTimestamp"] = held.pop("createdDateTime", None)
        shaped: JSON = {name: held.get(name) for name in names}
        shaped["resourceDisplayName"] = sp.get("displayName")
        return shaped

    def _list_assignments(self, sp_id: str, request: Request) -> Reply:
        sp = self.store.get_service_principal(sp_id)
        items = [
            self._assignment(a, sp, request.version) for a in self.store.list_app_role_assignments(sp_id)
        ]
        fragment = f"servicePrincipals('{sp_id}')/appRoleAssignedTo"
        return self._collection(request, "appRoleAssignment", items, fragment, directory=True)

    def _assign(self, sp_id: str, request: Request) -> Reply:
        body = request.body
        refused = _directory_body(request, "appRoleAssignment")
        if refused is not None:
            return refused
        for key in ("principalId", "resourceId", "appRoleId"):
            if not isinstance(body.get(key), str) or not _GUID.fullmatch(body[key]):
                return graph_error(400, "Request_BadRequest", f"{key} is required and must be a GUID.")
        sp = self.store.get_service_principal(sp_id)
        if body["resourceId"].casefold() != sp_id.casefold():
            return graph_error(
                400, "Request_BadRequest", "resourceId must be the service principal the request is sent to."
            )
        roles = {str(r.get("id")).casefold() for r in sp.get("appRoles") or [] if isinstance(r, Mapping)}
        if body["appRoleId"].casefold() not in roles:
            return graph_error(
                400, "Request_BadRequest", "Permission being assigned was not found on application."
            )
        try:
            made = self.store.assign_app_role(sp_id, body["principalId"], body["appRoleId"])
        except ConflictError:
            return graph_error(
                400, "Request_BadRequest", "Permission being assigned already exists on the object."
            )
        context = self._context(request, f"servicePrincipals('{sp_id}')/appRoleAssignedTo/$entity")
        return Reply(201, {"@odata.context": context, **self._assignment(made, sp, request.version)})

    def _unassign(self, sp_id: str, assignment_id: str, request: Request) -> Reply:
        self.store.remove_app_role_assignment(sp_id, assignment_id)
        return Reply(204)

    # -- "List group members" of a cloud group: what the member limits of Entra ID -> AD group
    # provisioning are counted with. The store's cloud groups are those a directory load wrote and
    # those provisioning made; a group it does not hold is not found, as in the directory.

    def _list_group_members(self, group_id: str, request: Request) -> Reply:
        members = self.store.cloud_group_members(group_id)
        if members is None:
            message = (
                f"Resource '{group_id}' does not exist or one of its queried reference-property objects "
                "are not present."
            )
            return graph_error(404, "Request_ResourceNotFound", message)
        groups = self.store.groups_among(members)
        items = [
            {
                "@odata.type": "#microsoft.graph.group"
                if m.casefold() in groups
                else "#microsoft.graph.user",
                "id": m,
                "deletedDateTime": None,
            }
            for m in members
        ]
        return self._collection(request, "directoryObject", items, "directoryObjects", directory=True)

    def _list_users(self, request: Request) -> Reply:
        return self._cloud_collection("User", "users", request)

    def _list_groups(self, request: Request) -> Reply:
        """The answer to "List groups": the store's cloud groups in the version's ``group`` shape, with
        the $filter operators the group reference page documents (``queryable.FILTERABLE["group"]``),
        $select, $count and paging."""
        loaded = {i.casefold() for i in self.store.directory_cloud_ids()}
        extensions = self._extensions_of("Group")
        items = [
            self._group(g, request.version, str(g["id"]).casefold() in loaded, extensions)
            for g in self.store.list_cloud_objects("Group")
        ]
        named = tuple(extensions.values())
        return self._collection(request, "group", items, "groups", directory=True, extensions=named)

    def _extensions_of(self, target: str) -> dict[str, str]:
        """The directory extension properties the tenant's applications register for ``target``
        objects (``Group``, ``User``): their names by the casefolded name."""
        found: dict[str, str] = {}
        for app in self.store.list_applications():
            for prop in self.store.list_extension_properties(str(app["id"])):
                if target in (prop.get("targetObjects") or ()):
                    found[str(prop["name"]).casefold()] = str(prop["name"])
        return found

    def _group(
        self, stored: Mapping[str, Any], version: str, loaded: bool, extensions: Mapping[str, str]
    ) -> JSON:
        """A cloud group as Graph returns it: every documented property of the version's ``group``, the
        store's attribute where it holds one of the property's type, Graph's default otherwise, and the
        values it holds of the registered directory ``extensions`` (Graph leaves out one without a
        value). A group a directory load wrote (``loaded``) is cloud-only unless its file says otherwise
        (null ``onPremisesSyncEnabled``); any other was written by provisioning from AD, so it is synced
        (true), as the local tenant reads it. The creation time is the store's."""
        properties = metadata(version).properties("graph.group") or {}
        held: JSON = {}
        for name, value in (stored.get("attributes") or {}).items():
            extension = extensions.get(name.casefold())
            if extension is not None and value is not None:
                held[extension] = value
                continue
            prop = properties.get(name)
            if prop is None or prop.get("navigation") or name in _NEVER_RETURNED:
                continue  # members are read through /members; other attributes are not group properties
            if not metadata(version).check_value(value, prop["type"], True, name):
                held[name] = value
        held["id"] = str(stored["id"])
        held["createdDateTime"] = stored.get("createdDateTime")
        if not loaded and held.get("onPremisesSyncEnabled") is None:
            held["onPremisesSyncEnabled"] = True
        shaped = self._documented("group", held, version)
        for name in _NEVER_RETURNED:
            shaped.pop(name, None)
        return shaped

    def _cloud_collection(self, kind: str, fragment: str, request: Request) -> Reply:
        """The store's cloud users, as directory objects: enough for ``$count`` (the tenant's size),
        ``$select=id`` and paging."""
        items = [
            {"@odata.type": f"#microsoft.graph.{kind.lower()}", "id": str(o["id"]), "deletedDateTime": None}
            for o in self.store.list_cloud_objects(kind)
        ]
        return self._collection(request, "directoryObject", items, fragment, directory=True)

    # -- applications and service principals -------------------------------------------------------

    def _instantiate(self, template_id: str, request: Request) -> Reply:
        body = request.body
        if not isinstance(body, Mapping) or not isinstance(body.get("displayName"), str):
            return graph_error(400, "BadRequest", "displayName is required")
        created = self.store.instantiate(body["displayName"], template_id)
        reply: JSON = {
            "@odata.context": self._context(request, "microsoft.graph.applicationServicePrincipal")
        }
        reply["application"] = self._documented("application", created["application"], request.version)
        reply["servicePrincipal"] = self._sp(created["servicePrincipal"], request.version)
        return Reply(201, reply)

    def _list_sps(self, request: Request) -> Reply:
        items = [self._sp(sp, request.version) for sp in self.store.list_service_principals()]
        return self._collection(request, "servicePrincipal", items, "servicePrincipals", directory=True)

    def _count_sps(self, request: Request) -> Reply:
        if not request.eventual:
            return graph_error(
                400, "Request_BadRequest", "$count needs the header ConsistencyLevel: eventual."
            )
        items = [self._sp(sp, request.version) for sp in self.store.list_service_principals()]
        if "filter" in request.options:
            predicate = odata.parse_filter(request.options["filter"], "servicePrincipal", advanced=True)
            items = [sp for sp in items if predicate(sp)]
        if "search" in request.options:
            predicate = odata.parse_search(request.options["search"], "servicePrincipal")
            items = [sp for sp in items if predicate(sp)]
        return Reply(200, TextBody(str(len(items))), {"Content-Type": "text/plain"})

    def _get_sp(self, sp_id: str, request: Request) -> Reply:
        sp = self._sp(self.store.get_service_principal(sp_id), request.version)
        return self._entity(request, "servicePrincipal", sp, "servicePrincipals/$entity")

    def _patch_sp(self, sp_id: str, request: Request) -> Reply:
        if not isinstance(request.body, Mapping):
            return graph_error(400, "BadRequest", "the body must be a JSON object")
        changes = {k: v for k, v in request.body.items() if "@odata." not in k}
        self.store.patch_service_principal(sp_id, changes)
        return Reply(204)

    def _delete_sp(self, sp_id: str, request: Request) -> Reply:
        self.store.delete_service_principal(sp_id)
        return Reply(204)

    def _list_apps(self, request: Request) -> Reply:
        items = [self._documented("application", a, request.version) for a in self.store.list_applications()]
        return self._collection(request, "application", items, "applications", directory=True)

    def _app_by_app_id(self, app_id: str) -> JSON:
        app_id = app_id.replace("''", "'")  # an OData string literal
        for app in self.store.list_applications():
            if app.get("appId") == app_id:
                return app
        raise NotFoundError(f"application with appId {app_id} not found", code="Request_ResourceNotFound")

    def _get_app(self, id: str, request: Request) -> Reply:
        app = self._documented("application", self.store.get_application(id), request.version)
        return self._entity(request, "application", app, "applications/$entity")

    def _get_app_by_app_id(self, app_id: str, request: Request) -> Reply:
        app = self._documented("application", self._app_by_app_id(app_id), request.version)
        return self._entity(request, "application", app, "applications/$entity")

    def _delete_app(self, id: str, request: Request) -> Reply:
        self.store.delete_application(id)
        return Reply(204)

    def _delete_app_by_app_id(self, app_id: str, request: Request) -> Reply:
        self.store.delete_application(self._app_by_app_id(app_id)["id"])
        return Reply(204)

    # -- the provisioning logs ("List provisioningObjectSummary"): the entries the store holds, newest
    # first, with the $filter, $orderby and paging the reference page lists.

    def _provisioning_log(self, request: Request) -> Reply:
        entries = reversed(self.store.provisioning_log())
        items = [self._documented("provisioningObjectSummary", e, request.version) for e in entries]
        return self._collection(
            request, "provisioningObjectSummary", items, "auditLogs/provisioning", directory=False
        )

    # -- the directory extensions recipe: applications, principals, extension properties --------------

    def _organization(self, request: Request) -> Reply:
        # GET /organization: the one organization, whose id is the tenant id.
        org = {"id": self.store.tenant_id, "displayName": "Emulated tenant"}
        return Reply(200, {"@odata.context": self._context(request, "organization"), "value": [org]})

    def _create_app(self, request: Request) -> Reply:
        body = request.body
        refused = _directory_body(request, "application")
        if refused is not None:
            return refused
        if not isinstance(body.get("displayName"), str):
            return graph_error(400, "Request_BadRequest", "displayName is required")
        uris = body.get("identifierUris") or []
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            return graph_error(400, "Request_BadRequest", "identifierUris must be a list of strings")
        app = self.store.create_application(body["displayName"], uris)
        reply = self._documented("application", app, request.version)
        return Reply(201, {"@odata.context": self._context(request, "applications/$entity"), **reply})

    def _create_sp(self, request: Request) -> Reply:
        body = request.body
        if not isinstance(body, Mapping) or not isinstance(body.get("appId"), str):
            return graph_error(400, "Request_BadRequest", "appId is required")
        sp = self._sp(self.store.create_service_principal(body["appId"]), request.version)
        return Reply(201, {"@odata.context": self._context(request, "servicePrincipals/$entity"), **sp})

    def _extension_fragment(self, app_id: str) -> str:
        return f"applications('{app_id}')/extensionProperties"

    def _list_extension_properties(self, app_id: str, request: Request) -> Reply:
        items = self.store.list_extension_properties(app_id)
        body = {"@odata.context": self._context(request, self._extension_fragment(app_id)), "value": items}
        return Reply(200, body)

    def _get_extension_property(self, app_id: str, property_id: str, request: Request) -> Reply:
        item = self.store.get_extension_property(app_id, property_id)
        fragment = self._extension_fragment(app_id) + "/$entity"
        return Reply(200, {"@odata.context": self._context(request, fragment), **item})

    def _create_extension_property(self, app_id: str, request: Request) -> Reply:
        refused = _directory_body(request, "extensionProperty")
        if refused is not None:
            return refused
        item = self.store.create_extension_property(app_id, request.body)
        fragment = self._extension_fragment(app_id) + "/$entity"
        return Reply(201, {"@odata.context": self._context(request, fragment), **item})

    def _delete_extension_property(self, app_id: str, property_id: str, request: Request) -> Reply:
        self.store.delete_extension_property(app_id, property_id)
        return Reply(204)


def _directory_body(request: Request, type_name: str) -> Reply | None:
    """The directory's 400 for a body that is not a ``type_name`` of the version's metadata: not an
    object, a property the type does not have (the directory refuses unknown properties, it does not
    drop them), or a value of the wrong type; None for a body that is one."""
    body = request.body
    if not isinstance(body, Mapping):
        return graph_error(400, "Request_BadRequest", "the body must be a JSON object")
    known = metadata(request.version).properties(f"graph.{type_name}") or {}
    unknown = sorted(k for k in body if k not in known and "@odata." not in k)
    if unknown:
        return graph_error(
            400, "Request_BadRequest", f"Property '{unknown[0][:60]}' does not exist on {type_name}."
        )
    if request.validate:
        problems = metadata(request.version).check_value(
            {k: v for k, v in body.items() if "@odata." not in k}, f"graph.{type_name}", False, type_name
        )
        if problems:
            return graph_error(400, "Request_BadRequest", problems[0])
    return None
