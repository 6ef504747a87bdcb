"""``reconciler emulator``: serve the Graph emulator over a tenant store until SIGTERM or Ctrl-C.

I/O: a listening socket, the tenant database, one line on stdout once it is ready
(``listening on http://HOST:PORT``, the real port when ``--port 0``), warnings on stderr, and on
stderr when it stops, how many requests it served and how many faults of each kind it injected.
"""

from __future__ import annotations

import gc
import ipaddress
import signal
import threading
import urllib.parse
from collections.abc import Callable
from types import FrameType

import click

from reconciler.cli.options import F, seconds_option
from reconciler.emulator import Emulator, EmulatorConfig

__all__ = ["emulator"]

# Seconds between two runs of the cyclic garbage collector while serving (see below).
_COLLECT_EVERY = 10.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _seed(store_path: str, dump: str, domain: str | None) -> None:
    from reconciler.emulator.seed import domain_of, load_schema_dump, seed_portal_configuration
    from reconciler.tenant.store import TenantStore

    schema = load_schema_dump(dump)
    domain = (domain or domain_of(schema) or "").strip()
    if not domain:
        raise click.UsageError(f"{dump} names no single AD domain; give it with --seed-domain")
    store = TenantStore(store_path)
    try:
        sp_id = seed_portal_configuration(store, schema, domain, f"admin@{domain}")
    finally:
        store.close()
    if sp_id is None:
        click.echo(f"seed: {domain} is in the store already; not seeded again", err=True)
    else:
        click.echo(
            f"seed: a configuration for {domain} made in the portal, service principal {sp_id}", err=True
        )


def _checked_base_url(text: str | None) -> str | None:
    if not text:
        return None
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise click.BadParameter("expected http(s)://HOST[:PORT][/PATH]", param_hint="--base-url")
    return text.rstrip("/")


def _share_option(flag: str, help: str) -> Callable[[F], F]:
    """A share of the requests, 0 to 1 (none by default)."""
    return click.option(flag, type=click.FloatRange(0, 1), default=0.0, show_default=True, help=help)


@click.command(short_help="Serve a Graph emulator of the synchronization API.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port; 0 picks a free one."
)
@click.option(
    "--store",
    "store_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The tenant database (the same file as --target local:PATH); created when missing.",
)
@click.option(
    "--token",
    envvar="RECONCILER_EMULATOR_TOKEN",
    default=None,
    help="Require this bearer token (401 otherwise). Env: RECONCILER_EMULATOR_TOKEN.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Added to every request.",
)
@_share_option("--fault-rate", "Share of requests that fail with a 5xx or a dropped connection.")
@_share_option("--throttle-rate", "Share of requests answered 429 with Retry-After.")
@_share_option(
    "--timeout-rate",
    "Share of requests carried out whose answer is held back --stall-seconds (a client timeout).",
)
@seconds_option("--stall-seconds", 5.0, "How long a timed-out answer is held back.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the injected faults.")
@click.option(
    "--retry-after",
    type=click.IntRange(0, 3600),
    default=1,
    show_default=True,
    help="Seconds given in Retry-After on 429 and 503.",
)
@click.option(
    "--base-url",
    default=None,
    help="The URL links in answers start with (@odata.context, @odata.nextLink), e.g. behind a proxy; "
    "default: the address listened on. The Host header of a request is never used.",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(1, 2**31),
    default=16 * 1024 * 1024,
    show_default=True,
    help="Larger request bodies are refused (413) without being read.",
)
@click.option(
    "--seed-config",
    "seed_config",
    type=click.Path(dir_okay=False),
    default=None,
    help="A job-schema dump (a GET .../jobs/{id}/schema answer): put a configuration made in the portal "
    "with that schema into the store before serving (once: not again when its domain is there).",
)
@click.option(
    "--seed-domain",
    default=None,
    help="The AD domain of the --seed-config configuration; default: the one its distinguished names name.",
)
def emulator(
    host: str,
    port: int,
    store_path: str,
    token: str | None,
    latency_ms: float,
    fault_rate: float,
    throttle_rate: float,
    timeout_rate: float,
    stall_seconds: float,
    seed: int,
    retry_after: int,
    base_url: str | None,
    max_body_bytes: int,
    seed_config: str | None,
    seed_domain: str | None,
) -> None:
    """Serve a Microsoft Graph emulator of the synchronization API over a local tenant store.

    Point the tool at it with --target graph+http://HOST:PORT (and RECONCILER_GRAPH_TOKEN when
    --token is given).
    """
    config = EmulatorConfig(
        host=host,
        port=port,
        token=token or None,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        throttle_rate=throttle_rate,
        timeout_rate=timeout_rate,
        stall_seconds=stall_seconds,
        seed=seed,
        retry_after=retry_after,
        base_url=_checked_base_url(base_url),
        max_body_bytes=max_body_bytes,
    )
    if seed_config is not None:
        _seed(store_path, seed_config, seed_domain)
    elif seed_domain is not None:
        raise click.UsageError("--seed-domain goes with --seed-config")
    server = Emulator(store_path, config)
    try:
        server.start()
    except OSError as exc:
        server.stop()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    collecting = gc.isenabled()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        if not _is_loopback(host):
            click.echo(
                f"warning: serving plain HTTP on {host}, reachable from other machines; "
                "the emulator is meant for this machine only",
                err=True,
            )
        click.echo(f"listening on {server.url}")
        # Serving builds and encodes large JSON trees that hold no reference cycles; the collector,
        # started by every few hundred allocations, would walk them over and over (a sixth of the
        # emulator's CPU time). It runs on a timer instead, for whatever cycles there are.
        gc.disable()
        waited = 0.0
        while not stop.wait(0.5):
            waited += 0.5
            if waited >= _COLLECT_EVERY:
                gc.collect()
                waited = 0.0
    finally:
        if collecting:
            gc.enable()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stats = server.stats
        click.echo(
            f"served {stats['requests']} request(s); injected {stats['throttled']} throttled, "
            f"{stats['faults']} failed or dropped, {stats['timeouts']} timed out",
            err=True,
        )
