"""Cloud groups' direct-member counts, as Graph gives them: the request, and its answers read.

A count is one ``GET /groups/{id}/members?$count=true&$top=1&$select=id`` with the header
``ConsistencyLevel: eventual`` ("List group members": ``$count`` is an advanced query on directory
objects, GroupMember.Read.All at least). The collection form is used rather than the ``/$count``
segment because its answer is JSON inside a ``$batch`` too, and ``$top=1`` keeps the page to one
member. Microsoft's advanced-query page says a query may drop ``@odata.count`` without an error, so
an answer without a whole-number count is an unknown count, never zero.

I/O: none; pure values (the requests go out through ``GraphClient.batch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.core.group_limits import GroupSize, GroupSizes
from reconciler.errors import NotFoundError, ProviderError
from reconciler.graph.client import BatchItem, segment

__all__ = ["MEMBER_READ_PERMISSION", "group_sizes_from", "member_count", "member_count_item"]

# The least-privileged permission of "List group members".
MEMBER_READ_PERMISSION = "GroupMember.Read.All"
_EVENTUAL = {"ConsistencyLevel": "eventual"}


def member_count_item(id: str) -> BatchItem:
    """The request that counts group ``id``'s direct members."""
    return BatchItem("GET", f"/groups/{segment(id)}/members?$count=true&$top=1&$select=id", headers=_EVENTUAL)


def member_count(answer: Any) -> int | None:
    """The ``@odata.count`` of an answer: a whole number of at least 0, or None."""
    count = answer.get("@odata.count") if isinstance(answer, dict) else None
    return count if type(count) is int and count >= 0 else None


def _size(answer: int | ProviderError | None) -> GroupSize:
    if isinstance(answer, NotFoundError):
        return GroupSize(missing=True)
    if isinstance(answer, ProviderError):
        if answer.status == 403:
            why = f"the identity lacks {MEMBER_READ_PERMISSION} to read group members (HTTP 403)"
            return GroupSize(unknown=why)
        return GroupSize(unknown=f"the members could not be counted: {answer}")
    if answer is None:
        return GroupSize(unknown="the service gave no member count")
    return GroupSize(members=answer)


def group_sizes_from(ids: Sequence[str], answers: Sequence[int | ProviderError | None]) -> GroupSizes:
    """Each group's size from its answer: a count, None (no count given) or the error it failed with."""
    return GroupSizes.of((id, _size(answer)) for id, answer in zip(ids, answers, strict=True))
