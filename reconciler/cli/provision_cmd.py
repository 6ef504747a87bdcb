"""``reconciler provision``: on-demand provisioning of one object, as the portal offers it.

Calls the target's ``provisionOnDemand`` for configuration NAME and one subject (a DN), and shows the
steps the service reports (import, scoping, matching, export) with the modified properties. The JSON
format prints the response exactly as the service gives it: ``key`` and ``value`` are JSON text.

Exit 1 when the result is a failure. I/O: the target (on the local tenant this writes the provisioned
cloud object); stdout.
"""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.cli.errors import EXIT_ERROR, ExitCode
from reconciler.cli.options import format_option, target_option
from reconciler.cli.output import echo_lines
from reconciler.core.model import OBJECT_TYPES
from reconciler.errors import NotFoundError, ProviderError
from reconciler.providers import open_target
from reconciler.providers.local import LocalProvider

__all__ = ["provision", "render_response"]

_MAX_VALUE = 48


def _decode(text: object, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        raise ProviderError(f"the provisionOnDemand response's {what} is not JSON") from exc
    return data if isinstance(data, dict) else {}


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def render_response(response: dict[str, Any], heading: str) -> tuple[str, str]:
    """(text, result) of a provisionOnDemand response: steps, modified properties, result."""
    key = _decode(response.get("key"), "key")
    log = _decode(response.get("value"), "value")
    result = str(key.get("result") or "Unknown")
    lines = [heading, ""]
    steps = log.get("provisioningSteps") or []
    for i, step in enumerate(steps, 1):
        kind, status = str(step.get("type") or ""), str(step.get("status") or "")
        lines.append(f"  {i}. {kind:<9} {status:<8} {step.get('description') or ''}".rstrip())
    if not steps:
        lines.append("  (the service reported no steps)")
    modified = log.get("modifiedProperties") or []
    if modified:
        names = [str(m.get("displayName")) for m in modified]
        olds = ["-" if m.get("oldValue") is None else _clip(str(m.get("oldValue"))) for m in modified]
        width_name = max(len("PROPERTY"), *(len(n) for n in names))
        width_old = max(len("OLD VALUE"), *(len(o) for o in olds))
        lines += ["", f"Modified properties ({len(modified)}):"]
        lines.append(f"  {'PROPERTY':<{width_name}}  {'OLD VALUE':<{width_old}}  NEW VALUE")
        for name, old, m in zip(names, olds, modified, strict=True):
            new = "-" if m.get("newValue") is None else str(m.get("newValue"))
            lines.append(f"  {name:<{width_name}}  {old:<{width_old}}  {new}".rstrip())
    details = key.get("details") or {}
    summary = f"Result: {result}"
    action = log.get("action")
    if action and action != "Other":
        summary += f" ({action})"
    if details.get("errorCode") or details.get("errorMessage"):
        summary += f": {details.get('errorCode') or 'error'}: {details.get('errorMessage') or ''}".rstrip(
            ": "
        )
    lines += ["", summary]
    return "\n".join(lines), result


@click.command(short_help="Provision one object on demand and show what happened.")
@click.argument("name")
@click.option("--subject", required=True, metavar="DN", help="Distinguished name of the object to provision.")
@click.option(
    "--type",
    "object_type",
    type=click.Choice(list(OBJECT_TYPES)),
    default="user",
    show_default=True,
    help="The object's type.",
)
@click.option(
    "--apply-scoping",
    is_flag=True,
    help="Local target only: skip an object out of scope, as a scheduled cycle would "
    "(the service ignores scoping on demand).",
)
@target_option
@format_option("text", "json")
def provision(
    name: str, subject: str, object_type: str, apply_scoping: bool, target: str | None, fmt: str
) -> None:
    """Provision one object (--subject DN) with configuration NAME now, and show what happened.

    Runs the steps the service reports: import, scoping, matching, export. Exit 1 when the result is
    a failure (the object is not found, or a mapping calls Error(...), for example).
    """
    provider = open_target(target)
    try:
        if apply_scoping and not isinstance(provider, LocalProvider):
            raise click.UsageError(
                "--apply-scoping needs a local target; the service ignores scoping on demand"
            )
        found = [o for o in provider.read_all() if o.name == name or o.id == name]
        if not found:
            raise NotFoundError(f"no configuration named {name!r} on {provider.target}")
        config = found[0]
        if isinstance(provider, LocalProvider):
            response = provider.provision_on_demand(
                config.id, subject, object_type, apply_scoping=apply_scoping
            )
        else:
            response = provider.provision_on_demand(config.id, subject, object_type)
    finally:
        provider.close()
    if fmt == "json":
        click.echo(json.dumps(response, indent=2, ensure_ascii=False))
        result = str(_decode(response.get("key"), "key").get("result") or "")
    else:
        heading = f"On-demand provisioning of {subject} ({object_type}) with {name} on {provider.target}"
        text, result = render_response(response, heading)
        echo_lines(text.split("\n"))
    if result == "Failure":
        raise ExitCode(EXIT_ERROR)
