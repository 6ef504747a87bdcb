"""The local provider: Cloud Sync configurations in the embedded SQLite tenant (the default target).

I/O: the tenant database file only, through ``reconciler.tenant.TenantStore``. Every operation runs in
one store transaction, so a configuration is never left half-written by this provider; several processes
may work on the same file at once.

The tenant holds configurations the way the service does, and this provider reads them the way the
Graph provider does, through ``reconciler.graph.reading``, and writes them with the very steps the Graph
provider uses (``reconciler.graph.writes.CloudSyncWriter``), over the store's Graph-shaped calls
(``_TenantResources``): a configuration is a service principal
made from a Cloud Sync template that has its job (``AD2AADProvisioning``, or ``AAD2ADGroupProvisioning``
for Entra ID -> AD, whose selected groups are app-role assignments; or, while a create is unfinished,
only our managed tag). Our tags on the service principal say whether it is ours and under which name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from collections.abc import Mapping as AbcMapping
from contextlib import AbstractContextManager
from typing import Any, NoReturn, TypeVar

from reconciler.core.group_limits import Filters, FilterSelection, GroupSizes, TenantSize
from reconciler.core.model import Direction, Mapping
from reconciler.core.observed import Observed
from reconciler.errors import NotFoundError, ProviderError, TransientProviderError
from reconciler.graph.checks import check_and_read_schema_text
from reconciler.graph.group_scope import group_select
from reconciler.graph.identity import JSON, direction_of, from_template, main_job, name_tag, parse_tags
from reconciler.graph.primitives import Loaded
from reconciler.graph.reading import observe, template_defaults
from reconciler.graph.template import application_template
from reconciler.graph.writes import CloudSyncWriter
from reconciler.tenant.store import TenantStore

__all__ = ["EmptyLocalTenant", "LocalProvider"]

_T = TypeVar("_T")


_from_template = from_template


def _holds_configuration(store: TenantStore, sp: JSON) -> bool:
    """Made from a Cloud Sync template, or holding its job: a configuration made in the portal may list
    no template id (as Microsoft's own example of one shows)."""
    return _from_template(sp) or main_job(store.list_jobs(sp["id"])) is not None


def _assignments(store: TenantStore, sp: JSON, jobs: list[JSON]) -> list[JSON]:
    """The app-role assignments of an Entra ID -> AD principal (its selected groups); none else."""
    if direction_of(sp, jobs) is not Direction.ENTRA_TO_AD:
        return []
    return store.list_app_role_assignments(sp["id"])


class _TenantResources:
    """``Resources`` on a ``TenantStore``: each write step is one store transaction, so it is never left
    half-written and no answer is ever lost."""

    def __init__(self, store: TenantStore) -> None:
        self.store = store

    def step(self, *keys: str) -> AbstractContextManager[None]:
        return self.store.transaction()

    def settle(self, fn: Callable[..., _T], *args: Any) -> _T:
        return fn(*args)  # nothing replicates in one file

    def retry_wait(self, exc: TransientProviderError, attempt: int) -> bool:
        return False

    def is_configuration(self, sp: JSON, direction: Direction) -> bool:
        return _from_template(sp, direction)

    def load(self, id: str, *, schema: bool) -> Loaded:
        sp = self.store.get_service_principal(id)
        jobs = self.store.list_jobs(id)
        if not _from_template(sp) and main_job(jobs) is None:
            raise NotFoundError(f"{id} is not a Cloud Sync configuration")
        job = main_job(jobs) if schema else None
        found = None if job is None else self.store.get_schema(id, job["id"])
        return Loaded(sp, jobs, self.store.get_secrets(id), found)

    def managed_as(self, name: str) -> list[JSON]:
        return [
            sp
            for sp in self.store.service_principals_tagged(name_tag(name))
            if (t := parse_tags(sp.get("tags") or [])).managed
            and t.name == name
            and _holds_configuration(self.store, sp)
        ]

    def named(self, display_name: str) -> list[JSON]:
        return self.store.service_principals_named(display_name)

    def offers_template(self, id: str, job_template: str) -> bool:
        # The tenant records the template each principal was made from (AD2AAD, or Entra ID -> AD).
        return any(t.get("id") == job_template for t in self.store.list_templates(id))

    def application_template(self, id: str) -> JSON:
        return application_template(id)

    def instantiate(self, display_name: str, template_id: str) -> JSON:
        return dict(self.store.instantiate(display_name, template_id)["servicePrincipal"])

    def set_tags(self, id: str, tags: list[str]) -> None:
        self.store.patch_service_principal(id, {"tags": tags})

    def list_jobs(self, id: str) -> list[JSON]:
        return self.store.list_jobs(id)

    def create_job(self, id: str, template_id: str) -> JSON:
        return self.store.create_job(id, template_id)

    def delete_job(self, id: str, job_id: str) -> None:
        self.store.delete_job(id, job_id)

    def job_action(self, id: str, job_id: str, action: str, body: JSON | None = None) -> None:
        if action == "start":
            self.store.start_job(id, job_id)
        elif action == "pause":
            self.store.pause_job(id, job_id)
        elif action == "restart":
            self.store.restart_job(id, job_id, (body or {}).get("criteria"))
        else:
            raise ValueError(f"unknown job action {action!r}")

    def get_schema(self, id: str, job_id: str) -> JSON:
        return self.store.get_schema(id, job_id)

    def put_schema(self, id: str, job_id: str, schema: JSON) -> None:
        self.store.put_schema(id, job_id, schema)

    def get_secrets(self, id: str) -> list[JSON]:
        return self.store.get_secrets(id)

    def put_secrets(self, id: str, secrets: list[JSON]) -> None:
        self.store.put_secrets(id, secrets)

    def delete_application(self, app_id: str) -> None:
        apps = [app for app in self.store.list_applications() if app.get("appId") == app_id]
        if not apps:
            raise NotFoundError(f"application with appId {app_id}")
        for app in apps:
            self.store.delete_application(app["id"])

    def delete_principal(self, id: str) -> None:
        self.store.delete_service_principal(id)

    def discover(self, id: str, job_id: str, directory_id: str) -> JSON:
        return self.store.discover(self.store.get_schema(id, job_id), directory_id)

    def tenant_id(self) -> str:
        return self.store.tenant_id

    def applications_with_uri(self, uri: str) -> list[JSON]:
        return self.store.applications_with_uri(uri)

    def create_application(self, display_name: str, uri: str) -> JSON:
        return self.store.create_application(display_name, [uri])

    def principal_of(self, app_id: str) -> JSON | None:
        return self.store.principal_of(app_id)

    def create_principal(self, app_id: str) -> JSON:
        return self.store.create_service_principal(app_id)

    def list_extension_properties(self, app_object_id: str) -> list[JSON]:
        return self.store.list_extension_properties(app_object_id)

    def staged_deletes(self, job_id: str, since: str | None) -> list[JSON]:
        return self.store.provisioning_log(job_id)

    def group_member_counts(self, ids: Sequence[str]) -> list[int | ProviderError | None]:
        found = [self.store.cloud_group_members(id) for id in ids]
        pairs = zip(ids, found, strict=True)
        return [NotFoundError(f"group {id}") if m is None else len(m) for id, m in pairs]

    def security_groups(self, extensions: Sequence[str] = ()) -> list[JSON]:
        # A cloud group a directory load did not write was written by provisioning from AD: synced.
        loaded = {i.casefold() for i in self.store.directory_cloud_ids()}
        found = []
        for o in self.store.list_cloud_objects("Group"):
            held = {name.casefold(): value for name, value in o["attributes"].items()}
            group = {name: held.get(name.casefold()) for name in group_select(extensions).split(",")}
            id = str(o["id"])
            group["id"] = id
            if group["onPremisesSyncEnabled"] is None and id.casefold() not in loaded:
                group["onPremisesSyncEnabled"] = True
            if group["securityEnabled"] is True and group["mailEnabled"] is not True:
                found.append(group)
        return found

    def tenant_counts(self) -> list[int | ProviderError | None]:
        return [len(self.store.cloud_object_ids(kind)) for kind in ("User", "Group")]

    def create_extension_property(self, app_object_id: str, body: JSON) -> JSON:
        return self.store.create_extension_property(app_object_id, body)

    def delete_extension_property(self, app_object_id: str, property_id: str) -> None:
        self.store.delete_extension_property(app_object_id, property_id)

    def list_assignments(self, id: str) -> list[JSON]:
        return self.store.list_app_role_assignments(id)

    def assign(self, id: str, assignment: JSON) -> JSON:
        return self.store.assign_app_role(id, str(assignment["principalId"]), str(assignment["appRoleId"]))

    def unassign(self, id: str, assignment_id: str) -> None:
        self.store.remove_app_role_assignment(id, assignment_id)


class LocalProvider(CloudSyncWriter):
    """``Provider`` on a ``TenantStore`` file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.store = TenantStore(path)
        self.target = "local:" + self.store.path
        self.resources = _TenantResources(self.store)

    # ----------------------------------------------------------------------------------------------
    # reading

    def _observe_parts(
        self, sp: JSON, jobs: list[JSON], secrets: list[JSON], schema: bytes | None
    ) -> Observed | None:
        reading = None
        if schema is not None:
            # Decoded only as far as scope and mappings go; a mapping list read before is not read again.
            reading = check_and_read_schema_text(schema, f"the schema of {sp['id']}")
        assignments = _assignments(self.store, sp, jobs)
        return observe(sp, jobs, secrets, None, reading=reading, assignments=assignments)

    def _read(self) -> tuple[Observed, ...]:
        """Every configuration, read in one snapshot with three queries."""
        found = []
        with self.store.transaction(write=False):
            parts = self.store.configuration_parts()
        for sp, jobs, secrets, schemas in parts:
            provisioning = main_job(jobs)
            # Made from the template, or holding its provisioning job: a configuration made in the
            # portal may list no template id.
            if provisioning is None and not _from_template(sp):
                continue
            schema = None
            if provisioning is not None:
                schema = schemas.get(provisioning["id"])
                if schema is None:  # its template in the row and in the job disagree: read it alone
                    with self.store.transaction(write=False):
                        schema = self.store.get_schema_text(sp["id"], provisioning["id"])
            observed = self._observe_parts(sp, jobs, secrets, schema)
            if observed is not None:
                found.append(observed)
        return tuple(sorted(found, key=lambda o: o.id))

    def read_all(self) -> tuple[Observed, ...]:
        return self._read()

    def read_named(self, names: frozenset[str]) -> tuple[Observed, ...]:
        # Our tags are on the service principal: the jobs, secrets and schemas of the others stay
        # unread (apply reads one configuration this way before each change).
        with self.store.transaction(write=False):
            found = [
                self._observe(sp)
                for sp in self.store.list_service_principals()
                if not (t := parse_tags(sp.get("tags") or [])).managed or t.name in names
            ]
        return tuple(sorted((o for o in found if o is not None), key=lambda o: o.id))

    def _observe(self, sp: JSON) -> Observed | None:
        """The configuration held by ``sp`` (made from the template, or holding its provisioning job),
        or None when ``sp`` is not one."""
        jobs = self.store.list_jobs(sp["id"])
        provisioning = main_job(jobs)
        if provisioning is None and not _from_template(sp):
            return None
        if provisioning is None and not parse_tags(sp.get("tags") or []).managed:
            return None  # not a configuration: spare reading its secrets
        text = None if provisioning is None else self.store.get_schema_text(sp["id"], provisioning["id"])
        return self._observe_parts(sp, jobs, self.store.get_secrets(sp["id"]), text)

    def template_defaults(self) -> tuple[Mapping, ...]:
        return template_defaults()

    def group_sizes(self, ids: Sequence[str]) -> GroupSizes:
        """As on Graph, over the tenant's cloud groups; a tenant that holds none (nothing loaded with
        ``directory load``) has no directory to check against, and says nothing of any group."""
        with self.store.transaction(write=False):
            if not self.store.holds_cloud_groups():
                return GroupSizes()
            return super().group_sizes(ids)

    def tenant_size(self) -> TenantSize | None:
        with self.store.transaction(write=False):
            return super().tenant_size() if self.store.holds_cloud_groups() else None

    def filter_selections(self, filters: AbcMapping[str, Filters]) -> dict[str, FilterSelection]:
        with self.store.transaction(write=False):
            return super().filter_selections(filters) if self.store.holds_cloud_groups() else {}

    # ----------------------------------------------------------------------------------------------
    # writing: the steps are ``CloudSyncWriter``'s, over ``_TenantResources``

    def provision_on_demand(
        self,
        id: str,
        subject: str,
        object_type: str = "user",
        *,
        apply_scoping: bool = False,
        members: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Run ``subject`` through ``reconciler.provisioning.on_demand`` against the tenant's directory (an
        Entra ID -> AD configuration: through ``reconciler.provisioning.to_ad``, with ``members``).

        ``apply_scoping`` (local only) skips an object out of scope, as a scheduled cycle would; the
        service itself ignores scoping on demand.
        """
        with self.store.transaction():
            sp = self.store.get_service_principal(id)
            if not _holds_configuration(self.store, sp):
                raise NotFoundError(f"{id} is not a Cloud Sync configuration")
            # Loaded by the one command that provisions, not by every plan.
            if direction_of(sp, self.store.list_jobs(id)) is Direction.ENTRA_TO_AD:
                from reconciler.provisioning.to_ad import provision_to_ad

                return provision_to_ad(self.store, id, subject, object_type, members)
            from reconciler.provisioning.on_demand import provision_on_demand

            return provision_on_demand(self.store, id, subject, object_type, apply_scoping=apply_scoping)

    def close(self) -> None:
        self.store.close()


class EmptyLocalTenant:
    """The default local tenant before anything created it, for commands that only read: it holds
    nothing, and it is never written (a plan made on it is applied through a real ``LocalProvider``,
    which creates the file)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.target = "local:" + os.path.abspath(os.fspath(path))

    def read_all(self) -> tuple[Observed, ...]:
        return ()

    def read_named(self, names: frozenset[str]) -> tuple[Observed, ...]:
        return ()

    def template_defaults(self) -> tuple[Mapping, ...]:
        return template_defaults()

    def _refuse(self, *_: object, **__: object) -> NoReturn:
        raise NotFoundError(f"there is no local tenant at {self.target.removeprefix('local:')} yet")

    create = update_settings = edit_schema = _refuse
    start = pause = restart = set_restart_pending = delete = adopt = rename = provision_on_demand = _refuse

    def close(self) -> None:
        pass
