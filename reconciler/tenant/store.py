"""The embedded tenant's configurations, in Graph terms and the service's JSON shapes.

I/O: the tenant's SQLite file, through ``database.Database`` (one transaction per operation, or one
``transaction()`` around several).

The store holds what the service holds and answers like it does: ``instantiate`` an application from the
AD2AAD template, service principals with tags, synchronization jobs (``AD2AADProvisioning`` and
``AD2AADPasswordHash``) with schedule and status, job schemas (PUT replaces, reset returns to the
template), and secrets (PUT replaces every key). Objects are plain dicts as Graph returns them; errors are
``NotFoundError`` / ``ConflictError`` / ``ProviderError`` with the HTTP status the service would give, so
that an HTTP emulator can serve the store as it is. The documents it makes and the keys it accepts are in
``documents``; the on-premises directory and the cloud objects on-demand provisioning writes, in
``objects``. It also keeps a log of job actions (start, pause, restart with its criteria) that tests can
read.
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.errors import ConflictError
from reconciler.graph.identity import (
    EXCHANGE_SCHEMA_ATTRIBUTE,
    GROUP_PROVISIONING_TEMPLATE,
    PROVISIONING_TEMPLATE,
    TEMPLATE_APP_ID,
)
from reconciler.graph.provisioning_logs import staged_delete_entry
from reconciler.graph.template import principal_app_roles
from reconciler.tenant.applications import Applications
from reconciler.tenant.database import FORMAT_VERSION, JSON, dumps, loads, now
from reconciler.tenant.documents import (
    INTEGRATED_APP_TAG,
    JOB_TEMPLATES,
    JOB_TEMPLATES_OF,
    PATCHABLE_SP_FIELDS,
    RESTART_FLAGS,
    SECRET_KEYS,
    bad_request,
    new_application,
    new_job,
    not_found,
    quarantine_status,
    schema_version,
    template_schema_of,
)
from reconciler.tenant.objects import DirectoryObjects, with_schema_extensions
from reconciler.tenant.provisioning_log import ProvisioningLog

# The service's vocabulary is re-exported: importers read it here since before it had its own module.
__all__ = [
    "FORMAT_VERSION",
    "INTEGRATED_APP_TAG",
    "JOB_TEMPLATES",
    "RESTART_FLAGS",
    "SECRET_KEYS",
    "TenantStore",
]

# A stored schema's members, in order, when get_schema_rules_json can cut its rules out of the text.
_RULES_ONLY_KEYS = '["id","version","synchronizationRules","directories"]'
_DIRECTORIES_REF = re.compile(r',"directories":\{"\$blob":"[0-9a-f]{64}"\}\}')
_DIRECTORIES_REF_LENGTH = len(',"directories":{"$blob":""}}') + 64


class TenantStore(DirectoryObjects, Applications, ProvisioningLog):
    """One tenant in one SQLite file. Safe to share between threads; each process opens its own."""

    # ----------------------------------------------------------------------------------------------
    # applications and service principals

    def instantiate(
        self, display_name: str, template_id: str = TEMPLATE_APP_ID, *, portal_made: bool = False
    ) -> JSON:
        """``POST /applicationTemplates/{id}/instantiate``: a new application and its service principal.

        ``portal_made``: as a configuration made in the portal may hold them, with
        ``applicationTemplateId`` null (Microsoft's own example of a Cloud Sync principal shows it so).
        """
        if template_id not in JOB_TEMPLATES_OF:
            raise not_found(f"application template {template_id}")
        application, service_principal = new_application(display_name, None if portal_made else template_id)
        service_principal["appRoles"] = principal_app_roles(
            template_id
        )  # what selected groups are assigned with
        app_id = application["appId"]
        with self.transaction():
            self._exec(
                self._conn(),
                "INSERT INTO applications (id, app_id, data) VALUES (?, ?, ?)",
                (application["id"], app_id, dumps(application)),
            )
            self._exec(
                self._conn(),
                "INSERT INTO service_principals (id, app_id, data) VALUES (?, ?, ?)",
                (service_principal["id"], app_id, dumps(service_principal)),
            )
        return {
            "application": copy.deepcopy(application),
            "servicePrincipal": copy.deepcopy(service_principal),
        }

    def list_applications(self) -> list[JSON]:
        return [loads(r[0]) for r in self._q("SELECT data FROM applications ORDER BY seq")]

    def get_application(self, id: str) -> JSON:
        row = self._one("SELECT data FROM applications WHERE id = ?", (id,))
        if row is None:
            raise not_found(f"application {id}")
        return dict(loads(row[0]))

    def delete_application(self, id: str) -> None:
        """``DELETE /applications/{id}``; like the service, this also removes its service principal."""
        with self.transaction():
            app = self.get_application(id)
            for row in self._q("SELECT id FROM service_principals WHERE app_id = ?", (app["appId"],)):
                self.delete_service_principal(row[0])
            self._delete_extension_properties_of(id)
            self._exec(self._conn(), "DELETE FROM applications WHERE id = ?", (id,))

    def list_service_principals(self) -> list[JSON]:
        return [loads(r[0]) for r in self._q("SELECT data FROM service_principals ORDER BY seq")]

    def configuration_parts(self) -> list[tuple[JSON, list[JSON], list[JSON], dict[str, bytes]]]:
        """Every service principal with its jobs, its secrets and the stored text of its provisioning
        jobs' schemas (by job id, as ``get_schema_text`` gives it), in three queries instead of three per
        service principal: what reading every configuration of a tenant takes. Call it in a transaction
        for a consistent snapshot."""
        jobs: dict[str, list[JSON]] = {}
        schemas: dict[str, dict[str, bytes]] = {}
        rows = self._q(
            # The schema's UTF-8 bytes as SQLite holds them, with no str made and encoded again.
            "SELECT sp_id, id, data, CASE WHEN template_id IN (?, ?) THEN CAST(schema AS BLOB) END "
            "FROM jobs ORDER BY seq",
            (PROVISIONING_TEMPLATE, GROUP_PROVISIONING_TEMPLATE),
        )
        for sp_id, job_id, data, schema in rows:
            jobs.setdefault(sp_id, []).append(loads(data))
            if schema is not None:
                schemas.setdefault(sp_id, {})[job_id] = bytes(schema)
        secrets = {sp_id: list(loads(data)) for sp_id, data in self._q("SELECT sp_id, data FROM secrets")}
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
        return [loads(r[0]) for r in rows]

    def service_principals_named(self, display_name: str) -> list[JSON]:
        """Service principals whose display name is ``display_name`` (as ``displayName eq`` compares it:
        without regard to case), found inside SQLite like ``service_principals_tagged``."""
        rows = self._q(
            "SELECT data FROM service_principals "
            "WHERE lower(json_extract(data, '$.displayName')) = lower(?) ORDER BY seq",
            (display_name,),
        )
        return [loads(r[0]) for r in rows]

    def get_service_principal(self, id: str) -> JSON:
        row = self._one("SELECT data FROM service_principals WHERE id = ?", (id,))
        if row is None:
            raise not_found(f"service principal {id}")
        return dict(loads(row[0]))

    def patch_service_principal(self, id: str, patch: Mapping[str, Any]) -> JSON:
        """``PATCH /servicePrincipals/{id}`` for the writable fields we use (tags, displayName, notes)."""
        unknown = sorted(set(patch) - PATCHABLE_SP_FIELDS)
        if unknown:
            raise bad_request(f"property {unknown[0]!r} cannot be changed here", "Request_BadRequest")
        tags = patch.get("tags")
        if "tags" in patch and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise bad_request("tags must be a list of strings", "Request_BadRequest")
        with self.transaction():
            sp = self.get_service_principal(id)
            sp.update(copy.deepcopy(dict(patch)))
            self._exec(self._conn(), "UPDATE service_principals SET data = ? WHERE id = ?", (dumps(sp), id))
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
        return template_schema_of(template_id)

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
            for t in JOB_TEMPLATES_OF[app_template]
        ]

    def _application_template(self, sp_id: str) -> str:
        """The application template principal ``sp_id`` was made from (the AD2AAD one when it says none)."""
        found = self.get_service_principal(sp_id).get("applicationTemplateId")
        return found if found in JOB_TEMPLATES_OF else TEMPLATE_APP_ID

    def list_jobs(self, sp_id: str) -> list[JSON]:
        # Jobs go with their service principal, so jobs found mean it exists: one query does.
        rows = self._q("SELECT data FROM jobs WHERE sp_id = ? ORDER BY seq", (sp_id,))
        if not rows:
            self._require_service_principal(sp_id)
        return [loads(r[0]) for r in rows]

    def _require_service_principal(self, id: str) -> None:
        """NotFoundError unless service principal ``id`` exists (without reading it)."""
        if self._one("SELECT 1 FROM service_principals WHERE id = ?", (id,)) is None:
            raise not_found(f"service principal {id}")

    def create_job(self, sp_id: str, template_id: str) -> JSON:
        """``POST …/synchronization/jobs`` ``{"templateId": …}``: created disabled and paused."""
        if template_id not in JOB_TEMPLATES_OF[self._application_template(sp_id)]:
            raise bad_request(f"templateId {template_id!r} is not a template of this application")
        job_id = f"{template_id}.{uuid.uuid4().hex}.{self.tenant_id}"
        job = new_job(job_id, template_id)
        schema = self.template_schema(template_id)
        schema["id"] = job_id
        schema["version"] = schema_version()
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
                (sp_id, job_id, template_id, dumps(job), self._pack_schema(schema)),
            )
        return job

    def _job_row(self, sp_id: str, job_id: str) -> Any:
        row = self._one("SELECT data, schema FROM jobs WHERE sp_id = ? AND id = ?", (sp_id, job_id))
        if row is None:
            self.get_service_principal(sp_id)
            raise not_found(f"synchronization job {job_id}")
        return row

    def get_job(self, sp_id: str, job_id: str) -> JSON:
        return dict(loads(self._job_row(sp_id, job_id)[0]))

    def _save_job(self, sp_id: str, job: JSON) -> None:
        self._exec(
            self._conn(),
            "UPDATE jobs SET data = ? WHERE sp_id = ? AND id = ?",
            (dumps(job), sp_id, job["id"]),
        )

    def _record(self, sp_id: str, job_id: str, action: str, body: Any = None) -> None:
        self._exec(
            self._conn(),
            "INSERT INTO job_actions (sp_id, job_id, action, body, at) VALUES (?, ?, ?, ?, ?)",
            (sp_id, job_id, action, None if body is None else dumps(body), now()),
        )

    def delete_job(self, sp_id: str, job_id: str) -> None:
        """``DELETE …/jobs/{jobId}``: the job, its state and its schema."""
        with self.transaction():
            self._job_row(sp_id, job_id)
            self._exec(self._conn(), "DELETE FROM jobs WHERE sp_id = ? AND id = ?", (sp_id, job_id))
            self._record(sp_id, job_id, "delete")

    def start_job(self, sp_id: str, job_id: str) -> None:
        """``POST …/start``: the schedule becomes active and any quarantine is lifted."""
        self._schedule(sp_id, job_id, "Active", "start")

    def pause_job(self, sp_id: str, job_id: str) -> None:
        """``POST …/pause``: the job keeps its state and resumes where it stopped on the next start."""
        self._schedule(sp_id, job_id, "Paused", "pause")

    def _schedule(self, sp_id: str, job_id: str, state: str, action: str) -> None:
        with self.transaction():
            job = self.get_job(sp_id, job_id)
            job["schedule"]["state"] = state
            job["status"]["code"] = state
            if state == "Active":
                job["status"]["quarantine"] = None
            self._save_job(sp_id, job)
            self._record(sp_id, job_id, action)

    def restart_job(self, sp_id: str, job_id: str, criteria: Mapping[str, Any] | None = None) -> None:
        """``POST …/restart`` ``{"criteria": {"resetScope": "…"}}``; the criteria are recorded."""
        scope = (criteria or {}).get("resetScope")
        flags = {f.strip() for f in str(scope or "").split(",") if f.strip()}
        unknown = sorted(flags - RESTART_FLAGS)
        if unknown:
            raise bad_request(f"resetScope has unknown flag {unknown[0]!r}")
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
        rows = self._q_where(sql, "sp_id", sp_id, "seq")
        return [
            {
                "spId": r[0],
                "jobId": r[1],
                "action": r[2],
                "body": None if r[3] is None else loads(r[3]),
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
            text = dumps(directories)
            digest = hashlib.sha256(text.encode()).hexdigest()
            self._exec(self._conn(), "INSERT OR IGNORE INTO blobs (hash, data) VALUES (?, ?)", (digest, text))
            data["directories"] = {"$blob": digest}
        return dumps(data)

    def _unpack_schema(self, text: str, *, directories: bool) -> JSON:
        data = dict(loads(text))
        ref = data.get("directories")
        if isinstance(ref, dict) and "$blob" in ref:
            if directories:
                row = self._one("SELECT data FROM blobs WHERE hash = ?", (ref["$blob"],))
                data["directories"] = loads(row[0]) if row is not None else []
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
        return [loads(r[0]) for r in rows]

    def assign_app_role(self, sp_id: str, principal_id: str, app_role_id: str) -> JSON:
        """``POST /servicePrincipals/{id}/appRoleAssignedTo`` for a group; one per (group, role)."""
        assignment: JSON = {
            "id": str(uuid.uuid4()),
            "appRoleId": app_role_id,
            "createdDateTime": now(),
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
                (assignment["id"], sp_id, dumps(assignment)),
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
                raise not_found(f"app role assignment {assignment_id}")

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
            if str(found.get("name")) == "Active Directory":
                found = with_schema_extensions(found, self.discoverable_attributes())
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
        raise not_found(f"directory definition {directory_id}")

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
            raise bad_request("the schema must be a JSON object")
        rules = schema.get("synchronizationRules", [])
        if not isinstance(rules, list) or not all(isinstance(r, Mapping) for r in rules):
            raise bad_request("synchronizationRules must be a list of objects")
        # Only top-level keys are set here and the row keeps serialized text, so a shallow copy does;
        # a deep one was half the cost of a PUT.
        new = dict(schema)
        new["id"] = job_id
        new["version"] = schema_version()
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
        return list(loads(row[0]))

    def put_secrets(self, sp_id: str, secrets: Sequence[Mapping[str, Any]]) -> None:
        """``PUT …/synchronization/secrets``: replaces every key (there is no PATCH)."""
        items: list[JSON] = []
        for item in secrets:
            key, value = item.get("key"), item.get("value")
            if key not in SECRET_KEYS:
                raise bad_request(f"{key!r} is not a synchronization secret key")
            if value is not None and not isinstance(value, str):
                raise bad_request(f"the value of secret {key} must be a string")
            items.append({"key": key, "value": value})
        with self.transaction():
            self.get_service_principal(sp_id)
            self._exec(
                self._conn(),
                "INSERT INTO secrets (sp_id, data) VALUES (?, ?) "
                "ON CONFLICT (sp_id) DO UPDATE SET data = excluded.data",
                (sp_id, dumps(items)),
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
        return self.set_status(sp_id, job_id, **quarantine_status(reason, message, code))

    def hold_deletes(self, sp_id: str, job_id: str, objects: Sequence[Mapping[str, Any]]) -> JSON:
        """What the service does when a cycle would delete more than the threshold allows: the job goes
        to quarantine ``TooManyDeletes`` and the provisioning logs list one staged delete per object
        (``objects``: ``id``, ``displayName``, ``identityType``, ``targetId``). A job already in that
        quarantine stays in the same series (a later cycle that holds them again). Returns the job."""
        before = (self.get_job(sp_id, job_id)["status"] or {}).get("quarantine") or {}
        job = self.quarantine(
            sp_id,
            job_id,
            reason="TooManyDeletes",
            message=f"The job would delete {len(objects)} objects, more than its threshold allows",
            code="TooManyDeletes",
        )
        quarantine = job["status"]["quarantine"]
        if before.get("reason") == "TooManyDeletes" and before.get("seriesBegan"):
            quarantine["seriesBegan"] = before["seriesBegan"]
            quarantine["seriesCount"] = int(before.get("seriesCount") or 1) + 1
            job = self.set_status(sp_id, job_id, quarantine=quarantine)
        began = str(quarantine["currentBegan"])
        sp = self.get_service_principal(sp_id)
        cycle = str(uuid.uuid4())
        self.log_provisioning(
            [staged_delete_entry(job_id=job_id, sp=sp, source=o, at=began, cycle_id=cycle) for o in objects]
        )
        return job
