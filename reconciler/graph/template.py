"""The embedded job template schemas: AD2AADProvisioning (package data ``data/ad2aad-template-schema.json``,
built by ``tools/build_template.py`` from a real schema) and the inferred AAD2ADGroupProvisioning
(``data/aad2ad-group-template-schema.json``, built by ``tools/build_group_template.py`` from the documented
default mappings; no real one is public, see docs/graph.md).

The only I/O is reading those files, once per process each.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from reconciler.core.model import Direction, Mapping

__all__ = [
    "GROUP_TEMPLATE_FILE",
    "TEMPLATE_FILE",
    "group_template_schema",
    "template_defaults",
    "template_defaults_for",
    "template_schema",
]

TEMPLATE_FILE = "ad2aad-template-schema.json"
GROUP_TEMPLATE_FILE = "aad2ad-group-template-schema.json"


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

    return read_schema(_load(GROUP_TEMPLATE_FILE))[1]


def template_schema() -> dict[str, Any]:
    """A fresh copy of the template schema (callers may change it)."""
    return copy.deepcopy(_load())


@functools.cache
def template_defaults() -> tuple[Mapping, ...]:
    """The template's default mappings, without CredentialData."""
    from reconciler.graph.shapes import read_schema

    return read_schema(_load())[1]
