"""``Resources`` over HTTP: the Graph requests the write steps of ``CloudSyncWriter`` are made of.

One writer per configuration (secrets and schema are last-writer-wins on the service: a lock per key);
writes that may be retried are marked idempotent for the client; a principal made a moment ago may
answer 404 for a while (replication), so the first writes after instantiate are retried on 404.

I/O: HTTP requests through the provider's ``GraphClient``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from reconciler.core.model import Direction
from reconciler.errors import NotFoundError, ProviderError, TransientProviderError
from reconciler.graph.checks import check_job, check_service_principal
from reconciler.graph.client import segment
from reconciler.graph.group_scope import GROUP_FILTER, group_select
from reconciler.graph.groups import counts_of, member_count_item, tenant_count_items
from reconciler.graph.identity import JSON, from_template
from reconciler.graph.paths import (
    PAGE_SIZE,
    SP_SELECT,
    assignments_path,
    job_path,
    jobs_path,
    new_object,
    odata,
    secrets_in,
    secrets_path,
    sp_path,
    values,
)
from reconciler.graph.primitives import Loaded
from reconciler.graph.provisioning_logs import staged_delete_filter
from reconciler.graph.reader import GraphReading

__all__ = ["GraphResources"]

_T = TypeVar("_T")

# How often a write right after instantiate is retried while the new objects replicate.
_REPLICATION_ATTEMPTS = 6


class GraphResources:
    """``Resources`` over HTTP: what the write steps of ``CloudSyncWriter`` call, as Graph requests.

    One writer per configuration (secrets and schema are last-writer-wins on the service); writes that
    may be retried are marked idempotent for the client; a principal made a moment ago may answer 404
    for a while (replication), so the first writes after instantiate are retried on 404.
    """

    def __init__(self, provider: GraphReading) -> None:
        self._provider = provider
        self.client = provider.client
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextlib.contextmanager
    def step(self, *keys: str) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for key in keys:
                stack.enter_context(self._serialized(key))
            yield

    @contextlib.contextmanager
    def _serialized(self, key: str) -> Iterator[None]:
        # Secrets and schema are last-writer-wins on the service: one writer per configuration.
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def settle(self, fn: Callable[..., _T], *args: Any) -> _T:
        for attempt in range(_REPLICATION_ATTEMPTS):
            try:
                return fn(*args)
            except NotFoundError:
                if attempt == _REPLICATION_ATTEMPTS - 1:
                    raise
                self.client.wait(None, attempt)
        raise AssertionError("unreachable")

    def retry_wait(self, exc: TransientProviderError, attempt: int) -> bool:
        if attempt >= self.client.retry.max_attempts:
            return False
        self.client.wait(exc.retry_after, attempt - 1)
        return True

    def is_configuration(self, sp: JSON, direction: Direction) -> bool:
        return from_template(sp, direction)

    def load(self, id: str, *, schema: bool) -> Loaded:
        return Loaded(*self._provider._load_with_schema(id, schema=schema))

    def managed_as(self, name: str) -> list[JSON]:
        return self._provider._find_managed(name)

    def named(self, display_name: str) -> list[JSON]:
        # Not narrowed to the template: a new principal may list no template id (see is_configuration
        # and offers_template, which the caller asks).
        params = {"$filter": f"displayName eq {odata(display_name)}", "$select": SP_SELECT}
        try:
            return [
                check_service_principal(sp)
                for page in self.client.pages("/servicePrincipals", params)
                for sp in page
            ]
        except ProviderError as exc:
            if exc.status != 400:
                raise
        # The service refused the filter: every principal is listed, and compared here as it would.
        wanted = display_name.casefold()
        everything = self.client.pages("/servicePrincipals", {"$select": SP_SELECT, "$top": PAGE_SIZE})
        return [
            check_service_principal(sp)
            for page in everything
            for sp in page
            if isinstance(sp, dict) and str(sp.get("displayName") or "").casefold() == wanted
        ]

    def offers_template(self, id: str, job_template: str) -> bool:
        data = self.client.get(f"{sp_path(id)}/synchronization/templates")
        return any(
            isinstance(t, dict) and job_template in (t.get("id"), t.get("factoryTag"))
            for t in values(data, f"the synchronization templates of {id}")
        )

    def application_template(self, id: str) -> JSON:
        found = self.client.get(f"/applicationTemplates/{segment(id)}")
        if not isinstance(found, dict) or not isinstance(found.get("id"), str):
            raise ProviderError(f"application template {id}: the service's answer has no id")
        return found

    def instantiate(self, display_name: str, template_id: str) -> JSON:
        path = f"/applicationTemplates/{segment(template_id)}/instantiate"
        created = self.client.request("POST", path, body={"displayName": display_name})
        sp = created.get("servicePrincipal") if isinstance(created, dict) else None
        if not isinstance(sp, dict) or "id" not in sp:
            raise ProviderError("instantiate did not return the new service principal")
        return check_service_principal(sp)

    def set_tags(self, id: str, tags: list[str]) -> None:
        self.client.request("PATCH", sp_path(id), body={"tags": tags})

    def list_jobs(self, id: str) -> list[JSON]:
        return self._provider._jobs(id)

    def create_job(self, id: str, template_id: str) -> JSON:
        created = self.client.request("POST", jobs_path(id), body={"templateId": template_id})
        if not isinstance(created, dict) or "id" not in created:
            raise ProviderError(f"configuration {id}: the service did not return the new job")
        return check_job(created, id)

    def delete_job(self, id: str, job_id: str) -> None:
        self.client.request("DELETE", job_path(id, job_id))

    def job_action(self, id: str, job_id: str, action: str, body: JSON | None = None) -> None:
        # start, pause and restart leave the same state when repeated, so they are retried like reads.
        self.client.request("POST", f"{job_path(id, job_id)}/{action}", body=body, idempotent=True)

    def get_schema(self, id: str, job_id: str) -> JSON:
        return self._provider._schema(id, job_id)

    def put_schema(self, id: str, job_id: str, schema: JSON) -> None:
        self.client.request("PUT", job_path(id, job_id) + "/schema", body=schema)

    def get_secrets(self, id: str) -> list[JSON]:
        return secrets_in(self.client.get(secrets_path(id)), id)

    def put_secrets(self, id: str, secrets: list[JSON]) -> None:
        self.client.request("PUT", secrets_path(id), body={"value": secrets})

    def delete_application(self, app_id: str) -> None:
        self.client.request("DELETE", f"/applications(appId={odata(app_id)})")

    def delete_principal(self, id: str) -> None:
        self.client.request("DELETE", sp_path(id))
        self._provider._known_jobs.pop(id, None)

    def list_assignments(self, id: str) -> list[JSON]:
        return self._provider._assignments(id)

    def assign(self, id: str, assignment: JSON) -> JSON:
        # Not retried blindly: CloudSyncWriter looks for the assignment after an unknown outcome.
        created = self.client.request("POST", assignments_path(id), body=assignment)
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise ProviderError(f"configuration {id}: the service did not return the new app-role assignment")
        return created

    def unassign(self, id: str, assignment_id: str) -> None:
        self.client.request("DELETE", f"{assignments_path(id)}/{segment(assignment_id)}")

    def discover(self, id: str, job_id: str, directory_id: str) -> JSON:
        # A POST that changes nothing we manage: safe to retry like a read.
        path = f"{job_path(id, job_id)}/schema/directories/{segment(directory_id)}/discover"
        found = self.client.request("POST", path, idempotent=True)
        if not isinstance(found, dict):
            raise ProviderError(f"configuration {id}: the service did not return a directory definition")
        return found

    def tenant_id(self) -> str:
        return self._provider._tenant_id()

    def applications_with_uri(self, uri: str) -> list[JSON]:
        params = {"$filter": f"identifierUris/any(uri:uri eq {odata(uri)})"}
        return [a for page in self.client.pages("/applications", params) for a in page if isinstance(a, dict)]

    def create_application(self, display_name: str, uri: str) -> JSON:
        body = {"displayName": display_name, "identifierUris": [uri]}
        return new_object(self.client.request("POST", "/applications", body=body), "application")

    def principal_of(self, app_id: str) -> JSON | None:
        params = {"$filter": f"appId eq {odata(app_id)}", "$select": SP_SELECT}
        found = [sp for page in self.client.pages("/servicePrincipals", params) for sp in page]
        return check_service_principal(found[0]) if found else None

    def create_principal(self, app_id: str) -> JSON:
        created = self.client.request("POST", "/servicePrincipals", body={"appId": app_id})
        return check_service_principal(new_object(created, "service principal"))

    def list_extension_properties(self, app_object_id: str) -> list[JSON]:
        path = f"/applications/{segment(app_object_id)}/extensionProperties"
        return [p for page in self.client.pages(path) for p in page if isinstance(p, dict)]

    def staged_deletes(self, job_id: str, since: str | None) -> list[JSON]:
        params = {"$filter": staged_delete_filter(job_id, since)}
        pages = self.client.pages("/auditLogs/provisioning", params)
        return [e for page in pages for e in page if isinstance(e, dict)]

    def group_member_counts(self, ids: Sequence[str]) -> list[int | ProviderError | None]:
        return counts_of(self.client.batch([member_count_item(id) for id in ids]))

    def security_groups(self, extensions: Sequence[str] = ()) -> list[JSON]:
        params = {"$filter": GROUP_FILTER, "$select": group_select(extensions), "$top": PAGE_SIZE}
        return [g for page in self.client.pages("/groups", params) for g in page if isinstance(g, dict)]

    def tenant_counts(self) -> list[int | ProviderError | None]:
        return counts_of(self.client.batch(tenant_count_items()))

    def create_extension_property(self, app_object_id: str, body: JSON) -> JSON:
        path = f"/applications/{segment(app_object_id)}/extensionProperties"
        return new_object(self.client.request("POST", path, body=body), "extension property")

    def delete_extension_property(self, app_object_id: str, property_id: str) -> None:
        path = f"/applications/{segment(app_object_id)}/extensionProperties/{segment(property_id)}"
        self.client.request("DELETE", path)
