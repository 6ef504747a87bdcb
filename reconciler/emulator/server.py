"""The emulator's HTTP server: the Graph endpoints of ``service`` over a socket, with the service's quirks.

It requires the bearer token when one is configured (401 ``InvalidAuthenticationToken`` otherwise),
adds latency to every HTTP request, answers ``$batch``, and injects at the configured rates: 429 with
``Retry-After`` (also inside ``$batch``), 5xx (``Retry-After`` on 503), and dropped connections (the
socket is closed without an answer), each either before the request is carried out or after it (the
work is done but the answer is lost, which is what makes retries dangerous), and timeouts (the work is
done, and the answer is held back ``stall_seconds``, longer than a client waits). With ``fault_once``
the first sending of every distinct request fails in one of those ways. Whether a request is hit is
decided from the seed, the request itself and how often the same request was seen, so a seed gives
the same faults for the same requests whatever the thread interleaving. ``stats`` counts requests,
and each kind of fault injected.

I/O: one listening TCP socket and the tenant database (through a small fixed pool of worker threads,
so that the store's per-thread SQLite connections stay few). Request lines, headers and bodies are
never logged; with ``record`` they are kept in memory for tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from reconciler.emulator.replies import RAW_BODIES, Reply, TextBody, graph_error
from reconciler.emulator.service import GraphService
from reconciler.graph.answers import permission_needed
from reconciler.tenant.store import TenantStore

__all__ = ["Emulator", "EmulatorConfig", "Recorded"]

# Graph's answer to a call the caller's token has no permission for.
_DENIED = "Insufficient privileges to complete the operation."

# The versions served, by their lower-case path segment (Graph reads it case-insensitively).
VERSIONS = {"v1.0": "v1.0", "beta": "beta"}
_FAULT_STATUSES = (
    (500, "generalException"),
    (502, "badGateway"),
    (503, "serviceNotAvailable"),
    (504, "gatewayTimeout"),
)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    throttle_rate: float = 0.0
    seed: int = 0
    retry_after: int = 1  # seconds, in Retry-After on 429 and 503
    timeout_rate: float = 0.0
    stall_seconds: float = 5.0  # how long a timed-out answer is held back
    # The first sending of every distinct request gets a fault (a 5xx, a drop or a timeout).
    fault_once: bool = False
    # Tests: throttle the first sending of every distinct request, let the next one through.
    throttle_once: bool = False
    # Tests: tokens that are answered as expired rather than invalid.
    expired_tokens: frozenset[str] = frozenset()
    page_size: int = 100
    validate_bodies: bool = True
    # The URL the emulator's links (@odata.context, @odata.nextLink) start with, e.g. when it is
    # reached through a proxy; default: the address it listens on. Never taken from the Host header.
    base_url: str | None = None
    # A request body larger than this is refused (413) before it is read.
    max_body_bytes: int = 16 * 1024 * 1024
    record: bool = False
    workers: int = 8
    # Tests: Graph permissions the caller's token lacks; a call that needs one is answered 403.
    lacking: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as received (``path`` relative to its ``version``, with its query); ``inner``: inside
    $batch."""

    method: str
    path: str
    body: Any
    inner: bool = False
    version: str = "v1.0"


@dataclass(slots=True)
class _Faults:
    seed: int
    fault_rate: float
    throttle_rate: float
    throttle_once: bool
    timeout_rate: float = 0.0
    fault_once: bool = False
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def draw(self, kind: str, key: str) -> float:
        """A number in [0, 1) from the seed, the request and how often it was seen before."""
        with self._lock:
            self._seen[kind + key] += 1
            n = self._seen[kind + key]
        digest = hashlib.sha256(f"{self.seed}|{kind}|{key}|{n}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def throttled(self, key: str, inner: bool = False) -> bool:
        kind = "inner-throttle" if inner else "throttle"
        if self.throttle_once:
            with self._lock:
                self._seen["once" + kind + key] += 1
                if self._seen["once" + kind + key] == 1:
                    return True
        return self.throttle_rate > 0 and self.draw(kind, key) < self.throttle_rate

    def _first(self, kind: str, key: str) -> bool:
        with self._lock:
            self._seen["once" + kind + key] += 1
            return self._seen["once" + kind + key] == 1

    def fault(self, key: str, inner: bool = False) -> tuple[str, int, str] | None:
        """None, or (when, status, code): when is error-before/drop-before/error-after/drop-after,
        or stall-after (a timeout: the answer is held back)."""
        kind = "inner-fault" if inner else "fault"
        if self.fault_once and self._first(kind, key):
            pick = self.draw(kind + "-once", key)
            status, code = _FAULT_STATUSES[int(pick * 5 * len(_FAULT_STATUSES)) % len(_FAULT_STATUSES)]
            if inner:
                return "error-before", status, code
            return (
                ("error-before", "drop-before", "error-after", "drop-after", "stall-after")[int(pick * 5)],
                status,
                code,
            )
        if not inner and self.timeout_rate > 0 and self.draw("timeout", key) < self.timeout_rate:
            return "stall-after", 0, ""
        if self.fault_rate <= 0:
            return None
        if self.draw(kind, key) >= self.fault_rate:
            return None
        pick = self.draw(kind + "-kind", key)
        status, code = _FAULT_STATUSES[int(pick * 4 * len(_FAULT_STATUSES)) % len(_FAULT_STATUSES)]
        if inner:
            return "error-before", status, code  # an inner request cannot drop a connection
        return ("error-before", "drop-before", "error-after", "drop-after")[int(pick * 4)], status, code


def _header_value(value: str | None, limit: int = 200) -> str:
    """A header value safe to echo: printable ASCII only, at most ``limit`` characters; else empty."""
    if not value or len(value) > limit or not all(" " <= c <= "~" for c in value):
        return ""
    return value


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (killed, or gave up waiting) is not an error of the emulator's;
        # the standard server would print a traceback for each one.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "reconciler-graph-emulator"
    # An idle keep-alive connection is let go after this long.
    timeout = 120
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle and delayed ACKs add ~40 ms to each.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines are not logged (see the module docstring)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, reply: Reply, request_id: str, client_request_id: str) -> None:
        body = reply.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"].setdefault(
                "innerError",
                {"date": _now(), "request-id": request_id, "client-request-id": client_request_id},
            )
        # No cycle check: the bodies are fresh JSON trees, and big schemas encode ~15% faster.
        if isinstance(body, TextBody):
            data = body.encode()
            content_type = "text/plain;charset=utf-8"
        else:
            data = b"" if body is None else orjson.dumps(body)
            content_type = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"
        self.send_response(reply.status)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", request_id)
        self.send_header("client-request-id", client_request_id)
        for name, value in reply.headers.items():
            if name.lower() != "content-type":
                self.send_header(name, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _refuse(self, reply: Reply, request_id: str, client_request_id: str) -> None:
        """Answer before the body is read; the unread body makes the connection unusable, so close it."""
        self.close_connection = True
        reply.headers.setdefault("Connection", "close")
        self._send(reply, request_id, client_request_id)

    def _handle(self) -> None:
        emulator = self.server.emulator
        config = emulator.config
        method = self.command.upper()
        request_id = str(uuid.uuid4())
        # Echoed back in a header and an error body: only a bounded, printable value is taken.
        client_request_id = _header_value(self.headers.get("client-request-id")) or request_id
        emulator.count("requests")
        # The token and the announced length are checked before a byte of the body is read, so that
        # an anonymous client cannot make the emulator read (and hold) an arbitrary amount of data.
        problem = emulator.authenticate(self.headers.get("Authorization"))
        if problem is not None:
            emulator.count("unauthorized")
            reply = graph_error(401, "InvalidAuthenticationToken", problem)
            self._refuse(reply, request_id, client_request_id)
            return
        if self.headers.get("Transfer-Encoding"):
            self._refuse(
                graph_error(411, "LengthRequired", "A request body needs a Content-Length header."),
                request_id,
                client_request_id,
            )
            return
        announced = (self.headers.get("Content-Length") or "0").strip()
        if not announced.isascii() or not announced.isdigit() or len(announced) > 18:
            self._refuse(
                graph_error(400, "BadRequest", "The Content-Length header is not a number."),
                request_id,
                client_request_id,
            )
            return
        length = int(announced)
        if length > config.max_body_bytes:
            self._refuse(
                graph_error(
                    413,
                    "RequestEntityTooLarge",
                    f"The request body is larger than {config.max_body_bytes} bytes.",
                ),
                request_id,
                client_request_id,
            )
            return
        raw = self.rfile.read(length) if length > 0 else b""
        if config.latency_ms > 0:
            time.sleep(config.latency_ms / 1000)

        parts = urllib.parse.urlsplit(self.path)
        segment, _, rest = parts.path.lstrip("/").partition("/")
        version = VERSIONS.get(segment.lower())
        if version is None:
            self._send(
                graph_error(400, "BadRequest", "Invalid version: /v1.0 and /beta are served."),
                request_id,
                client_request_id,
            )
            return
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except ValueError:
                self._send(
                    graph_error(400, "BadRequest", "Unable to read JSON request payload."),
                    request_id,
                    client_request_id,
                )
                return
        key = f"{method} {self.path} {hashlib.sha256(raw).hexdigest()}"
        if emulator.faults.throttled(key):
            emulator.count("throttled")
            self._send(emulator.throttle_reply(), request_id, client_request_id)
            return
        fault = emulator.faults.fault(key)
        if fault is not None:
            emulator.count("timeouts" if fault[0] == "stall-after" else "faults")
        if fault is not None and fault[0] == "drop-before":
            self._drop()
            return
        if fault is not None and fault[0] == "error-before":
            self._send(emulator.fault_reply(fault), request_id, client_request_id)
            return
        base_url = f"{emulator.base_url}/{version}"
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        relative = "/" + rest
        headers = {"ConsistencyLevel": self.headers.get("ConsistencyLevel") or ""}
        reply = emulator.run(
            method,
            relative,
            query,
            body,
            base_url,
            client_request_id,
            raw_bodies=True,
            version=version,
            headers=headers,
        )
        if fault is not None and fault[0] == "drop-after":
            self._drop()
            return
        if fault is not None and fault[0] == "error-after":
            reply = emulator.fault_reply(fault)
        if fault is not None and fault[0] == "stall-after":
            time.sleep(config.stall_seconds)
            # The client has given up by now; its socket may be gone.
            with contextlib.suppress(OSError):
                self._send(reply, request_id, client_request_id)
            self.close_connection = True
            return
        self._send(reply, request_id, client_request_id)


class Emulator:
    """A Graph emulator over the tenant store at ``store_path``; ``start()`` serves it on a thread."""

    def __init__(self, store_path: str | os.PathLike[str], config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.store = TenantStore(store_path)
        self.service = GraphService(
            self.store, page_size=self.config.page_size, validate=self.config.validate_bodies
        )
        self.faults = _Faults(
            self.config.seed,
            self.config.fault_rate,
            self.config.throttle_rate,
            self.config.throttle_once,
            self.config.timeout_rate,
            self.config.fault_once,
        )
        self.recorded: list[Recorded] = []
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._workers = ThreadPoolExecutor(max(1, self.config.workers), thread_name_prefix="emulator-store")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Emulator:
        host = self.config.host
        server_class: type[_Server] = _Server6 if ":" in host else _Server
        self._server = server_class((host, self.config.port), _Handler)
        self._server.emulator = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Where links in answers point: the configured base URL, else the listening address."""
        return (self.config.base_url or self.url).rstrip("/")

    @property
    def target(self) -> str:
        return "graph+" + self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._workers.shutdown(wait=True)
        self.store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for the handler -------------------------------------------------------------------

    def count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def record(
        self, method: str, path: str, query: Mapping[str, str], body: Any, inner: bool, version: str = "v1.0"
    ) -> None:
        if not self.config.record:
            return
        full = path + ("?" + urllib.parse.urlencode(query) if query else "")
        with self._lock:
            self.recorded.append(Recorded(method, full, body, inner, version))

    def authenticate(self, header: str | None) -> str | None:
        """None when the request may pass, else the reason it may not."""
        expected = self.config.token
        if not expected:
            return None
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "Access token is empty."
        if token in self.config.expired_tokens:
            return "Lifetime validation failed, the token is expired."
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return "Access token validation failure. Invalid audience."
        return None

    def throttle_reply(self) -> Reply:
        return graph_error(
            429,
            "TooManyRequests",
            "Too many requests. Please retry after the time given in Retry-After.",
            {"Retry-After": str(self.config.retry_after)},
        )

    def fault_reply(self, fault: tuple[str, int, str]) -> Reply:
        _when, status, code = fault
        headers = {"Retry-After": str(self.config.retry_after)} if status == 503 else {}
        return graph_error(status, code, "The service had an injected failure; try again.", headers)

    def run(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
        base_url: str,
        client_request_id: str,
        *,
        raw_bodies: bool = False,
        version: str = "v1.0",
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Carry out one request (``$batch`` included) on a store worker thread.

        ``raw_bodies``: the reply (or an answer inside it) may hold JSON text already encoded, an
        ``orjson.Fragment`` (see ``replies.RAW_BODIES``); the HTTP handler encodes such replies.
        """

        def work() -> Reply:
            token = RAW_BODIES.set(raw_bodies)
            try:
                self.record(method, path, query, body, inner=False, version=version)
                if self.config.lacking and permission_needed(f"{method} {path}") in self.config.lacking:
                    return graph_error(403, "Authorization_RequestDenied", _DENIED)
                if path.rstrip("/").lower() == "/$batch":
                    if method != "POST":
                        return graph_error(405, "Request_BadRequest", "$batch takes POST")
                    return self._batch(body, base_url, version)
                return self.service.handle(
                    method, path, query, body, base_url=base_url, version=version, headers=headers or {}
                )
            finally:
                RAW_BODIES.reset(token)

        try:
            return self._workers.submit(work).result()
        except RuntimeError:  # shutting down
            return graph_error(503, "serviceNotAvailable", "The emulator is stopping.")

    def _batch(self, body: Any, base_url: str, version: str) -> Reply:
        requests = body.get("requests") if isinstance(body, Mapping) else None
        if not isinstance(requests, list) or not requests:
            return graph_error(400, "BadRequest", 'The body must be {"requests": [...]}.')
        if len(requests) > 20:
            return graph_error(400, "BadRequest", "The number of batch requests exceeds the limit of 20.")
        responses = []
        for request in requests:
            if not isinstance(request, Mapping) or not isinstance(request.get("url"), str):
                return graph_error(400, "BadRequest", "Each batch request needs an id, a method and a url.")
            reply = self._inner(request, base_url, version)
            if isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict):
                request_id = str(uuid.uuid4())  # only errors carry one: a batch of reads needs none
                reply.body["error"].setdefault(
                    "innerError", {"date": _now(), "request-id": request_id, "client-request-id": request_id}
                )
            headers = dict(reply.headers)
            if isinstance(reply.body, TextBody):
                headers["Content-Type"] = "text/plain"
            elif reply.body is not None:
                headers.setdefault("Content-Type", "application/json")
            item: dict[str, Any] = {"id": str(request.get("id")), "status": reply.status, "headers": headers}
            if reply.body is not None:
                item["body"] = reply.body
            responses.append(item)
        return Reply(200, {"responses": responses})

    def _inner(self, request: Mapping[str, Any], base_url: str, version: str) -> Reply:
        method = str(request.get("method") or "GET").upper()
        url = str(request["url"])
        parts = urllib.parse.urlsplit(url)
        path = parts.path
        if path.lower().startswith(f"/{version}/"):
            path = path[len(version) + 1 :]
        if not path.startswith("/"):
            path = "/" + path
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        body = request.get("body")
        self.record(method, path, query, body, inner=True, version=version)
        if self.config.lacking and permission_needed(f"{method} {path}") in self.config.lacking:
            return graph_error(403, "Authorization_RequestDenied", _DENIED)
        key = f"{method} {url} {json.dumps(body, sort_keys=True)}"
        if self.faults.throttled(key, inner=True):
            self.count("throttled")
            return self.throttle_reply()
        fault = self.faults.fault(key, inner=True)
        if fault is not None:
            self.count("faults")
            return self.fault_reply(fault)
        if path.rstrip("/").lower() == "/$batch":
            return graph_error(400, "BadRequest", "A batch cannot contain another batch.")
        headers = request.get("headers")
        return self.service.handle(
            method,
            path,
            query,
            body,
            base_url=base_url,
            version=version,
            headers=headers if isinstance(headers, Mapping) else None,
        )
