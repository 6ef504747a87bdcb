"""What every expression function shares while it runs: the value model, the evaluation context and
its time ``Budget``, the failures ``evaluate`` turns into errors, coercions between values, the bounds on
values and time, and .NET regular expressions run under them. Pure; no I/O (the clock is read only by
costly steps). Names with a leading underscore are private to the evaluator's modules
(``evaluator``, ``compiler`` and the ``*_functions`` families).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

from reconciler.expressions import dates, netregex

AttributeValue = str | list[str] | None
_R = TypeVar("_R")


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
    return None if text is None else _dated(fname, column, dates.parse_flexible, text)


def _dated(fname: str, column: int, work: Callable[..., _R], *args: Any) -> _R:
    """``work(*args)``, one of the ``dates`` functions; its ``DateError`` becomes ``fname``'s failure."""
    try:
        return work(*args)
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
