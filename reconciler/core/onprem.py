"""On-premises (AD-side) attributes a configuration declares, and what a plan makes of them.

An AD schema extension (or any AD attribute the job schema lacks) can be a mapping source only once
the job schema's AD directory defines it. The service learns the AD schema from the provisioning
agent, after the agent is restarted (ED ``custom-attribute-mapping.md``); a directory ``discover``
returns the directory as found now (graph-sync-api.md). A configuration declares such attributes in
``spec.onPremisesAttributes``; the plan compares each with what the target was found to hold
(``OnPremisesAttributesSeen``, looked up by the engine): defined already, nothing; listed by discover
only, a row that apply copies the service's definition into the schema; neither, the configuration
is held back (no attribute definition is ever written that the service did not hand out).

I/O: none; pure values. Imports nothing of the model, which imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AD_OBJECTS",
    "DEFINITION_PATH",
    "DEFINITION_VALUE",
    "OnPremisesAttribute",
    "OnPremisesAttributesSeen",
    "definition_rows",
    "onprem_canon",
    "unchecked_warning",
]

# The AD object classes an AD -> Entra ID configuration maps, as the job schema's AD directory names them.
AD_OBJECTS: tuple[str, ...] = ("user", "inetOrgPerson", "group", "contact")
# How a plan row that adds an attribute definition is written: ``attributeDefinitions.user.NAME``.
DEFINITION_PATH = "attributeDefinitions"
DEFINITION_VALUE = "Active Directory, as a directory discover lists it"


@dataclass(frozen=True, slots=True)
class OnPremisesAttribute:
    """An AD attribute ``name`` that mappings of ``objects`` may read, declared because the job schema
    may lack it (an AD schema extension)."""

    name: str
    objects: tuple[str, ...] = ("user",)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(object, name) for each object, as written."""
        return tuple((obj, self.name) for obj in self.objects)


def _key(obj: str, name: str) -> tuple[str, str]:
    # AD compares attribute and class names without regard to case; so does the service.
    return (obj.casefold(), name.casefold())


@dataclass(frozen=True, slots=True)
class OnPremisesAttributesSeen:
    """What a target holds of a configuration's declared attributes, by (object, name) without case:
    ``defined`` in its job schema's AD directory; ``discovered`` by a directory discover (looked up only
    for those not defined); ``objects``: the object names the AD directory has."""

    defined: frozenset[tuple[str, str]] = frozenset()
    discovered: frozenset[tuple[str, str]] = frozenset()
    objects: frozenset[str] = frozenset()

    @staticmethod
    def of(
        defined: Sequence[tuple[str, str]],
        discovered: Sequence[tuple[str, str]] = (),
        objects: Sequence[str] = (),
    ) -> OnPremisesAttributesSeen:
        return OnPremisesAttributesSeen(
            frozenset(_key(o, n) for o, n in defined),
            frozenset(_key(o, n) for o, n in discovered),
            frozenset(o.casefold() for o in objects),
        )

    def is_defined(self, obj: str, name: str) -> bool:
        return _key(obj, name) in self.defined

    def is_discovered(self, obj: str, name: str) -> bool:
        return _key(obj, name) in self.discovered


def definition_rows(
    declared: Sequence[OnPremisesAttribute], seen: OnPremisesAttributesSeen
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The (object, name) definitions apply would copy from discover into the job schema, or why the
    configuration is held back: an attribute neither defined nor discovered, or an object the job
    schema's AD directory does not have."""
    rows: list[tuple[str, str]] = []
    for attribute in declared:
        for obj, name in attribute.pairs():
            if seen.is_defined(obj, name):
                continue
            if obj.casefold() not in seen.objects:
                return (), (
                    f"on-premises attribute {name}: the job schema's Active Directory directory has no {obj} "
                    "object to define it on; map that object type in the portal first"
                )
            if not seen.is_discovered(obj, name):
                return (), (
                    f"on-premises attribute {name} ({obj}) is neither in the job schema nor listed by a "
                    "directory discover of Active Directory; restart the provisioning agent so that the "
                    "service discovers the AD schema extension, then plan again"
                )
            rows.append((obj, name))
    return tuple(rows), None


def onprem_canon(declared: Sequence[OnPremisesAttribute]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The declarations' meaning, for the desired state's digest."""
    return tuple(sorted((a.name.casefold(), tuple(sorted(a.objects))) for a in declared))


def unchecked_warning(name: str) -> str:
    return (
        f"{name}: whether the service has discovered its onPremisesAttributes is checked when apply has "
        "made its provisioning job (a directory discover); apply stops before writing the job schema if "
        "one is not found"
    )
