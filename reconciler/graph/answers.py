"""Graph's answers read: errors into the project's error tree, collections, and ``$batch`` answers. Pure:
no I/O (the client hands over what it received).

- A Graph error body becomes the error of its status (``AuthenticationError``, ``NotFoundError``,
  ``ConflictError``, ``TransientProviderError`` with the server's ``Retry-After``, ``ProviderError``),
  with the Graph error ``code`` and ``request-id``; a 403 names the permission the call needs.
- A collection page without its ``value`` list of objects is refused: read as "nothing there" it would
  have the caller create everything again.
- A ``$batch`` answer is read from its JSON text with ``msgspec``, successful bodies left as text for
  the reader that wants them; what that reading does not take as it is is read the plain way.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec
import orjson

from reconciler.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ProviderError,
    TransientProviderError,
)
from reconciler.graph.fields import Unusual, fast_or_plain
from reconciler.graph.identity import JSON

__all__ = [
    "RETRYABLE_STATUS",
    "Inner",
    "batch_answers",
    "collection",
    "error_for",
    "permission_hint",
    "permission_needed",
]

# Statuses of a failure the service may not repeat (with a request that is safe to send again).
RETRYABLE_STATUS = frozenset((500, 502, 503, 504))


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _find_request_id(error: Mapping[str, Any]) -> str | None:
    # The error schema spells it ``innererror``, live responses ``innerError``; it may nest.
    inner: Any = error
    for _ in range(8):
        inner = inner.get("innerError") or inner.get("innererror") if isinstance(inner, Mapping) else None
        if not isinstance(inner, Mapping):
            return None
        rid = inner.get("request-id") or inner.get("requestId")
        if isinstance(rid, str) and rid:
            return rid
    return None


class _BatchAnswer(msgspec.Struct):
    """One inner answer of a ``$batch`` as msgspec reads it: the body kept as its JSON text."""

    id: Any = None
    status: Any = None
    headers: Any = None
    body: msgspec.Raw = msgspec.Raw()


class Inner(NamedTuple):
    """One inner answer of a ``$batch``: its body parsed, or (read raw) the JSON text (bytes) it came as."""

    id: str
    status: Any
    headers: Any
    body: Any  # None when absent


_BATCH_ENVELOPE = msgspec.json.Decoder(dict[str, msgspec.Raw])
_BATCH_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_BATCH_ANSWER = msgspec.json.Decoder(_BatchAnswer)
_NO_LIST = "POST /$batch: the answer has no 'responses' list"


def batch_answers(content: Any, raw: bool) -> list[Inner]:
    """The inner answers of a ``$batch`` answer's JSON text; those that are not objects are left out.

    ``raw``: successful bodies stay JSON text, so the bulk of a batch of schemas is gone through once,
    by the reader that wants it. Whatever the fast reading does not take as it is (bytes that are not
    UTF-8, nesting deeper than it follows, numbers out of range, duplicate keys) is read the plain way,
    which refuses or reads exactly as before.
    """
    if not isinstance(content, bytes):
        raise ProviderError(_NO_LIST)
    return fast_or_plain(
        content,
        lambda text: _batch_answers_fast(text, raw),
        _batch_answers_plain,
        lambda _: TransientProviderError("POST /$batch: the answer is not JSON"),
    )


def _batch_answers_plain(data: Any) -> list[Inner]:
    listed = data.get("responses") if isinstance(data, Mapping) else None
    if not isinstance(listed, list):
        raise ProviderError(_NO_LIST)
    return [
        Inner(str(r.get("id")), r.get("status"), r.get("headers"), r.get("body"))
        for r in listed
        if isinstance(r, Mapping)
    ]


def _first_byte(text: msgspec.Raw) -> bytes:
    return bytes(memoryview(text)[:64]).lstrip()[:1]


def _batch_answers_fast(content: bytes, raw: bool) -> list[Inner]:
    try:
        envelope = _BATCH_ENVELOPE.decode(content)
        responses = envelope.get("responses")
        if responses is None or _first_byte(responses) != b"[":
            raise Unusual
        answers = []
        for item in _BATCH_LIST.decode(responses):
            if _first_byte(item) != b"{":
                continue  # not an object: treated as missing
            answer = _BATCH_ANSWER.decode(item)
            status, text = answer.status, answer.body
            if not len(text):
                body: Any = None
            elif raw and type(status) is int and 200 <= status < 400:
                answers.append(Inner(str(answer.id), status, answer.headers, bytes(text)))
                continue
            else:
                body = orjson.loads(memoryview(text))
            answers.append(Inner(str(answer.id), status, answer.headers, body))
        return answers
    except (msgspec.MsgspecError, ValueError, RecursionError) as exc:
        # msgspec's errors, UnicodeDecodeError and orjson's JSONDecodeError (both ValueErrors), and
        # nesting deeper than msgspec follows (it counts the interpreter's recursion limit).
        raise Unusual from exc


def collection(data: Any, what: str) -> list[JSON]:
    """The ``value`` of a collection page; a page without a list of objects there is refused."""
    values = data.get("value") if isinstance(data, Mapping) else None
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise ProviderError(f"{what}: the answer is not a collection (no 'value' list of objects)")
    return values


def permission_needed(what: str) -> str:
    """The least-privileged Graph permission the call ``what`` (``METHOD /path``) needs.

    From the permission tables of Microsoft's API reference pages: the synchronization calls (jobs,
    schema, secrets, templates) need ``Synchronization.Read.All`` to read and
    ``Synchronization.ReadWrite.All`` to write; reading service principals and applications needs
    ``Application.Read.All``; ``instantiate`` and changing or deleting a principal or an application
    need ``Application.ReadWrite.All``; listing groups and their members needs
    ``GroupMember.Read.All``, listing users ``User.Read.All``. An app-only identity may have
    ``Application.ReadWrite.OwnedBy`` instead, which covers the application calls for the
    applications it owns.
    """
    method, _, path = what.partition(" ")
    path = path.lower()
    reads = method.upper() == "GET"
    if path.lstrip("/").startswith("auditlogs/"):
        # "List provisioningObjectSummary" (with Directory.Read.All beside it).
        return "AuditLog.Read.All"
    first = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
    if first == "groups" and reads:
        # "List groups" and "List group members" (the limits of Entra ID -> AD group provisioning).
        return "GroupMember.Read.All"
    if first == "users" and reads:
        # "List users", application permission (the tenant's size, for scoping all groups).
        return "User.Read.All"
    if "/approleassignedto" in path and not reads:
        # Entra ID -> AD selected groups ("Grant an appRoleAssignment for a service principal").
        return "AppRoleAssignment.ReadWrite.All"
    if "/synchronization/" in path or path.endswith("/synchronization"):
        return "Synchronization.Read.All" if reads else "Synchronization.ReadWrite.All"
    if reads:
        return "Application.Read.All"
    return "Application.ReadWrite.All"


def permission_hint(what: str) -> str:
    """What a 403 to ``what`` tells the user: the permission the call needs, and the role."""
    return (
        f"the call needs the Graph permission {permission_needed(what)} (an app-only identity may have "
        "Application.ReadWrite.OwnedBy instead, for applications it owns); a person signing in also "
        "needs a role that allows it, such as Hybrid Identity Administrator"
    )


def error_for(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    what: str,
    *,
    auth_hint: str = "",
    scrub: Callable[[str], str] = lambda s: s,
) -> ProviderError:
    """The project error for a Graph error response ``status``/``body`` to request ``what``."""
    error = body.get("error") if isinstance(body, Mapping) else None
    code: str | None = None
    message = ""
    request_id = headers.get("request-id") or headers.get("client-request-id")
    if isinstance(error, Mapping):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = str(error.get("message") or "")
        request_id = _find_request_id(error) or request_id
    message = scrub(" ".join(message.split()))[:500]
    text = f"{what}: {message}" if message else f"{what} failed"
    kwargs: dict[str, Any] = {"code": code, "status": status, "request_id": request_id}
    if status == 401:
        reason = (message or "unauthorized").rstrip(".")
        return AuthenticationError(
            f"the target refused the credentials: {reason}" + (f". {auth_hint}" if auth_hint else ""),
            **kwargs,
        )
    if status == 403:
        return AuthenticationError(f"{text}; {permission_hint(what)}", **kwargs)
    if status == 404:
        return NotFoundError(text, **kwargs)
    if status in (409, 412):
        return ConflictError(text, **kwargs)
    if status == 429 or status in RETRYABLE_STATUS:
        retry_after = _parse_retry_after(headers.get("retry-after"))
        return TransientProviderError(text, retry_after=retry_after, **kwargs)
    return ProviderError(text, **kwargs)
