"""What a target supplies to the Cloud Sync write steps (``writes``): ``Resources``, the few Graph-shaped
calls the steps are made of, and what one load of a configuration holds (``Loaded``); the table of jobs
that run beside the provisioning job (``COMPANION_JOBS``); and the create-once step every create uses.

I/O: none of its own; only through the ``Resources`` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from reconciler.core.model import Direction, Settings
from reconciler.errors import ConflictError, ProviderError, TransientProviderError
from reconciler.graph.identity import (
    DEVICE_SYNC_TEMPLATE,
    EXCHANGE_WRITEBACK_TEMPLATE,
    JSON,
    PASSWORD_HASH_TEMPLATE,
)

__all__ = ["COMPANION_JOBS", "CompanionJob", "Loaded", "Resources", "WriteSteps"]

_T = TypeVar("_T")


class Loaded(NamedTuple):
    """A principal with its jobs and secrets, and the provisioning job's schema when it came along
    (None: the step reads it itself)."""

    sp: JSON
    jobs: list[JSON]
    secrets: list[JSON]
    schema: JSON | None


class Resources(Protocol):
    """The Graph-shaped calls a target implements; everything else is ``CloudSyncWriter``'s.

    Each call is one request on the service (``load`` may be one ``$batch``). Missing objects raise
    ``NotFoundError``; an outcome not known (a lost answer) raises ``TransientProviderError``.
    """

    def step(self, *keys: str) -> AbstractContextManager[None]:
        """Around one write step: the local tenant's transaction, Graph's one writer per key."""
        ...

    def settle(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` while a principal made a moment ago may still be replicating (404)."""
        ...

    def retry_wait(self, exc: TransientProviderError, attempt: int) -> bool:
        """After the ``attempt``-th unknown outcome: wait and say True, or say False (give up)."""
        ...

    def is_configuration(self, sp: JSON, direction: Direction) -> bool:
        """Whether principal ``sp`` was made from the Cloud Sync application template of ``direction``."""
        ...

    def load(self, id: str, *, schema: bool) -> Loaded:
        """Principal ``id`` with its jobs and secrets; NotFoundError unless it is a Cloud Sync one."""
        ...

    def managed_as(self, name: str) -> list[JSON]:
        """The Cloud Sync principals our tags say are managed as ``name``."""
        ...

    def named(self, display_name: str) -> list[JSON]:
        """Every principal with display name ``display_name``, of whatever template."""
        ...

    def offers_template(self, id: str, job_template: str) -> bool:
        """Whether principal ``id`` offers the job template ``job_template`` (it is a Cloud Sync app)."""
        ...

    def application_template(self, id: str) -> JSON:
        """``GET /applicationTemplates/{id}``; NotFoundError when the service offers no such template."""
        ...

    def instantiate(self, display_name: str, template_id: str) -> JSON:
        """A new application and principal from application template ``template_id``; returns the
        principal."""
        ...

    def set_tags(self, id: str, tags: list[str]) -> None: ...

    def list_jobs(self, id: str) -> list[JSON]: ...

    def create_job(self, id: str, template_id: str) -> JSON: ...

    def delete_job(self, id: str, job_id: str) -> None: ...

    def job_action(self, id: str, job_id: str, action: str, body: JSON | None = None) -> None:
        """``start``, ``pause`` or ``restart`` (with its body)."""
        ...

    def get_schema(self, id: str, job_id: str) -> JSON: ...

    def put_schema(self, id: str, job_id: str, schema: JSON) -> None: ...

    def get_secrets(self, id: str) -> list[JSON]: ...

    def put_secrets(self, id: str, secrets: list[JSON]) -> None: ...

    def delete_application(self, app_id: str) -> None:
        """The application with ``appId`` ``app_id``, and with it its principal."""
        ...

    def delete_principal(self, id: str) -> None: ...

    def discover(self, id: str, job_id: str, directory_id: str) -> JSON:
        """``POST …/jobs/{job_id}/schema/directories/{directory_id}/discover``: the directory as found now."""
        ...

    # directory extensions: the tenant's Cloud Sync extensions application and its extension properties

    def tenant_id(self) -> str: ...

    def applications_with_uri(self, uri: str) -> list[JSON]:
        """``GET /applications?$filter=identifierUris/any(uri:uri eq '…')``."""
        ...

    def create_application(self, display_name: str, uri: str) -> JSON:
        """``POST /applications`` with ``identifierUris`` ``[uri]``."""
        ...

    def principal_of(self, app_id: str) -> JSON | None:
        """The service principal of the application with ``appId`` ``app_id``, if there is one."""
        ...

    def create_principal(self, app_id: str) -> JSON:
        """``POST /servicePrincipals`` ``{"appId": …}``."""
        ...

    def list_extension_properties(self, app_object_id: str) -> list[JSON]: ...

    def staged_deletes(self, job_id: str, since: str | None) -> list[JSON]:
        """Provisioning-log entries (``provisioningObjectSummary``) that hold the staged deletes of job
        ``job_id`` since ``since`` (more is fine: ``provisioning_logs.count_held_deletes`` sorts them)."""
        ...

    def group_member_counts(self, ids: Sequence[str]) -> list[int | ProviderError | None]:
        """Each cloud group's direct-member count (``groups.member_count_item``): the count, None when
        the answer gave none, or the error the read failed with (``NotFoundError``: no such group)."""
        ...

    def security_groups(self, extensions: Sequence[str] = ()) -> list[JSON]:
        """The tenant's cloud security groups that are not mail-enabled, as Graph's group objects with the
        properties ``group_scope.GROUP_SELECT`` names and the directory extensions ``extensions``
        (``GET /groups``, every page)."""
        ...

    def tenant_counts(self) -> list[int | ProviderError | None]:
        """The tenant's number of users and of groups (``groups.tenant_count_items``), each as
        ``group_member_counts`` gives a count."""
        ...

    def create_extension_property(self, app_object_id: str, body: JSON) -> JSON: ...

    def delete_extension_property(self, app_object_id: str, property_id: str) -> None: ...

    def list_assignments(self, id: str) -> list[JSON]:
        """``GET /servicePrincipals/{id}/appRoleAssignedTo``: who is assigned to principal ``id``."""
        ...

    def assign(self, id: str, assignment: JSON) -> JSON:
        """``POST /servicePrincipals/{id}/appRoleAssignedTo`` (principalId, resourceId, appRoleId)."""
        ...

    def unassign(self, id: str, assignment_id: str) -> None:
        """``DELETE /servicePrincipals/{id}/appRoleAssignedTo/{assignment_id}``."""
        ...


@dataclass(frozen=True)
class CompanionJob:
    """A job beside the provisioning job on the same principal, present exactly when ``wanted``."""

    template_id: str
    wanted: Callable[[Settings], bool]


COMPANION_JOBS: tuple[CompanionJob, ...] = (
    CompanionJob(PASSWORD_HASH_TEMPLATE, lambda settings: settings.password_hash_sync),
    CompanionJob(EXCHANGE_WRITEBACK_TEMPLATE, lambda settings: settings.exchange_hybrid_writeback),
    CompanionJob(DEVICE_SYNC_TEMPLATE, lambda settings: settings.device_sync),
)


class WriteSteps:
    """The base of the write steps: the ``Resources`` they run over, and the step that makes a thing
    exactly once."""

    resources: Resources

    def _made_once(self, make: Callable[[], JSON], look: Callable[[], JSON | None]) -> JSON:
        """``make()``, and after an unknown outcome or a conflict ``look()`` first: what the lost answer
        (or someone else) made is taken instead of making a second one."""
        attempt = 0
        while True:
            try:
                return make()
            except (TransientProviderError, ConflictError) as exc:
                found = look()
                if found is not None:
                    return found
                attempt += 1
                if isinstance(exc, ConflictError) or not self.resources.retry_wait(exc, attempt):
                    raise
