"""Spoiled Graph answers: a small server on 127.0.0.1 serves the emulator's answers spoiled one way or
another (``GRAPH_CASES``), and ``graph_case`` runs plan and apply against it.

I/O: one HTTP server thread on 127.0.0.1 per case; the case's folder.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.testing.commands import find_secret
from reconciler.testing.hostile.cases import (
    ACCEPT,
    REJECT,
    Case,
    Outcome,
    Project,
    _judge,
    run_main,
    tenant_digest,
)

# --------------------------------------------------------------------------------------------------
# Graph answers


Spoil = Callable[[str, str, Any, Any], "Raw | None"]


@dataclass(frozen=True, slots=True)
class Raw:
    """An answer as bytes on the wire; ``trickle`` sends the body a byte at a time."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    length: int | None = None  # Content-Length to claim (the real length when None)
    trickle: bool = False


def _json(data: Any, status: int = 200) -> Raw:
    return Raw(status, json.dumps(data).encode())


def _listing(spoil: Callable[[dict[str, Any]], Any]) -> Spoil:
    def answer(method: str, path: str, request: Any, reply: Any) -> Raw | None:
        if method == "GET" and path == "/servicePrincipals":
            return _json(spoil(reply.body))
        return None

    return answer


def _inner(url_test: Callable[[str], bool], spoil: Callable[[Any], Any]) -> Spoil:
    """Spoil the bodies of the inner answers to requests of a ``$batch`` whose URL passes the test."""

    def answer(method: str, path: str, request: Any, reply: Any) -> Raw | None:
        if path != "/$batch" or not isinstance(reply.body, dict):
            return None
        urls = {r.get("id"): r.get("url", "") for r in request.get("requests", [])}
        for item in reply.body.get("responses", []):
            if url_test(urls.get(item.get("id"), "")) and "body" in item:
                item["body"] = spoil(item["body"])
        return _json(reply.body)

    return answer


def _every(raw: Raw) -> Spoil:
    return lambda method, path, request, reply: raw


def _batch(spoil: Callable[[dict[str, Any]], Any]) -> Spoil:
    def answer(method: str, path: str, request: Any, reply: Any) -> Raw | None:
        return _json(spoil(reply.body)) if path == "/$batch" else None

    return answer


def _each(items: list[Any], change: Callable[[dict[str, Any]], dict[str, Any]]) -> list[Any]:
    return [change(dict(x)) for x in items]


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {k: v for k, v in d.items() if k != key}


def _user_rows(schema: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    for rule in schema.get("synchronizationRules") or []:
        for om in rule.get("objectMappings") or []:
            if om.get("sourceObjectName") == "user":
                for am in om.get("attributeMappings") or []:
                    change(am)
    return schema


def _deep_tree(depth: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"name": "a", "type": "Attribute", "expression": None, "parameters": []}
    for _ in range(depth):
        tree = {
            "name": "Trim",
            "type": "Function",
            "expression": None,
            "parameters": [{"key": "source", "value": tree}],
        }
    return tree


def _set_source(source: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(am: dict[str, Any]) -> None:
        if str(am.get("targetAttributeName")).casefold() == "displayname":
            am["source"] = source

    return change


def _jobs(url: str) -> bool:
    return url.endswith("/synchronization/jobs")


def _secrets(url: str) -> bool:
    return url.endswith("/synchronization/secrets")


def _schema(url: str) -> bool:
    return "/schema" in url


# name -> (how the answers are spoiled, what must come of it)
GRAPH_CASES: dict[str, tuple[Spoil, str]] = {
    "a listing without 'value'": (_listing(_without("value")), REJECT),
    "a listing with 'value': null": (_listing(lambda b: {**b, "value": None}), REJECT),
    "a listing that is a list": (_listing(lambda b: b["value"]), REJECT),
    "a listing with items that are not objects": (
        _listing(lambda b: {**b, "value": [*b["value"], "sp", 1]}),
        REJECT,
    ),
    "service principals without an id": (
        _listing(lambda b: {**b, "value": _each(b["value"], _without("id"))}),
        REJECT,
    ),
    "a service principal id that is an object": (
        _listing(lambda b: {**b, "value": _each(b["value"], lambda sp: {**sp, "id": {"x": 1}})}),
        REJECT,
    ),
    "tags that are a string": (
        _listing(
            lambda b: {**b, "value": _each(b["value"], lambda sp: {**sp, "tags": "reconciler:managed"})}
        ),
        REJECT,
    ),
    "a next-page link back to itself": (
        _listing(lambda b: {**b, "@odata.nextLink": "SELF"}),
        REJECT,
    ),
    "a next-page link to another host": (
        _listing(lambda b: {**b, "@odata.nextLink": "http://192.0.2.1/v1.0/servicePrincipals"}),
        REJECT,
    ),
    "jobs without 'value'": (_inner(_jobs, lambda b: {}), REJECT),
    "a job without an id": (
        _inner(_jobs, lambda b: {**b, "value": _each(b["value"], _without("id"))}),
        REJECT,
    ),
    "an unknown schedule state": (
        _inner(
            _jobs,
            lambda b: {
                **b,
                "value": _each(
                    b["value"], lambda j: {**j, "schedule": {**j["schedule"], "state": "Hibernating"}}
                ),
            },
        ),
        REJECT,
    ),
    "an unknown job status code": (
        _inner(
            _jobs,
            lambda b: {
                **b,
                "value": _each(b["value"], lambda j: {**j, "status": {**j["status"], "code": "Frobnicated"}}),
            },
        ),
        ACCEPT,
    ),
    "a job status that is a string": (
        _inner(_jobs, lambda b: {**b, "value": _each(b["value"], lambda j: {**j, "status": "Active"})}),
        REJECT,
    ),
    "secrets that are not objects": (_inner(_secrets, lambda b: {**b, "value": [1, 2]}), REJECT),
    "a secret without a key": (
        _inner(_secrets, lambda b: {**b, "value": [*b["value"], {"value": "x"}]}),
        REJECT,
    ),
    "secrets without 'value'": (_inner(_secrets, lambda b: {"value": "Domain"}), REJECT),
    "a schema that is a list": (_inner(_schema, lambda b: ["not", "a", "schema"]), REJECT),
    "rules that are a string": (_inner(_schema, lambda b: {**b, "synchronizationRules": "x"}), REJECT),
    "a mapping without a target": (
        _inner(_schema, lambda b: _user_rows(b, lambda am: am.pop("targetAttributeName", None))),
        REJECT,
    ),
    "an unknown mapping source type": (
        _inner(_schema, lambda b: _user_rows(b, lambda am: (am.get("source") or {}).update(type="Quantum"))),
        REJECT,
    ),
    "an unknown flow type": (
        _inner(_schema, lambda b: _user_rows(b, lambda am: am.update(flowType="Sometimes"))),
        REJECT,
    ),
    # As deep as the JSON encoder here can write (three levels a call); deeper than the parser allows.
    "a function tree nested 250 deep": (
        _inner(_schema, lambda b: _user_rows(b, _set_source(_deep_tree(250)))),
        REJECT,
    ),
    "a $batch answer without responses": (_batch(lambda b: {}), REJECT),
    "a $batch answer with every response missing": (_batch(lambda b: {"responses": []}), REJECT),
    "a $batch status that is text": (
        _batch(lambda b: {"responses": [{**r, "status": "OK"} for r in b["responses"]]}),
        REJECT,
    ),
    "an HTML page with 200": (
        _every(Raw(200, b"<html><body>Sign in</body></html>", (("Content-Type", "text/html"),))),
        REJECT,
    ),
    "an HTML error page with 502": (
        _every(Raw(502, b"<html>Bad gateway</html>", (("Content-Type", "text/html"),))),
        REJECT,
    ),
    "JSON cut in half": (
        lambda m, p, r, reply: Raw(200, json.dumps(reply.body).encode()[: len(json.dumps(reply.body)) // 2]),
        REJECT,
    ),
    "JSON nested 100,000 deep": (_every(Raw(200, b"[" * 100_000 + b"]" * 100_000)), REJECT),
    "a length claimed and not sent": (_every(Raw(200, b'{"value": [', length=100_000)), REJECT),
    "a body claimed to be 300 MB": (_every(Raw(200, b"{}", length=300 * 1024 * 1024)), REJECT),
    "an answer sent a byte at a time": (
        lambda m, p, r, reply: (
            Raw(200, json.dumps(reply.body).encode(), trickle=True) if p == "/servicePrincipals" else None
        ),
        REJECT,
    ),
    "an error that quotes the bearer token": (
        _every(
            _json(
                {"error": {"code": "InvalidAuthenticationToken", "message": "token ECHO_TOKEN is bad"}}, 401
            )
        ),
        REJECT,
    ),
    "an error with a 5 MB message": (
        _every(_json({"error": {"code": "x" * 2000, "message": "m" * 5_000_000}}, 400)),
        REJECT,
    ),
    "429 with Retry-After: nan": (_every(Raw(429, b"", (("Retry-After", "nan"),))), REJECT),
    "429 with Retry-After: a year": (_every(Raw(429, b"", (("Retry-After", "31536000"),))), REJECT),
    "JSON with the wrong content type": (
        lambda m, p, r, reply: Raw(
            reply.status,
            b"" if reply.body is None else json.dumps(reply.body).encode(),
            (("Content-Type", "text/plain"),),
        ),
        ACCEPT,
    ),
}


class _Hostile(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    emulator: Emulator
    spoil: Spoil
    writes: list[str]
    errors: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Kept, not printed: the case's standard error is being captured.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            self.errors.append(f"{type(error).__name__}: {error}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Hostile

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        request = json.loads(data) if data else None
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path.removeprefix("/v1.0") or "/"
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        reads_only = path == "/$batch" and all(
            r.get("method") == "GET" for r in (request or {}).get("requests", [])
        )
        if self.command != "GET" and not reads_only:
            self.server.writes.append(f"{self.command} {path}")
            raw: Raw | None = Raw(503, b"", (("Retry-After", "0"),))  # never carried out
        else:
            base = f"http://127.0.0.1:{self.server.server_address[1]}/v1.0"
            reply = self.server.emulator.run(self.command, path, query, request, base, "hostile")
            if path == "/servicePrincipals" and isinstance(reply.body, dict):
                reply.body = {**reply.body}
            raw = self.server.spoil(self.command, path, request, reply)
            if raw is not None and b'"SELF"' in raw.body:
                raw = Raw(raw.status, raw.body.replace(b'"SELF"', json.dumps(base + self.path[5:]).encode()))
            if raw is not None and b"ECHO_TOKEN" in raw.body:
                bearer = self.headers.get("Authorization", "").partition(" ")[2]
                raw = Raw(raw.status, raw.body.replace(b"ECHO_TOKEN", bearer.encode()), raw.headers)
            if raw is None:
                raw = Raw(reply.status, b"" if reply.body is None else json.dumps(reply.body).encode())
        assert raw is not None
        self._send(raw)

    def _send(self, raw: Raw) -> None:
        self.send_response(raw.status)
        for name, value in raw.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(raw.length if raw.length is not None else len(raw.body)))
        self.end_headers()
        try:
            if raw.trickle:
                for i in range(len(raw.body)):
                    self.wfile.write(raw.body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(raw.body)
        except OSError:
            pass  # the client gave up
        if raw.length is not None:
            self.close_connection = True


@contextlib.contextmanager
def _hostile_server(db: Path, spoil: Spoil) -> Iterator[_Hostile]:
    emulator = Emulator(db, EmulatorConfig())
    server = _Hostile(("127.0.0.1", 0), _Handler)
    server.emulator, server.spoil, server.writes, server.errors = emulator, spoil, [], []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        emulator.stop()


# The cases whose answers never finish: only these need a short client timeout to end in moments. Every
# other case is given a timeout no loaded machine reaches, so that a slow answer is never its outcome.
_UNFINISHED_ANSWERS = frozenset({"an answer sent a byte at a time", "a length claimed and not sent"})
_SHORT_TIMEOUT, _LONG_TIMEOUT = "0.5", "60"


def _own_tenant(db: Path, folder: Path) -> Path:
    """A copy of the project's tenant for one case (SQLite's backup, so a live journal is included)."""
    copy = folder / "tenant.db"
    with contextlib.closing(sqlite3.connect(db)) as source, contextlib.closing(sqlite3.connect(copy)) as dest:
        source.backup(dest)
    return copy


def graph_case(project: Project, name: str, folder: Path) -> list[Outcome]:
    """``plan`` and ``apply --auto-approve`` against a server giving the spoiled answers ``name``."""
    spoil, expect = GRAPH_CASES[name]
    timeout = _SHORT_TIMEOUT if name in _UNFINISHED_ANSWERS else _LONG_TIMEOUT
    outcomes = []
    for args in (["plan", str(project.current)], ["apply", str(project.current), "--auto-approve"]):
        case = Case("Graph answer", f"{name} ({args[0]})", lambda _f: [], expect)
        case_folder = folder / args[0]
        case_folder.mkdir(parents=True)
        # Each case has a tenant and a server of its own: no case sees what another one left.
        db = _own_tenant(project.db, case_folder)
        before = tenant_digest(db)
        with _hostile_server(db, spoil) as server:
            target = f"graph+http://127.0.0.1:{server.server_address[1]}"
            env = {**project.env(case_folder), "RECONCILER_TARGET": target}
            env["RECONCILER_GRAPH_TIMEOUT"] = timeout
            ran = run_main(args, env, fast_retries=True)
            writes, errors = list(server.writes), list(server.errors)
        leaked = find_secret(project.token, {"stdout": ran.out, "stderr": ran.err}, [case_folder])
        extra = f"it sent {writes[0]}" if writes else None
        if errors:
            extra = f"the hostile server itself failed: {errors[0]}"
        problem = _judge(case, ran, tenant_digest(db) != before, leaked, extra)
        outcomes.append(Outcome(case.kind, case.name, expect, ran, problem, bool(leaked)))
    return outcomes
