"""Evaluating attribute mappings and scope for one on-premises object. Pure: no I/O.

``preview`` and the local tenant's on-demand provisioning both ask the same two questions of an
on-premises object: which Entra ID attributes would a set of effective ``Mapping``s give it, and is the
object in a configuration's ``Scope``. This module answers both, without knowing where the object or
the mappings came from.

Mapping semantics, as the service documents them (``expressions.md`` §4):

* Direct copies the source attribute, Constant is its text, Expression is evaluated by
  ``reconciler.expressions``. A Constant written as ``%DomainFQDN%`` (the service's special constants)
  takes the configuration parameter of that name when one is given.
* A null result (absent attribute, empty text, no values) takes the mapping's default, but only when
  the object is being created; on an update null flows as null.
* ``apply: onCreate`` mappings take part only when the object is created.
* ``IgnoreFlowIfNullOrEmpty`` gives *does not flow*: the target attribute is left as it is.
* An expression that calls ``Error("...")`` or cannot be evaluated fails that mapping with a message;
  the other mappings are still evaluated, so that every problem of an object shows at once.
* One object's mappings share one time budget (``reconciler.expressions.TIME_LIMIT``): an expression
  that runs too long fails its mapping, and the object's remaining mappings cannot take longer.

Values are ``str``, ``list[str]`` (multi-valued) or None (null); booleans become ``"True"``/``"False"``
and numbers their decimal text, the way the service flows them.

Scope follows the service: OU scope holds the objects whose DN lies under (or is) one of the OUs,
comparing whole RDNs case-insensitively; group scope holds the direct members of the groups only (the
service does not follow nested groups); no scope holds everything.
"""

from __future__ import annotations

import enum
import functools
import random
import re
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from reconciler.config.dn import DNError, dn_key, parse_dn
from reconciler.core.model import ApplyMode, Mapping, MappingKind, Scope, ScopeKind
from reconciler.errors import ExpressionError, ExpressionRaised
from reconciler.expressions import DOES_NOT_FLOW, Budget, evaluate, parse, referenced_attributes

__all__ = [
    "DnKey",
    "Evaluation",
    "MappingEvaluator",
    "Outcome",
    "OutcomeKind",
    "ScopeDecision",
    "ScopeMatcher",
    "SourceValue",
    "TargetValue",
    "check_scope",
    "dn_compare_key",
    "evaluate_mappings",
    "normalize_attributes",
    "show_value",
]

SourceValue = str | list[str]
TargetValue = str | list[str] | None


class OutcomeKind(enum.StrEnum):
    VALUE = "value"  # the mapping gave a value
    DEFAULT = "default"  # null on create: the mapping's default was used
    NULL = "null"  # null flows to the target
    DOES_NOT_FLOW = "doesNotFlow"  # IgnoreFlowIfNullOrEmpty: the target is left alone
    NOT_APPLIED = "notApplied"  # an onCreate mapping on an update
    ERROR = "error"  # the expression failed (Error("...") or an evaluation error)


# Kinds whose value is written to the target.
_FLOWING = frozenset((OutcomeKind.VALUE, OutcomeKind.DEFAULT, OutcomeKind.NULL))


class Outcome(NamedTuple):
    """What one mapping gave for one object."""

    mapping: Mapping
    kind: OutcomeKind
    value: TargetValue = None
    error: str | None = None
    raised: bool = False  # the error is the expression's own Error("...") message

    @property
    def target(self) -> str:
        return self.mapping.target

    @property
    def flows(self) -> bool:
        return self.kind in _FLOWING


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Every mapping's outcome for one object, in target-name order."""

    outcomes: tuple[Outcome, ...]
    create: bool = True

    @property
    def attributes(self) -> dict[str, TargetValue]:
        """The target attributes that flow (null ones as None); failed and held-back ones are left out."""
        return {o.mapping.target: o.value for o in self.outcomes if o.kind in _FLOWING}

    @property
    def errors(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.kind is OutcomeKind.ERROR)

    @property
    def ok(self) -> bool:
        return not any(o.kind is OutcomeKind.ERROR for o in self.outcomes)

    def by_target(self) -> dict[str, Outcome]:
        return {o.mapping.target: o for o in self.outcomes}


# -- values ------------------------------------------------------------------------------------------


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if isinstance(value, str) else str(value)


def normalize_attributes(raw: AbcMapping[str, Any]) -> dict[str, SourceValue]:
    """Source attributes as the evaluator takes them: text or lists of text; nulls and empties dropped.

    YAML gives numbers and booleans for values such as ``userAccountControl: 512``; AD holds them as
    text, so they become text here, booleans as ``True``/``False``.
    """
    result: dict[str, SourceValue] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            items = [_scalar_text(v) for v in value if v is not None and v != ""]
            if items:
                result[str(name)] = items
            continue
        text = _scalar_text(value)
        if text != "":
            result[str(name)] = text
    return result


def _target_value(value: object) -> TargetValue:
    """An expression result as a target value; DOES_NOT_FLOW is handled by the caller."""
    t = type(value)
    if t is str:
        return value or None  # type: ignore[return-value]
    if value is None:
        return None
    if t is list:
        items = [_scalar_text(v) for v in value if v is not None and v != ""]  # type: ignore[attr-defined]
        return items or None
    return _scalar_text(value)


def show_value(value: TargetValue) -> str | None:
    """A target value as one line of text (None stays None); several values as a JSON-style list."""
    if value is None or isinstance(value, str):
        return value
    return "[" + ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in value) + "]"


# -- mappings ----------------------------------------------------------------------------------------

# Step kinds of a prepared mapping.
_DIRECT, _CONSTANT, _EXPRESSION, _BROKEN = 0, 1, 2, 3


class _Step(NamedTuple):
    mapping: Mapping
    kind: int
    arg: str  # attribute name, constant text, expression text, or the parse error message
    on_create_only: bool
    default: str | None


class MappingEvaluator:
    """A set of mappings prepared once (sorted, expressions parsed) and then evaluated per object.

    ``parameters`` fills ``%Name%`` parameters and the special constants (``DomainFQDN``,
    ``DomainNetBios``); ``now``, ``rng``, ``guid`` and ``exists`` are passed to the expression
    evaluator (Now(), RandomString(), Guid(), SelectUniqueValue).
    """

    def __init__(
        self,
        mappings: Iterable[Mapping],
        *,
        object_type: str | None = None,
        parameters: AbcMapping[str, str] | None = None,
        now: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        guid: Callable[[], str] | None = None,
        exists: Callable[[str], bool] | None = None,
    ) -> None:
        chosen = [m for m in mappings if object_type is None or m.object == object_type]
        chosen.sort(key=lambda m: (m.object, m.target.casefold(), m.target))
        self.mappings: tuple[Mapping, ...] = tuple(chosen)
        self._parameters = dict(parameters or {})
        context: dict[str, Any] = {}
        if self._parameters:
            context["parameters"] = self._parameters
        if now is not None:
            context["now"] = now
        if rng is not None:
            context["rng"] = rng
        if guid is not None:
            context["guid"] = guid
        if exists is not None:
            context["exists"] = exists
        self._context = context
        self._steps = tuple(self._prepare(m) for m in self.mappings)
        names: set[str] = set()
        for step in self._steps:
            if step.kind == _DIRECT:
                names.add(step.arg)
            elif step.kind == _EXPRESSION:
                names |= referenced_attributes(step.arg)
        # Every attribute name the mappings read, with its folded form for case-insensitive lookups.
        self._names = tuple((name, name.casefold()) for name in sorted(names))

    def _prepare(self, m: Mapping) -> _Step:
        on_create = m.apply is ApplyMode.ON_CREATE
        if m.kind is MappingKind.DIRECT:
            return _Step(m, _DIRECT, m.value, on_create, m.default)
        if m.kind is MappingKind.CONSTANT:
            text = m.value
            if len(text) > 2 and text[0] == text[-1] == "%" and text[1:-1] in self._parameters:
                text = self._parameters[text[1:-1]]
            return _Step(m, _CONSTANT, text, on_create, m.default)
        try:
            parse(m.value)  # cached per text: evaluation reuses the tree
        except ExpressionError as exc:
            return _Step(m, _BROKEN, f"invalid expression: {exc}", on_create, m.default)
        return _Step(m, _EXPRESSION, m.value, on_create, m.default)

    def _view(self, attributes: AbcMapping[str, SourceValue]) -> dict[str, SourceValue | None]:
        """The object's attributes with every name the mappings read present, as written in them.

        LDAP attribute names are case-insensitive: a name written in another case is filled from the
        object's attribute of that name, an absent one with None (null). Built once per object, so
        that no lookup while evaluating misses and has to fold names again.
        """
        view: dict[str, SourceValue | None] = dict(attributes)
        folded: dict[str, SourceValue] | None = None
        for name, key in self._names:
            if name not in view:
                if folded is None:
                    folded = {k.casefold(): v for k, v in attributes.items()}
                view[name] = folded.get(key)
        return view

    def evaluate(self, attributes: AbcMapping[str, SourceValue], *, create: bool = True) -> Evaluation:
        """Every mapping's outcome for an object with these (normalized) source attributes."""
        outcomes: list[Outcome] = []
        append = outcomes.append
        new = tuple.__new__  # an Outcome without NamedTuple's keyword handling: this loop is hot
        context = self._context
        view = self._view(attributes)
        budget = Budget()
        for m, kind, arg, on_create_only, default in self._steps:
            if on_create_only and not create:
                append(new(Outcome, (m, OutcomeKind.NOT_APPLIED, None, None, False)))
                continue
            value: TargetValue
            if kind == _DIRECT:
                raw = view[arg]
                value = (raw or None) if type(raw) is str else _target_value(raw)
            elif kind == _CONSTANT:
                value = arg or None
            elif kind == _EXPRESSION:
                try:
                    result = evaluate(arg, view, budget=budget, **context)
                except ExpressionRaised as exc:
                    append(new(Outcome, (m, OutcomeKind.ERROR, None, exc.message, True)))
                    continue
                except ExpressionError as exc:
                    append(new(Outcome, (m, OutcomeKind.ERROR, None, str(exc), False)))
                    continue
                if result is DOES_NOT_FLOW:
                    append(new(Outcome, (m, OutcomeKind.DOES_NOT_FLOW, None, None, False)))
                    continue
                value = result if type(result) is str and result else _target_value(result)
            else:
                append(new(Outcome, (m, OutcomeKind.ERROR, None, arg, False)))
                continue
            if value is not None:
                append(new(Outcome, (m, OutcomeKind.VALUE, value, None, False)))
            elif create and default is not None:
                append(new(Outcome, (m, OutcomeKind.DEFAULT, default, None, False)))
            else:
                append(new(Outcome, (m, OutcomeKind.NULL, None, None, False)))
        return Evaluation(tuple(outcomes), create)


def evaluate_mappings(
    mappings: Iterable[Mapping],
    attributes: AbcMapping[str, Any],
    *,
    object_type: str | None = None,
    create: bool = True,
    parameters: AbcMapping[str, str] | None = None,
) -> Evaluation:
    """One-off form of ``MappingEvaluator``: raw attributes are normalized first."""
    evaluator = MappingEvaluator(mappings, object_type=object_type, parameters=parameters)
    return evaluator.evaluate(normalize_attributes(attributes), create=create)


# -- scope -------------------------------------------------------------------------------------------

DnKey = tuple[tuple[tuple[str, str], ...], ...]


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


# A backslash and the character it escapes (none: a lone backslash at the end, which is dropped).
_ESCAPE = re.compile(r"\\(.?)", re.DOTALL)


def _unescape(value: str) -> str:
    return _ESCAPE.sub(r"\1", value)


def _lenient_key(text: str) -> DnKey:
    # For DNs the strict RFC 4514 parser refuses (a space after a comma, as people often write them):
    # split at unescaped separators and trim, so that such a DN still compares by whole RDNs.
    rdns: list[tuple[tuple[str, str], ...]] = []
    for rdn in _split_unescaped(text, ","):
        pairs: list[tuple[str, str]] = []
        for ava in _split_unescaped(rdn, "+"):
            attr, _, value = ava.partition("=")
            pairs.append((attr.strip().casefold(), _unescape(value.strip()).casefold()))
        rdns.append(tuple(sorted(pairs)))
    return tuple(rdns)


@functools.lru_cache(maxsize=65536)
def dn_compare_key(dn: str) -> DnKey:
    """A DN as RDNs of (type, value) pairs, case-folded and unescaped: equal keys mean the same object."""
    try:
        return dn_key(parse_dn(dn))
    except DNError:
        return _lenient_key(dn)


class ScopeDecision(NamedTuple):
    in_scope: bool
    reason: str


class ScopeMatcher:
    """A ``Scope`` prepared for checking many objects."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._keys = [(entry, dn_compare_key(entry)) for entry in scope.entries]

    def check(self, dn: str, member_of: Iterable[str] = ()) -> ScopeDecision:
        """Whether the object ``dn`` (a direct member of the groups ``member_of``) is in scope."""
        scope = self.scope
        if scope.kind is ScopeKind.ALL or not self._keys:
            return ScopeDecision(True, "the configuration has no scope: every user and group is in scope")
        if scope.kind is ScopeKind.ORGANIZATIONAL_UNITS:
            key = dn_compare_key(dn)
            for entry, ou in self._keys:
                n = len(ou)
                if len(key) >= n and key[len(key) - n :] == ou:
                    return ScopeDecision(True, f"in organizational unit {entry}")
            return ScopeDecision(False, "not in any scoped organizational unit: " + _listing(scope.entries))
        groups = {dn_compare_key(g) for g in member_of}
        for entry, group in self._keys:
            if group in groups:
                return ScopeDecision(True, f"a direct member of group {entry}")
        return ScopeDecision(
            False,
            "not a direct member of any scoped group (nested membership does not count): "
            + _listing(scope.entries),
        )


def _listing(entries: Sequence[str]) -> str:
    return "; ".join(entries)


def check_scope(scope: Scope, dn: str, member_of: Iterable[str] = ()) -> ScopeDecision:
    """One-off form of ``ScopeMatcher.check``."""
    return ScopeMatcher(scope).check(dn, member_of)
