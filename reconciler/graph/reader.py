"""Reading a Graph target: every configuration, the service's own template, and one configuration
for a write.

A reading lists the principals (``listing``) and reads the configurations listed while the next page
is fetched, in two ``$batch`` steps: their jobs and secrets (10 configurations a batch), then the
schemas of those with a provisioning job (20 a batch, as JSON text read the fast way, without the
directory definitions when the service honours ``$select``). A write reads its configuration's
principal, jobs, secrets (and, when its job is known, its schema) in one round trip.

I/O: HTTP requests through the provider's ``GraphClient``; worker threads for one reading.
"""

from __future__ import annotations

import base64
import concurrent.futures
import itertools
import json
import queue
import re
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from reconciler.core.collector import collector_paused
from reconciler.core.model import Direction, Mapping
from reconciler.core.observed import Observed
from reconciler.errors import NotFoundError, ProviderError
from reconciler.graph.checks import check_and_read_schema_text, check_service_principal
from reconciler.graph.client import BATCH_LIMIT, BatchItem
from reconciler.graph.identity import (
    JSON,
    PROVISIONING_TEMPLATE,
    direction_of,
    from_template,
    main_job,
    parse_tags,
)
from reconciler.graph.listing import GraphListing
from reconciler.graph.paths import (
    PAGE_SIZE,
    assignments_path,
    body_of,
    job_path,
    jobs_in,
    jobs_path,
    schema_in,
    secrets_in,
    secrets_path,
    sp_path,
    values,
)
from reconciler.graph.reading import observe, read_schema, template_defaults

__all__ = ["GraphReading"]

_T = TypeVar("_T")

# Reading scope and mappings needs the rules only (the same $select on the service is unconfirmed).
_SCHEMA_SELECT = "?$select=id,version,synchronizationRules"
# A listed service principal with its jobs, its secrets and its provisioning job, waiting for its schema.
_Ready = tuple[JSON, list[JSON], list[JSON], JSON]
# Jobs and secrets of this many configurations fill one $batch; schemas of twice as many.
_JOBS_PER_BATCH = BATCH_LIMIT // 2
# Task priorities while reading (lower first).
_URGENT, _LATER = 0, 1


def _wanted(sp: JSON, names: frozenset[str]) -> bool:
    tags = parse_tags(sp.get("tags") or [])
    return not tags.managed or tags.name in names


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

    def __init__(self, provider: GraphReading) -> None:
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


class GraphReading(GraphListing):
    """The reading half of the ``graph`` target (``GraphProvider`` is one)."""

    _lock: threading.Lock
    _tenant: str | None
    _template: tuple[Mapping, ...] | None
    _template_future: Future[tuple[Mapping, ...] | None] | None
    _template_source: str | None  # an SP id to read the template through
    _select_schema: bool  # until the service refuses $select on a schema
    # Provisioning job ids by principal, as last seen: they let a write fetch the schema early.
    _known_jobs: dict[str, str]

    def _tenant_id(self) -> str:
        """The tenant's id, found once: the ``tid`` claim of the access token when it is a JWT (so a
        read-only identity needs no Organization.Read.All), else ``GET /organization`` (its one entry's
        ``id``; the emulator's tokens are opaque)."""
        if self._tenant is None:
            self._tenant = _token_tenant(self.client.tokens.token())
        if self._tenant is None:
            data = self.client.get("/organization", {"$select": "id"})
            ids = [o.get("id") for o in values(data, "the organization") if isinstance(o, dict)]
            if len(ids) != 1 or not isinstance(ids[0], str) or not ids[0]:
                raise ProviderError("the service did not name the tenant (GET /organization)")
            self._tenant = ids[0]
        return self._tenant

    def _read_jobs_and_secrets(self, sps: Sequence[JSON]) -> list[tuple[JSON, list[JSON], list[JSON]]]:
        """Jobs and secrets of up to 10 service principals, in one $batch; those deleted since they were
        listed are left out."""
        items = [BatchItem("GET", jobs_path(sp["id"])) for sp in sps]
        items += [BatchItem("GET", secrets_path(sp["id"])) for sp in sps]
        results = self.client.batch(items)
        n = len(sps)
        found = []
        for i, sp in enumerate(sps):
            jobs_result, secrets_result = results[i], results[n + i]
            if isinstance(jobs_result, NotFoundError) or isinstance(secrets_result, NotFoundError):
                continue  # deleted since it was listed
            jobs = jobs_in(body_of(jobs_result), sp["id"])
            found.append((sp, jobs, secrets_in(body_of(secrets_result), sp["id"])))
        return found

    def _observe_with_schemas(self, ready: Sequence[_Ready]) -> list[Observed]:
        """The configurations of up to 20 service principals with a provisioning job, their schemas
        read in one $batch."""
        paths = [job_path(sp["id"], job["id"]) + "/schema" for sp, _jobs, _secrets, job in ready]
        schemas = self._read_schemas(paths)
        observed = []
        for (sp, jobs, secrets, _job), path, result in zip(ready, paths, schemas, strict=True):
            if isinstance(result, NotFoundError):
                reading = None  # the job went away in between; reported as it is now
            else:
                # Checked as schema_in checks it, and read on the way, from its JSON text.
                reading = check_and_read_schema_text(body_of(result), f"the schema at {path}")
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
        for page in self.client.pages(assignments_path(id), {"$top": PAGE_SIZE}):
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
        path = f"{sp_path(sp_id)}/synchronization/templates/{PROVISIONING_TEMPLATE}/schema"
        try:
            schema = self.client.get(path)
        except NotFoundError:
            return None
        return read_schema(schema_in(schema, path))[1]

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
    # reads for writes (the write steps themselves are ``CloudSyncWriter``'s, over ``resources``)

    def _load_with_schema(
        self, id: str, *, schema: bool = True
    ) -> tuple[JSON, list[JSON], list[JSON], JSON | None]:
        """The service principal, its jobs and its secrets, in one round trip; with ``schema``, also the
        provisioning job's whole schema when its job id is known already.

        Job ids seen earlier (by ``read_all``) let the schema come in the same round trip; it is used
        only if the jobs read alongside still name that job. Otherwise the schema is None.
        """
        items = [
            BatchItem("GET", sp_path(id)),
            BatchItem("GET", jobs_path(id)),
            BatchItem("GET", secrets_path(id)),
        ]
        known = self._known_jobs.get(id) if schema else None
        if known is not None:
            items.append(BatchItem("GET", job_path(id, known) + "/schema"))
        results = self.client.batch(items)
        sp = check_service_principal(body_of(results[0]))
        jobs, secrets = jobs_in(body_of(results[1]), id), secrets_in(body_of(results[2]), id)
        provisioning = main_job(jobs)
        # Made from the template, or (made in the portal, whose principal may list no template id)
        # holding the provisioning job.
        if not from_template(sp) and provisioning is None:
            raise NotFoundError(f"{id} is not a Cloud Sync configuration")
        self._remember_job(id, provisioning)
        found = results[3] if known is not None else None
        if provisioning is None or provisioning.get("id") != known or isinstance(found, ProviderError):
            found = None
        elif found is not None:
            found = schema_in(found, items[3].url)
        return sp, jobs, secrets, found

    def _remember_job(self, id: str, job: JSON | None) -> None:
        if job is None:
            self._known_jobs.pop(id, None)
        else:
            self._known_jobs[id] = str(job["id"])

    def _schema(self, id: str, job_id: str) -> JSON:
        path = job_path(id, job_id) + "/schema"
        return schema_in(self.client.get(path), path)

    def _jobs(self, id: str) -> list[JSON]:
        return jobs_in(self.client.get(jobs_path(id)), id)
