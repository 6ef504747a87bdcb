"""The HTTP application (Starlette): the read-only pages, ``/metrics``, ``/healthz``, ``/readyz`` and the
push webhook ``/hooks/git``.

The pages are HTML rendered on the server (Jinja2, every value escaped by the engine), with no script,
and refresh themselves (``<meta http-equiv="refresh">``). Nothing on them changes the target: the only
route that is not a GET is the webhook, and all it can do is start a pass sooner. Every response
forbids scripts, framing and caching (Content-Security-Policy and friends).

What the pages and gauges show is read from the state store through ``reconciler.serve.view``, at
most once per ``VIEW_TTL`` seconds however many requests come.

I/O: HTTP (through the server that runs the application), reads of the state store, and for
``/readyz`` a small read of the target; the webhook writes one status document to the store.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import anyio.to_thread
import jinja2
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from reconciler.render.escape import printable
from reconciler.serve import webhook
from reconciler.serve.metrics import CONTENT_TYPE, Metrics
from reconciler.serve.view import STATUSES, Overview, read_overview

__all__ = ["REFRESH_SECONDS", "VIEW_TTL", "Service", "create_app"]

REFRESH_SECONDS = 30
VIEW_TTL = 2.0
# How long a readiness answer is reused: a probe every few seconds must not read a tenant each time.
READY_TTL = 10.0

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Service:
    """What the application needs from the running service."""

    target: str
    branch: str
    source: str
    metrics: Metrics
    # Called for a verified push of the followed branch; returns nothing.
    on_push: Callable[[webhook.Push], None]
    # Raises when the target cannot be read.
    probe_target: Callable[[], None]
    secret: bytes | None = None
    read: Callable[[str], Overview] = read_overview
    replays: webhook.ReplayGuard = field(default_factory=webhook.ReplayGuard)
    _cached: tuple[float, Overview] | None = None
    _ready: tuple[float, str | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def overview(self) -> Overview:
        """The view, read again when older than ``VIEW_TTL``."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > VIEW_TTL:
                self._cached = (now, self.read(self.target))
            return self._cached[1]

    def readiness(self) -> str | None:
        """None when the state store and the target can be read, else what is wrong."""
        with self._lock:
            now = time.monotonic()
            if self._ready is not None and now - self._ready[0] <= READY_TTL:
                return self._ready[1]
        problem = None
        try:
            self.read(self.target)
        except Exception as exc:
            problem = f"the state store cannot be read: {type(exc).__name__}: {exc}"
        if problem is None:
            try:
                self.probe_target()
            except Exception as exc:
                problem = f"the target cannot be read: {type(exc).__name__}: {exc}"
        with self._lock:
            self._ready = (time.monotonic(), problem)
        return problem


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reconciler.serve", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Values come from a tenant and from git: controls and bidi characters are shown escaped, as on
    # the command line; the engine's autoescape then makes them safe HTML.
    env.filters["shown"] = lambda value: printable("" if value is None else str(value))
    env.filters["jsonvalue"] = lambda value: printable(json.dumps(value, ensure_ascii=False, sort_keys=True))
    env.globals["statuses"] = STATUSES
    env.globals["refresh"] = REFRESH_SECONDS
    return env


def _page(env: jinja2.Environment, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    html = env.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


def create_app(service: Service) -> Starlette:
    """The application for ``service``."""
    env = _environment()
    css = resources.files("reconciler.serve").joinpath("templates/style.css").read_text(encoding="utf-8")

    async def overview(request: Request) -> Response:
        view = await anyio.to_thread.run_sync(service.overview)
        return _page(env, "overview.html", view=view, service=service)

    async def configuration(request: Request) -> Response:
        view = await anyio.to_thread.run_sync(service.overview)
        config = view.configuration(request.path_params["name"])
        if config is None:
            name = request.path_params["name"]
            return _page(env, "missing.html", 404, view=view, service=service, name=name)
        return _page(env, "configuration.html", view=view, service=service, config=config)

    async def style(request: Request) -> Response:
        return Response(css, media_type="text/css", headers=_SECURITY_HEADERS)

    async def metrics(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(service.metrics.render)
        return Response(body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})

    async def readyz(request: Request) -> Response:
        problem = await anyio.to_thread.run_sync(service.readiness)
        if problem is None:
            return PlainTextResponse("ready\n", headers={"Cache-Control": "no-store"})
        headers = {"Cache-Control": "no-store"}
        return PlainTextResponse(printable(problem) + "\n", status_code=503, headers=headers)

    async def hook(request: Request) -> Response:
        try:
            answer = await _hook(service, request)
        except webhook.Refused as refused:
            service.metrics.webhooks.labels(refused.result).inc()
            return JSONResponse({"error": str(refused)}, status_code=refused.status)
        service.metrics.webhooks.labels(answer["result"]).inc()
        return JSONResponse(answer, status_code=202 if answer["result"] == "accepted" else 200)

    routes = [
        Route("/", overview, methods=["GET"]),
        Route("/configurations/{name}", configuration, methods=["GET"]),
        Route("/style.css", style, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/hooks/git", hook, methods=["POST"]),
    ]
    return Starlette(routes=routes)


async def _body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it is known to be over the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > webhook.MAX_BODY_BYTES:
        raise webhook.Refused(413, "too_large", f"the body is over {webhook.MAX_BODY_BYTES} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > webhook.MAX_BODY_BYTES:
                raise webhook.Refused(413, "too_large", f"the body is over {webhook.MAX_BODY_BYTES} bytes")
    except ClientDisconnect as exc:
        raise webhook.Refused(400, "bad_request", "the body did not arrive whole") from exc
    return bytes(body)


async def _hook(service: Service, request: Request) -> dict[str, Any]:
    if service.secret is None:
        raise webhook.Refused(
            404, "disabled", f"the webhook is off: set {webhook.SECRET_ENV} where the service runs"
        )
    body = await _body(request)
    host = webhook.verify(request.headers, body, service.secret)
    push = webhook.parse_push(host, request.headers, body)
    if push.event == "ping":
        return {"result": "ignored", "reason": "ping"}
    if push.event != "push":
        return {"result": "ignored", "reason": f"not a push ({printable(push.event, 100)})"}
    if push.branch != service.branch:
        return {"result": "ignored", "reason": f"not the followed branch ({printable(push.ref or '', 200)})"}
    if push.deleted:
        return {"result": "ignored", "reason": "the branch was deleted"}
    if not service.replays.first_time(body, push.delivery):
        return {"result": "duplicate", "reason": "this delivery was handled already"}
    await anyio.to_thread.run_sync(service.on_push, push)
    return {"result": "accepted", "branch": service.branch}
