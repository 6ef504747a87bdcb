"""Renderers: the plan value as terminal text, a Markdown pull-request comment, or JSON.

Each renderer is a pure function of the plan (plus layout options) to a string; the caller writes it.
They show plan data only, and a plan holds no secrets. The renderers are imported when first used, so
that importing the escaper (``reconciler.render.escape``), which every command's output goes through,
costs a command nothing more.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.core.plan import Plan

__all__ = ["RENDERERS", "render"]

_MODULES = {"text": "text", "markdown": "markdown", "json": "json"}


def _renderers() -> dict[str, Callable[..., str]]:
    return {
        fmt: importlib.import_module(f"reconciler.render.{module}").render for fmt, module in _MODULES.items()
    }


def __getattr__(name: str) -> Any:
    if name == "RENDERERS":
        return _renderers()
    raise AttributeError(name)


def render(plan: Plan, fmt: str, **opts: Any) -> str:
    """Render with the named renderer; ``opts`` are its keyword options (``color``, ``limit``...)."""
    module = _MODULES.get(fmt)
    if module is None:
        raise ValueError(f"unknown plan format {fmt!r}; known formats: {', '.join(_MODULES)}")
    renderer: Callable[..., str] = importlib.import_module(f"reconciler.render.{module}").render
    return renderer(plan, **opts)
