"""The Graph endpoints of the synchronization API (v1.0 and beta), answered from a ``TenantStore``.

``GraphService.handle(method, path, query, body, version=...)`` takes one request (path relative to the
version) and returns a ``Reply`` with the status, body and headers the service would give: every call of
the API reference pages for synchronization jobs, schema, templates, secrets, ``instantiate`` and service
principals, in the shapes of that version's metadata (every documented property, with Graph's defaults
for what the store does not hold), with Graph's query options (``odata``) and its error bodies. Routing,
shapes and errors are shared by the versions; only the metadata differs. No sockets here: ``server``
adds HTTP, auth, latency and faults.

I/O: the tenant database, through the store.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson

from reconciler.emulator import documented, odata
from reconciler.errors import (
    ConflictError,
    ExpressionError,
    NotFoundError,
    ProviderError,
    TransientProviderError,
)
from reconciler.graph.metadata import metadata
from reconciler.graph.template import APPLICATION_TEMPLATES, application_template
from reconciler.tenant.store import TenantStore

__all__ = ["RAW_BODIES", "GraphService", "Reply", "TextBody", "graph_error"]

JSON = dict[str, Any]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999


@dataclass(slots=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class TextBody(str):
    """A reply body that is plain text (``/$count``), not JSON."""


# Whether a reply body may be JSON text already encoded (an ``orjson.Fragment``) rather than JSON data:
# only for a caller that encodes the reply with orjson and does not look inside it.
RAW_BODIES: ContextVar[bool] = ContextVar("RAW_BODIES", default=False)


def graph_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """A Graph error reply; ``server`` fills in ``innerError`` (date and request ids)."""
    return Reply(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


def _plain_message(exc: ProviderError) -> str:
    # ProviderError's text ends with "(HTTP n, code c)"; the Graph body carries those separately.
    text = str(exc)
    return re.sub(r" \((HTTP \d+|code [^,)]+|request-id [^,)]+)(, [^)]*)?\)$", "", text)


def _error_from(exc: ProviderError) -> Reply:
    if isinstance(exc, TransientProviderError):
        return graph_error(503, exc.code or "serviceNotAvailable", _plain_message(exc), {"Retry-After": "1"})
    if isinstance(exc, NotFoundError):
        return graph_error(404, exc.code or "Request_ResourceNotFound", _plain_message(exc))
    status = exc.status or 400
    return graph_error(
        status, exc.code or ("Conflict" if status == 409 else "BadRequest"), _plain_message(exc)
    )


# --------------------------------------------------------------------------------------------------
# routes

_SEG = r"([^/]+)"
_SP = rf"/servicePrincipals/{_SEG}"
_JOBS = rf"{_SP}/synchronization/jobs"
_JOB = rf"{_JOBS}/{_SEG}"
_TEMPLATE = rf"{_SP}/synchronization/templates/{_SEG}"
_SCHEMA = rf"(?:{_JOB}|{_TEMPLATE})/schema"

Handler = Callable[..., Reply]

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Options Graph takes on a single resource; the others are refused there.
_ENTITY_OPTIONS = frozenset({"select", "expand", "format"})
# Properties Graph leaves out of a service principal unless they are named in $select.
_ONLY_ON_SELECT = ("customSecurityAttributes",)
# The documented value of a property the store does not hold, where it is not null or empty.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "servicePrincipal": {"accountEnabled": True, "servicePrincipalType": "Application"},
    "application": {"signInAudience": "AzureADMyOrg"},
}


# Handlers of directory-object writes: they check their body against the metadata themselves
# (``_directory_body``) and answer a bad one in the directory's error shape.
_DIRECTORY_WRITES = frozenset({"_assign", "_create_app", "_create_extension_property"})


@dataclass(slots=True)
class Request:
    """What a handler needs besides the ids in its path."""

    method: str
    path: str
    options: dict[str, str]
    body: Any
    base_url: str  # with the version, e.g. http://127.0.0.1:8080/v1.0
    version: str
    headers: Mapping[str, str]
    validate: bool = True

    @property
    def url(self) -> str:
        query = urllib.parse.urlencode(
            {f"${k}": v for k, v in self.options.items()}, quote_via=urllib.parse.quote, safe="$,'()"
        )
        return f"{self.base_url}{self.path}" + (f"?{query}" if query else "")

    @property
    def eventual(self) -> bool:
        return str(self.headers.get("consistencylevel") or "").strip().lower() == "eventual"


class GraphService:
    """The documented synchronization endpoints (v1.0 and beta), over one tenant store."""

    def __init__(
        self, store: TenantStore, *, page_size: int = DEFAULT_PAGE_SIZE, validate: bool = True
    ) -> None:
        self.store = store
        self.page_size = page_size
        self.validate = validate
        self._defaults: dict[tuple[str, str], JSON] = {}
        routes: list[tuple[str, dict[str, Handler]]] = [
            (r"/applicationTemplates", {"GET": self._list_app_templates}),
            (rf"/applicationTemplates/{_SEG}", {"GET": self._get_app_template}),
            (rf"/applicationTemplates/{_SEG}/instantiate", {"POST": self._instantiate}),
            (r"/organization", {"GET": self._organization}),
            (r"/auditLogs/provisioning", {"GET": self._provisioning_log}),
            (rf"{_SP}/appRoleAssignedTo", {"GET": self._list_assignments, "POST": self._assign}),
            (rf"{_SP}/appRoleAssignedTo/{_SEG}", {"DELETE": self._unassign}),
            (r"/servicePrincipals", {"GET": self._list_sps, "POST": self._create_sp}),
            (r"/servicePrincipals/\$count", {"GET": self._count_sps}),
            (_SP, {"GET": self._get_sp, "PATCH": self._patch_sp, "DELETE": self._delete_sp}),
            (r"/applications", {"GET": self._list_apps, "POST": self._create_app}),
            (
                rf"/applications/{_SEG}/extensionProperties",
                {"GET": self._list_extension_properties, "POST": self._create_extension_property},
            ),
            (
                rf"/applications/{_SEG}/extensionProperties/{_SEG}",
                {"GET": self._get_extension_property, "DELETE": self._delete_extension_property},
            ),
            (
                r"/applications\(appId='((?:[^']|'')*)'\)",
                {"GET": self._get_app_by_app_id, "DELETE": self._delete_app_by_app_id},
            ),
            (rf"/applications/{_SEG}", {"GET": self._get_app, "DELETE": self._delete_app}),
            (_JOBS, {"GET": self._list_jobs, "POST": self._create_job}),
            (rf"{_JOBS}/validateCredentials", {"POST": self._validate_credentials_new}),
            (_JOB, {"GET": self._get_job, "DELETE": self._delete_job}),
            (
                rf"{_JOB}/(start|pause|restart|provisionOnDemand|validateCredentials)",
                {"POST": self._job_action},
            ),
            (
                rf"{_JOB}/schema",
                {"GET": self._get_schema, "PUT": self._put_schema, "DELETE": self._reset_schema},
            ),
            (rf"{_SCHEMA}/parseExpression", {"POST": self._parse_expression}),
            (rf"{_SCHEMA}/functions", {"GET": self._functions}),
            (rf"{_SCHEMA}/filterOperators", {"GET": self._filter_operators}),
            (rf"{_SCHEMA}/directories/{_SEG}/discover", {"POST": self._discover}),
            (rf"{_SP}/synchronization/templates", {"GET": self._list_templates}),
            (_TEMPLATE, {"GET": self._get_template}),
            (rf"{_TEMPLATE}/schema", {"GET": self._get_template_schema}),
            (rf"{_SP}/synchronization/secrets", {"GET": self._get_secrets, "PUT": self._put_secrets}),
        ]
        # Graph reads segment names case-insensitively; the ids in them keep their case.
        self._routes = [(re.compile(pattern, re.IGNORECASE), handlers) for pattern, handlers in routes]

    # -- dispatch ----------------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
        *,
        base_url: str,
        version: str = "v1.0",
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request; ``path`` is relative to the version and not yet percent-decoded."""
        method = method.upper()
        path = "/" + path.strip("/")
        for pattern, handlers in self._routes:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                return graph_error(405, "Request_BadRequest", f"{method} is not supported on {path[:200]}")
            try:
                opts = odata.options(query, version)
            except odata.QueryError as exc:
                return graph_error(exc.status, exc.code, str(exc))
            # A directory-object write checks its own body, to answer as the directory does.
            own = getattr(handler, "__name__", "") in _DIRECTORY_WRITES
            if self.validate and method in ("POST", "PUT", "PATCH") and not own:
                problems = metadata(version).check(method, path, body)
                if problems:
                    return graph_error(400, "BadRequest", problems[0])
            # The schema routes capture (sp, job) or (sp, template) in one of two pairs of groups.
            args = [urllib.parse.unquote(g) for g in m.groups() if g is not None]
            lowered = {k.lower(): v for k, v in (headers or {}).items()}
            request = Request(method, path, opts, body, base_url, version, lowered, self.validate)
            try:
                return handler(*args, request)
            except odata.QueryError as exc:
                return graph_error(exc.status, exc.code, str(exc))
            except ProviderError as exc:
                return _error_from(exc)
        segment = path.strip("/").split("/")[-1]
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{segment[:100]}'.")

    @staticmethod
    def _context(request: Request, fragment: str) -> str:
        return f"{request.base_url}/$metadata#{fragment}"

    # -- shapes ------------------------------------------------------------------------------------

    def _documented(self, type_name: str, item: Mapping[str, Any], version: str) -> JSON:
        """``item`` with every documented property of ``type_name``: what the store lacks gets Graph's
        default (an empty collection, false for a required flag, null otherwise)."""
        defaults = self._defaults.get((type_name, version))
        if defaults is None:
            defaults = self._defaults[(type_name, version)] = _defaults_of(type_name, version)
        return {**defaults, **item}

    def _entity(self, request: Request, type_name: str, item: Mapping[str, Any], fragment: str) -> Reply:
        """A single resource, with $select and $expand applied."""
        extra = sorted(set(request.options) - _ENTITY_OPTIONS)
        if extra:
            raise odata.QueryError(f"Query option '${extra[0]}' is not allowed on a single resource.")
        properties = metadata(request.version).properties(f"graph.{type_name}") or {}
        selected = None
        if request.options.get("select"):
            selected = odata.select_names(request.options["select"], properties, type_name)
        shaped = self._expand(request, type_name, properties, dict(item))
        body = odata.project(shaped, self._with_expanded(request, properties, selected), _ONLY_ON_SELECT)
        if selected is not None:
            fragment = fragment.replace("/$entity", f"({','.join(selected)})/$entity")
        return Reply(200, {"@odata.context": self._context(request, fragment), **body})

    @staticmethod
    def _with_expanded(
        request: Request, properties: Mapping[str, Mapping[str, Any]], selected: list[str] | None
    ) -> list[str] | None:
        """``selected`` and the properties $expand names: an expanded property is kept by a $select."""
        if selected is None or not request.options.get("expand"):
            return selected
        names = {k.lower(): k for k in properties}
        expanded = [names.get(p.strip().lower(), "") for p in request.options["expand"].split(",")]
        return [*selected, *(e for e in expanded if e)]

    def _expand(
        self, request: Request, type_name: str, properties: Mapping[str, Mapping[str, Any]], item: JSON
    ) -> JSON:
        text = request.options.get("expand")
        sp_id = item.pop("_sp", None)
        if not text:
            return item
        navigation = {k.lower(): k for k, v in properties.items() if v.get("navigation")}
        for part in text.split(","):
            name = navigation.get(part.strip().lower())
            if name is None:
                raise odata.QueryError(
                    f"Parsing OData Select and Expand failed: Could not find a navigation property named "
                    f"'{part.strip()[:60]}' on type 'microsoft.graph.{type_name}'."
                )
            if name == "schema" and type_name == "synchronizationJob":
                item["schema"] = self.store.get_schema(str(sp_id), item["id"])
            elif name == "schema" and type_name == "synchronizationTemplate":
                item["schema"] = self.store.template_schema(item["id"])
            else:
                # Nothing else is held for a navigation property: an empty set, or nothing.
                item[name] = [] if properties[name]["type"].startswith("Collection(") else None
        return item

    def _collection(
        self, request: Request, type_name: str, items: list[JSON], fragment: str, *, directory: bool
    ) -> Reply:
        properties = metadata(request.version).properties(f"graph.{type_name}") or {}
        view = odata.Collection(
            type_name, properties, directory, request.eventual, self.page_size, MAX_PAGE_SIZE
        )
        page, count, next_link, selected = view.apply(items, request.options, request.url)
        kept = self._with_expanded(request, properties, selected)
        value = [
            odata.project(self._expand(request, type_name, properties, dict(i)), kept, _ONLY_ON_SELECT)
            for i in page
        ]
        if selected is not None:
            fragment = f"{fragment}({','.join(selected)})"
        reply: JSON = {"@odata.context": self._context(request, fragment)}
        if count is not None:
            reply["@odata.count"] = count
        if next_link is not None:
            reply["@odata.nextLink"] = next_link
        reply["value"] = value
        return Reply(200, reply)

    def _sp(self, item: Mapping[str, Any], version: str) -> JSON:
        return self._documented("servicePrincipal", item, version)

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

    # -- the provisioning logs ("List provisioningObjectSummary"): the entries the store holds, newest
    # first, with the $filter, $orderby and paging the reference page lists.

    def _provisioning_log(self, request: Request) -> Reply:
        entries = reversed(self.store.provisioning_log())
        items = [self._documented("provisioningObjectSummary", e, request.version) for e in entries]
        return self._collection(
            request, "provisioningObjectSummary", items, "auditLogs/provisioning", directory=False
        )

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

    # -- jobs ----------------------------------------------------------------------------------

    def _job(self, sp_id: str, job: Mapping[str, Any], version: str) -> JSON:
        return {**self._documented("synchronizationJob", job, version), "_sp": sp_id}

    def _list_jobs(self, sp_id: str, request: Request) -> Reply:
        jobs = [self._job(sp_id, j, request.version) for j in self.store.list_jobs(sp_id)]
        fragment = f"servicePrincipals('{sp_id}')/synchronization/jobs"
        return self._collection(request, "synchronizationJob", jobs, fragment, directory=False)

    def _create_job(self, sp_id: str, request: Request) -> Reply:
        template_id = request.body.get("templateId") if isinstance(request.body, Mapping) else None
        if not isinstance(template_id, str):
            return graph_error(400, "BadRequest", "templateId is required")
        job = self._documented(
            "synchronizationJob", self.store.create_job(sp_id, template_id), request.version
        )
        context = self._context(request, f"servicePrincipals('{sp_id}')/synchronization/jobs/$entity")
        return Reply(201, {"@odata.context": context, **job})

    def _get_job(self, sp_id: str, job_id: str, request: Request) -> Reply:
        job = self._job(sp_id, self.store.get_job(sp_id, job_id), request.version)
        fragment = f"servicePrincipals('{sp_id}')/synchronization/jobs/$entity"
        return self._entity(request, "synchronizationJob", job, fragment)

    def _delete_job(self, sp_id: str, job_id: str, request: Request) -> Reply:
        self.store.delete_job(sp_id, job_id)
        return Reply(204)

    def _job_action(self, sp_id: str, job_id: str, action: str, request: Request) -> Reply:
        action = action.lower()
        body = request.body
        if action == "start":
            self.store.start_job(sp_id, job_id)
        elif action == "pause":
            self.store.pause_job(sp_id, job_id)
        elif action == "restart":
            criteria = body.get("criteria") if isinstance(body, Mapping) else None
            self.store.restart_job(sp_id, job_id, criteria if isinstance(criteria, Mapping) else None)
        elif action == "validatecredentials":
            self.store.get_job(sp_id, job_id)
            return self._validate_credentials(sp_id, body)
        else:
            return self._provision_on_demand(sp_id, job_id, request)
        return Reply(204)

    def _validate_credentials_new(self, sp_id: str, request: Request) -> Reply:
        """``jobs/validateCredentials``: the credentials of a job not made yet (``templateId`` names it)."""
        body = request.body
        if not isinstance(body, Mapping) or not isinstance(body.get("templateId"), str):
            return graph_error(400, "BadRequest", "templateId is required")
        self.store.template_schema(body["templateId"])
        return self._validate_credentials(sp_id, body)

    def _validate_credentials(self, sp_id: str, body: Any) -> Reply:
        """204 when there are credentials to test: those given, or (``useSavedCredentials``) the saved ones.

        The emulator reaches no directory, so credentials that are present are taken as valid.
        """
        body = body if isinstance(body, Mapping) else {}
        given = body.get("credentials") or []
        saved = self.store.get_secrets(sp_id) if body.get("useSavedCredentials") else []
        if not given and not saved:
            return graph_error(
                400, "BadRequest", "No credentials to validate: give credentials or save them first."
            )
        return Reply(204)

    def _provision_on_demand(self, sp_id: str, job_id: str, request: Request) -> Reply:
        """One subject through the embedded tenant's on-demand provisioning (``provisioning.on_demand``)."""
        from reconciler.graph.identity import GROUP_PROVISIONING_TEMPLATE, PROVISIONING_TEMPLATE
        from reconciler.graph.reading import find_provisioning_rule
        from reconciler.provisioning.on_demand import provision_on_demand

        body = request.body
        job = self.store.get_job(sp_id, job_id)
        to_ad = job.get("templateId") == GROUP_PROVISIONING_TEMPLATE
        if job.get("templateId") != PROVISIONING_TEMPLATE and not to_ad:
            return graph_error(400, "BadRequest", f"job {job_id} does not provision on demand")
        parameters = body.get("parameters") if isinstance(body, Mapping) else None
        first: Mapping[str, Any] = {}
        if isinstance(parameters, list) and parameters and isinstance(parameters[0], Mapping):
            first = parameters[0]
        subjects = first.get("subjects")
        if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], Mapping):
            return graph_error(400, "BadRequest", "parameters must name one rule with exactly one subject")
        rule = find_provisioning_rule(self.store.get_schema_rules(sp_id, job_id))
        if rule is None or first.get("ruleId") != rule.get("id"):
            return graph_error(400, "BadRequest", f"ruleId {first.get('ruleId')!r} is not a rule of this job")
        subject = subjects[0]
        object_id, object_type = subject.get("objectId"), subject.get("objectTypeName")
        if not isinstance(object_id, str) or not isinstance(object_type, str):
            return graph_error(400, "BadRequest", "a subject needs objectId and objectTypeName")
        if to_ad:
            from reconciler.provisioning.to_ad import provision_to_ad

            links = subject.get("links")
            linked = links.get("members") if isinstance(links, Mapping) else None
            if not isinstance(linked, list | None) or not all(
                isinstance(m, Mapping) and isinstance(m.get("objectId"), str) for m in linked or []
            ):
                return graph_error(400, "BadRequest", "links.members must be subjects with an objectId")
            members = [str(m["objectId"]) for m in linked or []]
            result = provision_to_ad(self.store, sp_id, object_id, object_type, members)
        else:
            result = provision_on_demand(self.store, sp_id, object_id, object_type)
        context = self._context(request, "microsoft.graph.stringKeyStringValuePair")
        return Reply(200, {"@odata.context": context, **dict(result)})

    # -- schema ----------------------------------------------------------------------------------

    def _get_schema(self, sp_id: str, job_id: str, request: Request) -> Reply:
        select = request.options.get("select")
        properties = metadata(request.version).properties("graph.synchronizationSchema") or {}
        wanted = set(odata.select_names(select, properties, "synchronizationSchema")) if select else set()
        fragment = f"servicePrincipals('{sp_id}')/synchronization/jobs('{job_id}')/schema/$entity"
        context = self._context(request, fragment)
        if select and "directories" not in wanted:
            # The directory definitions are most of a schema; leave them out unless asked for.
            if RAW_BODIES.get() and wanted >= {"version", "synchronizationRules"}:
                # Everything else: the stored text as it is, when the store can give it so.
                text = self.store.get_schema_rules_json(sp_id, job_id)
                if text is not None:
                    head = b'{"@odata.context":' + orjson.dumps(context) + b","
                    return Reply(200, orjson.Fragment(head + text[1:].encode()))
            schema = self.store.get_schema_rules(sp_id, job_id)
        else:
            schema = self.store.get_schema(sp_id, job_id)
        return self._entity(request, "synchronizationSchema", schema, fragment)

    def _put_schema(self, sp_id: str, job_id: str, request: Request) -> Reply:
        if not isinstance(request.body, Mapping):
            return graph_error(400, "BadRequest", "the schema must be a JSON object")
        schema = {k: v for k, v in request.body.items() if not k.startswith("@odata.")}
        # Enum members are read whatever their case (the documented example writes "string"), and kept
        # in the metadata's spelling, as a GET of the service shows them.
        schema = metadata(request.version).canonical_enums(schema, "graph.synchronizationSchema")
        self.store.put_schema(sp_id, job_id, schema)
        return Reply(204)

    def _reset_schema(self, sp_id: str, job_id: str, request: Request) -> Reply:
        self.store.reset_schema(sp_id, job_id)
        return Reply(204)

    def _schema_owner(self, sp_id: str, owner: str, request: Request) -> None:
        """404 unless the job or template the schema path names exists."""
        if "/templates/" in request.path.lower():
            self.store.get_service_principal(sp_id)
            self.store.template_schema(owner)
        else:
            self.store.get_job(sp_id, owner)

    def _functions(self, sp_id: str, owner: str, request: Request) -> Reply:
        self._schema_owner(sp_id, owner, request)
        value = [dict(f) for f in documented.functions()]
        return Reply(200, {"@odata.context": self._context(request, "functions"), "value": value})

    def _filter_operators(self, sp_id: str, owner: str, request: Request) -> Reply:
        self._schema_owner(sp_id, owner, request)
        value = [dict(f) for f in documented.filter_operators()]
        return Reply(200, {"@odata.context": self._context(request, "filterOperators"), "value": value})

    def _discover(self, sp_id: str, owner: str, directory_id: str, request: Request) -> Reply:
        """The directory definition as discovered now: the schema's, with its discovery time set."""
        if "/templates/" in request.path.lower():
            self.store.get_service_principal(sp_id)
            schema = self.store.template_schema(owner)
        else:
            schema = self.store.get_schema(sp_id, owner)
        found = self.store.discover(schema, directory_id)
        found["discoveryDateTime"] = _now_iso()
        found.setdefault("discoverabilities", "AttributeNames,AttributeDataTypes,AttributeReadOnly")
        context = self._context(request, "microsoft.graph.directoryDefinition")
        return Reply(200, {"@odata.context": context, **found})

    def _parse_expression(self, sp_id: str, owner: str, request: Request) -> Reply:
        """``parseExpression``: 200 with parsingSucceeded false for an invalid expression (as the service).

        Parsing and evaluation are the project's own (``reconciler.expressions``), the same code a plan
        uses. The test input's ``properties`` are ``{"key", "value"}`` pairs (the documented example).
        """
        from reconciler import expressions

        self._schema_owner(sp_id, owner, request)
        body = request.body
        if not isinstance(body, Mapping) or not isinstance(body.get("expression"), str):
            return graph_error(400, "BadRequest", "expression is required")
        text = body["expression"]
        reply: JSON = {
            "@odata.context": self._context(request, "microsoft.graph.parseExpressionResponse"),
            "error": None,
            "evaluationResult": None,
            "evaluationSucceeded": False,
            "parsedExpression": None,
            "parsingSucceeded": False,
        }
        try:
            expressions.parse(text)
            tree = dict(expressions.to_service_tree(text))
        except ExpressionError as exc:
            reply["error"] = _public_error("ParsingError", str(exc))
            return Reply(200, reply)
        tree.setdefault("expression", text)
        reply["parsedExpression"] = tree
        reply["parsingSucceeded"] = True
        test_input = body.get("testInputObject")
        properties = test_input.get("properties") if isinstance(test_input, Mapping) else None
        if isinstance(properties, list):
            attributes = {str(p.get("key")): p.get("value") for p in properties if isinstance(p, Mapping)}
            try:
                value = expressions.evaluate(text, attributes)
            except ExpressionError as exc:
                reply["error"] = _public_error("EvaluationError", str(exc))
                return Reply(200, reply)
            if value is None or isinstance(value, expressions.DoesNotFlow):
                values: list[Any] = []
            else:
                values = value if isinstance(value, list) else [value]
            reply["evaluationResult"] = [str(v) for v in values]
            reply["evaluationSucceeded"] = True
        return Reply(200, reply)

    # -- templates -------------------------------------------------------------------------------

    def _template(self, template: Mapping[str, Any], version: str) -> JSON:
        """A template with its schema inline, as the documented list of templates shows it."""
        shaped = self._documented("synchronizationTemplate", template, version)
        shaped["schema"] = self.store.template_schema(str(template["id"]))
        return shaped

    def _list_templates(self, sp_id: str, request: Request) -> Reply:
        templates = [self._template(t, request.version) for t in self.store.list_templates(sp_id)]
        fragment = f"servicePrincipals('{sp_id}')/synchronization/templates"
        return self._collection(request, "synchronizationTemplate", templates, fragment, directory=False)

    def _get_template(self, sp_id: str, template_id: str, request: Request) -> Reply:
        for template in self.store.list_templates(sp_id):
            if template["id"].lower() == template_id.lower():
                fragment = f"servicePrincipals('{sp_id}')/synchronization/templates/$entity"
                return self._entity(
                    request, "synchronizationTemplate", self._template(template, request.version), fragment
                )
        raise NotFoundError(
            f"synchronization template {template_id} not found", code="Request_ResourceNotFound"
        )

    def _get_template_schema(self, sp_id: str, template_id: str, request: Request) -> Reply:
        self.store.get_service_principal(sp_id)
        schema = self.store.template_schema(template_id)
        fragment = f"servicePrincipals('{sp_id}')/synchronization/templates('{template_id}')/schema/$entity"
        return self._entity(request, "synchronizationSchema", schema, fragment)

    # -- secrets ---------------------------------------------------------------------------------

    def _get_secrets(self, sp_id: str, request: Request) -> Reply:
        secrets = self.store.get_secrets(sp_id)
        context = self._context(request, f"servicePrincipals('{sp_id}')/synchronization/secrets")
        return Reply(200, {"@odata.context": context, "value": secrets})

    def _put_secrets(self, sp_id: str, request: Request) -> Reply:
        value = request.body.get("value") if isinstance(request.body, Mapping) else None
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            return graph_error(400, "BadRequest", 'the body must be {"value": [{"key", "value"}, ...]}')
        self.store.put_secrets(sp_id, value)
        return Reply(204)


def _defaults_of(type_name: str, version: str) -> JSON:
    """The value Graph gives each documented (non-navigation) property of ``type_name`` by default.

    Empty collections are tuples, encoded as ``[]``: the defaults are shared by every answer, so they
    must not be changed in place.
    """
    result: JSON = {}
    given = _DEFAULTS.get(type_name, {})
    for name, prop in (metadata(version).properties(f"graph.{type_name}") or {}).items():
        if prop.get("navigation"):
            continue
        if name in given:
            result[name] = given[name]
        elif prop["type"].startswith("Collection("):
            result[name] = ()
        elif prop["type"] == "Edm.Boolean" and not prop.get("nullable", True):
            result[name] = False
        else:
            result[name] = None
    return result


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


def _public_error(code: str, message: str) -> JSON:
    return {"code": code, "message": message, "details": None, "innerError": None, "target": None}


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
