"""The HTTP client the Graph provider talks through: connections, retries, concurrency, paging, ``$batch``.

I/O: HTTP(S) requests to one Graph base URL (``https://graph.microsoft.com/v1.0`` or an emulator), with
the bearer tokens of a ``tokens.TokenProvider``. Nothing is written anywhere else; no token is ever
logged, echoed or put into an error message.

- Connections are pooled and reused (one ``httpx.Client``); at most ``concurrency`` requests are on
  the wire at once (a semaphore, released while a retry waits).
- Retries: 429 always (the request was refused, not carried out); 500/502/503/504, timeouts and dropped
  connections only for requests that are safe to repeat. A server-given ``Retry-After`` is waited out
  in full; otherwise exponential backoff with jitter. A non-idempotent request that fails in a way that
  leaves its outcome unknown raises ``TransientProviderError``; the caller looks before it sends again.
- ``batch`` packs GETs into ``$batch`` requests of at most 20 and retries throttled inner requests.
- Graph error bodies become the project's error tree (``answers.error_for``).
- An answer is not believed blindly: a body larger than ``MAX_ANSWER_BYTES`` or slower to arrive than
  ``BODY_DEADLINE_FACTOR`` times the timeout, a collection without its ``value`` list, a next-page link
  already followed, or a ``$batch`` answer of the wrong shape is a ``ProviderError``. An answer taken
  as "nothing there" by mistake would have the caller create everything again.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from reconciler import __version__
from reconciler.errors import ProviderError, TransientProviderError
from reconciler.graph.answers import RETRYABLE_STATUS, batch_answers, collection, error_for
from reconciler.graph.identity import JSON
from reconciler.graph.tokens import TokenProvider

__all__ = [
    "BATCH_LIMIT",
    "BODY_DEADLINE_FACTOR",
    "MAX_ANSWER_BYTES",
    "MAX_PAGES",
    "BatchItem",
    "GraphClient",
    "RetryPolicy",
    "segment",
]

# Graph refuses a $batch of more than 20 requests.
BATCH_LIMIT = 20
# Far above any answer the service gives (a $batch of 20 whole schemas is a few MiB).
MAX_ANSWER_BYTES = 256 * 1024 * 1024
# The most pages one collection is followed for. Graph pages hold up to 999 objects, so this is far
# beyond any tenant's listing; a service sending new next-page links for ever would page for ever.
MAX_PAGES = 20_000
# The timeout holds between two reads; a body that trickles in is cut off after this many timeouts.
BODY_DEADLINE_FACTOR = 5
_USER_AGENT = f"reconciler/{__version__}"


def segment(value: str) -> str:
    """One URL path segment, percent-encoded (ids are opaque; they may hold any character)."""
    return urllib.parse.quote(value, safe="")


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


# --------------------------------------------------------------------------------------------------
# the client


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request inside a ``$batch``: ``url`` is relative to the version, e.g. ``/servicePrincipals/x``;
    ``headers``: its own, e.g. ``ConsistencyLevel`` for an advanced query."""

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None

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
                retry = status == 429 or (status in RETRYABLE_STATUS and safe)
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
            yield collection(data, what)
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
                headers = dict(item.headers or {})
                if item.body is not None:
                    request["body"] = item.body
                    headers["Content-Type"] = "application/json"
                if headers:
                    request["headers"] = headers
                requests.append(request)
            safe = all(items[i].idempotent for i in pending)
            content = self.request("POST", "/$batch", body={"requests": requests}, idempotent=safe, raw=True)
            responses = {r.id: r for r in batch_answers(content, raw)}
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
                if status == 429 or (status in RETRYABLE_STATUS and item.idempotent):
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
