"""The synchronization API's paths and query pieces, and its answers checked on arrival. Pure: no I/O.

Every request the ``graph`` target sends names a service principal, its jobs, secrets, schema or
app-role assignments by one of these paths (ids percent-encoded: they are opaque); every collection,
job, secret set and schema it reads is checked (``checks``) before anything uses it.
"""

from __future__ import annotations

from typing import Any

from reconciler.errors import ProviderError
from reconciler.graph.checks import check_job, check_schema, check_secrets
from reconciler.graph.client import segment
from reconciler.graph.identity import JSON

__all__ = [
    "PAGE_SIZE",
    "SP_SELECT",
    "assignments_path",
    "body_of",
    "job_path",
    "jobs_in",
    "jobs_path",
    "new_object",
    "odata",
    "schema_in",
    "secrets_in",
    "secrets_path",
    "sp_path",
    "values",
]

# Only what the provider reads from a service principal; a full one is many times larger.
SP_SELECT = "id,appId,displayName,tags,applicationTemplateId,servicePrincipalNames"
# Graph's largest page for service principals.
PAGE_SIZE = "999"


def odata(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def sp_path(id: str) -> str:
    """A service principal."""
    return f"/servicePrincipals/{segment(id)}"


def jobs_path(id: str) -> str:
    """The synchronization jobs of a service principal."""
    return f"{sp_path(id)}/synchronization/jobs"


def job_path(id: str, job_id: str) -> str:
    """One synchronization job."""
    return f"{jobs_path(id)}/{segment(job_id)}"


def secrets_path(id: str) -> str:
    """The synchronization secrets of a service principal."""
    return f"{sp_path(id)}/synchronization/secrets"


def assignments_path(id: str) -> str:
    """The app-role assignments to a service principal (an Entra ID -> AD one's selected groups)."""
    return f"{sp_path(id)}/appRoleAssignedTo"


def values(data: Any, what: str) -> list[JSON]:
    """The ``value`` list of a collection answer to ``what``; refused when there is none."""
    # A collection without its list would read as "none": no jobs, no secrets, and so a create again.
    found = data.get("value") if isinstance(data, dict) else None
    if not isinstance(found, list):
        raise ProviderError(f"{what}: the service's answer is not a collection (no 'value' list)")
    return found


def jobs_in(data: Any, id: str) -> list[JSON]:
    """The jobs of ``id`` in a collection answer, each checked."""
    return [check_job(job, id) for job in values(data, f"the jobs of {id}")]


def secrets_in(data: Any, id: str) -> list[JSON]:
    """The secret set of ``id`` in a collection answer, checked."""
    return check_secrets(values(data, f"the secrets of {id}"), id)


def schema_in(data: Any, path: str) -> JSON:
    """The job schema the service answered for ``path``, checked."""
    return check_schema(data, f"the schema at {path}")


def body_of(result: Any) -> Any:
    """A ``$batch`` result: the body, or its error raised."""
    if isinstance(result, ProviderError):
        raise result
    return result


def new_object(answer: Any, what: str) -> JSON:
    """The object a create answered with; refused when it has no id."""
    if not isinstance(answer, dict) or not answer.get("id"):
        raise ProviderError(f"the service did not return the new {what}")
    return answer
