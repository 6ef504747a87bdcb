"""The plan as JSON: the same document that ``plan --out`` saves. Pure, no I/O.

The document and its checksum come from ``reconciler.core.serialize``; its schema is
``schemas/plan.schema.json``. This module only adds the tool version and the layout.
"""

from __future__ import annotations

import reconciler
from reconciler.core.plan import Plan
from reconciler.core.serialize import to_document
from reconciler.render.escape import json_text

__all__ = ["render"]


def render(plan: Plan, *, tool_version: str | None = None) -> str:
    version = reconciler.__version__ if tool_version is None else tool_version
    return json_text(to_document(plan, tool_version=version), indent=2, ensure_ascii=False) + "\n"
