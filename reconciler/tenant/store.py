"""SQLite store of an embedded tenant, in Graph terms and the service's JSON shapes.

I/O: one SQLite database file (WAL mode), opened per thread and per process. Every write runs in a
transaction (``BEGIN IMMEDIATE``, so that read-modify-write sequences of several processes serialize
instead of failing on lock upgrade); ``transaction()`` groups several operations into one, and nests
through savepoints. ``busy_timeout`` makes concurrent writers wait rather than fail.

The store holds what the service holds and answers like it does: ``instantiate`` an application from the
AD2AAD template, service principals with tags, synchronization jobs (``AD2AADProvisioning`` and
``AD2AADPasswordHash``) with schedule and status, job schemas (PUT replaces, reset returns to the
template), and secrets (PUT replaces every key). Objects are plain dicts as Graph returns them; errors are
``NotFoundError`` / ``ConflictError`` / ``ProviderError`` with the HTTP status the service would give, so
that an HTTP emulator can serve the store as it is.

It also keeps a small on-premises directory (objects by DN and group membership) for on-demand
provisioning, the cloud objects that on-demand provisioning writes (users and groups with the
attributes their mappings gave them), and a log of job actions (start, pause, restart with its
criteria) that tests can read.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from reconciler.errors import ConflictError, NotFoundError, ProviderError, TransientProviderError
from reconciler.graph.shapes import (
    DEVICE_SYNC_TEMPLATE,
    EXCHANGE_SCHEMA_ATTRIBUTE,
    EXCHANGE_WRITEBACK_TEMPLATE,
    GROUP_PROVISIONING_TEMPLATE,
    GROUP_TEMPLATE_APP_ID,
    PASSWORD_HASH_TEMPLATE,
    PROVISIONING_TEMPLATE,
    TEMPLATE_APP_ID,
)
from reconciler.tenant.template import group_template_schema, template_schema

__all__ = ["FORMAT_VERSION", "JOB_TEMPLATES", "RESTART_FLAGS", "SECRET_KEYS", "TenantStore"]

JSON = dict[str, Any]

FORMAT_VERSION = 1

JOB_TEMPLATES: tuple[str, ...] = (
    PROVISIONING_TEMPLATE,
    PASSWORD_HASH_TEMPLATE,
    EXCHANGE_WRITEBACK_TEMPLATE,
    DEVICE_SYNC_TEMPLATE,
)
# The job templates each application template offers: AD -> Entra ID, and Entra ID -> AD (INFERRED).
_JOB_TEMPLATES_OF: dict[str, tuple[str, ...]] = {
    TEMPLATE_APP_ID: JOB_TEMPLATES,
    GROUP_TEMPLATE_APP_ID: (GROUP_PROVISIONING_TEMPLATE,),
}
# Jobs whose real schema is not published: handed out with no rules of their own (we never edit them).
_RULELESS_TEMPLATES = frozenset((PASSWORD_HASH_TEMPLATE, EXCHANGE_WRITEBACK_TEMPLATE, DEVICE_SYNC_TEMPLATE))

# synchronizationSecret (Graph v1.0 CSDL): the service refuses any other key.
SECRET_KEYS: frozenset[str] = frozenset(
    (
        "None",
        "UserName",
        "Password",
        "SecretToken",
        "AppKey",
        "BaseAddress",
        "ClientIdentifier",
        "ClientSecret",
        "SingleSignOnType",
        "Sandbox",
        "Url",
        "Domain",
        "ConsumerKey",
        "ConsumerSecret",
        "TokenKey",
        "TokenExpiration",
        "Oauth2AccessToken",
        "Oauth2AccessTokenCreationTime",
        "Oauth2RefreshToken",
        "SyncAll",
        "InstanceName",
        "Oauth2ClientId",
        "Oauth2ClientSecret",
        "CompanyId",
        "UpdateKeyOnSoftDelete",
        "SynchronizationSchedule",
        "SystemOfRecord",
        "SandboxName",
        "EnforceDomain",
        "SyncNotificationSettings",
        "SkipOutOfScopeDeletions",
        "Oauth2AuthorizationCode",
        "Oauth2RedirectUri",
        "ApplicationTemplateIdentifier",
        "Oauth2TokenExchangeUri",
        "Oauth2AuthorizationUri",
        "AuthenticationType",
        "Server",
        "PerformInboundEntitlementGrants",
        "HardDeletesEnabled",
        "SyncAgentCompatibilityKey",
        "SyncAgentADContainer",
        "ValidateDomain",
        "TestReferences",
        "ConnectionString",
    )
)

# synchronizationJobRestartScope flags.
RESTART_FLAGS: frozenset[str] = frozenset(
    ("None", "ConnectorDataStore", "Escrows", "Watermark", "QuarantineState", "Full", "ForceDeletes")
)

_NEVER = "0001-01-01T00:00:00Z"
# A stored schema's members, in order, when get_schema_rules_json can cut its rules out of the text.
_RULES_ONLY_KEYS = '["id","version","synchronizationRules","directories"]'
_DIRECTORIES_REF = re.compile(r',"directories":\{"\$blob":"[0-9a-f]{64}"\}\}')
_DIRECTORIES_REF_LENGTH = len(',"directories":{"$blob":""}}') + 64
_PATCHABLE_SP_FIELDS = frozenset(("tags", "displayName", "notes", "accountEnabled"))

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS service_principals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    sp_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sp_id TEXT NOT NULL,
    id TEXT NOT NULL,
    template_id TEXT NOT NULL,
    data TEXT NOT NULL,
    schema TEXT NOT NULL,
    UNIQUE (sp_id, id)
);
-- Entra ID -> AD "selected groups": app-role assignments of groups to a configuration's principal.
CREATE TABLE IF NOT EXISTS app_role_assignments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    resource_id TEXT NOT NULL,
    data TEXT NOT NULL
);
-- Large immutable JSON parts (a schema's directory definitions) stored once, by content hash.
CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sp_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS onprem_objects (
    dn TEXT PRIMARY KEY COLLATE NOCASE,
    object_type TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS onprem_members (
    group_dn TEXT NOT NULL COLLATE NOCASE,
    member_dn TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (group_dn, member_dn)
);
CREATE TABLE IF NOT EXISTS cloud_objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    object_type TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(value: Any) -> str:
    # orjson writes the same compact text several times faster; what it will not take (integers
    # beyond 64 bits, non-string keys) goes through the json module as before.
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str) -> Any:
    # orjson decodes the large schema documents several times faster than the json module.
    return orjson.loads(text)


def _bad_request(message: str, code: str = "BadRequest") -> ProviderError:
    return ProviderError(message, code=code, status=400)


def _not_found(what: str) -> NotFoundError:
    return NotFoundError(f"{what} not found", code="Request_ResourceNotFound", status=404)


class _ThreadState(threading.local):
    conn: sqlite3.Connection | None = None
    pid: int = 0
    depth: int = 0
    write: bool = False


class TenantStore:
    """One tenant in one SQLite file. Safe to share between threads; each process opens its own."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._busy_ms = int(busy_timeout * 1000)
        self._state = _ThreadState()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)  # private: it holds the tenant
        self._initialize()

    # ----------------------------------------------------------------------------------------------
    # connections and transactions

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_ms / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL with NORMAL survives a crash of the process; only a power loss may drop the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise _translate(exc, f"cannot open tenant database {self.path}") from exc
        with self._lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        state = self._state
        # A connection must not cross a fork: the child opens its own.
        if state.conn is None or state.pid != os.getpid():
            state.conn = self._connect()
            state.pid = os.getpid()
            state.depth = 0
            state.write = False
        return state.conn

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        """Run the enclosed operations as one transaction; nested calls use savepoints.

        ``write=False`` opens a read transaction (a consistent snapshot); writing inside it is an error.
        """
        conn = self._conn()
        state = self._state
        if state.depth:
            if write and not state.write:
                raise RuntimeError("a write transaction cannot be nested in a read transaction")
            name = f"sp{state.depth}"
            self._exec(conn, f"SAVEPOINT {name}")
            state.depth += 1
            try:
                yield
            except BaseException:
                state.depth -= 1
                self._exec(conn, f"ROLLBACK TO {name}")
                self._exec(conn, f"RELEASE {name}")
                raise
            state.depth -= 1
            self._exec(conn, f"RELEASE {name}")
            return
        self._exec(conn, "BEGIN IMMEDIATE" if write else "BEGIN")
        state.depth, state.write = 1, write
        try:
            yield
        except BaseException:
            state.depth, state.write = 0, False
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        state.depth, state.write = 0, False
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise _translate(exc, "cannot commit to the tenant database") from exc

    def _exec(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc, "tenant database error") from exc

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self._exec(self._conn(), sql, params)
        return list(cursor.fetchall())

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._q(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._state = _ThreadState()

    def _initialize(self) -> None:
        conn = self._conn()
        with self.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._exec(conn, statement)
            row = self._one("SELECT value FROM meta WHERE key = 'format_version'")
            if row is None:
                self._exec(conn, "INSERT INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
                self._exec(conn, "INSERT INTO meta VALUES ('tenant_id', ?)", (str(uuid.uuid4()),))
            elif int(row[0]) > FORMAT_VERSION:
                raise ProviderError(
                    f"tenant database {self.path} has format {row[0]}; "
                    f"this version reads formats up to {FORMAT_VERSION}"
                )

    @property
    def tenant_id(self) -> str:
        return str(self._one("SELECT value FROM meta WHERE key = 'tenant_id'")[0])

    @property
    def format_version(self) -> int:
        return int(self._one("SELECT value FROM meta WHERE key = 'format_version'")[0])

    # ----------------------------------------------------------------------------------------------
    # applications and service principals

    def instantiate(self, display_name: str, template_id: str = TEMPLATE_APP_ID) -> JSON:
        """``POST /applicationTemplates/{id}/instantiate``: a new application and its service principal."""
        if template_id not in _JOB_TEMPLATES_OF:
            raise _not_found(f"application template {template_id}")
        app_id = str(uuid.uuid4())
        created = _now()
        application: JSON = {
            "id": str(uuid.uuid4()),
            "appId": app_id,
            "applicationTemplateId": template_id,
            "displayName": display_name,
            "createdDateTime": created,
            "notes": None,
            "tags": [],
        }
        service_principal: JSON = {
            "id": str(uuid.uuid4()),
            "accountEnabled": True,
            "appId": app_id,
            "appDisplayName": display_name,
            "applicationTemplateId": template_id,
            "displayName": display_name,
            "notes": None,
            # The template's app id is listed among the names of every principal made from it.
            "servicePrincipalNames": [app_id, template_id],
            "servicePrincipalType": "Application",
            "tags": [],
        }
        with self.transaction():
            self._exec(
                self._conn(),
                "INSERT INTO applications (id, app_id, data) VALUES (?, ?, ?)",
                (application["id"], app_id, _dumps(application)),
            )
            self._exec(
                self._conn(),
                "INSERT INTO service_principals (id, app_id, data) VALUES (?, ?, ?)",
                (service_principal["id"], app_id, _dumps(service_principal)),
            )
        return {
            "application": copy.deepcopy(application),
            "servicePrincipal": copy.deepcopy(service_principal),
        }

    def list_applications(self) -> list[JSON]:
        return [_loads(r[0]) for r in self._q("SELECT data FROM applications ORDER BY seq")]

    def get_application(self, id: str) -> JSON:
        row = self._one("SELECT data FROM applications WHERE id = ?", (id,))
        if row is None:
            raise _not_found(f"application {id}")
        return dict(_loads(row[0]))

    def delete_application(self, id: str) -> None:
        """``DELETE /applications/{id}``; like the service, this also removes its service principal."""
        with self.transaction():
            app = self.get_application(id)
            for row in self._q("SELECT id FROM service_principals WHERE app_id = ?", (app["appId"],)):
                self.delete_service_principal(row[0])
            self._exec(self._conn(), "DELETE FROM applications WHERE id = ?", (id,))

    def list_service_principals(self) -> list[JSON]:
        return [_loads(r[0]) for r in self._q("SELECT data FROM service_principals ORDER BY seq")]

    def configuration_parts(self) -> list[tuple[JSON, list[JSON], list[JSON], dict[str, bytes]]]:
        """Every service principal with its jobs, its secrets and the stored text of its provisioning
        jobs' schemas (by job id, as ``get_schema_text`` gives it), in three queries instead of three per
        service principal: what reading every configuration of a tenant takes. Call it in a transaction
        for a consistent snapshot."""
        jobs: dict[str, list[JSON]] = {}
        schemas: dict[str, dict[str, bytes]] = {}
        rows = self._q(
            # The schema's UTF-8 bytes as SQLite holds them, with no str made and encoded again.
            "SELECT sp_id, id, data, CASE WHEN template_id = ? THEN CAST(schema AS BLOB) END "
            "FROM jobs ORDER BY seq",
            (PROVISIONING_TEMPLATE,),
        )
        for sp_id, job_id, data, schema in rows:
            jobs.setdefault(sp_id, []).append(_loads(data))
            if schema is not None:
                schemas.setdefault(sp_id, {})[job_id] = bytes(schema)
        secrets = {sp_id: list(_loads(data)) for sp_id, data in self._q("SELECT sp_id, data FROM secrets")}
        return [
            (sp, jobs.get(sp["id"], []), secrets.get(sp["id"], []), schemas.get(sp["id"], {}))
            for sp in self.list_service_principals()
        ]

    def service_principals_tagged(self, tag: str) -> list[JSON]:
        """Service principals carrying ``tag``. The scan runs inside SQLite, so a create in a large
        tenant does not decode every service principal while it holds the write lock."""
        rows = self._q(
            "SELECT data FROM service_principals WHERE EXISTS "
            "(SELECT 1 FROM json_each(service_principals.data, '$.tags') WHERE json_each.value = ?) "
            "ORDER BY seq",
            (tag,),
        )
        return [_loads(r[0]) for r in rows]

    def service_principals_named(self, display_name: str) -> list[JSON]:
        """Service principals whose display name is ``display_name`` (as ``displayName eq`` compares it:
        without regard to case), found inside SQLite like ``service_principals_tagged``."""
        rows = self._q(
            "SELECT data FROM service_principals "
            "WHERE lower(json_extract(data, '$.displayName')) = lower(?) ORDER BY seq",
            (display_name,),
        )
        return [_loads(r[0]) for r in rows]

    def get_service_principal(self, id: str) -> JSON:
        row = self._one("SELECT data FROM service_principals WHERE id = ?", (id,))
        if row is None:
            raise _not_found(f"service principal {id}")
        return dict(_loads(row[0]))

    def patch_service_principal(self, id: str, patch: Mapping[str, Any]) -> JSON:
        """``PATCH /servicePrincipals/{id}`` for the writable fields we use (tags, displayName, notes)."""
        unknown = sorted(set(patch) - _PATCHABLE_SP_FIELDS)
        if unknown:
            raise _bad_request(f"property {unknown[0]!r} cannot be changed here", "Request_BadRequest")
        tags = patch.get("tags")
        if "tags" in patch and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise _bad_request("tags must be a list of strings", "Request_BadRequest")
        with self.transaction():
            sp = self.get_service_principal(id)
            sp.update(copy.deepcopy(dict(patch)))
            self._exec(self._conn(), "UPDATE service_principals SET data = ? WHERE id = ?", (_dumps(sp), id))
        return sp

    def delete_service_principal(self, id: str) -> None:
        """``DELETE /servicePrincipals/{id}`` with its jobs, secrets and the app-role assignments to it;
        the application stays."""
        with self.transaction():
            self.get_service_principal(id)
            conn = self._conn()
            self._exec(conn, "DELETE FROM jobs WHERE sp_id = ?", (id,))
            self._exec(conn, "DELETE FROM app_role_assignments WHERE resource_id = ?", (id,))
            self._exec(conn, "DELETE FROM secrets WHERE sp_id = ?", (id,))
            self._exec(conn, "DELETE FROM service_principals WHERE id = ?", (id,))

    # ----------------------------------------------------------------------------------------------
    # templates and jobs

    def template_schema(self, template_id: str = PROVISIONING_TEMPLATE) -> JSON:
        """``GET …/synchronization/templates/{templateId}/schema``."""
        if template_id == PROVISIONING_TEMPLATE:
            return template_schema()
        if template_id == GROUP_PROVISIONING_TEMPLATE:
            return group_template_schema()
        if template_id in _RULELESS_TEMPLATES:
            # The password-hash job has no mappings of its own; the real schemas of it and of the add-on
            # jobs are not published.
            return {
                "id": template_id,
                "version": None,
                "synchronizationRules": [],
                "directories": [],
            }
        raise _not_found(f"synchronization template {template_id}")

    def list_templates(self, sp_id: str) -> list[JSON]:
        """``GET /servicePrincipals/{id}/synchronization/templates`` (without schemas)."""
        app_template = self._application_template(sp_id)
        return [
            {
                "id": t,
                "applicationId": app_template,
                "default": t in (PROVISIONING_TEMPLATE, GROUP_PROVISIONING_TEMPLATE),
                "description": None,
                "discoverable": True,
                "factoryTag": t,
                "metadata": [],
            }
            for t in _JOB_TEMPLATES_OF[app_template]
        ]

    def _application_template(self, sp_id: str) -> str:
        """The application template principal ``sp_id`` was made from (the AD2AAD one when it says none)."""
        found = self.get_service_principal(sp_id).get("applicationTemplateId")
        return found if found in _JOB_TEMPLATES_OF else TEMPLATE_APP_ID

    def list_jobs(self, sp_id: str) -> list[JSON]:
        # Jobs go with their service principal, so jobs found mean it exists: one query does.
        rows = self._q("SELECT data FROM jobs WHERE sp_id = ? ORDER BY seq", (sp_id,))
        if not rows:
            self._require_service_principal(sp_id)
        return [_loads(r[0]) for r in rows]

    def _require_service_principal(self, id: str) -> None:
        """NotFoundError unless service principal ``id`` exists (without reading it)."""
        if self._one("SELECT 1 FROM service_principals WHERE id = ?", (id,)) is None:
            raise _not_found(f"service principal {id}")

    def create_job(self, sp_id: str, template_id: str) -> JSON:
        """``POST …/synchronization/jobs`` ``{"templateId": …}``: created disabled and paused."""
        if template_id not in _JOB_TEMPLATES_OF[self._application_template(sp_id)]:
            raise _bad_request(f"templateId {template_id!r} is not a template of this application")
        job_id = f"{template_id}.{uuid.uuid4().hex}.{self.tenant_id}"
        job: JSON = {
            "id": job_id,
            "templateId": template_id,
            "schedule": {"expiration": None, "interval": "PT40M", "state": "Disabled"},
            "status": {
                "code": "Paused",
                "countSuccessiveCompleteFailures": 0,
                "escrowsPruned": False,
                "lastExecution": None,
                "lastSuccessfulExecution": None,
                "lastSuccessfulExecutionWithExports": None,
                "progress": [],
                "quarantine": None,
                "steadyStateFirstAchievedTime": _NEVER,
                "steadyStateLastAchievedTime": _NEVER,
                "synchronizedEntryCountByType": [],
                "troubleshootingUrl": None,
            },
            "synchronizationJobSettings": [],
        }
        schema = self.template_schema(template_id)
        schema["id"] = job_id
        schema["version"] = _schema_version()
        with self.transaction():
            self.get_service_principal(sp_id)
            existing = self._one(
                "SELECT id FROM jobs WHERE sp_id = ? AND template_id = ?", (sp_id, template_id)
            )
            if existing is not None:
                raise ConflictError(
                    f"service principal {sp_id} already has a {template_id} job", code="Conflict", status=409
                )
            self._exec(
                self._conn(),
                "INSERT INTO jobs (sp_id, id, template_id, data, schema) VALUES (?, ?, ?, ?, ?)",
                (sp_id, job_id, template_id, _dumps(job), self._pack_schema(schema)),
            )
        return job

    def _job_row(self, sp_id: str, job_id: str) -> Any:
        row = self._one("SELECT data, schema FROM jobs WHERE sp_id = ? AND id = ?", (sp_id, job_id))
        if row is None:
            self.get_service_principal(sp_id)
            raise _not_found(f"synchronization job {job_id}")
        return row

    def get_job(self, sp_id: str, job_id: str) -> JSON:
        return dict(_loads(self._job_row(sp_id, job_id)[0]))

    def _save_job(self, sp_id: str, job: JSON) -> None:
        self._exec(
            self._conn(),
            "UPDATE jobs SET data = ? WHERE sp_id = ? AND id = ?",
            (_dumps(job), sp_id, job["id"]),
        )

    def _record(self, sp_id: str, job_id: str, action: str, body: Any = None) -> None:
        self._exec(
            self._conn(),
            "INSERT INTO job_actions (sp_id, job_id, action, body, at) VALUES (?, ?, ?, ?, ?)",
            (sp_id, job_id, action, None if body is None else _dumps(body), _now()),
        )

    def delete_job(self, sp_id: str, job_id: str) -> None:
        """``DELETE …/jobs/{jobId}``: the job, its state and its schema."""
        with self.transaction():
            self._job_row(sp_id, job_id)
            self._exec(self._conn(), "DELETE FROM jobs WHERE sp_id = ? AND id = ?", (sp_id, job_id))
            self._record(sp_id, job_id, "delete")

    def start_job(self, sp_id: str, job_id: str) -> None:
        """``POST …/start``: the schedule becomes active and any quarantine is lifted."""
        with self.transaction():
            job = self.get_job(sp_id, job_id)
            job["schedule"]["state"] = "Active"
            job["status"]["code"] = "Active"
            job["status"]["quarantine"] = None
            self._save_job(sp_id, job)
            self._record(sp_id, job_id, "start")

    def pause_job(self, sp_id: str, job_id: str) -> None:
        """``POST …/pause``: the job keeps its state and resumes where it stopped on the next start."""
        with self.transaction():
            job = self.get_job(sp_id, job_id)
            job["schedule"]["state"] = "Paused"
            job["status"]["code"] = "Paused"
            self._save_job(sp_id, job)
            self._record(sp_id, job_id, "pause")

    def restart_job(self, sp_id: str, job_id: str, criteria: Mapping[str, Any] | None = None) -> None:
        """``POST …/restart`` ``{"criteria": {"resetScope": "…"}}``; the criteria are recorded."""
        scope = (criteria or {}).get("resetScope")
        flags = {f.strip() for f in str(scope or "").split(",") if f.strip()}
        unknown = sorted(flags - RESTART_FLAGS)
        if unknown:
            raise _bad_request(f"resetScope has unknown flag {unknown[0]!r}")
        with self.transaction():
            job = self.get_job(sp_id, job_id)
            # An empty scope is the portal's "Restart sync", which lifts quarantine too.
            if not flags or flags & {"QuarantineState", "Full"}:
                status = job["status"]
                status["quarantine"] = None
                if status.get("code") == "Quarantine":
                    status["code"] = "Active" if job["schedule"].get("state") == "Active" else "Paused"
            self._save_job(sp_id, job)
            self._record(sp_id, job_id, "restart", {"criteria": dict(criteria) if criteria else None})

    def actions(self, sp_id: str | None = None) -> list[JSON]:
        """The job actions recorded so far (oldest first): ``{spId, jobId, action, body, at}``."""
        sql = "SELECT sp_id, job_id, action, body, at FROM job_actions"
        rows = (
            self._q(sql + " WHERE sp_id = ? ORDER BY seq", (sp_id,))
            if sp_id
            else self._q(sql + " ORDER BY seq")
        )
        return [
            {
                "spId": r[0],
                "jobId": r[1],
                "action": r[2],
                "body": None if r[3] is None else _loads(r[3]),
                "at": r[4],
            }
            for r in rows
        ]

    # ----------------------------------------------------------------------------------------------
    # schema

    def _pack_schema(self, schema: Mapping[str, Any]) -> str:
        """The schema's JSON with its directory definitions moved to ``blobs``: every job of a tenant
        shares the template's directories, and readers of mappings need not parse them."""
        data = dict(schema)
        directories = data.get("directories")
        if isinstance(directories, list):
            text = _dumps(directories)
            digest = hashlib.sha256(text.encode()).hexdigest()
            self._exec(self._conn(), "INSERT OR IGNORE INTO blobs (hash, data) VALUES (?, ?)", (digest, text))
            data["directories"] = {"$blob": digest}
        return _dumps(data)

    def _unpack_schema(self, text: str, *, directories: bool) -> JSON:
        data = dict(_loads(text))
        ref = data.get("directories")
        if isinstance(ref, dict) and "$blob" in ref:
            if directories:
                row = self._one("SELECT data FROM blobs WHERE hash = ?", (ref["$blob"],))
                data["directories"] = _loads(row[0]) if row is not None else []
            else:
                del data["directories"]
        return data

    def get_schema(self, sp_id: str, job_id: str) -> JSON:
        with self.transaction(write=False):
            return self._unpack_schema(self._job_row(sp_id, job_id)[1], directories=True)

    # ----------------------------------------------------------------------------------------------
    # app-role assignments (Entra ID -> AD "selected groups")

    def list_app_role_assignments(self, sp_id: str) -> list[JSON]:
        """``GET /servicePrincipals/{id}/appRoleAssignedTo``."""
        self._require_service_principal(sp_id)
        rows = self._q("SELECT data FROM app_role_assignments WHERE resource_id = ? ORDER BY seq", (sp_id,))
        return [_loads(r[0]) for r in rows]

    def assign_app_role(self, sp_id: str, principal_id: str, app_role_id: str) -> JSON:
        """``POST /servicePrincipals/{id}/appRoleAssignedTo`` for a group; one per (group, role)."""
        assignment: JSON = {
            "id": str(uuid.uuid4()),
            "appRoleId": app_role_id,
            "createdDateTime": _now(),
            "principalId": principal_id,
            "principalType": "Group",
            "resourceId": sp_id,
        }
        with self.transaction():
            for existing in self.list_app_role_assignments(sp_id):
                if existing["principalId"] == principal_id and existing["appRoleId"] == app_role_id:
                    raise ConflictError(
                        f"{principal_id} already has app role {app_role_id} on {sp_id}",
                        code="Conflict",
                        status=409,
                    )
            self._q(
                "INSERT INTO app_role_assignments (id, resource_id, data) VALUES (?, ?, ?)",
                (assignment["id"], sp_id, _dumps(assignment)),
            )
        return copy.deepcopy(assignment)

    def remove_app_role_assignment(self, sp_id: str, assignment_id: str) -> None:
        """``DELETE /servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}``."""
        with self.transaction():
            cursor = self._exec(
                self._conn(),
                "DELETE FROM app_role_assignments WHERE resource_id = ? AND id = ?",
                (sp_id, assignment_id),
            )
            if cursor.rowcount == 0:
                raise _not_found(f"app role assignment {assignment_id}")

    def set_ad_schema(self, *, exchange: bool) -> None:
        """Whether the on-premises AD schema has the Exchange attributes (it has, unless told otherwise):
        what a directory ``discover`` finds, and so Exchange hybrid writeback's precondition."""
        with self.transaction():
            self._q(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('ad_schema_exchange', ?)",
                ("true" if exchange else "false",),
            )

    def discover(self, schema: Mapping[str, Any], directory_id: str) -> JSON:
        """``POST …/schema/directories/{id}/discover`` on ``schema`` (a job's or a template's): its
        directory definition as the agent finds AD now. Without the Exchange schema, the AD objects lack
        ``mailNickname`` and every ``msExch*`` attribute. NotFoundError for an unknown directory."""
        row = self._one("SELECT value FROM meta WHERE key = 'ad_schema_exchange'")
        exchange = row is None or row[0] == "true"
        for directory in schema.get("directories") or []:
            if str(directory.get("id")) != directory_id and str(directory.get("name")) != directory_id:
                continue
            found = dict(directory)
            if not exchange and str(found.get("name")) == "Active Directory":
                gone = EXCHANGE_SCHEMA_ATTRIBUTE.casefold()
                found["objects"] = [
                    {
                        **obj,
                        "attributes": [
                            a
                            for a in obj.get("attributes") or []
                            if str(a.get("name") or "").casefold() != gone
                            and not str(a.get("name") or "").casefold().startswith("msexch")
                        ],
                    }
                    for obj in found.get("objects") or []
                ]
            return found
        raise _not_found(f"directory definition {directory_id}")

    def get_schema_rules(self, sp_id: str, job_id: str) -> JSON:
        """The schema without ``directories``: enough to read scope and mappings, and much cheaper."""
        return self._unpack_schema(self._job_row(sp_id, job_id)[1], directories=False)

    def get_schema_text(self, sp_id: str, job_id: str) -> bytes:
        """The schema as stored (UTF-8 JSON), its directory definitions left as a reference: for readers
        of scope and mappings that decode only what they read (``check_and_read_schema_text``)."""
        row = self._one("SELECT CAST(schema AS BLOB) FROM jobs WHERE sp_id = ? AND id = ?", (sp_id, job_id))
        if row is None:
            self._job_row(sp_id, job_id)  # the error the service gives
        return bytes(row[0])

    def get_schema_rules_json(self, sp_id: str, job_id: str) -> str | None:
        """``get_schema_rules`` as JSON text, for a schema of exactly ``id``, ``version`` and
        ``synchronizationRules`` (and its directories): cut out of the stored text, which is not
        decoded. None for any other schema (``get_schema_rules`` reads those)."""
        row = self._one(
            "SELECT schema, CASE WHEN json_valid(schema) THEN "
            "(SELECT json_group_array(key) FROM json_each(jobs.schema)) END "
            "FROM jobs WHERE sp_id = ? AND id = ?",
            (sp_id, job_id),
        )
        if row is None:
            self._job_row(sp_id, job_id)  # the error the service gives
            return None
        text, keys = row
        # Written by _pack_schema: compact, and here with the directories reference last.
        start = len(text) - _DIRECTORIES_REF_LENGTH
        if keys != _RULES_ONLY_KEYS or start < 0 or not _DIRECTORIES_REF.fullmatch(text, start):
            return None
        return str(text[:start]) + "}"

    def put_schema(self, sp_id: str, job_id: str, schema: Mapping[str, Any]) -> None:
        """``PUT …/jobs/{jobId}/schema``: a full replacement; the service stamps a new ``version``."""
        if not isinstance(schema, Mapping):
            raise _bad_request("the schema must be a JSON object")
        rules = schema.get("synchronizationRules", [])
        if not isinstance(rules, list) or not all(isinstance(r, Mapping) for r in rules):
            raise _bad_request("synchronizationRules must be a list of objects")
        # Only top-level keys are set here and the row keeps serialized text, so a shallow copy does;
        # a deep one was half the cost of a PUT.
        new = dict(schema)
        new["id"] = job_id
        new["version"] = _schema_version()
        with self.transaction():
            self._job_row(sp_id, job_id)
            self._exec(
                self._conn(),
                "UPDATE jobs SET schema = ? WHERE sp_id = ? AND id = ?",
                (self._pack_schema(new), sp_id, job_id),
            )

    def reset_schema(self, sp_id: str, job_id: str) -> None:
        """``DELETE …/jobs/{jobId}/schema``: back to the template's schema."""
        with self.transaction():
            job = self.get_job(sp_id, job_id)
            self.put_schema(sp_id, job_id, self.template_schema(job["templateId"]))

    # ----------------------------------------------------------------------------------------------
    # secrets

    def get_secrets(self, sp_id: str) -> list[JSON]:
        """``GET …/synchronization/secrets`` → the ``value`` list of ``{key, value}``."""
        # Secrets go with their service principal, as jobs do (see list_jobs).
        row = self._one("SELECT data FROM secrets WHERE sp_id = ?", (sp_id,))
        if row is None:
            self._require_service_principal(sp_id)
            return []
        return list(_loads(row[0]))

    def put_secrets(self, sp_id: str, secrets: Sequence[Mapping[str, Any]]) -> None:
        """``PUT …/synchronization/secrets``: replaces every key (there is no PATCH)."""
        items: list[JSON] = []
        for item in secrets:
            key, value = item.get("key"), item.get("value")
            if key not in SECRET_KEYS:
                raise _bad_request(f"{key!r} is not a synchronization secret key")
            if value is not None and not isinstance(value, str):
                raise _bad_request(f"the value of secret {key} must be a string")
            items.append({"key": key, "value": value})
        with self.transaction():
            self.get_service_principal(sp_id)
            self._exec(
                self._conn(),
                "INSERT INTO secrets (sp_id, data) VALUES (?, ?) "
                "ON CONFLICT (sp_id) DO UPDATE SET data = excluded.data",
                (sp_id, _dumps(items)),
            )

    # ----------------------------------------------------------------------------------------------
    # helpers for tests: job health as the service would report it

    def set_status(self, sp_id: str, job_id: str, **fields: Any) -> JSON:
        """Merge ``fields`` (``synchronizationStatus`` keys) into the job's status; returns the job."""
        with self.transaction():
            job = self.get_job(sp_id, job_id)
            job["status"].update(copy.deepcopy(fields))
            self._save_job(sp_id, job)
        return job

    def quarantine(
        self,
        sp_id: str,
        job_id: str,
        reason: str = "EncounteredQuarantineException",
        message: str = "The job was quarantined",
        code: str = "HybridIdentityServiceNoActiveAgents",
    ) -> JSON:
        """Put the job in quarantine, as the service does after repeated failures."""
        now = _now()
        error = {"code": code, "message": message, "tenantActionable": True}
        return self.set_status(
            sp_id,
            job_id,
            code="Quarantine",
            quarantine={
                "currentBegan": now,
                "error": error,
                "nextAttempt": now,
                "reason": reason,
                "seriesBegan": now,
                "seriesCount": 1,
            },
        )

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
                (dn, object_type, _dumps(dict(attributes))),
            )

    def get_onprem_object(self, dn: str) -> JSON | None:
        """``{"dn", "objectType", "attributes"}``, or None when there is no such object."""
        row = self._one("SELECT dn, object_type, attributes FROM onprem_objects WHERE dn = ?", (dn,))
        return None if row is None else {"dn": row[0], "objectType": row[1], "attributes": _loads(row[2])}

    def list_onprem_objects(self, object_type: str | None = None) -> list[JSON]:
        sql = "SELECT dn, object_type, attributes FROM onprem_objects"
        rows = (
            self._q(sql + " WHERE object_type = ? ORDER BY dn", (object_type,))
            if object_type
            else self._q(sql + " ORDER BY dn")
        )
        return [{"dn": r[0], "objectType": r[1], "attributes": _loads(r[2])} for r in rows]

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
        now = _now()
        with self.transaction():
            self._exec(
                self._conn(),
                "INSERT INTO cloud_objects (id, object_type, attributes, created, modified) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET object_type = excluded.object_type, "
                "attributes = excluded.attributes, modified = excluded.modified",
                (id, object_type, _dumps(dict(attributes)), now, now),
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
        rows = (
            self._q(sql + " WHERE object_type = ? ORDER BY seq", (object_type,))
            if object_type
            else self._q(sql + " ORDER BY seq")
        )
        return [_cloud_object(r) for r in rows]

    def delete_cloud_object(self, id: str) -> None:
        with self.transaction():
            self._exec(self._conn(), "DELETE FROM cloud_objects WHERE id = ?", (id,))


def _cloud_object(row: Any) -> JSON:
    return {
        "id": row[0],
        "objectType": row[1],
        "attributes": _loads(row[2]),
        "createdDateTime": row[3],
        "modifiedDateTime": row[4],
    }


def _schema_version() -> str:
    return f"Date:{_now()}, ActivityId:{uuid.uuid4()}"


def _translate(exc: sqlite3.Error, message: str) -> ProviderError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return TransientProviderError(f"{message}: {text}", code="Busy")
    return ProviderError(f"{message}: {text}")
