"""``reconciler directory``: the local tenant's on-premises directory (``load``, ``list``).

On-demand provisioning on the local target reads its objects from this directory; ``load`` fills it
from YAML files in the format ``reconciler.provisioning.directory`` describes.

I/O: reads the given files; reads and writes the local tenant database; stdout.
"""

from __future__ import annotations

import json

import click

from reconciler.cli.options import format_option, target_option
from reconciler.providers import open_target
from reconciler.providers.base import Provider
from reconciler.providers.local import LocalProvider
from reconciler.provisioning.directory import OBJECT_CLASSES, load_into, read_directory
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
    """Load the objects of FILE... (users, groups with members, OUs) into the local tenant."""
    found = read_directory(*files)
    provider = open_target(target)
    try:
        summary = load_into(_store(provider), found, replace=not merge)
    finally:
        provider.close()
    kinds = ", ".join(f"{count} {kind}" for kind, count in summary.by_type) or "no objects"
    message = f"Loaded {summary.objects} objects ({kinds}) and {summary.memberships} memberships"
    if summary.schema_extensions:
        message += f"; {summary.schema_extensions} AD schema extensions"
    if summary.removed:
        message += f"; removed {summary.removed} objects that are not in the files"
    click.echo(f"{message} into {provider.target}.")


@directory.command("list")
@click.option("--type", "object_type", type=click.Choice(list(OBJECT_CLASSES)), help="Only this type.")
@target_option
@format_option("text", "json")
def list_objects(object_type: str | None, target: str | None, fmt: str) -> None:
    """List the objects of the local tenant's on-premises directory."""
    provider = open_target(target)
    try:
        store = _store(provider)
        with store.transaction(write=False):
            objects = store.list_onprem_objects(object_type)
            members = {o["dn"]: store.list_members(o["dn"]) for o in objects if o["objectType"] == "group"}
    finally:
        provider.close()
    if fmt == "json":
        rows = [{**o, **({"members": members[o["dn"]]} if o["dn"] in members else {})} for o in objects]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not objects:
        click.echo(f"No on-premises objects on {provider.target}.")
        return
    for o in objects:
        line = f"{o['objectType']:<18} {o['dn']}"
        if o["dn"] in members:
            line += f"  ({len(members[o['dn']])} members)"
        click.echo(line)
