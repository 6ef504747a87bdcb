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
we manage (through ``reconciler.graph.shapes``) and writes back everything else as it was read.

I/O: HTTP requests to the target through ``GraphClient`` (``reconciler.graph.client``), nothing else.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import itertools
import os
import queue
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from reconciler.core.model import Mapping, Observed, Scope, Settings
from reconciler.errors import ConfigError, ConflictError, NotFoundError, ProviderError, TransientProviderError
from reconciler.graph.client import (
    BATCH_LIMIT,
    BatchItem,
    GraphClient,
    RetryPolicy,
    TokenProvider,
    segment,
    token_provider_for,
)
from reconciler.graph.shapes import (
    DOMAIN,
    JSON,
    MANAGED_SECRET_KEYS,
    MANAGED_TAG,
    PASSWORD_HASH_TEMPLATE,
    PROVISIONING_TEMPLATE,
    TEMPLATE_APP_ID,
    check_and_read_schema_text,
    check_job,
    check_schema,
    check_secrets,
    check_service_principal,
    edit_schema,
    find_job,
    find_provisioning_rule,
    job_enabled,
    observe,
    parse_tags,
    read_schema,
    set_password_hash_mappings,
    settings_to_secrets,
    tags_for,
    with_restart_pending,
    without_annotations,
)
from reconciler.providers.base import RESET_FULL

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


def _from_template(sp: JSON) -> bool:
    return sp.get("applicationTemplateId") == TEMPLATE_APP_ID or TEMPLATE_APP_ID in (
        sp.get("servicePrincipalNames") or []
    )


def _name_tag(name: str) -> str:
    """Our tag that carries ``name`` (as ``shapes`` writes it)."""
    for tag in tags_for((), name=name):
        if tag != MANAGED_TAG and parse_tags([tag]).name == name:
            return tag
    raise AssertionError("shapes.tags_for wrote no name tag")


def _sp_path(id: str) -> str:
    return f"/servicePrincipals/{segment(id)}"


def _jobs_path(id: str) -> str:
    return f"{_sp_path(id)}/synchronization/jobs"


def _job_path(id: str, job_id: str) -> str:
    return f"{_jobs_path(id)}/{segment(job_id)}"


def _secrets_path(id: str) -> str:
    return f"{_sp_path(id)}/synchronization/secrets"


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


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large tenant is read.

    Decoding the answers makes millions of small dicts and lists in a burst; the collector would walk
    every live object again and again while they pile up, which costs more than the decoding itself.
    None of them form reference cycles, so nothing is left for it to find.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
            # The reading failed: what has not started yet is not sent at all.
            with self._lock:
                self._stopped = True
                for step in self._steps:
                    step.cancel()
        self.pool.close()

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
                if step.done() and step.exception() is not None:
                    step.result()
            for step in steps:
                observed.extend(step.result())
            done += len(steps)

    def _read_jobs(self, sps: list[JSON]) -> None:
        with self._lock:
            if self._stopped:
                return
            self._reading_jobs += 1
            self._steps.append(self.pool.submit(_LATER, self._jobs_step, sps))

    def _jobs_step(self, sps: list[JSON]) -> list[Observed]:
        try:
            observed = []
            for sp, jobs, secrets in self._provider._read_jobs_and_secrets(sps):
                job = find_job(jobs, PROVISIONING_TEMPLATE)
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
            self._steps.append(self.pool.submit(_URGENT, self._provider._observe_with_schemas, ready))


class GraphProvider:
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

    def close(self) -> None:
        self.client.close()

    @contextlib.contextmanager
    def _serialized(self, key: str) -> Iterator[None]:
        # Secrets and schema are last-writer-wins on the service: one writer per configuration.
        with self._lock:
            lock = self._sp_locks.setdefault(key, threading.Lock())
        with lock:
            yield

    # ----------------------------------------------------------------------------------------------
    # listing

    def _list_sps(self, odata_filter: str | None = None) -> Iterator[list[JSON]]:
        """Pages of service principals made from the AD2AAD template, narrowed by ``odata_filter``.

        Should the service refuse the filter, every service principal is listed and filtered here.
        """
        wanted = f"applicationTemplateId eq {_odata(TEMPLATE_APP_ID)}"
        if odata_filter:
            wanted += f" and {odata_filter}"
        params = {"$filter": wanted, "$select": _SP_SELECT, "$top": _PAGE_SIZE}
        pages = self.client.pages("/servicePrincipals", params)
        try:
            first = next(pages)
        except ProviderError as exc:
            if exc.status != 400:
                raise
            pages = self.client.pages("/servicePrincipals", {"$select": _SP_SELECT, "$top": _PAGE_SIZE})
            first = next(pages)
        else:
            odata_filter = None  # the service did the filtering
        for page in itertools.chain([first], pages):
            checked = [check_service_principal(sp) for sp in page]
            yield [sp for sp in checked if _from_template(sp) and self._matches(sp, odata_filter)]

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
        found: list[JSON] = []
        for page in self._list_sps(f"tags/any(t:t eq {_odata(_name_tag(name))})"):
            for sp in page:
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
            o = observe(sp, jobs, secrets, None, reading=reading)
            if o is not None:
                observed.append(o)
        return observed

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
        with _collector_paused(), _Reading(self) as reading:
            for listed in self._list_sps():
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
            from reconciler.tenant.template import template_defaults

            # Not kept: once a configuration exists, the service's own template is read instead.
            self._template_future = None
            return template_defaults()
        self._template = result
        return result

    # ----------------------------------------------------------------------------------------------
    # helpers for writes

    def _load(self, id: str) -> tuple[JSON, list[JSON], list[JSON]]:
        """The service principal, its jobs and its secrets, in one round trip."""
        sp, jobs, secrets, _schema = self._load_with_schema(id, schema=False)
        return sp, jobs, secrets

    def _load_with_schema(
        self, id: str, *, schema: bool = True
    ) -> tuple[JSON, list[JSON], list[JSON], JSON | None]:
        """As ``_load``, plus the provisioning job's whole schema when its job id is known already.

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
        if not _from_template(sp):
            raise NotFoundError(f"{id} is not a Cloud Sync configuration")
        jobs, secrets = _jobs_in(_check(results[1]), id), _secrets_in(_check(results[2]), id)
        provisioning = find_job(jobs, PROVISIONING_TEMPLATE)
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

    def _load_managed(self, id: str) -> tuple[JSON, list[JSON], list[JSON]]:
        sp, jobs, secrets, _schema = self._load_managed_with_schema(id, schema=False)
        return sp, jobs, secrets

    def _load_managed_with_schema(
        self, id: str, *, schema: bool = True
    ) -> tuple[JSON, list[JSON], list[JSON], JSON | None]:
        sp, jobs, secrets, found = self._load_with_schema(id, schema=schema)
        if not parse_tags(sp.get("tags") or []).managed:
            raise ConflictError(f"configuration {id} is not managed by reconciler; adopt it first")
        return sp, jobs, secrets, found

    def _set_tags(self, sp: JSON, name: str, deletion_protection: bool, restart_token: str | None) -> None:
        current = list(sp.get("tags") or [])
        tags = tags_for(
            current, name=name, deletion_protection=deletion_protection, restart_token=restart_token
        )
        if tags != current:
            self.client.request("PATCH", _sp_path(sp["id"]), body={"tags": tags})
            sp["tags"] = tags

    def _put_secrets(self, id: str, settings: Settings, current: list[JSON]) -> None:
        new = self._secrets_to_write(id, settings, current)
        if new is not None:
            self.client.request("PUT", _secrets_path(id), body={"value": new})

    def _secrets_to_write(self, id: str, settings: Settings, current: list[JSON]) -> list[JSON] | None:
        """The secret set to PUT for ``settings``, None when it is unchanged; ConflictError when a
        write would destroy secrets the service does not reveal."""
        new = settings_to_secrets(settings, current)
        if new == current:
            return None
        ours = set(MANAGED_SECRET_KEYS)
        masked = sorted(
            str(s.get("key")) for s in current if s.get("key") not in ours and s.get("value") == _MASKED
        )
        if masked:
            # PUT replaces every key: writing a masked value back would destroy it.
            raise ConflictError(
                f"configuration {id}: the service does not reveal secret(s) {', '.join(masked)}, and "
                "writing the secret set would overwrite them; change the settings in the portal"
            )
        return new

    def _schema(self, id: str, job_id: str) -> JSON:
        path = _job_path(id, job_id) + "/schema"
        return _schema_in(self.client.get(path), path)

    def _put_schema(self, id: str, job_id: str, schema: JSON, current: JSON) -> None:
        # An unchanged schema is not written back: the service would stamp a new version for nothing.
        # Annotations describe the answer, not the schema: they never count as a change.
        if schema != without_annotations(current):
            self.client.request("PUT", _job_path(id, job_id) + "/schema", body=without_annotations(schema))

    def _ensure_job(self, id: str, template_id: str, jobs: list[JSON] | None = None) -> JSON:
        """The job of ``template_id``, created when missing. Never makes a second one."""
        existing = find_job(jobs if jobs is not None else self._jobs(id), template_id)
        if existing is not None:
            return existing
        attempt = 0
        while True:
            try:
                created = self.client.request("POST", _jobs_path(id), body={"templateId": template_id})
            except (TransientProviderError, ConflictError) as exc:
                # The job may exist even though the answer was lost (or it exists already): look first.
                found = find_job(self._jobs(id), template_id)
                if found is not None:
                    return found
                attempt += 1
                if isinstance(exc, ConflictError) or attempt >= self.client.retry.max_attempts:
                    raise
                self.client.wait(exc.retry_after, attempt - 1)
                continue
            if not isinstance(created, dict) or "id" not in created:
                raise ProviderError(f"configuration {id}: the service did not return the new job")
            return check_job(created, id)

    def _jobs(self, id: str) -> list[JSON]:
        return _jobs_in(self.client.get(_jobs_path(id)), id)

    def _sync_password_hash_job(self, id: str, jobs: list[JSON], on: bool) -> None:
        phs_job = find_job(jobs, PASSWORD_HASH_TEMPLATE)
        if on and phs_job is None:
            created = self._ensure_job(id, PASSWORD_HASH_TEMPLATE)
            provisioning = find_job(jobs, PROVISIONING_TEMPLATE)
            # A running configuration runs all of its jobs.
            if provisioning is not None and job_enabled(provisioning):
                self.client.request("POST", _job_path(id, created["id"]) + "/start", idempotent=True)
        elif not on and phs_job is not None:
            with contextlib.suppress(NotFoundError):
                self.client.request("DELETE", _job_path(id, phs_job["id"]))

    def _instantiate(self, display_name: str) -> JSON:
        """``instantiate``, never twice: after an unknown outcome, look for the new principal first."""
        path = f"/applicationTemplates/{segment(TEMPLATE_APP_ID)}/instantiate"
        with self._serialized("display-name:" + display_name.casefold()):
            existing = self._find_by_display_name(display_name)
            for orphan in existing:
                # A run killed between instantiate and tagging leaves a principal with no tags and no
                # jobs, which is no configuration and which nobody else would finish: take it instead
                # of making a second one.
                if not orphan.get("tags") and self._has_no_jobs(str(orphan["id"])):
                    return orphan
            before = {found["id"] for found in existing}
            attempt = 0
            while True:
                try:
                    created = self.client.request("POST", path, body={"displayName": display_name})
                except TransientProviderError as exc:
                    # A new principal with this name, no tags and no jobs is the one we just made.
                    fresh = [
                        sp
                        for sp in self._find_by_display_name(display_name)
                        if sp["id"] not in before and not sp.get("tags")
                    ]
                    if fresh:
                        return fresh[0]
                    attempt += 1
                    if attempt >= self.client.retry.max_attempts:
                        raise
                    self.client.wait(exc.retry_after, attempt - 1)
                    continue
                sp = created.get("servicePrincipal") if isinstance(created, dict) else None
                if not isinstance(sp, dict) or "id" not in sp:
                    raise ProviderError("instantiate did not return the new service principal")
                return check_service_principal(sp)

    def _has_no_jobs(self, id: str) -> bool:
        try:
            return not self._jobs(id)
        except NotFoundError:
            return False  # deleted since it was listed

    def _retry_new(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` while a just-created object may still be replicating (404)."""
        for attempt in range(_REPLICATION_ATTEMPTS):
            try:
                return fn(*args, **kwargs)
            except NotFoundError:
                if attempt == _REPLICATION_ATTEMPTS - 1:
                    raise
                self.client.wait(None, attempt)
        raise AssertionError("unreachable")

    # ----------------------------------------------------------------------------------------------
    # the Provider protocol: writes

    def create(
        self,
        name: str,
        settings: Settings,
        scope: Scope,
        mappings: Sequence[Mapping],
        *,
        removals: Sequence[tuple[str, str]] = (),
        deletion_protection: bool = False,
        restart_token: str | None = None,
    ) -> str:
        with self._serialized("name:" + name):
            ours = self._find_managed(name)
            if len(ours) > 1:
                ids = ", ".join(sp["id"] for sp in ours)
                raise ConflictError(f"more than one configuration is managed as {name!r}: {ids}")
            if ours:
                sp, jobs, secrets = self._load(ours[0]["id"])
                provisioning = find_job(jobs, PROVISIONING_TEMPLATE)
                if provisioning is not None and any(s.get("key") == DOMAIN for s in secrets):
                    return str(sp["id"])
            else:
                # The portal names the application after the AD domain; our name goes into a tag.
                sp = self._instantiate(settings.domain or name)
                jobs, secrets = [], []
            id = str(sp["id"])
            with self._serialized(id):
                # Tagged first: from now on a retry finds this principal instead of making another.
                self._retry_new(self._set_tags, sp, name, deletion_protection, restart_token)
                job = self._retry_new(self._ensure_job, id, PROVISIONING_TEMPLATE, jobs)
                # The schema the service made for the job is the base: only what the desired state
                # says is changed in it.
                current = self._retry_new(self._schema, id, job["id"])
                edited = edit_schema(
                    current,
                    scope=scope,
                    mappings=mappings,
                    removals=removals,
                    password_hash_sync=settings.password_hash_sync,
                )
                self._put_schema(id, job["id"], edited, current)
                jobs = [j for j in jobs if j.get("id") != job["id"]] + [job]
                self._sync_password_hash_job(id, jobs, settings.password_hash_sync)
                # Secrets last: the Domain secret marks the create as finished.
                if not secrets:
                    secrets = _secrets_in(self.client.get(_secrets_path(id)), id)
                self._put_secrets(id, settings, secrets)
            return id

    def update_settings(
        self,
        id: str,
        settings: Settings,
        *,
        deletion_protection: bool,
        restart_token: str | None,
    ) -> None:
        with self._serialized(id):
            sp, jobs, secrets, schema = self._load_managed_with_schema(id)
            tags = parse_tags(sp.get("tags") or [])
            new_secrets = self._secrets_to_write(id, settings, secrets)  # refused before any write
            job = find_job(jobs, PROVISIONING_TEMPLATE)
            if job is not None:
                current = schema or self._schema(id, job["id"])
                self._put_schema(
                    id, job["id"], set_password_hash_mappings(current, settings.password_hash_sync), current
                )
            self._sync_password_hash_job(id, jobs, settings.password_hash_sync)
            # The AppKey secret says whether password hash sync is on, so it goes after the mappings
            # and the job: a run stopped in between reads as not done, and the next plan finishes it.
            if new_secrets is not None:
                self.client.request("PUT", _secrets_path(id), body={"value": new_secrets})
            self._set_tags(sp, tags.name or "", deletion_protection, restart_token)

    def _provisioning_job(self, id: str, jobs: list[JSON]) -> JSON:
        job = find_job(jobs, PROVISIONING_TEMPLATE)
        if job is None:
            raise ConflictError(f"configuration {id} has no provisioning job; its create did not finish")
        return job

    def edit_schema(
        self, id: str, scope: Scope, mappings: Sequence[Mapping], removals: Sequence[tuple[str, str]] = ()
    ) -> None:
        with self._serialized(id):
            _sp, jobs, _secrets, schema = self._load_managed_with_schema(id)
            job = self._provisioning_job(id, jobs)
            current = schema or self._schema(id, job["id"])
            edited = edit_schema(current, scope=scope, mappings=mappings, removals=removals)
            self._put_schema(id, job["id"], edited, current)

    def _job_action(self, id: str, job_id: str, action: str, body: Any = None) -> None:
        # start, pause and restart leave the same state when repeated, so they are retried like reads.
        self.client.request("POST", f"{_job_path(id, job_id)}/{action}", body=body, idempotent=True)

    def start(self, id: str) -> None:
        with self._serialized(id):
            _sp, jobs, _secrets = self._load_managed(id)
            provisioning = self._provisioning_job(id, jobs)
            self._job_action(id, provisioning["id"], "start")
            for job in jobs:
                if job["id"] != provisioning["id"]:
                    self._job_action(id, job["id"], "start")

    def pause(self, id: str) -> None:
        with self._serialized(id):
            _sp, jobs, _secrets = self._load_managed(id)
            for job in jobs:
                self._job_action(id, job["id"], "pause")

    def restart(self, id: str, reset_scope: str = RESET_FULL) -> None:
        with self._serialized(id):
            sp, jobs, _secrets = self._load_managed(id)
            job = self._provisioning_job(id, jobs)
            self._job_action(id, job["id"], "restart", {"criteria": {"resetScope": reset_scope}})
            self._mark_restart(sp, False)

    def set_restart_pending(self, id: str, pending: bool) -> None:
        with self._serialized(id):
            sp, _jobs, _secrets = self._load_managed(id)
            self._mark_restart(sp, pending)

    def _mark_restart(self, sp: JSON, pending: bool) -> None:
        current = list(sp.get("tags") or [])
        tags = with_restart_pending(current, pending)
        if tags != current:
            self.client.request("PATCH", _sp_path(sp["id"]), body={"tags": tags})
            sp["tags"] = tags

    def delete(self, id: str) -> None:
        """Jobs first (provisioning stops at once), then the application, then the principal.

        Our tag stays on the principal until the very last call, so an interrupted delete is found and
        finished by the next one; every step treats "already gone" as done.
        """
        with self._serialized(id):
            try:
                sp = check_service_principal(self.client.get(_sp_path(id)))
            except NotFoundError:
                return
            if not _from_template(sp):
                raise NotFoundError(f"{id} is not a Cloud Sync configuration")
            if not parse_tags(sp.get("tags") or []).managed:
                raise ConflictError(f"configuration {id} is not managed by reconciler; adopt it first")
            try:
                jobs = self._jobs(id)
            except NotFoundError:
                jobs = []
            for job in jobs:
                with contextlib.suppress(NotFoundError):
                    self.client.request("DELETE", _job_path(id, job["id"]))
            app_id = sp.get("appId")
            if isinstance(app_id, str) and app_id:
                # Deleting the application removes its principal too (soft delete: restorable for 30 days).
                with contextlib.suppress(NotFoundError):
                    self.client.request("DELETE", f"/applications(appId={_odata(app_id)})")
            with contextlib.suppress(NotFoundError):
                self.client.request("DELETE", _sp_path(id))
            self._known_jobs.pop(id, None)

    def adopt(self, id: str, name: str) -> None:
        with self._serialized("name:" + name), self._serialized(id):
            sp, jobs, secrets = self._load(id)
            if observe(sp, jobs, secrets, None) is None:
                raise NotFoundError(f"{id} is not a Cloud Sync configuration")
            tags = parse_tags(sp.get("tags") or [])
            if tags.managed:
                if tags.name == name:
                    return
                raise ConflictError(f"configuration {id} is already managed as {tags.name!r}")
            others = [other for other in self._find_managed(name) if other["id"] != id]
            if others:
                raise ConflictError(f"configuration {others[0]['id']} is already managed as {name!r}")
            self._set_tags(sp, name, False, None)

    def rename(self, id: str, old: str, new: str) -> None:
        with self._serialized("name:" + new), self._serialized(id):
            sp, _jobs, _secrets = self._load(id)
            tags = parse_tags(sp.get("tags") or [])
            if not tags.managed or tags.name not in (old, new):
                raise ConflictError(f"configuration {id} is not the managed configuration {old!r}")
            if tags.name == new:
                return
            others = [other for other in self._find_managed(new) if other["id"] != id]
            if others:
                raise ConflictError(f"configuration {others[0]['id']} is already managed as {new!r}")
            self._set_tags(sp, new, tags.deletion_protection, tags.restart_token)

    # ----------------------------------------------------------------------------------------------
    # provisioning on demand and expression checks

    def provision_on_demand(self, id: str, subject: str, object_type: str = "user") -> dict[str, Any]:
        """``provisionOnDemand`` on the provisioning job, with the rule id read from its schema."""
        _sp, jobs, _secrets = self._load(id)
        job = self._provisioning_job(id, jobs)
        rule = find_provisioning_rule(self._schema(id, job["id"]))
        if rule is None or not rule.get("id"):
            raise ProviderError(f"configuration {id}: the job schema has no provisioning rule")
        body = {
            "parameters": [
                {"ruleId": rule["id"], "subjects": [{"objectId": subject, "objectTypeName": object_type}]}
            ]
        }
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
