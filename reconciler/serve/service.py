"""The ``serve`` process: the reconcile loop in a thread, the HTTP server (uvicorn) in the main thread.

SIGTERM or SIGINT asks the loop to stop at its next safe point (the change being written finishes,
the rest of the apply is skipped and journaled, the lock and the leader lease are released); the HTTP
server keeps answering until then, and stops once the loop has ended. The process then exits 0. The
server's own signal handling is turned off for this: it would stop serving at once and raise the
signal again on its way out, which ends the process with the signal's status instead of 0.

The listening socket is bound before anything starts, so an address in use is one clear error.

I/O: a TCP socket, process signals, and everything the loop and the application do.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn

from reconciler.engine.reconcile import LoopOptions
from reconciler.errors import ConfigError
from reconciler.providers.base import Provider
from reconciler.serve.app import Service, create_app
from reconciler.serve.loop import HookWatcher, ServeLoop
from reconciler.serve.metrics import Metrics
from reconciler.serve.webhook import Push

__all__ = ["DEFAULT_LISTEN", "bind", "parse_listen", "run_service"]

DEFAULT_LISTEN = "127.0.0.1:8080"
CONCURRENT_REQUESTS = 64


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a host and a port number."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ConfigError(f"--listen {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    return host.removeprefix("[").removesuffix("]"), int(port)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service handles SIGTERM and SIGINT itself (see the module docstring).
        yield


def _probe(provider: Provider) -> Callable[[], None]:
    """The smallest read that shows the target answers: one service principal id from Graph, else a
    read of the (local) target."""
    client = getattr(provider, "client", None)
    if client is not None and callable(getattr(client, "get", None)):
        return lambda: client.get("/servicePrincipals", {"$top": "1", "$select": "id"})

    def read() -> None:
        provider.read_all()

    return read


def run_service(
    options: LoopOptions,
    provider: Provider,
    *,
    listen: tuple[str, int],
    secret: bytes | None,
    report: Callable[[str], None],
) -> int:
    """Run the loop and the server until a signal (exit 0) or the loop's end; the loop's exit code."""
    sock = bind(*listen)
    stop = threading.Event()
    holder: dict[str, Any] = {}

    def leading() -> bool:
        loop = holder.get("loop")
        return bool(loop is not None and loop.leading)

    service: Service
    metrics = Metrics(lambda: service.overview(), leading)
    metrics.count_graph_requests(provider)
    loop = holder["loop"] = ServeLoop(options, provider, metrics, report=report, stop=stop)
    watcher = HookWatcher(loop)

    def on_push(push: Push) -> None:
        report(f"push to {options.branch} ({(push.after or '?')[:12]}): starting a pass")
        watcher.announce(options.branch, push.after)

    service = Service(
        target=provider.target,
        branch=options.branch,
        source=loop.status.source,
        metrics=metrics,
        on_push=on_push,
        probe_target=_probe(provider),
        secret=secret,
    )
    config = uvicorn.Config(
        create_app(service),
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=5,
        # A flood of requests gets 503s instead of queueing without bound behind the store reads.
        limit_concurrency=CONCURRENT_REQUESTS,
    )
    server = _Server(config)
    outcome: dict[str, Any] = {}

    def run_loop() -> None:
        try:
            outcome["code"] = loop.run()
        except BaseException as exc:  # handed to the main thread, which raises it
            outcome["error"] = exc
        finally:
            server.should_exit = True

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            report(f"{signal.Signals(signum).name}: stopping at the next safe point")
        stop.set()

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    report(f"Serving on http://{shown}:{port}/ ; following {options.branch} of {loop.status.source}")
    if secret is None:
        report("the webhook /hooks/git is off: RECONCILER_WEBHOOK_SECRET is not set")
    thread = threading.Thread(target=run_loop, name="reconcile-loop", daemon=True)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        thread.start()
        watcher.start()
        server.run(sockets=[sock])
    finally:
        stop.set()
        thread.join()
        watcher.close()
        for s, h in previous.items():
            signal.signal(s, h)
        sock.close()
    error = outcome.get("error")
    if error is not None:
        raise error
    return int(outcome.get("code", 0))
