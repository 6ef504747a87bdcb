"""Renderers: the plan value as terminal text, a Markdown pull-request comment, or JSON.

Each renderer is a pure function of the plan (plus layout options) to a string; the caller writes it.
They show plan data only, and a plan holds no secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.core.plan import Plan
from reconciler.render import json as json_format
from reconciler.render import markdown, text

__all__ = ["RENDERERS", "render"]

RENDERERS: dict[str, Callable[..., str]] = {
    "text": text.render,
    "markdown": markdown.render,
    "json": json_format.render,
}


def render(plan: Plan, fmt: str, **opts: Any) -> str:
    """Render with the named renderer; ``opts`` are its keyword options (``color``, ``limit``...)."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown plan format {fmt!r}; known formats: {', '.join(RENDERERS)}") from None
    return renderer(plan, **opts)
