"""The Graph provider: Cloud Sync configurations in a Microsoft Entra tenant, through Microsoft Graph.

Targets: ``graph`` (``https://graph.microsoft.com/v1.0``), ``graph:https://HOST/v1.0`` (another Graph
cloud) and ``graph+http://HOST:PORT[/beta]`` (the emulator, or a proxy; ``/v1.0`` unless ``/beta`` is
named). The cloud-sync how-to uses ``/beta``, but the v1.0 metadata holds every type, property and
action used here (``containerFilter``/``groupFilter`` included), so ``graph`` stays on v1.0.

A configuration is what the portal makes: a service principal instantiated from the AD2AAD template,
its ``AD2AADProvisioning`` job (and ``AD2AADPasswordHash`` with password hash sync), the secrets
``Domain``/``AppKey``/``SyncNotificationSettings``, scope and mappings in the provisioning job's schema.
Enabled means the jobs are started, disabled paused. Ours carry our tags on the service principal.

Secrets and schema are full replacements on the service, so every write reads first, changes only what
we manage (``reading``, ``editing``, ``secrets``) and writes back everything else as it was read.

I/O: HTTP requests to the target through ``GraphClient`` (``reconciler.graph.client``), nothing else.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import itertools
import json
import os
import queue
import re
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from reconciler.core.collector import collector_paused
from reconciler.core.model import MAX_ON_DEMAND_MEMBERS, Direction, Mapping, Observed
from reconciler.errors import ConfigError, NotFoundError, ProviderError, TransientProviderError
from reconciler.graph.checks import (
    check_and_read_schema_text,
    check_job,
    check_schema,
    check_secrets,
    check_service_principal,
)
from reconciler.graph.client import (
    BATCH_LIMIT,
    BatchItem,
    GraphClient,
    RetryPolicy,
    TokenProvider,
    segment,
    token_provider_for,
)
from reconciler.graph.identity import (
    GROUP_TEMPLATE_APP_ID,
    JSON,
    MANAGED_TAG,
    PROVISIONING_TEMPLATE,
    TEMPLATE_APP_ID,
    direction_of,
    from_template,
    main_job,
    on_demand_subject,
    parse_tags,
    tags_for,
)
from reconciler.graph.provisioning_logs import staged_delete_filter
from reconciler.graph.reading import find_provisioning_rule, observe, read_schema, template_defaults
from reconciler.graph.writes import CloudSyncWriter, Loaded

__all__ = [
    "CONCURRENCY_ENV",
    "DEFAULT_BASE_URL",
    "GraphProvider",
    "open_graph",
    "parse_target",
]

DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
CONCURRENCY_ENV = "RECONCILER_GRAPH_CONCURRENCY"
TIMEOUT_ENV = "RECONCILER_GRAPH_TIMEOUT"
DEFAULT_CONCURRENCY = 10

_T = TypeVar("_T")

# Only what the provider reads from a service principal; a full one is many times larger.
_SP_SELECT = "id,appId,displayName,tags,applicationTemplateId,servicePrincipalNames"
# Reading scope and mappings needs the rules only (the same $select on the service is unconfirmed).
_SCHEMA_SELECT = "?$select=id,version,synchronizationRules"
# A display name as the portal gives a configuration's principal: the AD domain's DNS name.
_DNS_NAME = re.compile(r"(?i)(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")
# Graph's largest page for service principals.
_PAGE_SIZE = "999"
# A secret the service will not read back (write-only) comes back as this.
_MASKED = "*"
# How often a write right after instantiate is retried while the new objects replicate.
_REPLICATION_ATTEMPTS = 6


def parse_target(target: str) -> tuple[str, str]:
    """``(base_url, canonical target)`` for a ``graph`` target string."""
    text = target.strip()
    if text in ("graph", "graph:"):
        return DEFAULT_BASE_URL, "graph:" + DEFAULT_BASE_URL
    if text.startswith("graph:"):
        base = text[len("graph:") :].rstrip("/")
        parts = urllib.parse.urlsplit(base)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(f"target {target!r}: expected graph:https://HOST/VERSION")
        return base, "graph:" + base
    if text.startswith(("graph+http://", "graph+https://")):
        url = text[len("graph+") :].rstrip("/")
        parts = urllib.parse.urlsplit(url)
        # The version may be named (/v1.0 or /beta, both served by the emulator); v1.0 otherwise.
        version = parts.path.strip("/").lower() or "v1.0"
        if not parts.hostname or version not in ("v1.0", "beta") or parts.query or parts.fragment:
            raise ConfigError(f"target {target!r}: expected graph+http://HOST:PORT[/v1.0|/beta]")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise ConfigError(f"target {target!r}: the port is not a number") from exc
        origin = f"{parts.scheme}://{parts.netloc}"
        if version == "beta":
            return origin + "/beta", "graph+" + origin + "/beta"
        return origin + "/v1.0", "graph+" + origin
    raise ConfigError(f"target {target!r} is not a Graph target (graph, graph+http://HOST:PORT)")


def open_graph(target: str) -> GraphProvider:
    """The provider for ``target``; concurrency and timeout from the environment."""
    base_url, canonical = parse_target(target)
    concurrency = _env_number(CONCURRENCY_ENV, DEFAULT_CONCURRENCY, int, MAX_CONCURRENCY)
    timeout = _env_number(TIMEOUT_ENV, 60.0, float, MAX_TIMEOUT)
    return GraphProvider(base_url, target=canonical, concurrency=concurrency, timeout=timeout)


# Bounds on the settings read from the environment: beyond them a typo would exhaust the machine
# (a pool of a billion connections) or hang a run.
MAX_CONCURRENCY = 256
MAX_TIMEOUT = 3600.0


def _env_number(name: str, default: Any, kind: type, maximum: float) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw[:40]!r} is not a number") from None
    if not (0 < value <= maximum):  # also refuses nan
        raise ConfigError(f"{name} must be greater than 0 and at most {maximum:g}")
    return value


def _odata(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


_from_template = from_template


def _name_tag(name: str) -> str:
    """Our tag that carries ``name`` (as ``identity.tags_for`` writes it)."""
    for tag in tags_for((), name=name):
        if tag != MANAGED_TAG and parse_tags([tag]).name == name:
            return tag
    raise AssertionError("tags_for wrote no name tag")


def _sp_path(id: str) -> str:
    return f"/servicePrincipals/{segment(id)}"


def _jobs_path(id: str) -> str:
    return f"{_sp_path(id)}/synchronization/jobs"


def _job_path(id: str, job_id: str) -> str:
    return f"{_jobs_path(id)}/{segment(job_id)}"


def _secrets_path(id: str) -> str:
    return f"{_sp_path(id)}/synchronization/secrets"


def _assignments_path(id: str) -> str:
    return f"{_sp_path(id)}/appRoleAssignedTo"


def _values(data: Any, what: str) -> list[JSON]:
    # A collection without its list would read as "none": no jobs, no secrets, and so a create again.
    values = data.get("value") if isinstance(data, dict) else None
    if not isinstance(values, list):
        raise ProviderError(f"{what}: the service's answer is not a collection (no 'value' list)")
    return values


def _jobs_in(data: Any, id: str) -> list[JSON]:
    return [check_job(job, id) for job in _values(data, f"the jobs of {id}")]


def _secrets_in(data: Any, id: str) -> list[JSON]:
    return check_secrets(_values(data, f"the secrets of {id}"), id)


def _schema_in(data: Any, path: str) -> JSON:
    return check_schema(data, f"the schema at {path}")


def _check(result: Any) -> Any:
    """A ``$batch`` result: the body, or its error raised."""
    if isinstance(result, ProviderError):
        raise result
    return result


def _wanted(sp: JSON, names: frozenset[str]) -> bool:
    tags = parse_tags(sp.get("tags") or [])
    return not tags.managed or tags.name in names


# A listed service principal with its jobs, its secrets and its provisioning job, waiting for its schema.
_Ready = tuple[JSON, list[JSON], list[JSON], JSON]
# Jobs and secrets of this many configurations fill one $batch; schemas of twice as many.
_JOBS_PER_BATCH = BATCH_LIMIT // 2
# Task priorities while reading (lower first).
_URGENT, _LATER = 0, 1


class _PriorityPool:
    """Worker threads that always take the most urgent task queued (then the oldest)."""

    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], None] | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        future: Future[_T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self._queue.put((priority, next(self._order), run))
        return future

    def _work(self) -> None:
        while True:
            _priority, _order, task = self._queue.get()
            if task is None:
                return
            task()

    def close(self) -> None:
        """Stop the workers once every task queued (and every task those queue) has run."""
        for _ in self._threads:
            self._queue.put((sys.maxsize, next(self._order), None))
        for thread in self._threads:
            thread.join()


class _Reading:
    """One reading of the target: the configurations listed are read in two steps, their jobs and
    secrets (10 configurations a $batch), then the schemas of those with a provisioning job (20 a
    $batch, as soon as 20 are waiting).

    Schema requests go first: the configurations begun are finished, and their CPU work done, while
    the requests of the next ones are on the wire; and the last requests do not trail one after the
    other. There are a few more workers than requests allowed on the wire, so that a worker busy
    with an answer does not leave a request slot empty.
    """

    def __init__(self, provider: GraphProvider) -> None:
        self._provider = provider
        self.pool = _PriorityPool(provider.client.concurrency + 2, "graph-read")
        self._lock = threading.Lock()
        self._listed: list[JSON] = []  # not yet asked for
        self._ready: list[_Ready] = []
        self._steps: list[Future[list[Observed]]] = []
        self._reading_jobs = 0  # job-and-secret requests queued or running
        self._listing_done = False
        self._stopped = False

    def __enter__(self) -> _Reading:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None:
            self._stop()
        self.pool.close()

    def _stop(self) -> None:
        """The reading failed: what has not started yet is not sent at all."""
        with self._lock:
            self._stopped = True
            for step in self._steps:
                step.cancel()

    @property
    def stopped(self) -> bool:
        """Whether a step failed: the listing need not go on, ``finish`` raises that failure."""
        return self._stopped

    def _guarded(self, fn: Callable[..., list[Observed]], *args: Any) -> list[Observed]:
        # The first failure stops the reading at once, not only once the listing is over.
        try:
            return fn(*args)
        except BaseException:
            self._stop()
            raise

    def add(self, sps: Sequence[JSON]) -> None:
        """Service principals listed: read them (from the listing thread only)."""
        self._listed.extend(sps)
        while len(self._listed) >= _JOBS_PER_BATCH:
            self._read_jobs(self._listed[:_JOBS_PER_BATCH])
            del self._listed[:_JOBS_PER_BATCH]

    def finish(self) -> list[Observed]:
        """Once the listing is complete: every configuration listed, as it is read."""
        if self._listed:
            self._read_jobs(self._listed)
            self._listed = []
        with self._lock:
            self._listing_done = True
            self._schemas_left()
        observed: list[Observed] = []
        done = 0
        while True:
            with self._lock:
                steps = self._steps[done:]
            if not steps:
                # Every step has finished, so no step can add another now.
                return observed
            # The first failure ends the reading, whichever step it comes from.
            concurrent.futures.wait(steps, return_when=concurrent.futures.FIRST_EXCEPTION)
            for step in steps:
                # Steps cancelled by the failure (see _guarded) are passed over: the failure is raised.
                if step.done() and not step.cancelled() and step.exception() is not None:
                    step.result()
            for step in steps:
                observed.extend(step.result())
            done += len(steps)

    def _read_jobs(self, sps: list[JSON]) -> None:
        with self._lock:
            if self._stopped:
                return
            self._reading_jobs += 1
            self._steps.append(self.pool.submit(_LATER, self._guarded, self._jobs_step, sps))

    def _jobs_step(self, sps: list[JSON]) -> list[Observed]:
        try:
            observed = []
            for sp, jobs, secrets in self._provider._read_jobs_and_secrets(sps):
                job = main_job(jobs)
                if job is None:
                    o = observe(sp, jobs, secrets, None)
                    if o is not None:
                        observed.append(o)
                    continue
                self._provider._remember_job(sp["id"], job)
                with self._lock:
                    self._ready.append((sp, jobs, secrets, job))
                    if len(self._ready) >= BATCH_LIMIT:
                        self._read_schemas(self._ready[:BATCH_LIMIT])
                        del self._ready[:BATCH_LIMIT]
            return observed
        finally:
            with self._lock:
                self._reading_jobs -= 1
                self._schemas_left()

    def _schemas_left(self) -> None:
        # Under the lock: once nothing more can become ready, the last few schemas go in one $batch.
        if self._listing_done and self._reading_jobs == 0 and self._ready:
            self._read_schemas(self._ready)
            self._ready = []

    def _read_schemas(self, ready: list[_Ready]) -> None:
        # Under the lock.
        if not self._stopped:
            self._steps.append(
                self.pool.submit(_URGENT, self._guarded, self._provider._observe_with_schemas, ready)
            )


class _GraphResources:
    """``Resources`` over HTTP: what the write steps of ``CloudSyncWriter`` call, as Graph requests.

    One writer per configuration (secrets and schema are last-writer-wins on the service); writes that
    may be retried are marked idempotent for the client; a principal made a moment ago may answer 404
    for a while (replication), so the first writes after instantiate are retried on 404.
    """

    def __init__(self, provider: GraphProvider) -> None:
        self._provider = provider
        self.client = provider.client

    @contextlib.contextmanager
    def step(self, *keys: str) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for key in keys:
                stack.enter_context(self._provider._serialized(key))
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
        return _from_template(sp, direction)

    def load(self, id: str, *, schema: bool) -> Loaded:
        return Loaded(*self._provider._load_with_schema(id, schema=schema))

    def managed_as(self, name: str) -> list[JSON]:
        return self._provider._find_managed(name)

    def named(self, display_name: str) -> list[JSON]:
        # Not narrowed to the template: a new principal may list no template id (see is_configuration
        # and offers_template, which the caller asks).
        params = {"$filter": f"displayName eq {_odata(display_name)}", "$select": _SP_SELECT}
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
        everything = self.client.pages("/servicePrincipals", {"$select": _SP_SELECT, "$top": _PAGE_SIZE})
        return [
            check_service_principal(sp)
            for page in everything
            for sp in page
            if isinstance(sp, dict) and str(sp.get("displayName") or "").casefold() == wanted
        ]

    def offers_template(self, id: str, job_template: str) -> bool:
        data = self.client.get(f"{_sp_path(id)}/synchronization/templates")
        return any(
            isinstance(t, dict) and job_template in (t.get("id"), t.get("factoryTag"))
            for t in _values(data, f"the synchronization templates of {id}")
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
        self.client.request("PATCH", _sp_path(id), body={"tags": tags})

    def list_jobs(self, id: str) -> list[JSON]:
        return self._provider._jobs(id)

    def create_job(self, id: str, template_id: str) -> JSON:
        created = self.client.request("POST", _jobs_path(id), body={"templateId": template_id})
        if not isinstance(created, dict) or "id" not in created:
            raise ProviderError(f"configuration {id}: the service did not return the new job")
        return check_job(created, id)

    def delete_job(self, id: str, job_id: str) -> None:
        self.client.request("DELETE", _job_path(id, job_id))

    def job_action(self, id: str, job_id: str, action: str, body: JSON | None = None) -> None:
        # start, pause and restart leave the same state when repeated, so they are retried like reads.
        self.client.request("POST", f"{_job_path(id, job_id)}/{action}", body=body, idempotent=True)

    def get_schema(self, id: str, job_id: str) -> JSON:
        return self._provider._schema(id, job_id)

    def put_schema(self, id: str, job_id: str, schema: JSON) -> None:
        self.client.request("PUT", _job_path(id, job_id) + "/schema", body=schema)

    def get_secrets(self, id: str) -> list[JSON]:
        return _secrets_in(self.client.get(_secrets_path(id)), id)

    def put_secrets(self, id: str, secrets: list[JSON]) -> None:
        self.client.request("PUT", _secrets_path(id), body={"value": secrets})

    def delete_application(self, app_id: str) -> None:
        self.client.request("DELETE", f"/applications(appId={_odata(app_id)})")

    def delete_principal(self, id: str) -> None:
        self.client.request("DELETE", _sp_path(id))
        self._provider._known_jobs.pop(id, None)

    def list_assignments(self, id: str) -> list[JSON]:
        return self._provider._assignments(id)

    def assign(self, id: str, assignment: JSON) -> JSON:
        # Not retried blindly: CloudSyncWriter looks for the assignment after an unknown outcome.
        created = self.client.request("POST", _assignments_path(id), body=assignment)
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise ProviderError(f"configuration {id}: the service did not return the new app-role assignment")
        return created

    def unassign(self, id: str, assignment_id: str) -> None:
        self.client.request("DELETE", f"{_assignments_path(id)}/{segment(assignment_id)}")

    def discover(self, id: str, job_id: str, directory_id: str) -> JSON:
        # A POST that changes nothing we manage: safe to retry like a read.
        path = f"{_job_path(id, job_id)}/schema/directories/{segment(directory_id)}/discover"
        found = self.client.request("POST", path, idempotent=True)
        if not isinstance(found, dict):
            raise ProviderError(f"configuration {id}: the service did not return a directory definition")
        return found

    def tenant_id(self) -> str:
        return self._provider._tenant_id()

    def applications_with_uri(self, uri: str) -> list[JSON]:
        params = {"$filter": f"identifierUris/any(uri:uri eq {_odata(uri)})"}
        return [a for page in self.client.pages("/applications", params) for a in page if isinstance(a, dict)]

    def create_application(self, display_name: str, uri: str) -> JSON:
        body = {"displayName": display_name, "identifierUris": [uri]}
        return _created(self.client.request("POST", "/applications", body=body), "application")

    def principal_of(self, app_id: str) -> JSON | None:
        params = {"$filter": f"appId eq {_odata(app_id)}", "$select": _SP_SELECT}
        found = [sp for page in self.client.pages("/servicePrincipals", params) for sp in page]
        return check_service_principal(found[0]) if found else None

    def create_principal(self, app_id: str) -> JSON:
        created = self.client.request("POST", "/servicePrincipals", body={"appId": app_id})
        return check_service_principal(_created(created, "service principal"))

    def list_extension_properties(self, app_object_id: str) -> list[JSON]:
        path = f"/applications/{segment(app_object_id)}/extensionProperties"
        return [p for page in self.client.pages(path) for p in page if isinstance(p, dict)]

    def staged_deletes(self, job_id: str, since: str | None) -> list[JSON]:
        params = {"$filter": staged_delete_filter(job_id, since)}
        pages = self.client.pages("/auditLogs/provisioning", params)
        return [e for page in pages for e in page if isinstance(e, dict)]

    def create_extension_property(self, app_object_id: str, body: JSON) -> JSON:
        path = f"/applications/{segment(app_object_id)}/extensionProperties"
        return _created(self.client.request("POST", path, body=body), "extension property")

    def delete_extension_property(self, app_object_id: str, property_id: str) -> None:
        path = f"/applications/{segment(app_object_id)}/extensionProperties/{segment(property_id)}"
        self.client.request("DELETE", path)


_GUID = re.compile(r"^[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def _token_tenant(token: str | None) -> str | None:
    """The ``tid`` claim of a JWT access token (read, not verified: it is the token we were given), or
    None for any other token."""
    parts = (token or "").split(".")
    if len(parts) != 3 or len(parts[1]) > 16_384:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    tid = claims.get("tid") if isinstance(claims, dict) else None
    return tid if isinstance(tid, str) and _GUID.match(tid) else None


def _created(answer: Any, what: str) -> JSON:
    if not isinstance(answer, dict) or not answer.get("id"):
        raise ProviderError(f"the service did not return the new {what}")
    return answer


class GraphProvider(CloudSyncWriter):
    """``Provider`` over Microsoft Graph (or the emulator)."""

    def __init__(
        self,
        base_url: str,
        *,
        target: str | None = None,
        tokens: TokenProvider | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        client: GraphClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.target = target or "graph:" + self.base_url
        self.client = client or GraphClient(
            self.base_url,
            tokens or token_provider_for(self.base_url),
            concurrency=concurrency,
            timeout=timeout,
            retry=retry,
        )
        self._lock = threading.Lock()
        self._sp_locks: dict[str, threading.Lock] = {}
        self._template: tuple[Mapping, ...] | None = None
        self._template_future: Future[tuple[Mapping, ...] | None] | None = None
        self._template_source: str | None = None  # an SP id to read the template through
        self._select_schema = True  # until the service refuses $select on a schema
        # Provisioning job ids by principal, as last seen: they let a write fetch the schema early.
        self._known_jobs: dict[str, str] = {}
        # Domains whose portal-made configurations are looked up by display name (look_up_domains).
        self._domains: frozenset[str] | None = frozenset()
        self._tenant: str | None = None
        self.resources = _GraphResources(self)

    def close(self) -> None:
        self.client.close()

    def _tenant_id(self) -> str:
        """The tenant's id, found once: the ``tid`` claim of the access token when it is a JWT (so a
        read-only identity needs no Organization.Read.All), else ``GET /organization`` (its one entry's
        ``id``; the emulator's tokens are opaque)."""
        if self._tenant is None:
            self._tenant = _token_tenant(self.client.tokens.token())
        if self._tenant is None:
            data = self.client.get("/organization", {"$select": "id"})
            ids = [o.get("id") for o in _values(data, "the organization") if isinstance(o, dict)]
            if len(ids) != 1 or not isinstance(ids[0], str) or not ids[0]:
                raise ProviderError("the service did not name the tenant (GET /organization)")
            self._tenant = ids[0]
        return self._tenant

    @contextlib.contextmanager
    def _serialized(self, key: str) -> Iterator[None]:
        # Secrets and schema are last-writer-wins on the service: one writer per configuration.
        with self._lock:
            lock = self._sp_locks.setdefault(key, threading.Lock())
        with lock:
            yield

    # ----------------------------------------------------------------------------------------------
    # listing

    def _list_sps(
        self, odata_filter: str | None = None, *, template: bool = True, template_id: str = TEMPLATE_APP_ID
    ) -> Iterator[list[JSON]]:
        """Pages of service principals made from application template ``template_id`` (by default the
        AD2AAD one; any service principal when not ``template``), narrowed by ``odata_filter``.

        Should the service refuse the filter, every service principal is listed and filtered here.
        """
        template_filter = f"applicationTemplateId eq {_odata(template_id)}"
        wanted = " and ".join(f for f in (template_filter if template else None, odata_filter) if f)
        params = {"$select": _SP_SELECT, "$top": _PAGE_SIZE}
        pages = self.client.pages("/servicePrincipals", {"$filter": wanted, **params})
        try:
            first = next(pages)
        except ProviderError as exc:
            if exc.status != 400:
                raise
            pages = self.client.pages("/servicePrincipals", params)
            first = next(pages)
        else:
            odata_filter = None  # the service did the filtering
        for page in itertools.chain([first], pages):
            checked = [check_service_principal(sp) for sp in page]
            made = Direction.ENTRA_TO_AD if template_id == GROUP_TEMPLATE_APP_ID else Direction.AD_TO_ENTRA
            kept = [sp for sp in checked if _from_template(sp, made)] if template else checked
            yield [sp for sp in kept if self._matches(sp, odata_filter)]

    def _list_configurations(self) -> Iterator[list[JSON]]:
        """Pages of the principals that may hold a configuration: those made from the template, then
        those carrying our tag that were not (configurations made in the portal and adopted), then
        those named after a domain asked for (``look_up_domains``) that hold a provisioning job."""
        seen: set[str] = set()
        names: set[str] = set()
        for page in self._list_sps():
            seen.update(sp["id"] for sp in page)
            names.update(str(sp.get("displayName") or "").casefold() for sp in page)
            yield page
        # Entra ID -> AD configurations: principals of their own template.
        for page in self._list_sps(template_id=GROUP_TEMPLATE_APP_ID):
            fresh = [sp for sp in page if sp["id"] not in seen]
            seen.update(sp["id"] for sp in fresh)
            yield fresh
        for page in self._list_sps(f"tags/any(t:t eq {_odata(MANAGED_TAG)})", template=False):
            fresh = [sp for sp in page if sp["id"] not in seen]
            seen.update(sp["id"] for sp in fresh)
            # Ours only if it holds a provisioning job: a tag alone does not make a configuration.
            yield self._holding_provisioning_jobs(fresh)
        if self._domains is None:
            yield from self._named_like_domains(seen)
            return
        domains = sorted(d for d in self._domains if d.casefold() not in names)
        if domains:
            yield [sp for sp in self._by_display_names(domains) if sp["id"] not in seen]

    def _named_like_domains(self, seen: set[str]) -> Iterator[list[JSON]]:
        """Every principal not listed yet whose display name is a DNS name (as the portal names a
        configuration's), that holds a provisioning job: one listing of every principal (999 a page),
        and the jobs of those candidates 20 to a ``$batch``."""
        for page in self.client.pages("/servicePrincipals", {"$select": _SP_SELECT, "$top": _PAGE_SIZE}):
            candidates = [
                sp
                for sp in map(check_service_principal, page)
                if sp["id"] not in seen and _DNS_NAME.fullmatch(str(sp.get("displayName") or ""))
            ]
            seen.update(sp["id"] for sp in candidates)
            yield self._holding_provisioning_jobs(candidates)

    def look_up_domains(self, domains: Iterable[str] | None) -> None:
        """Also find the configurations of ``domains`` made in the portal, whatever their principal's
        ``applicationTemplateId`` (Microsoft's own example of a Cloud Sync principal shows null).

        The portal names the principal after the AD domain: each domain is looked up by display name
        (20 to a ``$batch``) and a principal found counts only when it holds an ``AD2AADProvisioning``
        job. Domains whose principal the template listing found already are not asked for.

        None: every principal whose display name is a DNS name is a candidate (one listing of every
        principal of the tenant; for ``import``, which has no desired state to take domains from).
        """
        self._domains = None if domains is None else frozenset(d for d in domains if d)

    def _by_display_names(self, names: Sequence[str]) -> list[JSON]:
        """Principals named ``names`` (any template) that hold a provisioning job."""
        items = []
        for name in names:
            query = urllib.parse.urlencode(
                {"$filter": f"displayName eq {_odata(name)}", "$select": _SP_SELECT, "$top": _PAGE_SIZE},
                quote_via=urllib.parse.quote,
            )
            items.append(BatchItem("GET", f"/servicePrincipals?{query}"))
        found: dict[str, JSON] = {}
        refused: set[str] = set()
        for name, result in zip(names, self.client.batch(items), strict=True):
            if isinstance(result, ProviderError) and result.status == 400:
                refused.add(name.casefold())  # the filter refused: looked for in a full listing below
                continue
            for sp in _values(_check(result), f"the service principals named {name!r}"):
                checked = check_service_principal(sp)
                if str(checked.get("displayName") or "").casefold() == name.casefold():
                    found.setdefault(checked["id"], checked)
        if refused:
            for page in self.client.pages("/servicePrincipals", {"$select": _SP_SELECT, "$top": _PAGE_SIZE}):
                for sp in map(check_service_principal, page):
                    if str(sp.get("displayName") or "").casefold() in refused:
                        found.setdefault(sp["id"], sp)
        return self._holding_provisioning_jobs(list(found.values()))

    def _holding_provisioning_jobs(self, sps: list[JSON]) -> list[JSON]:
        """Those of ``sps`` made from the template, or holding an ``AD2AADProvisioning`` job (their
        jobs read 20 to a ``$batch``)."""
        others = [sp for sp in sps if not _from_template(sp)]
        if not others:
            return sps
        results = self.client.batch([BatchItem("GET", _jobs_path(sp["id"])) for sp in others])
        holding = set()
        for sp, result in zip(others, results, strict=True):
            if isinstance(result, NotFoundError):
                continue  # deleted since it was listed
            if main_job(_jobs_in(_check(result), sp["id"])) is not None:
                holding.add(sp["id"])
        return [sp for sp in sps if _from_template(sp) or sp["id"] in holding]

    @staticmethod
    def _matches(sp: JSON, odata_filter: str | None) -> bool:
        # The client-side twin of the few filters used below (only after the service refused one).
        if odata_filter is None:
            return True
        if odata_filter.startswith("tags/any"):
            tag = odata_filter.split(" eq ", 1)[1].rstrip(")")[1:-1].replace("''", "'")
            return tag in (sp.get("tags") or [])
        if odata_filter.startswith("displayName eq "):
            name = odata_filter[len("displayName eq ") :][1:-1].replace("''", "'")
            return bool(sp.get("displayName") == name)
        return True

    def _find_managed(self, name: str) -> list[JSON]:
        """The configurations our tags say are managed as ``name``: made from the template, or (made
        in the portal and adopted) holding a provisioning job."""
        found: list[JSON] = []
        for page in self._list_sps(f"tags/any(t:t eq {_odata(_name_tag(name))})", template=False):
            for sp in self._holding_provisioning_jobs(page):
                tags = parse_tags(sp.get("tags") or [])
                if tags.managed and tags.name == name:
                    found.append(sp)
        return found

    def _find_by_display_name(self, display_name: str) -> list[JSON]:
        return [sp for page in self._list_sps(f"displayName eq {_odata(display_name)}") for sp in page]

    # ----------------------------------------------------------------------------------------------
    # reading

    def _read_jobs_and_secrets(self, sps: Sequence[JSON]) -> list[tuple[JSON, list[JSON], list[JSON]]]:
        """Jobs and secrets of up to 10 service principals, in one $batch; those deleted since they were
        listed are left out."""
        items = [BatchItem("GET", _jobs_path(sp["id"])) for sp in sps]
        items += [BatchItem("GET", _secrets_path(sp["id"])) for sp in sps]
        results = self.client.batch(items)
        n = len(sps)
        found = []
        for i, sp in enumerate(sps):
            jobs_result, secrets_result = results[i], results[n + i]
            if isinstance(jobs_result, NotFoundError) or isinstance(secrets_result, NotFoundError):
                continue  # deleted since it was listed
            jobs = _jobs_in(_check(jobs_result), sp["id"])
            found.append((sp, jobs, _secrets_in(_check(secrets_result), sp["id"])))
        return found

    def _observe_with_schemas(self, ready: Sequence[_Ready]) -> list[Observed]:
        """The configurations of up to 20 service principals with a provisioning job, their schemas
        read in one $batch."""
        paths = [_job_path(sp["id"], job["id"]) + "/schema" for sp, _jobs, _secrets, job in ready]
        schemas = self._read_schemas(paths)
        observed = []
        for (sp, jobs, secrets, _job), path, result in zip(ready, paths, schemas, strict=True):
            if isinstance(result, NotFoundError):
                reading = None  # the job went away in between; reported as it is now
            else:
                # Checked as _schema_in checks it, and read on the way, from its JSON text.
                reading = check_and_read_schema_text(_check(result), f"the schema at {path}")
            o = observe(sp, jobs, secrets, None, reading=reading, assignments=self._assignments_of(sp, jobs))
            if o is not None:
                observed.append(o)
        return observed

    def _assignments_of(self, sp: JSON, jobs: list[JSON]) -> list[JSON]:
        """An Entra ID -> AD principal's app-role assignments (its selected groups); none else."""
        if direction_of(sp, jobs) is not Direction.ENTRA_TO_AD:
            return []
        try:
            return self._assignments(sp["id"])
        except NotFoundError:
            return []  # deleted since it was listed

    def _assignments(self, id: str) -> list[JSON]:
        """Every page of ``GET /servicePrincipals/{id}/appRoleAssignedTo`` (the client bounds the pages)."""
        found: list[JSON] = []
        for page in self.client.pages(_assignments_path(id), {"$top": _PAGE_SIZE}):
            found.extend(a for a in page if isinstance(a, dict))
        return found

    def _read_schemas(self, paths: Sequence[str]) -> list[Any]:
        """Job schemas for reading scope and mappings, as JSON text: without the directory definitions
        when the service honours ``$select`` (they are most of a schema), whole when it does not."""
        if not self._select_schema:
            return self.client.batch([BatchItem("GET", p) for p in paths], raw=True)
        results = self.client.batch([BatchItem("GET", p + _SCHEMA_SELECT) for p in paths], raw=True)
        refused = [i for i, r in enumerate(results) if isinstance(r, ProviderError) and r.status == 400]
        if refused:
            self._select_schema = False
            again = self.client.batch([BatchItem("GET", paths[i]) for i in refused], raw=True)
            for i, result in zip(refused, again, strict=True):
                results[i] = result
        return results

    def read_all(self) -> tuple[Observed, ...]:
        return self._read(None)

    def read_named(self, names: frozenset[str]) -> tuple[Observed, ...]:
        """The managed configurations called ``names`` and every unmanaged one, sorted by id."""
        return self._read(names)

    def _read(self, names: frozenset[str] | None) -> tuple[Observed, ...]:
        # Pages arrive one after the other; the configurations listed are read while the next page is
        # fetched (see _Reading). Our tags come with the listing, so with ``names`` the other managed
        # configurations are not read any further.
        # Decoding the answers of a large tenant makes millions of small dicts and lists in a burst.
        with collector_paused(), _Reading(self) as reading:
            for listed in self._list_configurations():
                if reading.stopped:
                    break  # a read failed: finish() raises it
                page = listed if names is None else [sp for sp in listed if _wanted(sp, names)]
                if page and self._template is None and self._template_future is None:
                    # The template is read alongside, through the first configuration found.
                    self._template_source = page[0]["id"]
                    self._template_future = reading.pool.submit(_URGENT, self._read_template, page[0]["id"])
                reading.add(page)
            observed = reading.finish()
        return tuple(sorted(observed, key=lambda o: o.id))

    # ----------------------------------------------------------------------------------------------
    # the template

    def _read_template(self, sp_id: str) -> tuple[Mapping, ...] | None:
        path = f"{_sp_path(sp_id)}/synchronization/templates/{PROVISIONING_TEMPLATE}/schema"
        try:
            schema = self.client.get(path)
        except NotFoundError:
            return None
        return read_schema(_schema_in(schema, path))[1]

    def template_defaults(self) -> tuple[Mapping, ...]:
        """The service's own AD2AADProvisioning template, read through any configuration.

        With no configuration on the target there is nothing to read it through; the embedded copy of
        the template stands in until the first one exists.
        """
        if self._template is not None:
            return self._template
        future = self._template_future
        if future is None:
            source = next((sp["id"] for page in self._list_sps() for sp in page[:1]), None)
            result = self._read_template(source) if source is not None else None
        else:
            result = future.result()
        if result is None:
            # Not kept: once a configuration exists, the service's own template is read instead.
            self._template_future = None
            return template_defaults()
        self._template = result
        return result

    # ----------------------------------------------------------------------------------------------
    # reads for writes (the write steps themselves are ``CloudSyncWriter``'s, over ``_GraphResources``)

    def _load_with_schema(
        self, id: str, *, schema: bool = True
    ) -> tuple[JSON, list[JSON], list[JSON], JSON | None]:
        """The service principal, its jobs and its secrets, in one round trip; with ``schema``, also the
        provisioning job's whole schema when its job id is known already.

        Job ids seen earlier (by ``read_all``) let the schema come in the same round trip; it is used
        only if the jobs read alongside still name that job. Otherwise the schema is None.
        """
        items = [
            BatchItem("GET", _sp_path(id)),
            BatchItem("GET", _jobs_path(id)),
            BatchItem("GET", _secrets_path(id)),
        ]
        known = self._known_jobs.get(id) if schema else None
        if known is not None:
            items.append(BatchItem("GET", _job_path(id, known) + "/schema"))
        results = self.client.batch(items)
        sp = check_service_principal(_check(results[0]))
        jobs, secrets = _jobs_in(_check(results[1]), id), _secrets_in(_check(results[2]), id)
        provisioning = main_job(jobs)
        # Made from the template, or (made in the portal, whose principal may list no template id)
        # holding the provisioning job.
        if not _from_template(sp) and provisioning is None:
            raise NotFoundError(f"{id} is not a Cloud Sync configuration")
        self._remember_job(id, provisioning)
        found = results[3] if known is not None else None
        if provisioning is None or provisioning.get("id") != known or isinstance(found, ProviderError):
            found = None
        elif found is not None:
            found = _schema_in(found, items[3].url)
        return sp, jobs, secrets, found

    def _remember_job(self, id: str, job: JSON | None) -> None:
        if job is None:
            self._known_jobs.pop(id, None)
        else:
            self._known_jobs[id] = str(job["id"])

    def _schema(self, id: str, job_id: str) -> JSON:
        path = _job_path(id, job_id) + "/schema"
        return _schema_in(self.client.get(path), path)

    def _jobs(self, id: str) -> list[JSON]:
        return _jobs_in(self.client.get(_jobs_path(id)), id)

    # ----------------------------------------------------------------------------------------------
    # provisioning on demand and expression checks

    def provision_on_demand(
        self, id: str, subject: str, object_type: str = "user", *, members: Sequence[str] = ()
    ) -> dict[str, Any]:
        """``provisionOnDemand`` on the configuration's job, with the rule id read from its schema; an
        Entra ID -> AD group takes up to ``MAX_ON_DEMAND_MEMBERS`` of its ``members`` along."""
        if len(members) > MAX_ON_DEMAND_MEMBERS:
            raise ProviderError(
                f"{len(members)} members: provisioning on demand takes at most {MAX_ON_DEMAND_MEMBERS} "
                "a request"
            )
        job = self._provisioning_job(id, self.resources.load(id, schema=False).jobs)
        rule = find_provisioning_rule(self._schema(id, job["id"]))
        if rule is None or not rule.get("id"):
            raise ProviderError(f"configuration {id}: the job schema has no provisioning rule")
        one = on_demand_subject(str(job.get("templateId")), subject, object_type, members)
        body = {"parameters": [{"ruleId": rule["id"], "subjects": [one]}]}
        # Not repeated after an unknown outcome: provisioning one object twice is not harmless.
        result = self.client.request("POST", _job_path(id, job["id"]) + "/provisionOnDemand", body=body)
        if not isinstance(result, dict):
            raise ProviderError(f"configuration {id}: provisionOnDemand returned no result")
        return {k: v for k, v in result.items() if not k.startswith("@odata.")}

    def parse_expression(self, expression: str, configuration_id: str | None = None) -> dict[str, Any]:
        """The service's ``parseExpression`` for ``expression`` (parsing only, no test input).

        It runs on the template schema of ``configuration_id``, or of any configuration on the target.
        """
        sp_id = configuration_id or self._template_source
        if sp_id is None:
            sp_id = next((sp["id"] for page in self._list_sps() for sp in page[:1]), None)
        if sp_id is None:
            raise ProviderError(
                "checking expressions on the service needs one Cloud Sync configuration on the target"
            )
        path = f"{_sp_path(sp_id)}/synchronization/templates/{PROVISIONING_TEMPLATE}/schema/parseExpression"
        body = {"expression": expression, "targetAttributeDefinition": None, "testInputObject": None}
        result = self.client.request("POST", path, body=body, idempotent=True)
        if not isinstance(result, dict):
            raise ProviderError("parseExpression returned no result")
        return result
