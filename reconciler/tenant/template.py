"""The embedded AD2AADProvisioning template schema (package data ``data/ad2aad-template-schema.json``).

The only I/O is reading that file, once per process. It is built by ``tools/build_template.py``.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from reconciler.core.model import Mapping

__all__ = ["TEMPLATE_FILE", "template_defaults", "template_schema"]

TEMPLATE_FILE = "ad2aad-template-schema.json"


@functools.cache
def _load() -> dict[str, Any]:
    text = resources.files("reconciler").joinpath("data", TEMPLATE_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def template_schema() -> dict[str, Any]:
    """A fresh copy of the template schema (callers may change it)."""
    return copy.deepcopy(_load())


@functools.cache
def template_defaults() -> tuple[Mapping, ...]:
    """The template's default mappings, without CredentialData."""
    from reconciler.graph.shapes import read_schema

    return read_schema(_load())[1]
