"""The embedded job template schemas: AD2AADProvisioning (package data ``data/ad2aad-template-schema.json``,
built by ``tools/build_template.py`` from a real schema) and the inferred AAD2ADGroupProvisioning
(``data/aad2ad-group-template-schema.json``, built by ``tools/build_group_template.py`` from the documented
default mappings; no real one is public, see docs/graph.md).

Also the application templates the tenant offers (``GET /applicationTemplates/{id}``) and the app roles
a principal made from one lists: the AD -> Entra ID one is documented; the Entra ID -> AD one, its id and
its "selected groups" role are INFERRED (cloud-sync-directions.md 1.2, 1.3; docs/graph.md).

The only I/O is reading those files, once per process each. Their default mappings are read in
``reading`` (``template_defaults``).
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from reconciler.errors import NotFoundError
from reconciler.graph.identity import GROUP_TEMPLATE_APP_ID, TEMPLATE_APP_ID

__all__ = [
    "APPLICATION_TEMPLATES",
    "GROUP_TEMPLATE_FILE",
    "TEMPLATE_FILE",
    "application_template",
    "group_template_schema",
    "principal_app_roles",
    "template_schema",
]

TEMPLATE_FILE = "ad2aad-template-schema.json"
GROUP_TEMPLATE_FILE = "aad2ad-group-template-schema.json"

# The two Cloud Sync application templates, by id.
APPLICATION_TEMPLATES: dict[str, dict[str, Any]] = {
    TEMPLATE_APP_ID: {
        "id": TEMPLATE_APP_ID,
        "displayName": "Active Directory to Microsoft Entra ID provisioning",
        "publisher": "Microsoft Corporation",
        "categories": ["provisioning"],
        "supportedProvisioningTypes": ["sync"],
        "supportedSingleSignOnModes": [],
    },
    GROUP_TEMPLATE_APP_ID: {
        "id": GROUP_TEMPLATE_APP_ID,
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
    return [dict(_SELECTED_GROUPS_ROLE)] if template_id == GROUP_TEMPLATE_APP_ID else []


@functools.cache
def _load(name: str = TEMPLATE_FILE) -> dict[str, Any]:
    text = resources.files("reconciler").joinpath("data", name).read_text(encoding="utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def group_template_schema() -> dict[str, Any]:
    """A fresh copy of the inferred AAD2ADGroupProvisioning template schema."""
    return copy.deepcopy(_load(GROUP_TEMPLATE_FILE))


def template_schema() -> dict[str, Any]:
    """A fresh copy of the template schema (callers may change it)."""
    return copy.deepcopy(_load())
