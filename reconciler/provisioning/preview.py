"""What a configuration's mappings give sample on-premises objects: the data behind ``reconciler preview``.

For each object of a directory (users, groups, contacts, inetOrgPersons; OUs and containers only hold
objects and are never provisioned) the desired side (``after``: the effective mappings an apply would
leave, and the desired scope) is evaluated, and with a ``before`` side (the mappings and scope the target
holds now) that one too, so a reviewer sees what a mapping change does to real-looking objects.

Pure: the directory, mappings and scopes come in as values; ``reconciler.render.preview`` prints the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.core.model import OBJECT_TYPES, Desired, Mapping, Scope, effective_mappings
from reconciler.core.observed import Observed
from reconciler.provisioning.directory import Directory, DirectoryObject
from reconciler.provisioning.evaluate import (
    DnKey,
    Evaluation,
    MappingEvaluator,
    ScopeDecision,
    ScopeMatcher,
    dn_compare_key,
)

__all__ = ["ObjectPreview", "Preview", "Side", "preview_directory", "sides"]


@dataclass(frozen=True, slots=True)
class Side:
    """One set of mappings to evaluate: the desired ones, or the target's current ones."""

    label: str
    mappings: tuple[Mapping, ...]
    scope: Scope
    domain: str

    def evaluator(self, object_type: str) -> MappingEvaluator:
        parameters = {"DomainFQDN": self.domain, "DomainNetBios": self.domain.split(".", 1)[0].upper()}
        return MappingEvaluator(self.mappings, object_type=object_type, parameters=parameters)


@dataclass(frozen=True, slots=True)
class ObjectPreview:
    """One object: its scope and the outcome of every mapping, after (desired) and before (the target)."""

    obj: DirectoryObject
    scope: ScopeDecision
    after: Evaluation
    before_scope: ScopeDecision | None = None
    before: Evaluation | None = None

    @property
    def failed(self) -> bool:
        """Whether a desired mapping met an error (an ``Error("...")`` call, or an evaluation failure)."""
        return not self.after.ok


@dataclass(frozen=True, slots=True)
class Preview:
    configuration: str
    before_label: str | None  # the target whose mappings are "before"; None: no comparison
    objects: tuple[ObjectPreview, ...]
    containers: tuple[str, ...]  # DNs of the OUs and containers, which are not provisioned

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.objects)


def sides(
    desired: Desired, defaults: Sequence[Mapping], observed: Observed | None, *, against: str | None
) -> tuple[Side, Side | None]:
    """(after, before): the desired side, and with ``against`` (the target's name) the target's side.

    An apply edits the rows the target holds (a new configuration: the template's), so the desired
    side's mappings are the desired overrides over those: rows the desired state does not name stay.
    """
    before: Side | None = None
    if against is not None:
        if observed is None:
            before = Side(against, (), Scope.all(), desired.settings.domain)
        else:
            before = Side(against, observed.mappings, observed.scope, observed.settings.domain)
    base = before.mappings if before is not None and before.mappings else tuple(defaults)
    after = Side(
        "desired",
        tuple(effective_mappings(base, desired.overrides).values()),
        desired.scope,
        desired.settings.domain,
    )
    return after, before


class _Previewer:
    def __init__(self, after: Side, before: Side | None, directory: Directory, create: bool) -> None:
        self.after = after
        self.before = before
        self.create = create
        self._evaluators: dict[tuple[str, str], MappingEvaluator] = {}
        self._after_scope = ScopeMatcher(after.scope)
        self._before_scope = ScopeMatcher(before.scope) if before is not None else None
        memberships: dict[DnKey, list[str]] = {}
        for group, member in directory.memberships():
            memberships.setdefault(dn_compare_key(member), []).append(group)
        self._member_of = memberships

    def _evaluate(self, side: Side, which: str, obj: DirectoryObject) -> Evaluation:
        key = (which, obj.object_type)
        evaluator = self._evaluators.get(key)
        if evaluator is None:
            evaluator = self._evaluators[key] = side.evaluator(obj.object_type)
        return evaluator.evaluate(obj.attributes, create=self.create)

    def run(self, obj: DirectoryObject) -> ObjectPreview:
        member_of = self._member_of.get(dn_compare_key(obj.dn), [])
        scope = self._after_scope.check(obj.dn, member_of)
        after = self._evaluate(self.after, "after", obj)
        if self.before is None or self._before_scope is None:
            return ObjectPreview(obj, scope, after)
        before_scope = self._before_scope.check(obj.dn, member_of)
        return ObjectPreview(obj, scope, after, before_scope, self._evaluate(self.before, "before", obj))


def preview_directory(
    configuration: str, after: Side, before: Side | None, directory: Directory, *, create: bool
) -> Preview:
    """Every provisioned object of ``directory`` evaluated (``create``: as a new cloud object)."""
    previewer = _Previewer(after, before, directory, create)
    objects = tuple(previewer.run(o) for o in directory.objects if o.object_type in OBJECT_TYPES)
    containers = tuple(o.dn for o in directory.objects if o.object_type not in OBJECT_TYPES)
    return Preview(configuration, before.label if before is not None else None, objects, containers)
