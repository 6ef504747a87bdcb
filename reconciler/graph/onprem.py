"""On-premises (AD-side) attribute definitions in a job schema: looked up, and copied from a discover.

A mapping can read an AD attribute only when the job schema's AD directory defines it. The service
learns AD schema extensions from the provisioning agent once it is restarted (ED
``custom-attribute-mapping.md``); ``POST …/schema/directories/{id}/discover`` returns the directory as
found now (graph-sync-api.md; used for the AD directory in ED ``how-to-inbound-synch-ms-graph.md``).
Whether a discover also writes what it found into the job schema is UNCONFIRMED
(cloud-sync-directions.md 4.2, 8.6), so the steps here take the reading that cannot damage a tenant:

1. the job schema as the service returns it defines the attribute: nothing to do;
2. else discover, then GET the schema again: if it defines the attribute now, nothing more;
3. else copy the attribute's definition, exactly as the discover returned it, into that object of the
   AD directory, and write the schema (starting from what the service returned);
4. an attribute the discover does not list either is refused before anything is written: only the
   agent can make the service see it. No definition is ever made up here.

``OnPremisesAttributeSteps`` is a part of ``CloudSyncWriter``: the read the planner needs
(``onprem_attributes_seen``) and the schema base the writes edit (``_with_onprem_definitions``).

I/O: none of its own; only through the writer's ``resources`` (load, get_schema, discover).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from reconciler.core.onprem import OnPremisesAttribute, OnPremisesAttributesSeen, definition_rows
from reconciler.errors import ConflictError
from reconciler.graph.identity import JSON, main_job

__all__ = [
    "AD_DIRECTORY",
    "OnPremisesAttributeSteps",
    "ad_directory",
    "attribute_names",
    "with_definitions_from",
]

# The name the service gives the AD directory of an AD -> Entra ID job schema.
AD_DIRECTORY = "Active Directory"


class _Reads(Protocol):
    """The calls of ``writes.Resources`` these steps use."""

    def load(self, id: str, *, schema: bool) -> Any: ...

    def get_schema(self, id: str, job_id: str) -> JSON: ...

    def discover(self, id: str, job_id: str, directory_id: str) -> JSON: ...


def ad_directory(schema: JSON) -> JSON | None:
    """The directory the provisioning rule reads from (its ``sourceDirectoryName``; ``Active Directory``
    when the rule does not say)."""
    rules = [r for r in schema.get("synchronizationRules") or [] if isinstance(r, dict)]
    source = (rules[0].get("sourceDirectoryName") if rules else None) or AD_DIRECTORY
    return next(
        (d for d in schema.get("directories") or [] if isinstance(d, dict) and d.get("name") == source),
        None,
    )


def _objects(directory: JSON | None) -> dict[str, JSON]:
    """The directory's objects by folded name (AD compares class names without case)."""
    return {
        str(o.get("name")).casefold(): o
        for o in (directory or {}).get("objects") or []
        if isinstance(o, dict) and isinstance(o.get("name"), str)
    }


def _attribute(obj: JSON | None, name: str) -> JSON | None:
    folded = name.casefold()
    return next(
        (
            a
            for a in (obj or {}).get("attributes") or []
            if isinstance(a, dict) and str(a.get("name") or "").casefold() == folded
        ),
        None,
    )


def _present(directory: JSON | None, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (object, name) of ``pairs`` that ``directory`` defines."""
    objects = _objects(directory)
    return [(o, n) for o, n in pairs if _attribute(objects.get(o.casefold()), n) is not None]


def attribute_names(directory: JSON | None) -> dict[str, frozenset[str]]:
    """The folded attribute names ``directory`` defines, by folded object name."""
    return {
        key: frozenset(
            str(a.get("name") or "").casefold() for a in obj.get("attributes") or [] if isinstance(a, dict)
        )
        for key, obj in _objects(directory).items()
    }


def _pairs(declared: Sequence[OnPremisesAttribute]) -> list[tuple[str, str]]:
    return [p for a in declared for p in a.pairs()]


def with_definitions_from(schema: JSON, found: JSON, pairs: Iterable[tuple[str, str]]) -> JSON:
    """``schema`` (changed in place) with the definition of each (object, name) of ``pairs`` copied from
    ``found``, a discovered directory, into the same object of the schema's AD directory."""
    objects = _objects(ad_directory(schema))
    discovered = _objects(found)
    for obj, name in pairs:
        definition = _attribute(discovered.get(obj.casefold()), name)
        target = objects.get(obj.casefold())
        if definition is None or target is None:
            continue  # refused before (definition_rows): never made up
        clean = {k: copy.deepcopy(v) for k, v in definition.items() if not str(k).startswith("@")}
        target.setdefault("attributes", []).append(clean)
    return schema


def _seen_in(
    directory: JSON | None, found: JSON | None, declared: Sequence[OnPremisesAttribute]
) -> OnPremisesAttributesSeen:
    """What ``directory`` (a job schema's AD directory) defines of ``declared`` and, of the rest, what
    ``found`` (a discovered directory, if any) lists."""
    pairs = _pairs(declared)
    defined = _present(directory, pairs)
    missing = [p for p in pairs if p not in defined]
    return OnPremisesAttributesSeen.of(defined, _present(found, missing), list(_objects(directory)))


class OnPremisesAttributeSteps:
    """The declared on-premises attributes of a configuration: what the planner needs to know, and the
    schema the writes start from."""

    resources: _Reads

    def _discover_missing(
        self, id: str, job_id: str, schema: JSON, declared: Sequence[OnPremisesAttribute]
    ) -> JSON | None:
        """A discover of the AD directory when ``schema`` lacks one of ``declared``; else None."""
        directory = ad_directory(schema)
        pairs = _pairs(declared)
        if directory is None or not directory.get("id") or len(_present(directory, pairs)) == len(pairs):
            return None
        return self.resources.discover(id, job_id, str(directory["id"]))

    def onprem_attributes_seen(
        self, id: str, declared: Sequence[OnPremisesAttribute]
    ) -> OnPremisesAttributesSeen:
        """Where configuration ``id``'s declared attributes are: in its job schema, or only in a
        directory discover of its AD directory. A read (the discover is one the documented Exchange
        check makes too): no step, no lock."""
        r = self.resources
        loaded = r.load(id, schema=True)
        job = main_job(loaded.jobs)
        if job is None:
            return OnPremisesAttributesSeen()
        schema = loaded.schema if loaded.schema is not None else r.get_schema(id, job["id"])
        found = self._discover_missing(id, str(job["id"]), schema, declared)
        return _seen_in(ad_directory(schema), found, declared)

    def ad_attributes(self, id: str) -> dict[str, frozenset[str]]:
        """The attribute names (folded) configuration ``id``'s job schema defines in its AD directory, by
        folded object name. A read."""
        r = self.resources
        loaded = r.load(id, schema=True)
        job = main_job(loaded.jobs)
        if job is None:
            return {}
        schema = loaded.schema if loaded.schema is not None else r.get_schema(id, job["id"])
        return attribute_names(ad_directory(schema))

    def _with_onprem_definitions(
        self, id: str, job_id: str, current: JSON, declared: Sequence[OnPremisesAttribute]
    ) -> tuple[JSON, JSON]:
        """(the schema to edit, the schema as the service returned it): ``current`` twice when it
        defines every declared attribute; else, after a discover, the schema read again, with the
        definitions it still lacks copied from the discover. ConflictError, before any write, when one
        is not discovered either."""
        if not declared:
            return current, current
        found = self._discover_missing(id, job_id, current, declared)
        # The discover may have written what it found into the job schema (UNCONFIRMED): read it again.
        base = current if found is None else self.resources.get_schema(id, job_id)
        pairs, problem = definition_rows(declared, _seen_in(ad_directory(base), found, declared))
        if problem is not None:
            raise ConflictError(f"configuration {id}: {problem}")
        if not pairs or found is None:
            return base, base
        return with_definitions_from(copy.deepcopy(base), found, pairs), base
