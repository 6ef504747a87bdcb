"""The directory-extension steps of the writes: the Cloud Sync extensions application and its extension
properties, following Microsoft's documented recipe, each step idempotent (``extensions`` holds their
shapes). A property's type never changes: one held with another type is a conflict.

I/O: none of its own; only through the ``Resources`` it is given.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence

from reconciler.core.model import (
    DirectoryExtension,
    ExtensionsSeen,
    Mapping,
    resolve_extension_removals,
    resolve_extensions,
)
from reconciler.errors import ConflictError, NotFoundError
from reconciler.graph.extensions import EXTENSIONS_APP_NAME, identifier_uri, property_body, read_properties
from reconciler.graph.identity import JSON
from reconciler.graph.primitives import WriteSteps

__all__ = ["ExtensionWrites"]


class ExtensionWrites(WriteSteps):
    """The directory-extension steps of ``CloudSyncWriter``."""

    @staticmethod
    def _resolved(
        seen: ExtensionsSeen | None, mappings: Sequence[Mapping], removals: Sequence[tuple[str, str]]
    ) -> tuple[tuple[Mapping, ...], tuple[tuple[str, str], ...]]:
        app_id = seen.app_id if seen is not None else None
        return resolve_extensions(mappings, app_id), resolve_extension_removals(removals, app_id)

    def _extension_app(self, *, create: bool) -> JSON | None:
        """The tenant's Cloud Sync extensions application (found by its identifier URI), with its
        service principal; made when ``create`` and missing. Two of them is a conflict, never a guess."""
        r = self.resources
        uri = identifier_uri(r.tenant_id())
        with r.step("extensions-app"):
            apps = r.applications_with_uri(uri)
            if len(apps) > 1:
                ids = ", ".join(str(a.get("id")) for a in apps)
                raise ConflictError(f"more than one application has the identifier URI {uri}: {ids}")
            if apps:
                app = apps[0]
            elif not create:
                return None
            else:

                def look() -> JSON | None:
                    found = r.applications_with_uri(uri)
                    return found[0] if found else None

                app = self._made_once(lambda: r.create_application(EXTENSIONS_APP_NAME, uri), look)
            if create and r.settle(r.principal_of, str(app["appId"])) is None:
                app_id = str(app["appId"])
                self._made_once(lambda: r.settle(r.create_principal, app_id), lambda: r.principal_of(app_id))
            return app

    def read_extensions(self) -> ExtensionsSeen | None:
        """The extensions application and its extension properties; None while there is none. A read."""
        app = self._extension_app(create=False)
        if app is None:
            return None
        return read_properties(app, self.resources.list_extension_properties(str(app["id"])))

    def _ensure_extensions(self, extensions: Sequence[DirectoryExtension]) -> ExtensionsSeen | None:
        """Every extension property of ``extensions`` on the extensions application (made if missing);
        one the service holds with another type is a conflict: a property's type never changes."""
        if not extensions:
            return None
        r = self.resources
        app = self._extension_app(create=True)
        assert app is not None
        app_object_id = str(app["id"])
        seen = read_properties(app, r.settle(r.list_extension_properties, app_object_id))
        for extension in extensions:
            found = seen.find(extension.name)
            if found is None:

                def look(name: str = extension.name) -> JSON | None:
                    again = read_properties(app, r.list_extension_properties(app_object_id))
                    return {"name": name} if again.find(name) is not None else None

                make = functools.partial(r.create_extension_property, app_object_id, property_body(extension))
                self._made_once(make, look)
            elif not found.same_property(extension):
                raise ConflictError(
                    f"directory extension {extension.name} exists as {found.as_dict()}, not as "
                    f"{extension.as_dict()}; an extension property cannot change: remove it, then declare "
                    "it anew"
                )
        return read_properties(app, r.list_extension_properties(app_object_id))

    def _delete_extensions(self, seen: ExtensionsSeen, names: Sequence[str]) -> None:
        """Delete extension properties ``names`` (gone already counts as done)."""
        r = self.resources
        app = self._extension_app(create=False)
        if app is None:
            return
        ids = dict(seen.property_ids)
        for name in names:
            property_id = ids.get(name.casefold())
            if property_id:
                with contextlib.suppress(NotFoundError):
                    r.delete_extension_property(str(app["id"]), property_id)
