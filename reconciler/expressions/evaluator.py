"""Evaluation of attribute-mapping expressions against one object's attributes. Pure; no I/O.

A tree is compiled once (cached) into nested Python closures, so evaluating it is a chain of plain calls.
This module holds the entry points (``evaluate``, ``compile_expression``); ``compiler`` turns a tree into
closures, ``runtime`` holds what every function shares (values, context, bounds, coercions), and the
functions themselves are in three families: ``text_functions``, ``value_functions`` and
``flow_functions``.
``Guid``, ``Now`` and ``RandomString`` draw from the sources the caller injects, and fall back to
``uuid.uuid4``, the system clock and ``random.SystemRandom`` only when none is given.

Value model. Attribute values are ``str``, ``list[str]`` (multi-valued) or ``None`` (absent, i.e. null).
Functions produce ``str``, ``list[str]``, ``bool`` (IsPresent, Not, comparisons...), ``int`` (InStr,
Count, BitAnd, DateDiff, NumFromDate) or a DateTime (CDate, DateAdd, DateFromNum, Now). Where a string
is needed, ``True``/``False`` become ``"True"``/``"False"``, numbers their decimal text and DateTimes
``M/d/yyyy h:mm:ss tt``; the strings ``"True"``/``"False"`` are accepted where a boolean is needed, and
decimal or ``&H`` text where a number is. The result of ``evaluate`` has DateTimes rendered as text.

Choices where the references are silent or disagree (Cloud Sync wins a disagreement):

* Attribute names are looked up exactly, then ignoring case (LDAP attribute names are
  case-insensitive). Whether the *service* accepts another casing is a validation question, not this one.
* The whole expression ``""`` evaluates to null (Cloud Sync: that is how a mapping flows NULL).
* Null: Trim, Mid, ToLower, ToUpper, Split, ... of null are null; Left and Word of null are ``""``
  (documented); Append treats a null side as ``""`` and is null only when both are; Join skips null
  and empty sources and is null when nothing is left; ``&`` treats null as ``""``.
* Comparisons: ``=``/``<>`` compare text exactly (case-sensitive); null equals only null. ``<``, ``>``,
  ``<=``, ``>=`` compare as numbers when both sides are whole numbers, else as text; with a null side
  they are false. An IIF condition that is null counts as false.
* Replace with regexPattern + regexGroupName + replacementAttributeName follows the app-provisioning
  article and its worked Example 5: a source with a value is returned as is; a source without one
  takes the group's first match in the replacement attribute (null when nothing matches). The Cloud
  Sync article describes the opposite; ``docs/expressions.md`` says why this reading was chosen.
* Item is 1-based; an index outside the values raises (Cloud Sync). RemoveDuplicates keeps the first
  of each exact value, in order. Word skips empty words between adjacent delimiters.
* FormatDateTime takes three arguments (Cloud Sync) or four with dateTimeStyles second (app
  provisioning); dateTimeStyles is accepted and ignored, the default styles allowing surrounding spaces.
  A DateTime argument (from DateFromNum, CDate, DateAdd or Now) is used directly and needs no
  inputFormat, as in the service's own pwdLastSet mapping; text needs one, and a format .NET would
  refuse (one character that is not a standard format, an unclosed quote, no date or time field) is
  an error, not a guess.
* DateTimes become text as ``M/d/yyyy h:mm:ss tt`` (en-US, UTC), the rendering the references give
  for CDate, DateAdd and Now; DateFromNum's value is rendered the same way.
* SelectUniqueValue asks the ``exists`` callable from the context (``exists=lambda v: ...``) and
  raises when every candidate is taken; without one it returns the first rule's value.
* Regular expressions are .NET syntax, run by ``netregex`` with a time limit.

Bounds, so that no expression (they come from files and from the tenant, both untrusted) can hold the
process or its memory: every value a function makes is at most ``MAX_TEXT`` characters (a multi-valued
one counts all its values); the costly steps (regular expressions, and work on values over 64 KiB) of
one evaluation share a ``Budget`` of ``TIME_LIMIT`` seconds, which ``MappingEvaluator`` shares between
an object's mappings; the parser bounds the text's length and nesting. Crossing a bound raises
``ExpressionLimitError`` naming the function. The clock is read only by costly steps, so ordinary
evaluations never read it.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping
from datetime import datetime

from reconciler.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionLimitError,
    ExpressionRaised,
)
from reconciler.expressions import dates, flow_functions, text_functions, value_functions
from reconciler.expressions.compiler import _BUILDERS, _compile
from reconciler.expressions.functions import function_names
from reconciler.expressions.nodes import Node, String
from reconciler.expressions.parser import parse, unparse
from reconciler.expressions.runtime import (
    DOES_NOT_FLOW,
    MAX_TEXT,
    TIME_LIMIT,
    AttributeValue,
    Budget,
    Compiled,
    DoesNotFlow,
    Result,
    Value,
    _Context,
    _Failure,
    _Limit,
    _NoFlow,
    _Raised,
    _text,
)

__all__ = [
    "DOES_NOT_FLOW",
    "MAX_TEXT",
    "TIME_LIMIT",
    "AttributeValue",
    "Budget",
    "Compiled",
    "DoesNotFlow",
    "Result",
    "compile_expression",
    "evaluate",
]

# -- entry points -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _compile_text(text: str) -> tuple[Compiled, bool]:
    tree = parse(text)
    return _compile(tree), isinstance(tree, String) and tree.value == ""


def _compile_node(tree: Node) -> tuple[Compiled, bool]:
    # Equal trees can still differ in how they evaluate (the number 8 and the string "8" compare
    # equal), so the cache is keyed by the canonical text, which keeps them apart.
    try:
        text = unparse(tree)
    except ExpressionError:
        return _compile(tree), False
    return _compile_text(text)


def compile_expression(expression: str | Node) -> Compiled:
    """The compiled form of an expression (cached); mostly useful for tests and benchmarks."""
    if isinstance(expression, str):
        return _compile_text(expression)[0]
    return _compile_node(expression)[0]


def _finish(value: Value, column: int) -> Result:
    t = type(value)
    if t is str or t is bool or t is int or value is None:
        return value  # type: ignore[no-any-return]
    if t is list:
        if not value:
            return None
        return [v if type(v) is str else _text(v, "result", column) or "" for v in value]
    if isinstance(value, datetime):
        return dates.format_default(value)
    return _text(value, "result", column)


def evaluate(
    expression: str | Node,
    attributes: Mapping[str, AttributeValue],
    *,
    now: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
    guid: Callable[[], str] | None = None,
    budget: Budget | None = None,
    **context: object,
) -> Result:
    """Evaluate an expression for one object.

    ``attributes`` maps source attribute names to values (a list for a multi-valued attribute; a
    missing key or None is null). ``now``, ``rng`` and ``guid`` feed Now(), RandomString() and Guid().
    ``budget`` is the time allowance (a fresh ``TIME_LIMIT`` one when None); pass one Budget to
    several evaluations to bound them together. ``context`` supplies the rest: ``domain_fqdn`` /
    ``domain_netbios`` (or ``parameters={"Name": v}``) for ``%Name%`` parameters, ``default_domain`` for
    DefaultDomain(), and ``exists`` (a callable taking a candidate value) for SelectUniqueValue.

    Returns the value, None for null, or DOES_NOT_FLOW. Raises ExpressionError if the text does not
    parse, ExpressionRaised for ``Error("...")``, ExpressionLimitError when a value grows over
    ``MAX_TEXT`` or the time runs out, and ExpressionEvaluationError for other failures.
    """
    compiled, flows_null = (
        _compile_text(expression) if isinstance(expression, str) else _compile_node(expression)
    )
    if flows_null:
        return None
    ctx = _Context(attributes, now, rng, guid, context, budget)
    try:
        value = compiled(ctx)
        if type(value) is str:
            return value
        return _finish(value, 1)
    except _NoFlow:
        return DOES_NOT_FLOW
    except _Raised as exc:
        raise ExpressionRaised(exc.message, exc.column, _text_of(expression)) from None
    except _Limit as exc:
        raise ExpressionLimitError(exc.message, exc.column, _text_of(expression)) from None
    except _Failure as exc:
        raise ExpressionEvaluationError(exc.message, exc.column, _text_of(expression)) from None


def _text_of(expression: str | Node) -> str:
    return expression if isinstance(expression, str) else unparse(expression)


# Importing the function families registers their builders.
_FAMILIES = (text_functions, value_functions, flow_functions)


def _check_builders() -> None:
    missing = sorted(name for name in function_names() if name not in _BUILDERS)
    if missing:
        raise RuntimeError(f"functions without an implementation: {', '.join(missing)}")


_check_builders()
