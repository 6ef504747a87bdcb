"""The preview task (``reconciler preview``): what a configuration's mappings give sample objects.

Loads the desired state, reads the mappings the target holds (only with ``against`` or an explicit
target: otherwise the embedded template gives the defaults) and evaluates both sides for every object
of a directory file through ``reconciler.provisioning.preview``.

I/O: reads the desired files and the object file; reads the target only when asked to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.config.load import load_paths
from reconciler.errors import Diagnostic, NotFoundError
from reconciler.graph.reading import template_defaults
from reconciler.providers import open_target
from reconciler.provisioning.directory import read_objects
from reconciler.provisioning.preview import Preview, preview_directory, sides

__all__ = ["PreviewRun", "run_preview"]


@dataclass(frozen=True, slots=True)
class PreviewRun:
    preview: Preview
    warnings: tuple[Diagnostic, ...]
    missing_on: str | None  # with ``against``: the target that does not hold the configuration


def run_preview(
    paths: Sequence[str],
    name: str,
    object_file: str,
    *,
    against: bool,
    target: str | None,
    create: bool,
) -> PreviewRun:
    """Preview configuration ``name`` of the desired state under ``paths`` on ``object_file``'s objects."""
    loaded = load_paths(list(paths) or ["."])
    desired = loaded.state.by_name().get(name)
    if desired is None:
        known = ", ".join(sorted(loaded.state.by_name())) or "none"
        raise NotFoundError(f"no configuration named {name!r} in the desired state (found: {known})")
    directory = read_objects(object_file)
    observed, label = None, None
    if against or target:
        # A preview shows mappings; a tenant not made yet simply holds none.
        provider = open_target(target, read_only=True, missing_is_empty=True)
        try:
            defaults = provider.template_defaults()
            if against:
                label = provider.target
                observed = next((o for o in provider.read_all() if name in (o.name, o.id)), None)
        finally:
            provider.close()
    else:
        defaults = template_defaults()
    after, before = sides(desired, defaults, observed, against=label)
    preview = preview_directory(name, after, before, directory, create=create)
    missing = label if against and observed is None else None
    return PreviewRun(preview, tuple(loaded.warnings), missing)
