"""The HTTP client the Graph provider talks through: tokens, retries, concurrency, ``$batch``, errors.

I/O: HTTP(S) requests to one Graph base URL (``https://graph.microsoft.com/v1.0`` or an emulator), and,
for the real service only, azure-identity's credential chain (imported on first use). Nothing is
written anywhere else; no token is ever logged, echoed or put into an error message.

- Connections are pooled and reused (one ``httpx.Client``); at most ``concurrency`` requests are on
  the wire at once (a semaphore, released while a retry waits).
- Retries: 429 always (the request was refused, not carried out); 500/502/503/504, timeouts and dropped
  connections only for requests that are safe to repeat. A server-given ``Retry-After`` is waited out
  in full; otherwise exponential backoff with jitter. A non-idempotent request that fails in a way that
  leaves its outcome unknown raises ``TransientProviderError``; the caller looks before it sends again.
- ``batch`` packs GETs into ``$batch`` requests of at most 20 and retries throttled inner requests.
- Graph error bodies become the project's error tree with the Graph error ``code`` and ``request-id``.
- An answer is not believed blindly: a body larger than ``MAX_ANSWER_BYTES`` or slower to arrive than
  ``BODY_DEADLINE_FACTOR`` times the timeout, a collection without its ``value`` list, a next-page link
  already followed, or a ``$batch`` answer of the wrong shape is a ``ProviderError``. An answer taken
  as "nothing there" by mistake would have the caller create everything again.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import httpx
import msgspec
import orjson

from reconciler import __version__
from reconciler.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ProviderError,
    TransientProviderError,
)

__all__ = [
    "BATCH_LIMIT",
    "GRAPH_HOSTS",
    "GRAPH_SCOPE_SUFFIX",
    "TOKEN_ENV",
    "AzureIdentityToken",
    "BatchItem",
    "GraphClient",
    "NoToken",
    "RetryPolicy",
    "StaticToken",
    "TokenProvider",
    "check_token",
    "permission_hint",
    "permission_needed",
    "segment",
    "token_provider_for",
]

JSON = dict[str, Any]

TOKEN_ENV = "RECONCILER_GRAPH_TOKEN"
GRAPH_SCOPE_SUFFIX = "/.default"
# Microsoft Graph in the global, US government and China clouds: the only hosts that get tokens from
# the azure-identity chain.
GRAPH_HOSTS = frozenset(
    ("graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn")
)
# Graph refuses a $batch of more than 20 requests.
BATCH_LIMIT = 20
# Far above any answer the service gives (a $batch of 20 whole schemas is a few MiB).
MAX_ANSWER_BYTES = 256 * 1024 * 1024
# The most pages one collection is followed for. Graph pages hold up to 999 objects, so this is far
# beyond any tenant's listing; a service sending new next-page links for ever would page for ever.
MAX_PAGES = 20_000
# The timeout holds between two reads; a body that trickles in is cut off after this many timeouts.
BODY_DEADLINE_FACTOR = 5
_RETRYABLE_STATUS = frozenset((500, 502, 503, 504))
_USER_AGENT = f"reconciler/{__version__}"


def segment(value: str) -> str:
    """One URL path segment, percent-encoded (ids are opaque; they may hold any character)."""
    return urllib.parse.quote(value, safe="")


# --------------------------------------------------------------------------------------------------
# tokens


class TokenProvider(Protocol):
    #: what to tell the user when the service refuses the credentials (never the token itself)
    rejected_hint: str

    def token(self) -> str | None:
        """A bearer token, or None to send no Authorization header."""
        ...

    def invalidate(self) -> bool:
        """Forget a token the service rejected; True when asking again may give a different one."""
        ...


class NoToken:
    """No credentials: for an emulator started without ``--token``."""

    rejected_hint = f"no token was sent; set {TOKEN_ENV} to the bearer token the target expects"

    def token(self) -> str | None:
        return None

    def invalidate(self) -> bool:
        return False


class StaticToken:
    """A bearer token given as is (``RECONCILER_GRAPH_TOKEN``); it cannot be refreshed."""

    rejected_hint = (
        f"the token in {TOKEN_ENV} was refused (expired, or not for Microsoft Graph); set a fresh one"
    )

    def __init__(self, value: str) -> None:
        self._value = value.strip()

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"

    def token(self) -> str | None:
        return self._value

    def invalidate(self) -> bool:
        return False


_SECRET_VARIABLES = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE")


def missing_credential(env: Mapping[str, str] | None = None) -> str:
    """Which variable or sign-in is missing, judged from the environment azure-identity reads."""
    env = os.environ if env is None else env
    ids = [v for v in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if env.get(v)]
    if ids:
        absent = [v for v in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if v not in ids]
        if absent:
            return f"{ids[0]} is set but {absent[0]} is not"
        if not any(env.get(v) for v in _SECRET_VARIABLES):
            return "AZURE_TENANT_ID and AZURE_CLIENT_ID are set but none of " + ", ".join(_SECRET_VARIABLES)
        return "the AZURE_* credentials were refused by Microsoft Entra ID"
    return (
        f"set {TOKEN_ENV}, or AZURE_TENANT_ID and AZURE_CLIENT_ID with a secret, certificate or "
        "federated token, or sign in with `az login` (or run with a managed identity)"
    )


class AzureIdentityToken:
    """Tokens from azure-identity's ``DefaultAzureCredential``, cached until shortly before they expire.

    The chain covers environment credentials, workload identity federation (CI), managed identity and
    the Azure CLI; the library is imported on first use so that other targets never load it.
    """

    rejected_hint = (
        "the token from azure-identity was refused; check which identity signed in (AZURE_* variables, "
        "workload identity, managed identity or `az login`) and its tenant"
    )
    # Renew this long before expiry, so that a token never runs out during a request.
    _MARGIN = 300.0

    def __init__(self, scope: str, credential: Any = None) -> None:
        self.scope = scope
        self._credential = credential
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AzureIdentityToken(scope={self.scope!r})"

    def _get_credential(self) -> Any:
        if self._credential is None:
            try:
                from azure.identity import DefaultAzureCredential
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise AuthenticationError(
                    f"azure-identity is not installed; set {TOKEN_ENV} to a bearer token instead"
                ) from exc
            # azure-identity logs every credential of its chain that failed as a warning, several
            # hundred characters that Python prints to stderr when no logging is set up; the error
            # raised in token() says what is missing in one line. Records still reach handlers an
            # application sets up itself.
            quiet = logging.getLogger("azure.identity")
            if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
                quiet.addHandler(logging.NullHandler())
            # The interactive browser stays off: this runs in pipelines as often as at a desk.
            self._credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return self._credential

    def token(self) -> str | None:
        with self._lock:
            if self._token is not None and time.time() < self._expires_on - self._MARGIN:
                return self._token
            try:
                from azure.core.exceptions import ClientAuthenticationError
            except ImportError:  # pragma: no cover - azure-core comes with azure-identity
                ClientAuthenticationError = Exception  # type: ignore[misc,assignment]
            try:
                access = self._get_credential().get_token(self.scope)
            except ClientAuthenticationError:
                # azure-identity's own message lists every credential of its chain, several hundred
                # characters; one line saying what is missing serves better.
                raise AuthenticationError(
                    f"no Microsoft Graph credentials: {missing_credential()} "
                    "(sign-in: docs/graph.md, 'Pointing at a tenant')"
                ) from None
            self._token = str(access.token)
            self._expires_on = float(access.expires_on)
            return self._token

    def invalidate(self) -> bool:
        with self._lock:
            had = self._token is not None
            self._token = None
            self._expires_on = 0.0
        return had


def check_token(value: str, where: str) -> None:
    """Refuse a bearer token that cannot go into an HTTP header as it is; the token is never quoted."""
    if not value.isascii():
        raise AuthenticationError(
            f"the token in {where} holds a character that is not ASCII; set the token alone"
        )
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in value):
        raise AuthenticationError(
            f"the token in {where} holds a space, a line break or a control character; set the token alone"
        )


def token_provider_for(base_url: str, env: Mapping[str, str] | None = None) -> TokenProvider:
    """``RECONCILER_GRAPH_TOKEN`` when set; else azure-identity for Microsoft's own Graph hosts only.

    An emulator or proxy never gets credentials from the azure-identity chain: a token for the real
    tenant must not be sent to an address the user typed for something else.
    """
    env = os.environ if env is None else env
    value = env.get(TOKEN_ENV, "").strip()
    if value:
        check_token(value, TOKEN_ENV)
        return StaticToken(value)
    parts = urllib.parse.urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host in GRAPH_HOSTS and parts.port in (None, 443):
        return AzureIdentityToken(f"https://{host}{GRAPH_SCOPE_SUFFIX}")
    return NoToken()


# --------------------------------------------------------------------------------------------------
# retries


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry. Delays are in seconds."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A longer Retry-After than this is not waited out: the error goes to the user instead.
    max_retry_after: float = 300.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with jitter for retry number ``attempt`` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0**attempt)
        # Half fixed, half random: never a zero wait, and parallel clients spread out.
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def after(self, retry_after: float, rng: random.Random) -> float:
        """The wait for a server-given Retry-After: all of it, plus a little jitter."""
        return retry_after + rng.uniform(0, min(1.0, 0.1 * retry_after + 0.05))


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


# --------------------------------------------------------------------------------------------------
# errors


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


class _Inner(NamedTuple):
    """One inner answer of a ``$batch``: its body parsed, or (read raw) the JSON text (bytes) it came as."""

    id: str
    status: Any
    headers: Any
    body: Any  # None when absent


_BATCH_ENVELOPE = msgspec.json.Decoder(dict[str, msgspec.Raw])
_BATCH_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_BATCH_ANSWER = msgspec.json.Decoder(_BatchAnswer)
_NO_LIST = "POST /$batch: the answer has no 'responses' list"


class _Unusual(Exception):
    """The fast reading of a ``$batch`` answer met something it leaves to the plain one."""


def _batch_answers(content: Any, raw: bool) -> list[_Inner]:
    """The inner answers of a ``$batch`` answer's JSON text; those that are not objects are left out.

    ``raw``: successful bodies stay JSON text, so the bulk of a batch of schemas is gone through once,
    by the reader that wants it. Whatever the fast reading does not take as it is (bytes that are not
    UTF-8, nesting deeper than it follows, numbers out of range, duplicate keys) is read the plain way,
    which refuses or reads exactly as before.
    """
    if not isinstance(content, bytes):
        raise ProviderError(_NO_LIST)
    try:
        return _batch_answers_fast(content, raw)
    except _Unusual:
        pass
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise TransientProviderError("POST /$batch: the answer is not JSON") from exc
    listed = data.get("responses") if isinstance(data, Mapping) else None
    if not isinstance(listed, list):
        raise ProviderError(_NO_LIST)
    return [
        _Inner(str(r.get("id")), r.get("status"), r.get("headers"), r.get("body"))
        for r in listed
        if isinstance(r, Mapping)
    ]


def _first_byte(text: msgspec.Raw) -> bytes:
    return bytes(memoryview(text)[:64]).lstrip()[:1]


def _batch_answers_fast(content: bytes, raw: bool) -> list[_Inner]:
    try:
        envelope = _BATCH_ENVELOPE.decode(content)
        responses = envelope.get("responses")
        if responses is None or _first_byte(responses) != b"[":
            raise _Unusual
        answers = []
        for item in _BATCH_LIST.decode(responses):
            if _first_byte(item) != b"{":
                continue  # not an object: treated as missing
            answer = _BATCH_ANSWER.decode(item)
            status, text = answer.status, answer.body
            if not len(text):
                body: Any = None
            elif raw and type(status) is int and 200 <= status < 400:
                answers.append(_Inner(str(answer.id), status, answer.headers, bytes(text)))
                continue
            else:
                body = orjson.loads(memoryview(text))
            answers.append(_Inner(str(answer.id), status, answer.headers, body))
        return answers
    except (msgspec.MsgspecError, ValueError, RecursionError) as exc:
        # msgspec's errors, UnicodeDecodeError and orjson's JSONDecodeError (both ValueErrors), and
        # nesting deeper than msgspec follows (it counts the interpreter's recursion limit).
        raise _Unusual from exc


def _collection(data: Any, what: str) -> list[JSON]:
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
    need ``Application.ReadWrite.All``. An app-only identity may have ``Application.ReadWrite.OwnedBy``
    instead, which covers all of these for the applications it owns.
    """
    method, _, path = what.partition(" ")
    path = path.lower()
    reads = method.upper() == "GET"
    if path.lstrip("/").startswith("auditlogs/"):
        # "List provisioningObjectSummary" (with Directory.Read.All beside it).
        return "AuditLog.Read.All"
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
    if status == 429 or status in _RETRYABLE_STATUS:
        retry_after = _parse_retry_after(headers.get("retry-after"))
        return TransientProviderError(text, retry_after=retry_after, **kwargs)
    return ProviderError(text, **kwargs)


# --------------------------------------------------------------------------------------------------
# the client


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request inside a ``$batch``: ``url`` is relative to the version, e.g. ``/servicePrincipals/x``."""

    method: str
    url: str
    body: Any = None

    @property
    def idempotent(self) -> bool:
        return self.method.upper() != "POST"


@dataclass(frozen=True, slots=True)
class _Answer:
    """A response read in full (within the size and time limits)."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except RecursionError:
            # Nested deeper than the parser can go: no answer of the service is.
            raise ValueError("the answer is nested too deeply") from None


class GraphClient:
    """A thread-safe Graph client for one base URL. See the module docstring for its rules."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        *,
        concurrency: int = 10,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.concurrency = max(1, concurrency)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._count_lock = threading.Lock()
        self.requests_sent = 0
        # The tokens this client has sent, so that no error text can carry one (see _scrub).
        self._sent_tokens: set[str] = set()
        # Only for the chunks of one batch() call; nothing running on it waits for other work on it.
        self._executor: ThreadPoolExecutor | None = None
        origin = urllib.parse.urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._http.close()

    # -- helpers -----------------------------------------------------------------------------------

    def wait(self, retry_after: float | None, attempt: int) -> None:
        """Sleep before retry number ``attempt`` (0-based): Retry-After when given, else backoff."""
        self._sleep(self._delay(retry_after, attempt))

    def _delay(self, retry_after: float | None, attempt: int) -> float:
        """How long to wait before retry number ``attempt`` (0-based)."""
        with self._rng_lock:
            if retry_after is not None:
                return self.retry.after(retry_after, self._rng)
            return self.retry.backoff(attempt, self._rng)

    def _scrub(self, text: str) -> str:
        # Belt and braces: should a service ever echo the token, it still never reaches the user.
        for token in tuple(self._sent_tokens):
            if token in text:
                text = text.replace(token, "***")
        return text

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            parts = urllib.parse.urlsplit(path)
            # A nextLink on another host would get our token: refuse it.
            if (parts.scheme, parts.netloc) != self._origin:
                raise ProviderError(f"the service sent a link to another host ({parts.netloc}); not followed")
            return path
        return self.base_url + path

    def _error(self, response: _Answer, what: str) -> ProviderError:
        try:
            body = orjson.loads(response.content)
        except ValueError:
            body = None
        return error_for(
            response.status_code,
            body,
            response.headers,
            what,
            auth_hint=self.tokens.rejected_hint,
            scrub=self._scrub,
        )

    def _send_once(self, method: str, url: str, params: Mapping[str, str] | None, body: Any) -> _Answer:
        headers = {"client-request-id": str(uuid.uuid4())}
        token = self.tokens.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
            if token not in self._sent_tokens:
                self._sent_tokens.add(token)
        content: bytes | None = None
        if body is not None:
            content = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
            headers["Content-Type"] = "application/json"
        with self._slots:
            with self._count_lock:
                self.requests_sent += 1
            request = self._http.build_request(method, url, params=params, content=content, headers=headers)
            response = self._http.send(request, stream=True)
            try:
                return _Answer(response.status_code, response.headers, self._read_body(response))
            finally:
                response.close()

    def _read_body(self, response: httpx.Response) -> bytes:
        what = f"{response.request.method} {response.request.url.path}"
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
            raise ProviderError(f"{what}: the answer is too large ({declared} bytes); not read")
        deadline = time.monotonic() + self.timeout * BODY_DEADLINE_FACTOR
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise ProviderError(f"{what}: the answer is larger than {MAX_ANSWER_BYTES} bytes; not read")
            if time.monotonic() > deadline:
                raise ProviderError(
                    f"{what}: the answer was still arriving after {self.timeout * BODY_DEADLINE_FACTOR:g}s"
                )
        return bytes(body)

    # -- requests ----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
        raw: bool = False,
    ) -> Any:
        """Send one request with retries; the parsed JSON body, or None when there is none.

        ``raw``: a successful answer's body is given as it came (bytes), not parsed.
        """
        method = method.upper()
        safe = (method != "POST") if idempotent is None else idempotent
        url = self._url(path)
        what = f"{method} {urllib.parse.urlsplit(url).path}"
        reauthenticated = False
        attempt = 0
        while True:
            try:
                response = self._send_once(method, url, params, body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached the service: safe to send again, whatever the method.
                error: ProviderError = TransientProviderError(
                    f"{what}: cannot connect ({type(exc).__name__})"
                )
                retry_after = None
                retry = True
            except httpx.TimeoutException as exc:
                error = TransientProviderError(f"{what}: no answer in time ({type(exc).__name__})")
                retry_after, retry = None, safe
            except httpx.TransportError as exc:
                error = TransientProviderError(f"{what}: the connection was dropped ({type(exc).__name__})")
                retry_after, retry = None, safe
            else:
                status = response.status_code
                if status < 400:
                    if status == 204 or not response.content:
                        return None
                    if raw:
                        return response.content
                    try:
                        return orjson.loads(response.content)
                    except ValueError as exc:
                        raise TransientProviderError(f"{what}: the answer is not JSON") from exc
                error = self._error(response, what)
                if status == 401 and not reauthenticated and self.tokens.invalidate():
                    # An expired cached token: get a fresh one once.
                    reauthenticated = True
                    continue
                retry_after = error.retry_after if isinstance(error, TransientProviderError) else None
                retry = status == 429 or (status in _RETRYABLE_STATUS and safe)
            attempt += 1
            if not retry or attempt >= self.retry.max_attempts:
                raise error
            if retry_after is not None and retry_after > self.retry.max_retry_after:
                raise error
            self._sleep(self._delay(retry_after, attempt - 1))

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[list[JSON]]:
        """The ``value`` of each page of a collection, following ``@odata.nextLink``."""
        what = f"GET {urllib.parse.urlsplit(self._url(path)).path}"
        data = self.get(path, params)
        followed: set[str] = set()
        while True:
            yield _collection(data, what)
            link = data.get("@odata.nextLink")
            if link is None or link == "":
                return
            if not isinstance(link, str):
                raise ProviderError(f"{what}: the next-page link is not a URL")
            if link in followed:
                # Following it again would page for ever.
                raise ProviderError(f"{what}: the service sent a next-page link it had sent before")
            if len(followed) + 1 >= MAX_PAGES:
                raise ProviderError(f"{what}: the service sent more than {MAX_PAGES} pages")
            followed.add(link)
            data = self.get(link)

    def batch(self, items: Sequence[BatchItem], *, raw: bool = False) -> list[Any]:
        """Send ``items`` as ``$batch`` requests of at most 20; one result per item, in order.

        A result is the inner response's JSON body (None when it has none) or the ``ProviderError``
        it failed with. Throttled or failed inner requests that are safe to repeat are sent again.
        ``raw``: a successful body is given as its JSON text (bytes) where the answer could be read
        the fast way, parsed where it could not; the reader takes either.
        """
        results: list[Any] = [None] * len(items)
        chunks = [list(range(s, min(s + BATCH_LIMIT, len(items)))) for s in range(0, len(items), BATCH_LIMIT)]
        if len(chunks) <= 1:
            for chunk in chunks:
                self._batch_chunk(items, chunk, results, raw)
            return results
        # Chunks go out side by side; the semaphore still bounds what is on the wire.
        futures = [self._pool().submit(self._batch_chunk, items, chunk, results, raw) for chunk in chunks]
        for future in futures:
            future.result()
        return results

    def _pool(self) -> ThreadPoolExecutor:
        with self._count_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="graph-batch")
            return self._executor

    def _batch_chunk(
        self, items: Sequence[BatchItem], indexes: list[int], results: list[Any], raw: bool
    ) -> None:
        pending = indexes
        attempt = 0
        while pending:
            requests = []
            for i in pending:
                item = items[i]
                request: JSON = {"id": str(i), "method": item.method.upper(), "url": item.url}
                if item.body is not None:
                    request["body"] = item.body
                    request["headers"] = {"Content-Type": "application/json"}
                requests.append(request)
            safe = all(items[i].idempotent for i in pending)
            content = self.request("POST", "/$batch", body={"requests": requests}, idempotent=safe, raw=True)
            responses = {r.id: r for r in _batch_answers(content, raw)}
            again: list[int] = []
            waits: list[float] = []
            for i in pending:
                item = items[i]
                what = f"{item.method.upper()} {item.url.split('?')[0]}"
                response = responses.get(str(i))
                if response is None:
                    results[i] = TransientProviderError(f"{what}: missing from the $batch answer")
                    again.append(i)
                    continue
                status = response.status
                if type(status) is not int:
                    results[i] = ProviderError(f"{what}: the $batch answer gives no status for it")
                    continue
                body = response.body
                if 200 <= status < 400:
                    results[i] = body  # JSON text when asked for raw (and read the fast way)
                    continue
                given = response.headers if isinstance(response.headers, Mapping) else {}
                headers = {str(k).lower(): str(v) for k, v in given.items()}
                error = error_for(
                    status, body, headers, what, auth_hint=self.tokens.rejected_hint, scrub=self._scrub
                )
                results[i] = error
                if status == 429 or (status in _RETRYABLE_STATUS and item.idempotent):
                    again.append(i)
                    if isinstance(error, TransientProviderError) and error.retry_after is not None:
                        waits.append(error.retry_after)
                elif status == 401:
                    raise error
            attempt += 1
            if not again or attempt >= self.retry.max_attempts:
                return
            wait = max(waits) if waits else None
            if wait is not None and wait > self.retry.max_retry_after:
                return
            self._sleep(self._delay(wait, attempt - 1))
            pending = again
