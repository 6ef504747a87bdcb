"""``reconciler provision``: on-demand provisioning of one object, as the portal offers it.

Calls the target's ``provisionOnDemand`` for configuration NAME and one subject (a DN; for an Entra ID ->
AD configuration, the cloud group's object id, with up to five ``--member`` ids, the documented limit),
and shows the steps the service reports (import, scoping, matching, export) with the modified
properties. The JSON format prints the response exactly as the service gives it: ``key`` and ``value``
are JSON text.

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
from reconciler.core.model import MAX_ON_DEMAND_MEMBERS, OBJECT_TYPES, Direction
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


def _to_ad(
    provider: object, id: str, subject: str, object_type: str, members: tuple[str, ...], scoping: bool
) -> dict[str, Any]:
    """An Entra ID -> AD configuration's on-demand run: a group with its members, or (preview) a user."""
    from reconciler.graph.provider import GraphProvider

    if object_type not in ("group", "user"):
        raise click.UsageError("an Entra ID -> AD configuration provisions a group (or, in preview, a user)")
    if members and object_type != "group":
        raise click.UsageError("--member goes with --type group")
    if scoping:
        raise click.UsageError("--apply-scoping applies to AD -> Entra ID configurations only")
    if not isinstance(provider, LocalProvider | GraphProvider):
        raise ProviderError("this target cannot provision an Entra ID -> AD object on demand")
    return provider.provision_on_demand(id, subject, object_type, members=members)


@click.command(short_help="Provision one object on demand and show what happened.")
@click.argument("name")
@click.option(
    "--subject",
    required=True,
    metavar="DN|ID",
    help="Distinguished name of the object to provision (Entra ID -> AD: the cloud object's id).",
)
@click.option(
    "--member",
    "members",
    multiple=True,
    metavar="ID",
    help=f"Entra ID -> AD: a member provisioned with the group (at most {MAX_ON_DEMAND_MEMBERS}, the "
    "documented limit per request; repeat the option).",
)
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
    name: str,
    subject: str,
    members: tuple[str, ...],
    object_type: str,
    apply_scoping: bool,
    target: str | None,
    fmt: str,
) -> None:
    """Provision one object (--subject DN) with configuration NAME now, and show what happened.

    Runs the steps the service reports: import, scoping, matching, export. Exit 1 when the result is
    a failure (the object is not found, or a mapping calls Error(...), for example). An Entra ID -> AD
    configuration provisions one cloud group (--type group, --subject its object id) with up to five
    of its members (--member ID ...), or, in preview, one user.
    """
    if len(members) > MAX_ON_DEMAND_MEMBERS:
        raise click.UsageError(
            f"--member given {len(members)} times: provisioning on demand takes one group and at most "
            f"{MAX_ON_DEMAND_MEMBERS} members per request (the documented limit); provision the others "
            "in another request"
        )
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
        to_ad = config.settings.direction is Direction.ENTRA_TO_AD
        if to_ad:
            response = _to_ad(provider, config.id, subject, object_type, members, apply_scoping)
        elif members:
            raise click.UsageError("--member applies to Entra ID -> AD configurations only")
        elif isinstance(provider, LocalProvider):
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
