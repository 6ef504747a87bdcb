"""``schemaExtensions`` of an on-premises directory file: the AD schema extensions the provisioning agent
has found, which a directory ``discover`` of a job's AD directory then lists.

```yaml
schemaExtensions:
  - {name: contosoBadgeId, objects: [user], type: String, multivalued: false}
```

I/O: none; the entries are checked with their positions and handed to the tenant store
(``DirectoryObjects.set_schema_extensions``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from reconciler.config.yamlio import Locator
from reconciler.core.onprem import AD_OBJECTS
from reconciler.tenant.objects import SCHEMA_EXTENSION_TYPES, schema_extension

__all__ = ["FIELD", "read_schema_extensions"]

FIELD = "schemaExtensions"
# An LDAP attribute name (RFC 4512 keystring), as AD's lDAPDisplayName spells it.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,255}")
_KEYS = ("name", "objects", "type", "multivalued")


def read_schema_extensions(
    value: object, loc: Locator, error: Callable[[Locator, str], None]
) -> list[dict[str, Any]]:
    """The entries of ``schemaExtensions``; each problem is reported through ``error`` and its entry
    left out."""
    if not isinstance(value, list):
        error(loc, f"{FIELD} must be a list of {{name, objects, type, multivalued}}")
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item, where in zip(value, loc.items(), strict=False):
        if not isinstance(item, dict):
            error(where, f"a {FIELD} entry is a mapping with name and objects")
            continue
        unknown = [k for k in item if k not in _KEYS]
        name = item.get("name")
        objects = item.get("objects", ["user"])
        kind = item.get("type", "String")
        multivalued = item.get("multivalued", False)
        problem = None
        if unknown:
            problem = f"unknown field '{unknown[0]}' in a {FIELD} entry (fields: {', '.join(_KEYS)})"
        elif not isinstance(name, str) or not _NAME.fullmatch(name):
            problem = f"{FIELD}: name must be an LDAP attribute name (a letter, then letters, digits and -)"
        elif name.casefold() in seen:
            problem = f"{FIELD}: '{name}' is listed twice"
        elif not isinstance(objects, list) or not objects or any(o not in AD_OBJECTS for o in objects):
            problem = f"{FIELD}: objects must be a list of {', '.join(AD_OBJECTS)}"
        elif kind not in SCHEMA_EXTENSION_TYPES:
            problem = f"{FIELD}: type must be one of {', '.join(SCHEMA_EXTENSION_TYPES)}"
        elif not isinstance(multivalued, bool):
            problem = f"{FIELD}: multivalued must be true or false"
        if problem is not None:
            error(where, problem)
            continue
        assert isinstance(name, str) and isinstance(objects, list)
        seen.add(name.casefold())
        out.append(schema_extension(name, objects, kind, multivalued))
    return out
