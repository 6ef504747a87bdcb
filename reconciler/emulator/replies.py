"""Replies in Graph's shapes: the reply and request values, Graph's error bodies, and ``Shaper``, which
gives a stored object every documented property of its type and answers a single resource or a
collection with Graph's query options ($select, $expand, $filter, paging; ``odata``) applied.

I/O: the tenant database, through the store (an ``$expand`` of a schema reads it).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from reconciler.emulator import odata
from reconciler.errors import NotFoundError, ProviderError, TransientProviderError
from reconciler.graph.metadata import metadata
from reconciler.tenant.store import TenantStore

__all__ = ["JSON", "RAW_BODIES", "Reply", "Request", "Shaper", "TextBody", "error_from", "graph_error"]

JSON = dict[str, Any]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999


@dataclass(slots=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class TextBody(str):
    """A reply body that is plain text (``/$count``), not JSON."""


# Whether a reply body may be JSON text already encoded (an ``orjson.Fragment``) rather than JSON data:
# only for a caller that encodes the reply with orjson and does not look inside it.
RAW_BODIES: ContextVar[bool] = ContextVar("RAW_BODIES", default=False)


def graph_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """A Graph error reply; ``server`` fills in ``innerError`` (date and request ids)."""
    return Reply(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


def _plain_message(exc: ProviderError) -> str:
    # ProviderError's text ends with "(HTTP n, code c)"; the Graph body carries those separately.
    text = str(exc)
    return re.sub(r" \((HTTP \d+|code [^,)]+|request-id [^,)]+)(, [^)]*)?\)$", "", text)


def error_from(exc: ProviderError) -> Reply:
    if isinstance(exc, TransientProviderError):
        return graph_error(503, exc.code or "serviceNotAvailable", _plain_message(exc), {"Retry-After": "1"})
    if isinstance(exc, NotFoundError):
        return graph_error(404, exc.code or "Request_ResourceNotFound", _plain_message(exc))
    status = exc.status or 400
    return graph_error(
        status, exc.code or ("Conflict" if status == 409 else "BadRequest"), _plain_message(exc)
    )


# Options Graph takes on a single resource; the others are refused there.
_ENTITY_OPTIONS = frozenset({"select", "expand", "format"})
# Properties Graph leaves out unless they are named in $select: a service principal's custom security
# attributes, and the group properties its reference page marks "Returned only on $select".
_ONLY_ON_SELECT: dict[str, tuple[str, ...]] = {
    "servicePrincipal": ("customSecurityAttributes",),
    "group": (
        "allowExternalSenders",
        "assignedLabels",
        "assignedLicenses",
        "autoSubscribeNewMembers",
        "hideFromAddressLists",
        "hideFromOutlookClients",
        "isSubscribedByMail",
        "licenseProcessingState",
        "membershipRuleProcessingStatus",
        "unseenConversationsCount",
        "unseenCount",
        "unseenMessagesCount",
    ),
}
# A directory extension property, as $select sees it (its type is the registration's, not checked here).
_EXTENSION_PROPERTY: dict[str, Any] = {"type": "Edm.Untyped", "nullable": True, "navigation": False}
# The documented value of a property the store does not hold, where it is not null or empty. The
# store's cloud groups are security groups (directory files and Cloud Sync make no other kind).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "servicePrincipal": {"accountEnabled": True, "servicePrincipalType": "Application"},
    "application": {"signInAudience": "AzureADMyOrg"},
    "group": {"securityEnabled": True, "mailEnabled": False},
}


@dataclass(slots=True)
class Request:
    """What a handler needs besides the ids in its path."""

    method: str
    path: str
    options: dict[str, str]
    body: Any
    base_url: str  # with the version, e.g. http://127.0.0.1:8080/v1.0
    version: str
    headers: Mapping[str, str]
    validate: bool = True

    @property
    def url(self) -> str:
        query = urllib.parse.urlencode(
            {f"${k}": v for k, v in self.options.items()}, quote_via=urllib.parse.quote, safe="$,'()"
        )
        return f"{self.base_url}{self.path}" + (f"?{query}" if query else "")

    @property
    def eventual(self) -> bool:
        return str(self.headers.get("consistencylevel") or "").strip().lower() == "eventual"


class Shaper:
    """What every group of endpoints shares: the store, and the shapes of what it answers."""

    def __init__(self, store: TenantStore, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.store = store
        self.page_size = page_size
        self._defaults: dict[tuple[str, str], JSON] = {}

    @staticmethod
    def _context(request: Request, fragment: str) -> str:
        return f"{request.base_url}/$metadata#{fragment}"

    def _documented(self, type_name: str, item: Mapping[str, Any], version: str) -> JSON:
        """``item`` with every documented property of ``type_name``: what the store lacks gets Graph's
        default (an empty collection, false for a required flag, null otherwise)."""
        defaults = self._defaults.get((type_name, version))
        if defaults is None:
            defaults = self._defaults[(type_name, version)] = _defaults_of(type_name, version)
        return {**defaults, **item}

    def _entity(self, request: Request, type_name: str, item: Mapping[str, Any], fragment: str) -> Reply:
        """A single resource, with $select and $expand applied."""
        extra = sorted(set(request.options) - _ENTITY_OPTIONS)
        if extra:
            raise odata.QueryError(f"Query option '${extra[0]}' is not allowed on a single resource.")
        properties = metadata(request.version).properties(f"graph.{type_name}") or {}
        selected = None
        if request.options.get("select"):
            selected = odata.select_names(request.options["select"], properties, type_name)
        shaped = self._expand(request, type_name, properties, dict(item))
        kept = self._with_expanded(request, properties, selected)
        body = odata.project(shaped, kept, _ONLY_ON_SELECT.get(type_name, ()))
        if selected is not None:
            fragment = fragment.replace("/$entity", f"({','.join(selected)})/$entity")
        return Reply(200, {"@odata.context": self._context(request, fragment), **body})

    @staticmethod
    def _with_expanded(
        request: Request, properties: Mapping[str, Mapping[str, Any]], selected: list[str] | None
    ) -> list[str] | None:
        """``selected`` and the properties $expand names: an expanded property is kept by a $select."""
        if selected is None or not request.options.get("expand"):
            return selected
        names = {k.lower(): k for k in properties}
        expanded = [names.get(p.strip().lower(), "") for p in request.options["expand"].split(",")]
        return [*selected, *(e for e in expanded if e)]

    def _expand(
        self, request: Request, type_name: str, properties: Mapping[str, Mapping[str, Any]], item: JSON
    ) -> JSON:
        text = request.options.get("expand")
        sp_id = item.pop("_sp", None)
        if not text:
            return item
        navigation = {k.lower(): k for k, v in properties.items() if v.get("navigation")}
        for part in text.split(","):
            name = navigation.get(part.strip().lower())
            if name is None:
                raise odata.QueryError(
                    f"Parsing OData Select and Expand failed: Could not find a navigation property named "
                    f"'{part.strip()[:60]}' on type 'microsoft.graph.{type_name}'."
                )
            if name == "schema" and type_name == "synchronizationJob":
                item["schema"] = self.store.get_schema(str(sp_id), item["id"])
            elif name == "schema" and type_name == "synchronizationTemplate":
                item["schema"] = self.store.template_schema(item["id"])
            else:
                # Nothing else is held for a navigation property: an empty set, or nothing.
                item[name] = [] if properties[name]["type"].startswith("Collection(") else None
        return item

    def _collection(
        self,
        request: Request,
        type_name: str,
        items: list[JSON],
        fragment: str,
        *,
        directory: bool,
        extensions: tuple[str, ...] = (),
    ) -> Reply:
        """A collection with the query options applied. ``extensions``: the directory extension
        properties registered for this open type, which $select may name and which are returned only
        when it does."""
        properties = metadata(request.version).properties(f"graph.{type_name}") or {}
        if extensions:
            properties = {**properties, **dict.fromkeys(extensions, _EXTENSION_PROPERTY)}
        view = odata.Collection(
            type_name, properties, directory, request.eventual, self.page_size, MAX_PAGE_SIZE
        )
        page, count, next_link, selected = view.apply(items, request.options, request.url)
        kept = self._with_expanded(request, properties, selected)
        hidden = (*_ONLY_ON_SELECT.get(type_name, ()), *extensions)
        value = [
            odata.project(self._expand(request, type_name, properties, dict(i)), kept, hidden) for i in page
        ]
        if selected is not None:
            fragment = f"{fragment}({','.join(selected)})"
        reply: JSON = {"@odata.context": self._context(request, fragment)}
        if count is not None:
            reply["@odata.count"] = count
        if next_link is not None:
            reply["@odata.nextLink"] = next_link
        reply["value"] = value
        return Reply(200, reply)

    def _sp(self, item: Mapping[str, Any], version: str) -> JSON:
        return self._documented("servicePrincipal", item, version)


def _defaults_of(type_name: str, version: str) -> JSON:
    """The value Graph gives each documented (non-navigation) property of ``type_name`` by default.

    Empty collections are tuples, encoded as ``[]``: the defaults are shared by every answer, so they
    must not be changed in place.
    """
    result: JSON = {}
    given = _DEFAULTS.get(type_name, {})
    for name, prop in (metadata(version).properties(f"graph.{type_name}") or {}).items():
        if prop.get("navigation"):
            continue
        if name in given:
            result[name] = given[name]
        elif prop["type"].startswith("Collection("):
            result[name] = ()
        elif prop["type"] == "Edm.Boolean" and not prop.get("nullable", True):
            result[name] = False
        else:
            result[name] = None
    return result
