"""The embedded job template schemas: AD2AADProvisioning (package data ``data/ad2aad-template-schema.json``,
built by ``tools/build_template.py`` from a real schema) and the inferred AAD2ADGroupProvisioning
(``data/aad2ad-group-template-schema.json``, built by ``tools/build_group_template.py`` from the documented
default mappings; no real one is public, see docs/graph.md).

Also the application templates the tenant offers (``GET /applicationTemplates/{id}``) and the app roles
a principal made from one lists: the AD -> Entra ID one is documented; the Entra ID -> AD one, its id and
its "selected groups" role are INFERRED (cloud-sync-directions.md 1.2, 1.3; docs/graph.md).

The only I/O is reading those files, once per process each.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from reconciler.core.model import Direction, Mapping
from reconciler.errors import NotFoundError

__all__ = [
    "APPLICATION_TEMPLATES",
    "GROUP_TEMPLATE_FILE",
    "TEMPLATE_FILE",
    "application_template",
    "group_template_schema",
    "principal_app_roles",
    "template_defaults",
    "template_defaults_for",
    "template_schema",
]

TEMPLATE_FILE = "ad2aad-template-schema.json"
GROUP_TEMPLATE_FILE = "aad2ad-group-template-schema.json"

# The two Cloud Sync application templates, by id (the ids are the ones in graph.shapes; they are
# repeated here so that the tenant does not depend on the Graph layer for data).
_AD_TO_ENTRA_TEMPLATE = "1a4721b3-e57f-4451-ae87-ef078703ec94"
_ENTRA_TO_AD_TEMPLATE = "fb81332f-3eca-4ecf-a939-4278e501d330"
APPLICATION_TEMPLATES: dict[str, dict[str, Any]] = {
    _AD_TO_ENTRA_TEMPLATE: {
        "id": _AD_TO_ENTRA_TEMPLATE,
        "displayName": "Active Directory to Microsoft Entra ID provisioning",
        "publisher": "Microsoft Corporation",
        "categories": ["provisioning"],
        "supportedProvisioningTypes": ["sync"],
        "supportedSingleSignOnModes": [],
    },
    _ENTRA_TO_AD_TEMPLATE: {
        "id": _ENTRA_TO_AD_TEMPLATE,
        "displayName": "Microsoft Entra ID to Active Directory provisioning",
        "publisher": "Microsoft Corporation",
        "categories": ["provisioning"],
        "supportedProvisioningTypes": ["sync"],
        "supportedSingleSignOnModes": [],
    },
}
# The role "selected groups" are assigned with (public cloud id, cloud-sync-directions.md 1.3).
_SELECTED_GROUPS_ROLE = {
    "id": "1a0abf4d-b9fa-4512-a3a2-51ee82c6fd9f",
    "allowedMemberTypes": ["User", "Group"],
    "description": "Objects assigned to this role are provisioned to Active Directory",
    "displayName": "Provisioned to Active Directory",
    "isEnabled": True,
    "origin": "Application",
    "value": None,
}


def application_template(id: str) -> dict[str, Any]:
    """``GET /applicationTemplates/{id}``: one the tenant offers; NotFoundError otherwise."""
    for key, found in APPLICATION_TEMPLATES.items():
        if key.casefold() == id.casefold():
            return copy.deepcopy(found)
    raise NotFoundError(f"application template {id} not found", code="Request_ResourceNotFound")


def principal_app_roles(template_id: str) -> list[dict[str, Any]]:
    """The app roles a principal made from ``template_id`` lists."""
    return [dict(_SELECTED_GROUPS_ROLE)] if template_id == _ENTRA_TO_AD_TEMPLATE else []


@functools.cache
def _load(name: str = TEMPLATE_FILE) -> dict[str, Any]:
    text = resources.files("reconciler").joinpath("data", name).read_text(encoding="utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def group_template_schema() -> dict[str, Any]:
    """A fresh copy of the inferred AAD2ADGroupProvisioning template schema."""
    return copy.deepcopy(_load(GROUP_TEMPLATE_FILE))


@functools.cache
def template_defaults_for(direction: Direction) -> tuple[Mapping, ...]:
    """The default mappings of the job a configuration of ``direction`` runs."""
    if direction is Direction.AD_TO_ENTRA:
        return template_defaults()
    from reconciler.graph.shapes import read_schema

    # Every object type's rows, users' (preview) too: a job's user object mapping starts switched off,
    # and is not read while it is, but a configuration that asks for users gets these rows.
    schema = copy.deepcopy(_load(GROUP_TEMPLATE_FILE))
    for rule in schema.get("synchronizationRules") or []:
        for om in rule.get("objectMappings") or []:
            om["enabled"] = True
    return read_schema(schema)[1]


def template_schema() -> dict[str, Any]:
    """A fresh copy of the template schema (callers may change it)."""
    return copy.deepcopy(_load())


@functools.cache
def template_defaults() -> tuple[Mapping, ...]:
    """The template's default mappings, without CredentialData."""
    from reconciler.graph.shapes import read_schema

    return read_schema(_load())[1]
