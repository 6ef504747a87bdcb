"""The Graph endpoints of the synchronization API (v1.0 and beta), answered from a ``TenantStore``.

``GraphService.handle(method, path, query, body, version=...)`` takes one request (path relative to the
version) and returns a ``Reply`` with the status, body and headers the service would give: every call of
the API reference pages for synchronization jobs, schema, templates, secrets, ``instantiate`` and service
principals, in the shapes of that version's metadata (every documented property, with Graph's defaults
for what the store does not hold), with Graph's query options (``odata``) and its error bodies. Routing,
shapes and errors are shared by the versions; only the metadata differs. No sockets here: ``server``
adds HTTP, auth, latency and faults.

This module routes and checks each request; the handlers are in ``directory`` (templates, principals,
applications, assignments, extension properties) and ``synchronization`` (jobs, schemas, secrets), the
shapes and replies in ``replies``.

I/O: the tenant database, through the store.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.emulator import odata
from reconciler.emulator.directory import DirectoryEndpoints
from reconciler.emulator.replies import DEFAULT_PAGE_SIZE, Reply, Request, error_from, graph_error
from reconciler.emulator.synchronization import SynchronizationEndpoints
from reconciler.errors import ProviderError
from reconciler.graph.metadata import metadata
from reconciler.tenant.store import TenantStore

__all__ = ["GraphService"]

_SEG = r"([^/]+)"
_SP = rf"/servicePrincipals/{_SEG}"
_JOBS = rf"{_SP}/synchronization/jobs"
_JOB = rf"{_JOBS}/{_SEG}"
_TEMPLATE = rf"{_SP}/synchronization/templates/{_SEG}"
_SCHEMA = rf"(?:{_JOB}|{_TEMPLATE})/schema"

Handler = Callable[..., Reply]


# Handlers of directory-object writes: they check their body against the metadata themselves
# (``directory._directory_body``) and answer a bad one in the directory's error shape.
_DIRECTORY_WRITES = frozenset({"_assign", "_create_app", "_create_extension_property"})


class GraphService(DirectoryEndpoints, SynchronizationEndpoints):
    """The documented synchronization endpoints (v1.0 and beta), over one tenant store: the routes to
    the handlers of ``directory`` and ``synchronization``, and the checks every request passes."""

    def __init__(
        self, store: TenantStore, *, page_size: int = DEFAULT_PAGE_SIZE, validate: bool = True
    ) -> None:
        super().__init__(store, page_size=page_size)
        self.validate = validate
        routes: list[tuple[str, dict[str, Handler]]] = [
            (r"/applicationTemplates", {"GET": self._list_app_templates}),
            (rf"/applicationTemplates/{_SEG}", {"GET": self._get_app_template}),
            (rf"/applicationTemplates/{_SEG}/instantiate", {"POST": self._instantiate}),
            (r"/organization", {"GET": self._organization}),
            (r"/auditLogs/provisioning", {"GET": self._provisioning_log}),
            (rf"/groups/{_SEG}/members", {"GET": self._list_group_members}),
            (r"/groups", {"GET": self._list_groups}),
            (r"/users", {"GET": self._list_users}),
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
                return error_from(exc)
        segment = path.strip("/").split("/")[-1]
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{segment[:100]}'.")
