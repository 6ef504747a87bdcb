"""The write algorithm of every target: the Cloud Sync write steps, once, over Graph-shaped primitives.

A configuration is written the same way wherever it lives: find ours by tag, or instantiate the
template (never twice for one domain), tag the principal at once, make sure the provisioning job
exists, GET the job's schema as the service made it, change only what the desired state says in it
(``editing.edit_schema``), PUT it back if it changed, create or remove the companion jobs (password hash
sync), and write the secrets last (the ``Domain`` secret marks a create as finished). Updates, start,
pause, restart, delete, adopt and rename follow the same pattern: read, change only what we manage,
write back everything else as read.

``CloudSyncWriter`` holds these steps (its directory-extension steps are ``extension_writes``); a target
supplies only ``Resources`` (``primitives``), the few Graph-shaped calls the steps are made of. The
local tenant (``reconciler.providers.local``) runs each step in one store transaction; Microsoft Graph
(``reconciler.graph.provider``) adds its retries, one writer per configuration and the waits while a
new principal replicates.

An Entra ID -> AD configuration (``Direction.ENTRA_TO_AD``) is written by the same steps, from its own
application template (read from the service before it is instantiated) and job (AAD2ADGroupProvisioning):
its selected groups are app-role assignments to its principal, added and removed one by one
(``_sync_assignments``), with the app role the principal itself lists; its attribute filters, target
container and mappings are edits of the job schema the service made, as for the other direction.

A new kind of job that runs beside the provisioning job on the same principal (Exchange writeback,
device sync) is one more ``CompanionJob`` in ``primitives.COMPANION_JOBS``: when the settings want it, it
is created (and started with a running configuration); when they do not, it is deleted.

I/O: none of its own; only through the ``Resources`` it is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from typing import TypeVar

from reconciler.core.group_limits import Filters, FilterSelection, GroupSizes, TenantSize
from reconciler.core.model import (
    RESET_FORCE_DELETES,
    RESET_FULL,
    Direction,
    DirectoryExtension,
    Mapping,
    Scope,
    ScopeKind,
    Settings,
)
from reconciler.core.observed import HeldDeletes
from reconciler.core.onprem import OnPremisesAttribute
from reconciler.errors import ConflictError, NotFoundError, ProviderError, TransientProviderError
from reconciler.graph.editing import edit_schema, set_password_hash_mappings, without_annotations
from reconciler.graph.extension_writes import ExtensionWrites
from reconciler.graph.extensions import (
    with_definitions,
    without_definitions,
)
from reconciler.graph.group_scope import extension_names, select_groups
from reconciler.graph.groups import group_sizes_from, read_failed, tenant_size_from
from reconciler.graph.identity import (
    GROUP_PROVISIONING_TEMPLATE,
    JSON,
    PROVISIONING_TEMPLATE,
    OwnTags,
    exchange_schema_present,
    find_job,
    job_enabled,
    job_template_for,
    main_job,
    parse_tags,
    selected_group_role,
    tags_for,
    template_app_id,
    with_deletes_approved,
    with_restart_pending,
)
from reconciler.graph.onprem import OnPremisesAttributeSteps
from reconciler.graph.primitives import COMPANION_JOBS, Loaded, Resources
from reconciler.graph.provisioning_logs import count_held_deletes, unknown_held_deletes
from reconciler.graph.reading import observe
from reconciler.graph.secrets import DOMAIN, MANAGED_SECRET_KEYS, settings_to_secrets

__all__ = ["CloudSyncWriter"]

_T = TypeVar("_T")

# A secret the service will not read back (write-only) comes back as this.
MASKED_SECRET = "*"


# The AD directory of an AD -> Entra ID job schema, by the name the service gives it.
_AD_DIRECTORY = "Active Directory"


def _has_own_tags(sp: JSON) -> bool:
    return parse_tags(sp.get("tags") or []) != OwnTags()


class CloudSyncWriter(OnPremisesAttributeSteps, ExtensionWrites):
    """The write half of the ``Provider`` protocol, over ``self.resources``."""

    resources: Resources

    # ----------------------------------------------------------------------------------------------
    # steps shared by the writes

    def _load_managed(self, id: str, *, schema: bool = False) -> Loaded:
        loaded = self.resources.load(id, schema=schema)
        if not parse_tags(loaded.sp.get("tags") or []).managed:
            raise ConflictError(f"configuration {id} is not managed by reconciler; adopt it first")
        return loaded

    @staticmethod
    def _provisioning_job(id: str, jobs: list[JSON]) -> JSON:
        job = main_job(jobs)
        if job is None:
            raise ConflictError(f"configuration {id} has no provisioning job; its create did not finish")
        return job

    def _set_tags(self, sp: JSON, name: str, deletion_protection: bool, restart_token: str | None) -> None:
        current = list(sp.get("tags") or [])
        tags = tags_for(
            current, name=name, deletion_protection=deletion_protection, restart_token=restart_token
        )
        if tags != current:
            self.resources.set_tags(sp["id"], tags)
            sp["tags"] = tags

    def _mark_restart(self, sp: JSON, pending: bool) -> None:
        current = list(sp.get("tags") or [])
        tags = with_restart_pending(current, pending)
        if tags != current:
            self.resources.set_tags(sp["id"], tags)
            sp["tags"] = tags

    def _put_schema(self, id: str, job_id: str, schema: JSON, current: JSON) -> None:
        """Write ``schema`` (an edit of ``current``, made without annotations by ``editing``) if it
        differs from ``current``: the service would stamp a new version for nothing. Annotations
        describe an answer, not the schema: they never count as a change."""
        if schema != without_annotations(current):
            self.resources.put_schema(id, job_id, schema)

    @staticmethod
    def _secrets_to_write(id: str, settings: Settings, current: list[JSON]) -> list[JSON] | None:
        """The secret set to PUT for ``settings``, None when it is unchanged; ConflictError when a
        write would destroy secrets the service does not reveal."""
        new = settings_to_secrets(settings, current)
        if new == current:
            return None
        ours = set(MANAGED_SECRET_KEYS)
        masked = sorted(
            str(s.get("key")) for s in current if s.get("key") not in ours and s.get("value") == MASKED_SECRET
        )
        if masked:
            # PUT replaces every key: writing a masked value back would destroy it.
            raise ConflictError(
                f"configuration {id}: the service does not reveal secret(s) {', '.join(masked)}, and "
                "writing the secret set would overwrite them; change the settings in the portal"
            )
        return new

    def _ensure_job(self, id: str, template_id: str, jobs: list[JSON] | None = None) -> JSON:
        """The job of ``template_id``, created when missing. Never makes a second one."""
        r = self.resources
        existing = find_job(jobs if jobs is not None else r.list_jobs(id), template_id)
        if existing is not None:
            return existing
        return self._made_once(
            lambda: r.create_job(id, template_id), lambda: find_job(r.list_jobs(id), template_id)
        )

    def _sync_companion_jobs(self, id: str, jobs: list[JSON], settings: Settings) -> None:
        for companion in COMPANION_JOBS:
            job = find_job(jobs, companion.template_id)
            if companion.wanted(settings) and job is None:
                created = self._ensure_job(id, companion.template_id)
                provisioning = find_job(jobs, PROVISIONING_TEMPLATE)
                # A running configuration runs all of its jobs.
                if provisioning is not None and job_enabled(provisioning):
                    self.resources.job_action(id, created["id"], "start")
            elif not companion.wanted(settings) and job is not None:
                with contextlib.suppress(NotFoundError):
                    self.resources.delete_job(id, job["id"])

    def _sync_assignments(self, sp: JSON, scope: Scope) -> None:
        """An Entra ID -> AD principal's group assignments made to be ``scope``'s selected groups (none
        for all groups): each one missing is added and each one not named removed; assignments of
        anything but groups are not ours and stay."""
        r = self.resources
        id = str(sp["id"])
        current = r.list_assignments(id)
        wanted = {e.casefold(): e for e in scope.entries} if scope.kind is ScopeKind.SELECTED_GROUPS else {}
        have: dict[str, JSON] = {}
        for a in current:
            principal = a.get("principalId")
            if isinstance(principal, str) and a.get("principalType") in (None, "Group"):
                have.setdefault(principal.casefold(), a)
        missing = [group for key, group in wanted.items() if key not in have]
        role = None
        if missing:
            if "appRoles" not in sp:
                sp = r.load(id, schema=False).sp  # the principal as the service holds it, with its roles
            role = selected_group_role(sp, current)
            if role is None:
                raise ConflictError(
                    f"configuration {id}: its service principal lists no single app role to assign the "
                    "selected groups with (appRoles); assign one group in the portal, then plan again"
                )
        for key, a in have.items():
            if key not in wanted:
                with contextlib.suppress(NotFoundError):
                    r.unassign(id, str(a["id"]))
        for group in missing:
            assert role is not None
            self._assign(id, {"principalId": group, "resourceId": id, "appRoleId": role})

    def _assign(self, id: str, assignment: JSON) -> None:
        """One group assignment; after an unknown outcome (or "exists already") the assignments are read
        before trying again, so that a group is never assigned twice."""
        r = self.resources
        attempt = 0
        while True:
            try:
                r.assign(id, assignment)
                return
            except (TransientProviderError, ConflictError, ProviderError) as exc:
                # Graph answers 400 to an assignment that exists already: read before deciding.
                if isinstance(exc, NotFoundError):
                    raise
                wanted = str(assignment["principalId"]).casefold()
                if any(str(a.get("principalId") or "").casefold() == wanted for a in r.list_assignments(id)):
                    return
                attempt += 1
                if not isinstance(exc, TransientProviderError) or not r.retry_wait(exc, attempt):
                    raise

    # ----------------------------------------------------------------------------------------------
    # instantiate, never twice for one domain

    def _left_unfinished(self, sp: JSON, direction: Direction) -> bool:
        """Whether ``sp`` is a principal an instantiate made that no one has carried any further.

        The service puts tags of its own on a new principal (``WindowsAzureActiveDirectoryIntegratedApp``)
        and may list no template id on it, so neither "no tags" nor the template id decides: a Cloud Sync
        principal (by its template id, or by the job template it offers) with none of our tags, no jobs
        and no secrets is no configuration yet, and nobody else would finish it. Only a principal of the
        template of ``direction`` counts: both directions of one domain have the domain's name.
        """
        if _has_own_tags(sp):
            return False
        r = self.resources
        id = str(sp["id"])
        try:
            if not (r.is_configuration(sp, direction) or r.offers_template(id, job_template_for(direction))):
                return False
            return not r.list_jobs(id) and not r.get_secrets(id)
        except NotFoundError:
            return False  # deleted since it was listed

    def _template_id(self, direction: Direction) -> str:
        """The application template to instantiate for ``direction``, as the service lists it.

        The Entra ID -> AD template id is INFERRED (one community script, docs/graph.md): it is read
        from the service first, and a service that does not offer it is told so, before anything is
        made. The AD -> Entra ID one is documented and used as it is.
        """
        template_id = template_app_id(direction)
        if direction is Direction.AD_TO_ENTRA:
            return template_id
        try:
            found = self.resources.application_template(template_id)
        except NotFoundError:
            raise ConflictError(
                f"the service lists no application template {template_id} (the Entra ID -> AD group "
                "provisioning template this release expects, see docs/graph.md); create the first "
                "Entra ID -> AD configuration in the portal and adopt it with `reconciler import --adopt`"
            ) from None
        return str(found.get("id") or template_id)

    def _instantiate(self, display_name: str, direction: Direction = Direction.AD_TO_ENTRA) -> JSON:
        """``instantiate``, never twice: a principal left unfinished is taken, and after an unknown
        outcome the new principal is looked for before trying again."""
        r = self.resources
        with r.step("display-name:" + display_name.casefold()):
            existing = r.named(display_name)
            for orphan in existing:
                # A run killed between instantiate and tagging left it: take it instead of making another.
                if self._left_unfinished(orphan, direction):
                    return orphan
            template_id = self._template_id(direction)
            before = {found["id"] for found in existing}
            attempt = 0
            while True:
                try:
                    return r.instantiate(display_name, template_id)
                except TransientProviderError as exc:
                    # A principal that was not there before, with this name and nothing on it, is the one
                    # this call made.
                    fresh = [
                        sp
                        for sp in r.named(display_name)
                        if sp["id"] not in before and self._left_unfinished(sp, direction)
                    ]
                    if fresh:
                        return fresh[0]
                    attempt += 1
                    if not r.retry_wait(exc, attempt):
                        raise

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
        extensions: Sequence[DirectoryExtension] = (),
        onprem_attributes: Sequence[OnPremisesAttribute] = (),
    ) -> str:
        r = self.resources
        direction = settings.direction
        to_ad = direction is Direction.ENTRA_TO_AD
        job_template = job_template_for(direction)
        with r.step("name:" + name):
            ours = r.managed_as(name)
            if len(ours) > 1:
                ids = ", ".join(sp["id"] for sp in ours)
                raise ConflictError(f"more than one configuration is managed as {name!r}: {ids}")
            if ours:
                sp, jobs, secrets, _schema = r.load(ours[0]["id"], schema=False)
                provisioning = find_job(jobs, job_template)
                if provisioning is not None and any(s.get("key") == DOMAIN for s in secrets):
                    return str(sp["id"])
            else:
                # The portal names the application after the AD domain; our name goes into a tag.
                sp = self._instantiate(settings.domain or name, direction)
                jobs, secrets = [], []
            id = str(sp["id"])
            with r.step(id):
                # Tagged first: from now on a retry finds this principal instead of making another.
                r.settle(self._set_tags, sp, name, deletion_protection, restart_token)
                job = r.settle(self._ensure_job, id, job_template, jobs)
                # The schema the service made for the job is the base: only what the desired state
                # says is changed in it.
                current = r.settle(r.get_schema, id, job["id"])
                base, current = self._with_onprem_definitions(id, job["id"], current, onprem_attributes)
                seen = self._ensure_extensions(extensions)
                mappings, removals = self._resolved(seen, mappings, removals)
                edited = edit_schema(
                    base,
                    scope=scope,
                    mappings=mappings,
                    removals=removals,
                    password_hash_sync=None if to_ad else settings.password_hash_sync,
                    preview_users=settings.preview_users if to_ad else None,
                )
                if seen is not None:
                    edited = with_definitions(edited, mappings, extensions, seen.app_id)
                self._put_schema(id, job["id"], edited, current)
                jobs = [j for j in jobs if j.get("id") != job["id"]] + [job]
                if to_ad:
                    self._sync_assignments(sp, scope)
                self._sync_companion_jobs(id, jobs, settings)
                # Secrets last: the Domain secret marks the create as finished.
                if not secrets:
                    secrets = r.get_secrets(id)
                new_secrets = self._secrets_to_write(id, settings, secrets)
                if new_secrets is not None:
                    r.put_secrets(id, new_secrets)
            return id

    def update_settings(
        self,
        id: str,
        settings: Settings,
        *,
        deletion_protection: bool,
        restart_token: str | None,
    ) -> None:
        r = self.resources
        with r.step(id):
            sp, jobs, secrets, schema = self._load_managed(id, schema=True)
            tags = parse_tags(sp.get("tags") or [])
            new_secrets = self._secrets_to_write(id, settings, secrets)  # refused before any write
            job = main_job(jobs)
            if job is not None:
                current = schema or r.get_schema(id, job["id"])
                if job.get("templateId") == GROUP_PROVISIONING_TEMPLATE:
                    edited = edit_schema(current, scope=None, preview_users=settings.preview_users)
                else:
                    edited = set_password_hash_mappings(current, settings.password_hash_sync)
                self._put_schema(id, job["id"], edited, current)
            self._sync_companion_jobs(id, jobs, settings)
            # The AppKey secret says whether password hash sync is on, so it goes after the mappings
            # and the job: a run stopped in between reads as not done, and the next plan finishes it.
            if new_secrets is not None:
                r.put_secrets(id, new_secrets)
            self._set_tags(sp, tags.name or "", deletion_protection, restart_token)

    def edit_schema(
        self,
        id: str,
        scope: Scope,
        mappings: Sequence[Mapping],
        removals: Sequence[tuple[str, str]] = (),
        *,
        extensions: Sequence[DirectoryExtension] = (),
        extension_removals: Sequence[str] = (),
        onprem_attributes: Sequence[OnPremisesAttribute] = (),
    ) -> None:
        r = self.resources
        with r.step(id):
            sp, jobs, _secrets, schema = self._load_managed(id, schema=True)
            job = self._provisioning_job(id, jobs)
            current = schema or r.get_schema(id, job["id"])
            # Refused here, before anything is written, when the service has not discovered one.
            base, current = self._with_onprem_definitions(id, job["id"], current, onprem_attributes)
            seen = self._ensure_extensions(extensions)
            if seen is None and extension_removals:
                seen = self.read_extensions()
            mappings, removals = self._resolved(seen, mappings, removals)
            edited = edit_schema(base, scope=scope, mappings=mappings, removals=removals)
            if seen is not None:
                edited = with_definitions(edited, mappings, extensions, seen.app_id)
                edited = without_definitions(edited, extension_removals, seen.app_id)
            self._put_schema(id, job["id"], edited, current)
            if job.get("templateId") == GROUP_PROVISIONING_TEMPLATE:
                self._sync_assignments(sp, scope)
            # The schema no longer speaks of them: now the properties (and their values) may go.
            if seen is not None and extension_removals:
                self._delete_extensions(seen, extension_removals)

    def start(self, id: str) -> None:
        r = self.resources
        with r.step(id):
            jobs = self._load_managed(id).jobs
            provisioning = self._provisioning_job(id, jobs)
            r.job_action(id, provisioning["id"], "start")
            for job in jobs:
                if job["id"] != provisioning["id"]:
                    r.job_action(id, job["id"], "start")

    def pause(self, id: str) -> None:
        r = self.resources
        with r.step(id):
            for job in self._load_managed(id).jobs:
                r.job_action(id, job["id"], "pause")

    def restart(self, id: str, reset_scope: str = RESET_FULL) -> None:
        r = self.resources
        with r.step(id):
            sp, jobs, _secrets, _schema = self._load_managed(id)
            job = self._provisioning_job(id, jobs)
            r.job_action(id, job["id"], "restart", {"criteria": {"resetScope": reset_scope}})
            self._mark_restart(sp, False)

    def exchange_schema_ready(self, id: str) -> bool:
        """Exchange hybrid writeback's documented precondition: a discover of the provisioning job's AD
        directory lists ``mailNickname`` on ``user``. A read: no step, no lock."""
        r = self.resources
        loaded = r.load(id, schema=True)
        job = self._provisioning_job(id, loaded.jobs)
        schema = loaded.schema if loaded.schema is not None else r.get_schema(id, job["id"])
        directories = [d for d in schema.get("directories") or [] if isinstance(d, dict)]
        ad = next((d for d in directories if d.get("name") == _AD_DIRECTORY), None)
        if ad is None or not ad.get("id"):
            raise ConflictError(
                f"configuration {id}: its job schema has no {_AD_DIRECTORY} directory to discover"
            )
        return exchange_schema_present(r.discover(id, job["id"], str(ad["id"])))

    def held_deletes(self, id: str, since: str | None) -> HeldDeletes:
        """How many deletes the quarantine of ``id``'s provisioning job that began ``since`` holds, from
        the provisioning logs (a read only); unknown, with the reason, when they cannot be read."""
        r = self.resources
        job = main_job(r.list_jobs(id))
        if job is None:
            return HeldDeletes(since, None, "the configuration has no provisioning job")
        try:
            entries = r.staged_deletes(str(job["id"]), since)
        except ProviderError as exc:
            return unknown_held_deletes(since, exc)
        return count_held_deletes(entries, str(job["id"]), since)

    def group_sizes(self, ids: Sequence[str]) -> GroupSizes:
        """The direct-member count of each cloud group ``ids`` names (``graph.groups``); a read only."""
        if not ids:
            return GroupSizes()
        try:
            answers = self.resources.group_member_counts(ids)
        except ProviderError as exc:  # the reads as a whole failed: each count is unknown, and why
            answers = [exc] * len(ids)
        return group_sizes_from(ids, answers)

    def filter_selections(self, filters: AbcMapping[str, Filters]) -> dict[str, FilterSelection]:
        """The groups each configuration's all-groups scope selects (``graph.group_scope``), from one
        listing of the tenant's security groups; a read only."""
        if not filters:
            return {}
        try:
            groups = self.resources.security_groups(extension_names(f for fs in filters.values() for f in fs))
        except ProviderError as exc:
            why = read_failed(exc, "/groups", "list groups")
            return {name: FilterSelection(None, why) for name in filters}
        return {name: select_groups(f, groups) for name, f in filters.items()}

    def tenant_size(self) -> TenantSize | None:
        """How many users and groups the tenant holds (``graph.groups``); a read only."""
        try:
            answers = self.resources.tenant_counts()
        except ProviderError as exc:
            answers = [exc, exc]
        return tenant_size_from(answers)

    def approve_deletes(self, id: str, quarantine_since: str) -> None:
        """The documented restart with ForceDeletes, then a tag that says which quarantine's deletes were
        released, so that a plan does not release them again while the service still reports it."""
        r = self.resources
        with r.step(id):
            sp, jobs, _secrets, _schema = self._load_managed(id)
            job = self._provisioning_job(id, jobs)
            r.job_action(id, job["id"], "restart", {"criteria": {"resetScope": RESET_FORCE_DELETES}})
            tags = with_deletes_approved(sp.get("tags") or [], quarantine_since)
            if tags != list(sp.get("tags") or []):
                r.set_tags(id, tags)

    def set_restart_pending(self, id: str, pending: bool) -> None:
        with self.resources.step(id):
            self._mark_restart(self._load_managed(id).sp, pending)

    def delete(self, id: str) -> None:
        """Jobs first (provisioning stops at once), then the application, then the principal.

        Our tag stays on the principal until the very last call, so an interrupted delete is found and
        finished by the next one; every step treats "already gone" as done.
        """
        r = self.resources
        with r.step(id):
            try:
                sp = r.load(id, schema=False).sp
            except NotFoundError:
                return  # already gone, or never a Cloud Sync principal: nothing of ours to delete
            if not parse_tags(sp.get("tags") or []).managed:
                raise ConflictError(f"configuration {id} is not managed by reconciler; adopt it first")
            try:
                jobs = r.list_jobs(id)
            except NotFoundError:
                jobs = []
            for job in jobs:
                with contextlib.suppress(NotFoundError):
                    r.delete_job(id, job["id"])
            app_id = sp.get("appId")
            if isinstance(app_id, str) and app_id:
                # Deleting the application removes its principal too (soft delete: restorable for 30
                # days); it goes first, so an interrupted delete never leaves an application we can no
                # longer find through the principal.
                with contextlib.suppress(NotFoundError):
                    r.delete_application(app_id)
            with contextlib.suppress(NotFoundError):
                r.delete_principal(id)

    def _check_name_free(self, id: str, name: str) -> None:
        others = [other for other in self.resources.managed_as(name) if other["id"] != id]
        if others:
            raise ConflictError(f"configuration {others[0]['id']} is already managed as {name!r}")

    def adopt(self, id: str, name: str) -> None:
        r = self.resources
        with r.step("name:" + name, id):
            sp, jobs, secrets, _schema = r.load(id, schema=False)
            if observe(sp, jobs, secrets, None) is None:
                raise NotFoundError(f"{id} is not a Cloud Sync configuration")
            tags = parse_tags(sp.get("tags") or [])
            if tags.managed:
                if tags.name == name:
                    return
                raise ConflictError(f"configuration {id} is already managed as {tags.name!r}")
            self._check_name_free(id, name)
            self._set_tags(sp, name, False, None)

    def rename(self, id: str, old: str, new: str) -> None:
        r = self.resources
        with r.step("name:" + new, id):
            sp = r.load(id, schema=False).sp
            tags = parse_tags(sp.get("tags") or [])
            if not tags.managed or tags.name not in (old, new):
                raise ConflictError(f"configuration {id} is not the managed configuration {old!r}")
            if tags.name == new:
                return
            self._check_name_free(id, new)
            self._set_tags(sp, new, tags.deletion_protection, tags.restart_token)
