"""``reconciler serve``: the reconcile loop as a service, with a read-only dashboard, metrics and a webhook.

The service's libraries (Starlette, uvicorn, Jinja2, prometheus_client) are imported when the command
runs, never by ``reconciler --help``; a missing install is one clear error naming the extra.
"""

from __future__ import annotations

import os
from typing import Any

import click

from reconciler.cli.errors import ExitCode
from reconciler.cli.reconcile_cmd import loop_options, loop_options_from
from reconciler.errors import ConfigError
from reconciler.providers import open_target

__all__ = ["serve"]

_SECRET_ENV = "RECONCILER_WEBHOOK_SECRET"


@click.command(short_help="Run the reconcile loop as a service: dashboard, metrics, git webhook.")
@loop_options
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where the dashboard, /metrics, /healthz, /readyz and /hooks/git are served "
    "(port 0: any free port).",
)
def serve(target: str | None, listen: str, **loop: Any) -> None:
    """Keep the target in line with BRANCH (as `reconcile` does) and serve a read-only dashboard,
    Prometheus metrics and a push webhook over HTTP.

    The webhook (POST /hooks/git) takes GitHub and GitLab push hooks signed with the secret in
    RECONCILER_WEBHOOK_SECRET; without it the webhook is off. SIGTERM or SIGINT stop the loop at a safe
    point, then the server; the exit status is then 0. Of several replicas on one shared state store,
    one reconciles and all serve the pages and metrics.
    """
    try:
        from reconciler.serve.service import parse_listen, run_service
    except ImportError as exc:
        raise ConfigError(
            f"serve needs its libraries ({exc.name} is missing): pip install 'reconciler[serve]'"
        ) from exc

    options = loop_options_from(loop)
    address = parse_listen(listen)
    secret = os.environ.get(_SECRET_ENV)
    provider = open_target(target)
    try:
        code = run_service(
            options,
            provider,
            listen=address,
            secret=secret.encode() if secret else None,
            report=lambda line: click.echo(line, err=True),
        )
    finally:
        provider.close()
    if code:
        raise ExitCode(code)
