"""The local provider: Cloud Sync configurations in the embedded SQLite tenant (the default target).

I/O: the tenant database file only, through ``reconciler.tenant.TenantStore``. Every operation runs in
one store transaction, so a configuration is never left half-written by this provider; several processes
may work on the same file at once.

The tenant holds configurations the way the service does, and this provider reads and writes them the
way the Graph provider does, through ``reconciler.graph.shapes``: a configuration is a service principal
made from the AD2AAD template that has an ``AD2AADProvisioning`` job (or, while a create is unfinished,
only our managed tag). Our tags on the service principal say whether it is ours and under which name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any, NoReturn

from reconciler.core.model import Mapping, Observed, Scope, Settings
from reconciler.errors import ConflictError, NotFoundError
from reconciler.graph.shapes import (
    JSON,
    PASSWORD_HASH_TEMPLATE,
    PROVISIONING_TEMPLATE,
    TEMPLATE_APP_ID,
    edit_schema,
    find_job,
    job_enabled,
    name_tag,
    observe,
    parse_tags,
    set_password_hash_mappings,
    settings_to_secrets,
    tags_for,
    with_restart_pending,
    without_annotations,
)
from reconciler.providers.base import RESET_FULL
from reconciler.tenant.store import TenantStore
from reconciler.tenant.template import template_defaults

__all__ = ["EmptyLocalTenant", "LocalProvider"]


def _from_template(sp: JSON) -> bool:
    return sp.get("applicationTemplateId") == TEMPLATE_APP_ID or TEMPLATE_APP_ID in (
        sp.get("servicePrincipalNames") or []
    )


class LocalProvider:
    """``Provider`` on a ``TenantStore`` file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.store = TenantStore(path)
        self.target = "local:" + self.store.path

    # ----------------------------------------------------------------------------------------------
    # reading

    def _observe(self, sp: JSON) -> Observed | None:
        """The configuration held by ``sp``, or None when ``sp`` is not one."""
        if not _from_template(sp):
            return None
        jobs = self.store.list_jobs(sp["id"])
        provisioning = find_job(jobs, PROVISIONING_TEMPLATE)
        if provisioning is None and not parse_tags(sp.get("tags") or []).managed:
            return None  # not a configuration: spare reading its secrets
        schema = None if provisioning is None else self.store.get_schema_rules(sp["id"], provisioning["id"])
        return observe(sp, jobs, self.store.get_secrets(sp["id"]), schema)

    def read_all(self) -> tuple[Observed, ...]:
        with self.store.transaction(write=False):
            found = [self._observe(sp) for sp in self.store.list_service_principals()]
        return tuple(sorted((o for o in found if o is not None), key=lambda o: o.id))

    def read_named(self, names: frozenset[str]) -> tuple[Observed, ...]:
        # Our tags are on the service principal: the jobs, secrets and schema of the others stay unread.
        with self.store.transaction(write=False):
            found = [
                self._observe(sp)
                for sp in self.store.list_service_principals()
                if not (t := parse_tags(sp.get("tags") or [])).managed or t.name in names
            ]
        return tuple(sorted((o for o in found if o is not None), key=lambda o: o.id))

    def template_defaults(self) -> tuple[Mapping, ...]:
        return template_defaults()

    # ----------------------------------------------------------------------------------------------
    # writing

    def _managed_sp(self, id: str) -> JSON:
        sp = self.store.get_service_principal(id)
        if not _from_template(sp):
            raise NotFoundError(f"{id} is not a Cloud Sync configuration")
        if not parse_tags(sp.get("tags") or []).managed:
            raise ConflictError(f"configuration {id} is not managed by reconciler; adopt it first")
        return sp

    def _provisioning_job(self, id: str) -> JSON:
        job = find_job(self.store.list_jobs(id), PROVISIONING_TEMPLATE)
        if job is None:
            raise ConflictError(f"configuration {id} has no provisioning job; its create did not finish")
        return job

    def _set_tags(self, sp: JSON, name: str, deletion_protection: bool, restart_token: str | None) -> None:
        current = list(sp.get("tags") or [])
        tags = tags_for(
            current, name=name, deletion_protection=deletion_protection, restart_token=restart_token
        )
        if tags != current:
            self.store.patch_service_principal(sp["id"], {"tags": tags})

    def _put_schema(self, id: str, job_id: str, schema: JSON, current: JSON) -> None:
        # An unchanged schema is not written back: the service would stamp a new version for nothing.
        # Annotations describe an answer, not the schema: they never count as a change.
        if schema != without_annotations(current):
            self.store.put_schema(id, job_id, schema)

    def _sync_password_hash_job(self, id: str, on: bool) -> None:
        jobs = self.store.list_jobs(id)
        phs_job = find_job(jobs, PASSWORD_HASH_TEMPLATE)
        if on and phs_job is None:
            created = self.store.create_job(id, PASSWORD_HASH_TEMPLATE)
            provisioning = find_job(jobs, PROVISIONING_TEMPLATE)
            # A running configuration runs all of its jobs.
            if provisioning is not None and job_enabled(provisioning):
                self.store.start_job(id, created["id"])
        elif not on and phs_job is not None:
            self.store.delete_job(id, phs_job["id"])

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
        with self.store.transaction():
            ours = [
                sp
                for sp in self.store.service_principals_tagged(name_tag(name))
                if _from_template(sp) and (t := parse_tags(sp.get("tags") or [])).managed and t.name == name
            ]
            if len(ours) > 1:
                ids = ", ".join(sp["id"] for sp in ours)
                raise ConflictError(f"more than one configuration is managed as {name!r}: {ids}")
            if ours:
                sp = ours[0]
                observed = self._observe(sp)
                if observed is not None and observed.complete:
                    return str(sp["id"])
            else:
                # The portal names the application after the AD domain; our name goes into a tag.
                sp = self.store.instantiate(settings.domain or name)["servicePrincipal"]
            id = str(sp["id"])
            self._set_tags(sp, name, deletion_protection, restart_token)
            job = find_job(self.store.list_jobs(id), PROVISIONING_TEMPLATE) or self.store.create_job(
                id, PROVISIONING_TEMPLATE
            )
            # The schema the service made for the job is the base: only what the desired state says
            # is changed in it.
            current = self.store.get_schema(id, job["id"])
            edited = edit_schema(
                current,
                scope=scope,
                mappings=mappings,
                removals=removals,
                password_hash_sync=settings.password_hash_sync,
            )
            self._put_schema(id, job["id"], edited, current)
            self._sync_password_hash_job(id, settings.password_hash_sync)
            # Secrets last: the Domain secret marks the create as finished.
            self.store.put_secrets(id, settings_to_secrets(settings, self.store.get_secrets(id)))
            return id

    def update_settings(
        self,
        id: str,
        settings: Settings,
        *,
        deletion_protection: bool,
        restart_token: str | None,
    ) -> None:
        with self.store.transaction():
            sp = self._managed_sp(id)
            tags = parse_tags(sp.get("tags") or [])
            self.store.put_secrets(id, settings_to_secrets(settings, self.store.get_secrets(id)))
            job = find_job(self.store.list_jobs(id), PROVISIONING_TEMPLATE)
            if job is not None:
                current = self.store.get_schema(id, job["id"])
                self._put_schema(
                    id, job["id"], set_password_hash_mappings(current, settings.password_hash_sync), current
                )
            self._sync_password_hash_job(id, settings.password_hash_sync)
            self._set_tags(sp, tags.name or "", deletion_protection, restart_token)

    def edit_schema(
        self, id: str, scope: Scope, mappings: Sequence[Mapping], removals: Sequence[tuple[str, str]] = ()
    ) -> None:
        with self.store.transaction():
            self._managed_sp(id)
            job = self._provisioning_job(id)
            current = self.store.get_schema(id, job["id"])
            edited = edit_schema(current, scope=scope, mappings=mappings, removals=removals)
            self._put_schema(id, job["id"], edited, current)

    def start(self, id: str) -> None:
        with self.store.transaction():
            self._managed_sp(id)
            self._provisioning_job(id)
            for job in self.store.list_jobs(id):
                self.store.start_job(id, job["id"])

    def pause(self, id: str) -> None:
        with self.store.transaction():
            self._managed_sp(id)
            for job in self.store.list_jobs(id):
                self.store.pause_job(id, job["id"])

    def restart(self, id: str, reset_scope: str = RESET_FULL) -> None:
        with self.store.transaction():
            self._managed_sp(id)
            job = self._provisioning_job(id)
            self.store.restart_job(id, job["id"], {"resetScope": reset_scope})
            self._mark_restart(id, False)

    def set_restart_pending(self, id: str, pending: bool) -> None:
        with self.store.transaction():
            self._managed_sp(id)
            self._mark_restart(id, pending)

    def _mark_restart(self, id: str, pending: bool) -> None:
        current = list(self.store.get_service_principal(id).get("tags") or [])
        tags = with_restart_pending(current, pending)
        if tags != current:
            self.store.patch_service_principal(id, {"tags": tags})

    def delete(self, id: str) -> None:
        with self.store.transaction():
            try:
                sp = self._managed_sp(id)
            except NotFoundError:
                return  # already gone: a repeated delete is a no-op
            for job in self.store.list_jobs(id):
                self.store.delete_job(id, job["id"])
            # Deleting the application removes its service principal as well, so the application goes
            # before the principal: an interrupted delete never leaves an application we can no longer
            # find by the principal's id.
            for app in self.store.list_applications():
                if app.get("appId") == sp.get("appId"):
                    self.store.delete_application(app["id"])
            with contextlib.suppress(NotFoundError):
                self.store.delete_service_principal(id)

    def _check_name_free(self, id: str, name: str) -> None:
        """ConflictError when a configuration other than ``id`` is managed as ``name``."""
        for other in self.store.list_service_principals():
            other_tags = parse_tags(other.get("tags") or [])
            if other["id"] != id and _from_template(other) and other_tags.managed and other_tags.name == name:
                raise ConflictError(f"configuration {other['id']} is already managed as {name!r}")

    def adopt(self, id: str, name: str) -> None:
        with self.store.transaction():
            sp = self.store.get_service_principal(id)
            if self._observe(sp) is None:
                raise NotFoundError(f"{id} is not a Cloud Sync configuration")
            tags = parse_tags(sp.get("tags") or [])
            if tags.managed:
                if tags.name == name:
                    return
                raise ConflictError(f"configuration {id} is already managed as {tags.name!r}")
            self._check_name_free(id, name)
            self._set_tags(sp, name, False, None)

    def rename(self, id: str, old: str, new: str) -> None:
        with self.store.transaction():
            sp = self.store.get_service_principal(id)
            tags = parse_tags(sp.get("tags") or [])
            if not tags.managed or tags.name not in (old, new):
                raise ConflictError(f"configuration {id} is not the managed configuration {old!r}")
            if tags.name == new:
                return
            self._check_name_free(id, new)
            self._set_tags(sp, new, tags.deletion_protection, tags.restart_token)

    def provision_on_demand(
        self, id: str, subject: str, object_type: str = "user", *, apply_scoping: bool = False
    ) -> dict[str, Any]:
        """Run ``subject`` through ``reconciler.tenant.provisioning`` against the tenant's directory.

        ``apply_scoping`` (local only) skips an object out of scope, as a scheduled cycle would; the
        service itself ignores scoping on demand.
        """
        with self.store.transaction():
            if not _from_template(self.store.get_service_principal(id)):
                raise NotFoundError(f"{id} is not a Cloud Sync configuration")
            # Loaded by the one command that provisions, not by every plan.
            from reconciler.tenant.provisioning import provision_on_demand

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
