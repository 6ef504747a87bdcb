"""Fields of the service's JSON read with their types checked. Pure: no I/O.

Every reader of a service document in ``reconciler.graph`` refuses one it would misread (a field of
the wrong type, an enum member it does not know) with the same ``ProviderError``, made here; and a
reader with a fast path over JSON text (``msgspec``) hands what that path does not take as it is to
the plain reading with ``fast_or_plain``, so that both refuse, or read, exactly alike.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as AbcMapping
from typing import Any, TypeVar

import orjson

from reconciler.errors import ProviderError

__all__ = ["Unusual", "as_object", "enum", "fast_or_plain", "optional", "refuse", "strings"]

_T = TypeVar("_T")


def refuse(what: str, problem: str) -> ProviderError:
    """The error for a document from the service, ``what``, that cannot be read because of ``problem``."""
    return ProviderError(f"{what}: the service's answer cannot be read: {problem}")


def optional(data: AbcMapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``data[key]``: None, or of type ``kind`` (a bool is not an int); else refused."""
    value = data.get(key)
    # Exact types first: the common case, without the slower isinstance against an ABC.
    if value is None or type(value) is kind or (type(value) is dict and kind is AbcMapping):
        return value
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise refuse(what, f"{key} is a {type(value).__name__}")
    return value


def as_object(value: Any, what: str) -> AbcMapping[str, Any]:
    """``value`` when it is a JSON object; else refused."""
    if type(value) is not dict and not isinstance(value, AbcMapping):
        raise refuse(what, f"expected an object, got a {type(value).__name__}")
    return value


def strings(data: AbcMapping[str, Any], key: str, what: str) -> None:
    """Refused unless ``data[key]`` is None or a list of strings."""
    value = optional(data, key, list, what)
    if value is not None and not all(isinstance(v, str) for v in value):
        raise refuse(what, f"{key} is not a list of strings")


def enum(data: AbcMapping[str, Any], key: str, members: frozenset[str], what: str) -> None:
    """Refused unless ``data[key]`` is None or one of ``members``."""
    value = optional(data, key, str, what)
    if value is not None and value not in members:
        raise refuse(what, f"{key} {value!r} is not one this version knows ({', '.join(sorted(members))})")


class Unusual(Exception):
    """A fast reading of JSON text met something it leaves to the plain one."""


def fast_or_plain(
    text: bytes,
    fast: Callable[[bytes], _T],
    plain: Callable[[Any], _T],
    not_json: Callable[[orjson.JSONDecodeError], Exception],
) -> _T:
    """``fast(text)``; when it raises ``Unusual``, ``plain`` of the text parsed whole. Text that is not
    JSON raises what ``not_json`` makes of the parse error."""
    try:
        return fast(text)
    except Unusual:
        pass
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise not_json(exc) from exc
    return plain(data)
