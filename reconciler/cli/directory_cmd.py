"""``reconciler directory``: the local tenant's on-premises directory and cloud groups (``load``, ``list``).

On-demand provisioning on the local target reads its objects from this directory, and Entra ID -> AD
provisioning its cloud groups; ``load`` fills both from YAML files in the format
``reconciler.provisioning.directory`` describes.

I/O: reads the given files; reads and writes the local tenant database; stdout.
"""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.options import format_option, target_option
from reconciler.cli.output import echo_lines
from reconciler.providers import open_target
from reconciler.providers.base import Provider
from reconciler.providers.local import LocalProvider
from reconciler.provisioning.directory import OBJECT_CLASSES, LoadSummary, load_into, read_directory
from reconciler.tenant.store import TenantStore

__all__ = ["directory"]


def _store(provider: Provider) -> TenantStore:
    if not isinstance(provider, LocalProvider):
        provider.close()
        raise click.UsageError(
            f"{provider.target} has no on-premises directory: only a local target (local:PATH) holds one"
        )
    return provider.store


@click.group(short_help="The local tenant's on-premises directory (load, list).")
def directory() -> None:
    """The local tenant's on-premises directory, for on-demand provisioning."""


@directory.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="FILE...")
@click.option(
    "--merge",
    is_flag=True,
    help="Add or replace the files' objects and keep the others (default: the directory becomes the files).",
)
@target_option
def load(files: tuple[str, ...], merge: bool, target: str | None) -> None:
    """Load the objects of FILE... (users, groups with members, OUs) and its cloud groups into the
    local tenant."""
    found = read_directory(*files)
    provider = open_target(target)
    try:
        summary = load_into(_store(provider), found, replace=not merge)
    finally:
        provider.close()
    echo_lines([f"{_loaded(summary)} into {provider.target}."])


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _loaded(summary: LoadSummary) -> str:
    kinds = ", ".join(f"{count} {kind}" for kind, count in summary.by_type) or "no objects"
    message = f"Loaded {summary.objects} objects ({kinds}) and {summary.memberships} memberships"
    if summary.cloud_groups:
        members = _count(summary.cloud_members, "member")
        message += f", and {_count(summary.cloud_groups, 'cloud group')} ({members})"
    if summary.schema_extensions:
        message += f"; {summary.schema_extensions} AD schema extensions"
    removed = [f"{summary.removed} objects"] if summary.removed else []
    if summary.removed_cloud_groups:
        removed.append(_count(summary.removed_cloud_groups, "cloud group"))
    if removed:
        message += f"; removed {' and '.join(removed)} that are not in the files"
    return message


@directory.command("list")
@click.option(
    "--type",
    "object_type",
    type=click.Choice(list(OBJECT_CLASSES)),
    help="Only this type (group: the cloud groups too).",
)
@target_option
@format_option("text", "json")
def list_objects(object_type: str | None, target: str | None, fmt: str) -> None:
    """List the objects of the local tenant's on-premises directory, then the cloud groups it loaded."""
    from reconciler.render.escape import json_text

    provider = open_target(target)
    try:
        store = _store(provider)
        with store.transaction(write=False):
            objects = store.list_onprem_objects(object_type)
            members = {o["dn"]: store.list_members(o["dn"]) for o in objects if o["objectType"] == "group"}
            groups = _cloud_groups(store) if object_type in (None, "group") else []
    finally:
        provider.close()
    if fmt == "json":
        rows = [{**o, **({"members": members[o["dn"]]} if o["dn"] in members else {})} for o in objects]
        rows += [{k: g[k] for k in ("id", "objectType", "attributes")} for g in groups]
        click.echo(json_text(rows, indent=2, ensure_ascii=False))
        return
    if not objects and not groups:
        echo_lines([f"No on-premises objects or cloud groups on {provider.target}."])
        return
    lines = []
    for o in objects:
        line = f"{o['objectType']:<18} {o['dn']}"
        if o["dn"] in members:
            line += f"  ({len(members[o['dn']])} members)"
        lines.append(line)
    for g in groups:
        attributes = g["attributes"]
        count = len(attributes.get("members") or [])
        lines.append(f"{'cloud group':<18} {g['id']}  {attributes.get('displayName')}  ({count} members)")
    echo_lines(lines)


def _cloud_groups(store: TenantStore) -> list[dict[str, Any]]:
    """The cloud groups a directory load wrote, oldest first."""
    found = (store.get_cloud_object(i) for i in store.directory_cloud_ids())
    return [g for g in found if g is not None and g["objectType"] == "Group"]
