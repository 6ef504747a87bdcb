"""Evaluation of attribute-mapping expressions against one object's attributes. Pure; no I/O.

A tree is compiled once (cached) into nested Python closures, so evaluating it is a chain of plain calls.
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

import base64
import functools
import random
import re
import string
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from reconciler.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionLimitError,
    ExpressionRaised,
)
from reconciler.expressions import dates, netregex
from reconciler.expressions.functions import COMPARISON_OPERATORS, function_names
from reconciler.expressions.nodes import (
    Attribute,
    BinaryOp,
    Call,
    Literal,
    Missing,
    Node,
    Number,
    Parameter,
    String,
)
from reconciler.expressions.parser import parse, unparse

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

AttributeValue = str | list[str] | None


class DoesNotFlow:
    """The marker IgnoreFlowIfNullOrEmpty yields: the target attribute is left out of the export."""

    _instance: DoesNotFlow | None = None

    def __new__(cls) -> DoesNotFlow:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DOES_NOT_FLOW"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "DOES_NOT_FLOW"


DOES_NOT_FLOW: Final = DoesNotFlow()

Result = str | list[str] | bool | int | None | DoesNotFlow

# Internal values may also be DateTimes; anything else is a bug.
Value = Any
Compiled = Callable[["_Context"], Value]

_ABSENT: Final = object()

# Parameters named in the docs, and the keyword argument of ``evaluate`` that supplies each.
_PARAMETER_KEYWORDS = {"DomainFQDN": "domain_fqdn", "DomainNetBios": "domain_netbios"}


class _Failure(Exception):
    """An evaluation failure at a column; turned into ExpressionEvaluationError by ``evaluate``."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class _Raised(_Failure):
    """``Error("...")`` was evaluated."""


class _Limit(_Failure):
    """A bound was crossed: a value over MAX_TEXT, or the time budget used up."""


class _NoFlow(Exception):
    """IgnoreFlowIfNullOrEmpty met a null or empty value."""


# The largest value (characters; a multi-valued one counts all its values) a function may make. Far
# above any directory attribute (AD's largest string attributes hold a few KiB), far below what hurts.
MAX_TEXT: Final = 1 << 20
# Seconds of costly work one evaluation, or one object's mappings in MappingEvaluator, may take.
TIME_LIMIT: Final = 2.0
# Values up to this size cost microseconds whatever is done with them: only larger ones are timed.
_BIG: Final = 1 << 16


class Budget:
    """The time a set of evaluations may spend on costly steps. The clock starts at the first one."""

    __slots__ = ("deadline", "seconds", "steps")

    def __init__(self, seconds: float = TIME_LIMIT) -> None:
        self.seconds = seconds
        self.deadline: float | None = None
        self.steps = 0  # matching steps run without a time limit since the clock was last read

    def remaining(self) -> float:
        """Seconds left (0 or less when used up)."""
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.seconds
        return self.deadline - now


class _Context:
    __slots__ = ("attrs", "budget", "context", "folded", "guid", "now", "rng")

    def __init__(
        self,
        attrs: Mapping[str, AttributeValue],
        now: Callable[[], datetime] | None,
        rng: random.Random | None,
        guid: Callable[[], str] | None,
        context: dict[str, object],
        budget: Budget | None,
    ) -> None:
        self.attrs = attrs
        self.folded: dict[str, AttributeValue] | None = None
        self.now = now
        self.rng = rng
        self.guid = guid
        self.context = context
        self.budget = budget

    def time_left(self, fname: str, column: int) -> float:
        """Seconds left for a costly step of ``fname``; raises when the budget is used up."""
        budget = self.budget
        if budget is None:
            budget = self.budget = Budget()
        left = budget.remaining()
        if left <= 0:
            raise _Limit(
                f"{fname}: stopped at the time limit ({budget.seconds:g} s for one object's mappings)",
                column,
            )
        return left

    def lookup_folded(self, name: str) -> AttributeValue:
        folded = self.folded
        if folded is None:
            folded = self.folded = {k.casefold(): v for k, v in self.attrs.items()}
        return folded.get(name.casefold())


# -- coercions --------------------------------------------------------------------------------------


def _single(value: Value, fname: str, column: int) -> Value:
    if type(value) is list:
        if not value:
            return None
        if len(value) == 1:
            return value[0]
        raise _Failure(f"{fname} needs a single value, got {len(value)} values", column)
    return value


def _text(value: Value, fname: str, column: int) -> str | None:
    """The string form of a single value, or None for null."""
    t = type(value)
    if t is str or value is None:
        return value  # type: ignore[no-any-return]
    if t is list:
        return _text(_single(value, fname, column), fname, column)
    if t is bool:
        return "True" if value else "False"
    if t is int:
        return str(value)
    if isinstance(value, datetime):
        return dates.format_default(value)
    raise _Failure(f"{fname} cannot use the value {_show(value)}", column)


# The service's numbers are .NET 64-bit integers; anything wider is refused (and would not print).
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


def _int(value: Value, fname: str, pname: str, column: int) -> int | None:
    value = _single(value, fname, column)
    if value is None:
        return None
    number: int | None = None
    if type(value) is int:
        number = value
    elif type(value) is str:
        text = value.strip()
        try:
            number = int(text[2:], 16) if text[:2] in ("&H", "&h") else int(text)
        except ValueError:
            number = None
    if number is not None:
        if _INT_MIN <= number <= _INT_MAX:
            return number
        raise _Failure(f"{fname}: {pname} is outside the range of 64-bit whole numbers", column)
    raise _Failure(f"{fname}: {pname} must be a whole number, got {_show(value)}", column)


def _bool(value: Value, fname: str, column: int) -> bool:
    value = _single(value, fname, column)
    if type(value) is bool:
        return value
    if value is None:
        return False
    if type(value) is int:
        return value != 0
    if type(value) is str:
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
        try:
            return int(low) != 0
        except ValueError:
            pass
    raise _Failure(f"{fname} needs True or False, got {_show(value)}", column)


def _date(value: Value, fname: str, column: int) -> datetime | None:
    value = _single(value, fname, column)
    if value is None or isinstance(value, datetime):
        return value
    text = _text(value, fname, column)
    if text is None:
        return None
    try:
        return dates.parse_flexible(text)
    except dates.DateError as exc:
        raise _Failure(f"{fname}: {exc}", column) from None


def _values(value: Value) -> list[Value]:
    if value is None:
        return []
    if type(value) is list:
        return value
    return [value]


def _show(value: Value) -> str:
    # Values can be a megabyte long: a message quotes the start of one.
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 80 else f'"{value[:80]}"...'
    return repr(value) if type(value) is not list or len(value) <= 5 else f"[{len(value)} values]"


def _is_empty(value: Value) -> bool:
    if value is None or value == "":
        return True
    if type(value) is list:
        return all(v is None or v == "" for v in value)
    return False


# -- bounds ----------------------------------------------------------------------------------------


def _size(value: Value) -> int:
    """Characters in a value, a multi-valued one counting all its values (each at least one)."""
    if type(value) is str:
        return len(value)
    if type(value) is list:
        return sum(len(v) if type(v) is str else 1 for v in value) + len(value)
    return 0


def _too_big(fname: str, size: int, column: int) -> _Limit:
    return _Limit(
        f"{fname}: the value would be at least {size:,} characters, more than the limit of {MAX_TEXT:,}",
        column,
    )


def _bounded(ctx: _Context, value: Value, fname: str, column: int) -> Value:
    """``value`` when within MAX_TEXT; a large one also spends from the time budget."""
    size = _size(value)
    if size > _BIG:
        if size > MAX_TEXT:
            raise _too_big(fname, size, column)
        ctx.time_left(fname, column)
    return value


def _heavy_input(ctx: _Context, text: str | None, fname: str, column: int) -> None:
    """Work proportional to a large input (a character loop, a search) is timed like a large result."""
    if text is not None and len(text) > _BIG:
        ctx.time_left(fname, column)


def _growing_input(ctx: _Context, value: Value, fname: str, column: int) -> None:
    """An input over the limit is refused before a function that lengthens text (up to eight times,
    for ConvertToUTF8Hex) makes something larger still; attribute values are not bounded otherwise."""
    size = _size(value)
    if size > _BIG:
        if size > MAX_TEXT:
            raise _Limit(
                f"{fname}: the value given is {size:,} characters, more than the limit of {MAX_TEXT:,}",
                column,
            )
        ctx.time_left(fname, column)


# -- .NET regular expressions -----------------------------------------------------------------------


def _compile_regex(pattern: str, fname: str, column: int) -> netregex.Compiled:
    try:
        return netregex.compile_net(pattern)
    except netregex.RegexError as exc:
        raise _Failure(f"{fname}: invalid regular expression {_show_short(pattern)}: {exc}", column) from None


def _fast(ctx: _Context, rx: netregex.Compiled, value: str, column: int) -> re.Pattern[str] | None:
    """``rx``'s matcher without a time limit when it may run on ``value`` (its worst case is then
    counted, and the clock read every 2^24 counted steps), else None: use ``rx.timed`` with a timeout."""
    n = len(value)
    if n > rx.fast_limit:
        return None
    budget = ctx.budget
    if budget is None:
        budget = ctx.budget = Budget()  # the clock starts only when read
    budget.steps += rx.weight * (n + 1) ** (rx.varying + 1)
    if budget.steps > 1 << 24:
        budget.steps = 0
        ctx.time_left("Replace", column)
    return rx.fast


def _timed_out(fname: str, pattern: str, value: str, column: int) -> _Limit:
    return _Limit(
        f"{fname}: the regular expression {_show_short(pattern)} did not finish within the time limit "
        f"on a value of {len(value):,} characters (it backtracks too much on such values)",
        column,
    )


def _show_short(text: str, limit: int = 80) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


# -- compilation ------------------------------------------------------------------------------------

Builder = Callable[[Call, list[Compiled | None]], Compiled]
_BUILDERS: dict[str, Builder] = {}


def _builder(*names: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        for name in names:
            _BUILDERS[name] = fn
        return fn

    return register


def _null(ctx: _Context) -> Value:
    return None


def _arg(args: list[Compiled | None], index: int) -> Compiled:
    if index < len(args):
        fn = args[index]
        if fn is not None:
            return fn
    return _null


def _filled(args: list[Compiled | None], index: int) -> bool:
    return index < len(args) and args[index] is not None


def _compile(node: Node) -> Compiled:
    if isinstance(node, Attribute):
        return _compile_attribute(node.name)
    if isinstance(node, Number):
        # A literal beyond 64 bits stays text, so that the function given it refuses it cleanly.
        try:
            number: int | str = node.value
        except ValueError:
            number = node.literal
        if type(number) is int and not _INT_MIN <= number <= _INT_MAX:
            number = node.literal
        return lambda ctx: number
    if isinstance(node, Literal):
        text = node.text
        return lambda ctx: text
    if isinstance(node, Parameter):
        return _compile_parameter(node)
    if isinstance(node, Missing):
        return _null
    if isinstance(node, BinaryOp):
        return _compile_operation(node)
    if isinstance(node, Call):
        args = [None if isinstance(a, Missing) else _compile(a) for a in node.args]
        builder = _BUILDERS.get(node.name)
        if builder is None:
            raise ExpressionEvaluationError(f"{node.name} cannot be evaluated", node.column)
        return builder(node, args)
    raise TypeError(f"not an expression node: {node!r}")


def _compile_attribute(name: str) -> Compiled:
    def attribute(ctx: _Context) -> Value:
        value = ctx.attrs.get(name, _ABSENT)
        if value is _ABSENT:
            return ctx.lookup_folded(name)
        return value

    return attribute


def _compile_parameter(node: Parameter) -> Compiled:
    name = node.name
    keyword = _PARAMETER_KEYWORDS.get(name) or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    column = node.column

    def parameter(ctx: _Context) -> Value:
        params = ctx.context.get("parameters")
        if isinstance(params, Mapping) and name in params:
            return params[name]
        value = ctx.context.get(keyword)
        if value is None:
            raise _Failure(f"no value was given for %{name}% ({keyword})", column)
        return value

    return parameter


def _compare(op: str, left: Value, right: Value, column: int) -> bool:
    a = _text(left, op, column)
    b = _text(right, op, column)
    if op == "=":
        return a == b
    if op == "<>":
        return a != b
    if a is None or b is None:
        return False
    try:
        x, y = int(a), int(b)
    except ValueError:
        return _order(op, a, b)
    return _order(op, x, y)


def _order(op: str, x: Any, y: Any) -> bool:
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


def _compile_operation(node: BinaryOp) -> Compiled:
    left, right, op, column = _compile(node.left), _compile(node.right), node.op, node.column
    if op == "&":

        def concatenate(ctx: _Context) -> Value:
            joined = (_text(left(ctx), "&", column) or "") + (_text(right(ctx), "&", column) or "")
            return joined if len(joined) <= _BIG else _bounded(ctx, joined, "&", column)

        return concatenate
    if op not in COMPARISON_OPERATORS:
        raise ExpressionEvaluationError(f"unknown operator '{op}'", column)
    return lambda ctx: _compare(op, left(ctx), right(ctx), column)


def _strict(impl: Callable[..., Value]) -> Builder:
    """A builder for a function that takes its arguments evaluated: ``impl(column, *values)``."""

    def build(node: Call, args: list[Compiled | None]) -> Compiled:
        fns = [a if a is not None else _null for a in args]
        column = node.column
        if len(fns) == 1:
            (a0,) = fns
            return lambda ctx: impl(column, a0(ctx))
        if len(fns) == 2:
            a0, a1 = fns
            return lambda ctx: impl(column, a0(ctx), a1(ctx))
        if len(fns) == 3:
            a0, a1, a2 = fns
            return lambda ctx: impl(column, a0(ctx), a1(ctx), a2(ctx))
        return lambda ctx: impl(column, *[f(ctx) for f in fns])

    return build


def _timed(impl: Callable[..., Value]) -> Builder:
    """Like ``_strict``, for a function whose cost or result grows with its input: ``impl(ctx, column,
    *values)`` bounds its own result (``_bounded``) and times work on large inputs (``_heavy_input``)."""

    def build(node: Call, args: list[Compiled | None]) -> Compiled:
        fns = [a if a is not None else _null for a in args]
        column = node.column
        if len(fns) == 1:
            (a0,) = fns
            return lambda ctx: impl(ctx, column, a0(ctx))
        if len(fns) == 2:
            a0, a1 = fns
            return lambda ctx: impl(ctx, column, a0(ctx), a1(ctx))
        if len(fns) == 3:
            a0, a1, a2 = fns
            return lambda ctx: impl(ctx, column, a0(ctx), a1(ctx), a2(ctx))
        return lambda ctx: impl(ctx, column, *[f(ctx) for f in fns])

    return build


def _per_value(transform: Callable[[str], str], fname: str, *, grows: bool = False) -> Builder:
    """A one-argument string function applied to every value of a multi-valued argument. One that
    ``grows`` its input (more characters out than in) has its result bounded."""

    def apply(column: int, value: Value) -> Value:
        if value is None:
            return None
        if type(value) is str:
            return transform(value)
        if type(value) is list:
            return [transform(v if type(v) is str else _text(v, fname, column) or "") for v in value]
        text = _text(value, fname, column)
        return None if text is None else transform(text)

    if not grows:
        return _strict(apply)

    def bounded(ctx: _Context, column: int, value: Value) -> Value:
        _growing_input(ctx, value, fname, column)
        return _bounded(ctx, apply(column, value), fname, column)

    return _timed(bounded)


def _register_strict(name: str) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    def register(impl: Callable[..., Value]) -> Callable[..., Value]:
        _BUILDERS[name] = _strict(impl)
        return impl

    return register


def _register_timed(name: str) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    def register(impl: Callable[..., Value]) -> Callable[..., Value]:
        _BUILDERS[name] = _timed(impl)
        return impl

    return register


# -- string functions -------------------------------------------------------------------------------

_BUILDERS["Trim"] = _per_value(str.strip, "Trim")
_BUILDERS["StripSpaces"] = _per_value(lambda s: s.replace(" ", ""), "StripSpaces")


@_register_timed("Append")
def _append(ctx: _Context, column: int, source: Value, suffix: Value) -> Value:
    a = _text(source, "Append", column)
    b = _text(suffix, "Append", column)
    if a is None and b is None:
        return None
    joined = (a or "") + (b or "")
    return joined if len(joined) <= _BIG else _bounded(ctx, joined, "Append", column)


@_register_strict("Left")
def _left(column: int, source: Value, count: Value) -> Value:
    text = _text(source, "Left", column)
    n = _int(count, "Left", "numChars", column)
    if text is None:
        return ""
    if n is None or n < 0:
        return text
    return text[:n]


@_register_strict("Mid")
def _mid(column: int, source: Value, start: Value, length: Value) -> Value:
    text = _text(source, "Mid", column)
    first = _int(start, "Mid", "start", column)
    count = _int(length, "Mid", "length", column)
    if text is None:
        return None
    if first is None or first < 1:
        raise _Failure(f"Mid: start must be 1 or more, got {first}", column)
    if count is None or count < 0:
        raise _Failure(f"Mid: length must be 0 or more, got {count}", column)
    return text[first - 1 : first - 1 + count]


@_register_timed("Join")
def _join(ctx: _Context, column: int, separator: Value, *sources: Value) -> Value:
    sep = _text(separator, "Join", column) or ""
    parts: list[str] = []
    for source in sources:
        for value in _values(source):
            text = _text(value, "Join", column)
            if text:
                parts.append(text)
    if not parts:
        return None
    # The parts are the values themselves, not copies: the size is known before the text is made.
    size = sum(map(len, parts)) + len(sep) * (len(parts) - 1)
    if size > _BIG:
        if size > MAX_TEXT:
            raise _too_big("Join", size, column)
        ctx.time_left("Join", column)
    return sep.join(parts)


@_register_timed("Split")
def _split(ctx: _Context, column: int, source: Value, delimiter: Value) -> Value:
    text = _text(source, "Split", column)
    delim = _text(delimiter, "Split", column)
    if text is None:
        return None
    if not delim:
        raise _Failure("Split: the delimiter is empty", column)
    _heavy_input(ctx, text, "Split", column)
    return _bounded(ctx, text.split(delim), "Split", column)


@_register_timed("Word")
def _word(ctx: _Context, column: int, source: Value, number: Value, delimiters: Value) -> Value:
    text = _text(source, "Word", column)
    n = _int(number, "Word", "wordNumber", column)
    delims = _text(delimiters, "Word", column) or ""
    if text is None or n is None or n < 1:
        return ""
    _heavy_input(ctx, text, "Word", column)
    words = [w for w in re.split("[" + re.escape(delims) + "]", text) if w] if delims else [text]
    return words[n - 1] if n <= len(words) else ""


@_register_timed("InStr")
def _instr(
    ctx: _Context, column: int, source: Value, match: Value, start: Value = None, compare: Value = None
) -> Value:
    haystack = _text(source, "InStr", column)
    _heavy_input(ctx, haystack, "InStr", column)
    needle = _text(match, "InStr", column)
    first = _int(start, "InStr", "start", column)
    mode = _text(compare, "InStr", column)
    if first is None:
        first = 1
    if first < 1:
        raise _Failure(f"InStr: start must be 1 or more, got {first}", column)
    if mode not in (None, "vbBinaryCompare", "vbTextCompare"):
        raise _Failure(f"InStr: compareType must be vbBinaryCompare or vbTextCompare, got {mode}", column)
    if not haystack:
        return 0
    if not needle:
        return first if first <= len(haystack) else 0
    if mode == "vbTextCompare":
        haystack, needle = haystack.casefold(), needle.casefold()
    return haystack.find(needle, first - 1) + 1


def _culture_lower(text: str, culture: str | None) -> str:
    if culture and culture.split("-")[0].lower() in ("tr", "az"):
        text = text.replace("I", "ı").replace("İ", "i")
    return text.lower()


def _culture_upper(text: str, culture: str | None) -> str:
    if culture and culture.split("-")[0].lower() in ("tr", "az"):
        text = text.replace("i", "İ")
    return text.upper()


def _case_builder(fname: str, convert: Callable[[str, str | None], str]) -> Builder:
    # Case mapping can lengthen text ("ß" upper-cases to "SS"), so the result is bounded.
    def impl(ctx: _Context, column: int, source: Value, culture: Value = None) -> Value:
        cult = _text(culture, fname, column)
        if source is None:
            return None
        if type(source) is str and len(source) <= _BIG:
            # The common case: a short value, whose result (at most three times as long) is short too.
            return convert(source, cult)
        _growing_input(ctx, source, fname, column)
        if type(source) is list:
            values = [convert(v if type(v) is str else _text(v, fname, column) or "", cult) for v in source]
            return _bounded(ctx, values, fname, column)
        text = _text(source, fname, column)
        return None if text is None else _bounded(ctx, convert(text, cult), fname, column)

    return _timed(impl)


_BUILDERS["ToLower"] = _case_builder("ToLower", _culture_lower)
_BUILDERS["ToUpper"] = _case_builder("ToUpper", _culture_upper)


@_register_timed("PCase")
def _pcase(ctx: _Context, column: int, source: Value, separators: Value = None) -> Value:
    text = _text(source, "PCase", column)
    seps = _text(separators, "PCase", column)
    if text is None:
        return None
    _growing_input(ctx, text, "PCase", column)
    out: list[str] = []
    start_of_word = True
    for ch in text.lower():
        if seps:
            is_sep = ch in seps
        else:
            # .NET ToTitleCase: letters, digits and marks continue a word; an apostrophe does too.
            is_sep = not (ch.isalnum() or unicodedata.category(ch).startswith("M") or ch == "'")
        out.append(ch.upper() if start_of_word and not is_sep else ch)
        start_of_word = is_sep
    return _bounded(ctx, "".join(out), "PCase", column)


# Letters that do not decompose into a base letter plus accents; from the app-provisioning table.
_DIACRITIC_SPECIALS = str.maketrans(
    {
        "æ": "ae",
        "Æ": "AE",
        "ø": "oe",
        "Ø": "OE",
        "œ": "oe",
        "Œ": "OE",
        "ß": "ss",
        "ł": "l",
        "Ł": "L",
        "ı": "i",
        "đ": "d",
        "Đ": "D",
    }
)


def _normalize_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).translate(_DIACRITIC_SPECIALS)


_BUILDERS["NormalizeDiacritics"] = _per_value(_normalize_diacritics, "NormalizeDiacritics", grows=True)


@_register_timed("ConvertToBase64")
def _to_base64(ctx: _Context, column: int, source: Value) -> Value:
    text = _text(source, "ConvertToBase64", column)
    if text is None:
        return None
    _growing_input(ctx, text, "ConvertToBase64", column)
    encoded = base64.b64encode(text.encode("utf-16-le")).decode("ascii")
    return _bounded(ctx, encoded, "ConvertToBase64", column)


_ENCODINGS = {"Unicode": "utf-16-le", "ASCII": "ascii", "UTF8": "utf-8"}


@_register_timed("ConvertFromBase64")
def _from_base64(ctx: _Context, column: int, source: Value, encoding: Value = None) -> Value:
    text = _text(source, "ConvertFromBase64", column)
    name = _text(encoding, "ConvertFromBase64", column) or "Unicode"
    if text is None:
        return None
    _heavy_input(ctx, text, "ConvertFromBase64", column)
    codec = _ENCODINGS.get(name)
    if codec is None:
        raise _Failure(f"ConvertFromBase64: encoding must be Unicode, ASCII or UTF8, got {name}", column)
    try:
        return base64.b64decode(text, validate=True).decode(codec)
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        message = f"ConvertFromBase64: {_show(text)} cannot be decoded as {name}: {exc}"
        raise _Failure(message, column) from None


@_register_timed("ConvertToUTF8Hex")
def _to_utf8_hex(ctx: _Context, column: int, source: Value) -> Value:
    text = _text(source, "ConvertToUTF8Hex", column)
    if text is None:
        return None
    _growing_input(ctx, text, "ConvertToUTF8Hex", column)
    return _bounded(ctx, text.encode("utf-8").hex().upper(), "ConvertToUTF8Hex", column)


@_register_strict("CStr")
def _cstr(column: int, value: Value) -> Value:
    return _text(value, "CStr", column)


@_register_strict("CRef")
def _cref(column: int, value: Value) -> Value:
    return _text(value, "CRef", column)


@_register_strict("Redact")
def _redact(column: int, value: Value) -> Value:
    # Redact only masks the value in the provisioning logs; the value itself flows.
    return value


@_register_strict("StringFromSid")
def _string_from_sid(column: int, value: Value) -> Value:
    text = _text(value, "StringFromSid", column)
    if text is None:
        return None
    if text.upper().startswith("S-"):
        return text
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise _Failure("StringFromSid needs a binary SID (base64 text)", column) from None
    if len(raw) < 8 or len(raw) != 8 + 4 * raw[1]:
        raise _Failure("StringFromSid: the value is not a binary SID", column)
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i : 12 + 4 * i], "little") for i in range(raw[1])]
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


def _dn_components(dn: str) -> list[str]:
    """Values of the RDNs of a DN, left to right; ``\\,`` and ``\\2C`` escapes are kept as written."""
    rdns: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(dn):
        ch = dn[i]
        if ch == "\\" and i + 1 < len(dn):
            current.append(dn[i : i + 2])
            i += 2
            continue
        if ch in ",;":
            rdns.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    rdns.append("".join(current))
    values = []
    for rdn in rdns:
        _, sep, value = rdn.partition("=")
        values.append(value.strip() if sep else rdn.strip())
    return values


@_register_timed("DNComponent")
def _dn_component(ctx: _Context, column: int, dn: Value, number: Value) -> Value:
    text = _text(dn, "DNComponent", column)
    n = _int(number, "DNComponent", "componentNumber", column)
    if text is None or n is None:
        return None
    _heavy_input(ctx, text, "DNComponent", column)
    parts = _dn_components(text)
    if not 1 <= n <= len(parts):
        return None
    return parts[n - 1]


# -- numbers and booleans ---------------------------------------------------------------------------


@_register_strict("BitAnd")
def _bitand(column: int, a: Value, b: Value) -> Value:
    x = _int(a, "BitAnd", "value1", column)
    y = _int(b, "BitAnd", "value2", column)
    if x is None or y is None:
        return None
    return x & y


@_register_strict("CBool")
def _cbool(column: int, value: Value) -> Value:
    return _bool(value, "CBool", column)


@_register_strict("Not")
def _not(column: int, value: Value) -> Value:
    value = _single(value, "Not", column)
    if type(value) is bool:
        return not value
    # Documented: "True" gives "False"; any other value gives "True".
    text = _text(value, "Not", column)
    return not (text is not None and text.strip().lower() == "true")


@_register_strict("IsNull")
def _is_null(column: int, value: Value) -> Value:
    return value is None or (type(value) is list and not value)


@_register_strict("IsNullOrEmpty")
def _is_null_or_empty(column: int, value: Value) -> Value:
    return _is_empty(value)


@_register_strict("IsPresent")
def _is_present(column: int, value: Value) -> Value:
    return not _is_empty(value)


@_register_strict("IsString")
def _is_string(column: int, value: Value) -> Value:
    if type(value) is list:
        return len(value) == 1
    return value is not None


@_register_strict("Count")
def _count(column: int, value: Value) -> Value:
    return len(_values(value))


# -- multi-valued -----------------------------------------------------------------------------------


@_register_strict("Item")
def _item(column: int, values: Value, index: Value) -> Value:
    i = _int(index, "Item", "index", column)
    items = _values(values)
    if not items or i is None:
        return None
    if not 1 <= i <= len(items):
        raise _Failure(f"Item: index {i} is outside the {len(items)} value(s); the first is 1", column)
    return items[i - 1]


@_register_strict("RemoveDuplicates")
def _remove_duplicates(column: int, values: Value) -> Value:
    if values is None:
        return None
    return list(dict.fromkeys(_text(v, "RemoveDuplicates", column) or "" for v in _values(values)))


@_register_strict("Contains")
def _contains(column: int, values: Value, match: Value) -> Value:
    needle = _text(match, "Contains", column) or ""
    for i, value in enumerate(_values(values), start=1):
        text = _text(value, "Contains", column)
        if text is not None and needle in text:
            return i
    return 0


def _role_list(fname: str) -> Builder:
    def impl(column: int, value: Value) -> Value:
        if value is None:
            return None
        return [_text(v, fname, column) for v in _values(value)]

    return _strict(impl)


for _name in ("AppRoleAssignmentsComplex", "AssertiveAppRoleAssignmentsComplex", "AppRoleAssignments"):
    _BUILDERS[_name] = _role_list(_name)


@_register_strict("SingleAppRoleAssignment")
def _single_role(column: int, value: Value) -> Value:
    # With several roles the service's pick is unpredictable; take the first.
    items = _values(value)
    return _text(items[0], "SingleAppRoleAssignment", column) if items else None


# -- dates --------------------------------------------------------------------------------------


@_register_strict("CDate")
def _cdate(column: int, value: Value) -> Value:
    return _date(value, "CDate", column)


@_register_strict("DateFromNum")
def _date_from_num(column: int, value: Value) -> Value:
    ticks = _int(value, "DateFromNum", "value", column)
    if ticks is None:
        return None
    try:
        return dates.from_filetime(ticks)
    except dates.DateError as exc:
        raise _Failure(f"DateFromNum: {exc}", column) from None


@_register_strict("NumFromDate")
def _num_from_date(column: int, value: Value) -> Value:
    moment = _date(value, "NumFromDate", column)
    return None if moment is None else dates.to_filetime(moment)


@_register_strict("DateAdd")
def _date_add(column: int, interval: Value, amount: Value, moment: Value) -> Value:
    unit = _text(interval, "DateAdd", column)
    n = _int(amount, "DateAdd", "value", column)
    when = _date(moment, "DateAdd", column)
    if when is None or n is None or unit is None:
        return None
    try:
        return dates.add_interval(unit, n, when)
    except dates.DateError as exc:
        raise _Failure(f"DateAdd: {exc}", column) from None


@_register_strict("DateDiff")
def _date_diff(column: int, interval: Value, first: Value, second: Value) -> Value:
    unit = _text(interval, "DateDiff", column)
    a = _date(first, "DateDiff", column)
    b = _date(second, "DateDiff", column)
    if a is None or b is None or unit is None:
        return None
    try:
        return dates.date_diff(unit, a, b)
    except dates.DateError as exc:
        raise _Failure(f"DateDiff: {exc}", column) from None


@_builder("FormatDateTime")
def _build_format_datetime(node: Call, args: list[Compiled | None]) -> Compiled:
    column = node.column
    if len(args) == 4:
        source, in_fmt, out_fmt = _arg(args, 0), _arg(args, 2), _arg(args, 3)
    else:
        source, in_fmt, out_fmt = _arg(args, 0), _arg(args, 1), _arg(args, 2)

    def format_datetime(ctx: _Context) -> Value:
        value = _single(source(ctx), "FormatDateTime", column)
        fmt_in = _text(in_fmt(ctx), "FormatDateTime", column)
        fmt_out = _text(out_fmt(ctx), "FormatDateTime", column)
        if value is None:
            return None
        if not fmt_out:
            raise _Failure("FormatDateTime: outputFormat is empty", column)
        try:
            if isinstance(value, datetime):
                moment = value
            else:
                text = _text(value, "FormatDateTime", column) or ""
                if not fmt_in:
                    # A DateTime needs no inputFormat; text does (.NET's ParseExact refuses an empty one).
                    raise dates.DateError(
                        f"inputFormat is empty, so the text {_show_short(text)} cannot be read; give its "
                        "format (only a DateTime, from DateFromNum, CDate, DateAdd or Now, needs none)"
                    )
                _heavy_input(ctx, text, "FormatDateTime", column)
                moment = dates.parse_with_format(text, fmt_in)
            if len(fmt_out) > _BIG:
                ctx.time_left("FormatDateTime", column)
            return _bounded(ctx, dates.format_datetime(moment, fmt_out), "FormatDateTime", column)
        except dates.DateError as exc:
            raise _Failure(f"FormatDateTime: {exc}", column) from None

    return format_datetime


@_builder("Now")
def _build_now(node: Call, args: list[Compiled | None]) -> Compiled:
    def now(ctx: _Context) -> Value:
        moment = ctx.now() if ctx.now is not None else datetime.now(UTC)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

    return now


# -- generated values -------------------------------------------------------------------------------


@_builder("Guid")
def _build_guid(node: Call, args: list[Compiled | None]) -> Compiled:
    def guid(ctx: _Context) -> Value:
        if ctx.guid is not None:
            return ctx.guid()
        if ctx.rng is not None:
            return str(uuid.UUID(int=ctx.rng.getrandbits(128), version=4))
        return str(uuid.uuid4())

    return guid


# Special characters allowed by the Windows password complexity rules.
_SPECIALS = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/"


@_builder("RandomString")
def _build_random_string(node: Call, args: list[Compiled | None]) -> Compiled:
    column = node.column
    fns = [_arg(args, i) for i in range(6)]
    names = ("length", "minimumNumbers", "minimumSpecialCharacters", "minimumCapital", "minimumLowerCase")

    def random_string(ctx: _Context) -> Value:
        counts = []
        for fn, pname in zip(fns[:5], names, strict=True):
            n = _int(fn(ctx), "RandomString", pname, column)
            if n is None or n < 0:
                raise _Failure(f"RandomString: {pname} must be 0 or more", column)
            counts.append(n)
        length, *minimums = counts
        avoid = _text(fns[5](ctx), "RandomString", column) or ""
        if length > 256:
            raise _Failure("RandomString: length must be 256 or less", column)
        if sum(minimums) > length:
            raise _Failure("RandomString: the minimums add up to more than length", column)
        pools = [
            "".join(c for c in pool if c not in avoid)
            for pool in (string.digits, _SPECIALS, string.ascii_uppercase, string.ascii_lowercase)
        ]
        rng = ctx.rng if ctx.rng is not None else random.SystemRandom()
        chars: list[str] = []
        for pool, minimum in zip(pools, minimums, strict=True):
            if minimum and not pool:
                raise _Failure("RandomString: CharactersToAvoid excludes a required class", column)
            chars.extend(rng.choice(pool) for _ in range(minimum))
        everything = "".join(pools)
        if len(chars) < length and not everything:
            raise _Failure("RandomString: no characters are left to choose from", column)
        chars.extend(rng.choice(everything) for _ in range(length - len(chars)))
        rng.shuffle(chars)
        return "".join(chars)

    return random_string


# -- control flow -----------------------------------------------------------------------------------


@_builder("IIF")
def _build_iif(node: Call, args: list[Compiled | None]) -> Compiled:
    condition, if_true, if_false = _arg(args, 0), _arg(args, 1), _arg(args, 2)
    column = node.column

    def iif(ctx: _Context) -> Value:
        test = condition(ctx)
        if test is True or (test is not False and _bool(test, "IIF", column)):
            return if_true(ctx)
        return if_false(ctx)

    return iif


@_builder("Switch")
def _build_switch(node: Call, args: list[Compiled | None]) -> Compiled:
    source, default = _arg(args, 0), _arg(args, 1)
    pairs = [(_arg(args, i), _arg(args, i + 1)) for i in range(2, len(args) - 1, 2)]
    column = node.column

    def switch(ctx: _Context) -> Value:
        # An empty key ("" or an empty slot) matches a null or empty source.
        value = _text(source(ctx), "Switch", column) or ""
        for key, result in pairs:
            if (_text(key(ctx), "Switch", column) or "") == value:
                return result(ctx)
        return default(ctx)

    return switch


@_builder("Coalesce")
def _build_coalesce(node: Call, args: list[Compiled | None]) -> Compiled:
    fns = [a for a in args if a is not None]

    def coalesce(ctx: _Context) -> Value:
        for fn in fns:
            value = fn(ctx)
            if value is not None and not (type(value) is list and not value):
                return value
        return None

    return coalesce


@_builder("IgnoreFlowIfNullOrEmpty")
def _build_ignore_flow(node: Call, args: list[Compiled | None]) -> Compiled:
    inner = _arg(args, 0)

    def ignore_flow(ctx: _Context) -> Value:
        value = inner(ctx)
        if _is_empty(value):
            raise _NoFlow
        return value

    return ignore_flow


@_builder("Error")
def _build_error(node: Call, args: list[Compiled | None]) -> Compiled:
    message, column = _arg(args, 0), node.column

    def error(ctx: _Context) -> Value:
        raise _Raised(_text(message(ctx), "Error", column) or "Error() was called", column)

    return error


@_builder("SelectUniqueValue")
def _build_select_unique(node: Call, args: list[Compiled | None]) -> Compiled:
    rules = [a for a in args if a is not None]
    column = node.column

    def select_unique(ctx: _Context) -> Value:
        exists = ctx.context.get("exists")
        candidates: list[Value] = []
        for rule in rules:
            value = rule(ctx)
            if _is_empty(value):
                continue
            if not callable(exists):
                return value
            text = _text(value, "SelectUniqueValue", column)
            if not exists(text):
                return value
            candidates.append(text)
        if not callable(exists):
            return None
        raise _Failure(
            f"SelectUniqueValue: every candidate already exists ({', '.join(map(str, candidates))}); "
            "the service escrows the object",
            column,
        )

    return select_unique


@_builder("DefaultDomain")
def _build_default_domain(node: Call, args: list[Compiled | None]) -> Compiled:
    column = node.column

    def default_domain(ctx: _Context) -> Value:
        value = ctx.context.get("default_domain")
        if value is None:
            raise _Failure("DefaultDomain() has no value here; pass default_domain=...", column)
        return value

    return default_domain


@_builder("Replace")
def _build_replace(node: Call, args: list[Compiled | None]) -> Compiled:
    column = node.column
    source = _arg(args, 0)
    old, pattern_fn, group_fn = _arg(args, 1), _arg(args, 2), _arg(args, 3)
    replacement, template = _arg(args, 4), _arg(args, 6)
    has = [_filled(args, i) for i in range(7)]
    attr_fn = _arg(args, 5)
    attr_node = node.args[5] if len(node.args) > 5 else None
    if isinstance(attr_node, String):
        # replacementAttributeName names an attribute; a string gives the name, [attr] its value.
        attr_fn = _compile_attribute(attr_node.value)

    def text_of(fn: Compiled, ctx: _Context) -> str | None:
        return _text(fn(ctx), "Replace", column)

    if has[2]:
        if has[3] and has[5]:

            def regex_from_attribute(ctx: _Context) -> Value:
                # A source with a value is kept; one without takes the group from the other attribute.
                value = text_of(source, ctx)
                if value:
                    return value
                other = text_of(attr_fn, ctx)
                if not other:
                    return value
                pattern = text_of(pattern_fn, ctx) or ""
                rx = _compile_regex(pattern, "Replace", column)
                key = _group_key(rx, text_of(group_fn, ctx) or "", column)
                fast = _fast(ctx, rx, other, column)
                found: Any
                try:
                    if fast is not None:
                        found = fast.search(other)
                    else:
                        found = rx.timed.search(other, timeout=ctx.time_left("Replace", column))
                except TimeoutError:
                    raise _timed_out("Replace", pattern, other, column) from None
                if found is None or found.group(key) is None:
                    return value
                return found.group(key)

            return regex_from_attribute
        if has[3] and has[4]:

            def regex_group(ctx: _Context) -> Value:
                value = text_of(source, ctx)
                if value is None:
                    return None
                pattern = text_of(pattern_fn, ctx) or ""
                rx = _compile_regex(pattern, "Replace", column)
                key = _group_key(rx, text_of(group_fn, ctx) or "", column)
                substitute = text_of(replacement, ctx) or ""
                try:
                    result = _replace_group(ctx, rx, key, value, substitute, column)
                except TimeoutError:
                    raise _timed_out("Replace", pattern, value, column) from None
                return _bounded(ctx, result, "Replace", column)

            return regex_group
        if has[4]:

            def regex(ctx: _Context) -> Value:
                value = text_of(source, ctx)
                if value is None:
                    return None
                pattern = text_of(pattern_fn, ctx) or ""
                rx = _compile_regex(pattern, "Replace", column)
                template = netregex.template(pattern, text_of(replacement, ctx) or "")
                n = len(value)
                try:
                    if n + (n + 1) * (template.literal + template.groups * n) <= MAX_TEXT:
                        # Even if every position matched, the result stays within the limit.
                        fast = _fast(ctx, rx, value, column)
                        if fast is not None:
                            result = fast.sub(template.text, value)
                        else:
                            timeout = ctx.time_left("Replace", column)
                            result = rx.timed.sub(template.text, value, timeout=timeout)
                    else:
                        result = _sub_counted(ctx, rx, template, value, column)
                except TimeoutError:
                    raise _timed_out("Replace", pattern, value, column) from None
                return _bounded(ctx, result, "Replace", column)

            return regex
    if has[1]:
        if has[4]:

            def plain(ctx: _Context) -> Value:
                value = text_of(source, ctx)
                find = text_of(old, ctx)
                if value is None or not find:
                    return value
                new = text_of(replacement, ctx) or ""
                return _bounded(ctx, _replace_text(value, find, new, column), "Replace", column)

            return plain
        if has[6]:

            def fill_template(ctx: _Context) -> Value:
                value = text_of(source, ctx)
                find = text_of(old, ctx)
                pattern_text = text_of(template, ctx)
                if value is None or pattern_text is None:
                    return None
                if not find:
                    return pattern_text
                return _bounded(ctx, _replace_text(pattern_text, find, value, column), "Replace", column)

            return fill_template
    # No replacement, template or replacement attribute: nothing to replace with.
    return lambda ctx: text_of(source, ctx)


def _replace_text(text: str, find: str, new: str, column: int) -> str:
    """``text`` with every ``find`` replaced by ``new``, refused before it is made if too large."""
    if len(new) > len(find):
        size = len(text) + text.count(find) * (len(new) - len(find))
        if size > MAX_TEXT:
            raise _too_big("Replace", size, column)
    return text.replace(find, new)


def _group_key(rx: netregex.Compiled, group: str, column: int) -> str | int:
    if group in rx.groupindex:
        return group
    if group.isdigit() and int(group) <= rx.groups:
        return int(group)
    raise _Failure(f"Replace: the regular expression has no group named {_show_short(group)}", column)


def _sub_counted(
    ctx: _Context, rx: netregex.Compiled, template: netregex.Template, value: str, column: int
) -> str:
    """``rx.sub`` for a replacement that could make a result over the limit: each match's text is
    bounded before it is made, and the substitution stops as soon as the result would be too large."""
    size = len(value)

    def expand(m: Any) -> str:
        nonlocal size
        longest = max(m.end(i) - m.start(i) for i in range(rx.groups + 1))
        if template.literal + template.groups * longest > MAX_TEXT:
            raise _too_big("Replace", size + template.literal + template.groups * longest, column)
        piece: str = m.expand(template.text)
        size += len(piece) - (m.end() - m.start())
        if size > MAX_TEXT:
            raise _too_big("Replace", size, column)
        return piece

    fast = _fast(ctx, rx, value, column)
    if fast is not None:
        return fast.sub(expand, value)
    return rx.timed.sub(expand, value, timeout=ctx.time_left("Replace", column))


def _replace_group(
    ctx: _Context, rx: netregex.Compiled, key: str | int, value: str, substitute: str, column: int
) -> str:
    """Every match's ``key`` group in ``value`` replaced by ``substitute``."""
    out: list[str] = []
    size = len(value)
    pos = 0
    fast = _fast(ctx, rx, value, column)
    if fast is not None:
        matches: Any = fast.finditer(value)
    else:
        matches = rx.timed.finditer(value, timeout=ctx.time_left("Replace", column))
    for m in matches:
        start, end = m.span(key)
        if start < 0 or (start == end and m.start() == m.end()):
            continue
        size += len(substitute) - (end - start)
        if size > MAX_TEXT:
            raise _too_big("Replace", size, column)
        out.append(value[pos:start])
        out.append(substitute)
        pos = end
    out.append(value[pos:])
    return "".join(out)


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


def _check_builders() -> None:
    missing = sorted(name for name in function_names() if name not in _BUILDERS)
    if missing:
        raise RuntimeError(f"functions without an implementation: {', '.join(missing)}")


_check_builders()
