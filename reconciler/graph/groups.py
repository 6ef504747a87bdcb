"""Cloud groups' direct-member counts, and the tenant's numbers of users and groups, as Graph gives them:
the requests, and their answers read.

A count is one ``GET /groups/{id}/members?$count=true&$top=1&$select=id`` with the header
``ConsistencyLevel: eventual`` ("List group members": ``$count`` is an advanced query on directory
objects, GroupMember.Read.All at least). The collection form is used rather than the ``/$count``
segment because its answer is JSON inside a ``$batch`` too, and ``$top=1`` keeps the page to one
member. The tenant's users and groups are counted the same way (``GET /users`` and ``GET /groups``,
"List users" needs User.Read.All, "List groups" GroupMember.Read.All). Microsoft's advanced-query page
says a query may drop ``@odata.count`` without an error, so an answer without a whole-number count is
an unknown count, never zero.

I/O: none; pure values (the requests go out through ``GraphClient.batch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.core.group_limits import GroupSize, GroupSizes, TenantSize
from reconciler.errors import NotFoundError, ProviderError
from reconciler.graph.answers import permission_needed
from reconciler.graph.client import BatchItem, segment

__all__ = [
    "counts_of",
    "group_sizes_from",
    "member_count",
    "member_count_item",
    "read_failed",
    "tenant_count_items",
    "tenant_size_from",
]

_EVENTUAL = {"ConsistencyLevel": "eventual"}
_COUNT = "?$count=true&$top=1&$select=id"
# The collections counted for the tenant's size, and what is counted in each.
_TENANT = (("/users", "users"), ("/groups", "groups"))


def read_failed(exc: ProviderError, path: str, what: str) -> str:
    """Why a read (``GET path``) of the limits failed, for a warning: a 403 names the permission it
    needs (``answers.permission_needed``)."""
    if exc.status == 403:
        return f"the identity lacks {permission_needed(f'GET {path}')} to {what} (HTTP 403)"
    return f"could not {what}: {exc}"


def member_count_item(id: str) -> BatchItem:
    """The request that counts group ``id``'s direct members."""
    return BatchItem("GET", f"/groups/{segment(id)}/members{_COUNT}", headers=_EVENTUAL)


def tenant_count_items() -> list[BatchItem]:
    """The requests that count the tenant's users and groups, in that order."""
    return [BatchItem("GET", path + _COUNT, headers=_EVENTUAL) for path, _ in _TENANT]


def counts_of(answers: Sequence[Any]) -> list[int | ProviderError | None]:
    """The count of each ``$batch`` answer of ``member_count_item`` or ``tenant_count_items``, or the
    error it failed with."""
    return [a if isinstance(a, ProviderError) else member_count(a) for a in answers]


def member_count(answer: Any) -> int | None:
    """The ``@odata.count`` of an answer: a whole number of at least 0, or None."""
    count = answer.get("@odata.count") if isinstance(answer, dict) else None
    return count if type(count) is int and count >= 0 else None


def _size(answer: int | ProviderError | None) -> GroupSize:
    if isinstance(answer, NotFoundError):
        return GroupSize(missing=True)
    if isinstance(answer, ProviderError):
        return GroupSize(unknown=read_failed(answer, "/groups/{id}/members", "read group members"))
    if answer is None:
        return GroupSize(unknown="the service gave no member count")
    return GroupSize(members=answer)


def group_sizes_from(ids: Sequence[str], answers: Sequence[int | ProviderError | None]) -> GroupSizes:
    """Each group's size from its answer: a count, None (no count given) or the error it failed with."""
    return GroupSizes.of((id, _size(answer)) for id, answer in zip(ids, answers, strict=True))


def tenant_size_from(answers: Sequence[int | ProviderError | None]) -> TenantSize:
    """The tenant's size from the answers of ``tenant_count_items``."""
    counts: list[int | None] = []
    why: list[str] = []
    for (path, what), answer in zip(_TENANT, answers, strict=True):
        counts.append(answer if isinstance(answer, int) else None)
        if isinstance(answer, ProviderError):
            why.append(read_failed(answer, path, f"count {what}"))
        elif answer is None:
            why.append(f"the service gave no count of {what}")
    return TenantSize(counts[0], counts[1], "; ".join(why) or None)
