"""The expression functions over numbers, booleans, multi-valued attributes, dates and generated values
(BitAnd, CBool, Not, IsNull..., Count, Item, RemoveDuplicates, Contains, roles, CDate, DateAdd,
DateDiff, FormatDateTime, Now, Guid, RandomString). Each registers its builder with ``compiler``.
``Now``, ``Guid`` and ``RandomString`` draw from the sources the caller injects. Pure otherwise.
"""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, datetime

from reconciler.expressions import dates
from reconciler.expressions.compiler import _BUILDERS, Builder, _arg, _builder, _register_strict, _strict
from reconciler.expressions.nodes import Call
from reconciler.expressions.runtime import (
    _BIG,
    Compiled,
    Value,
    _bool,
    _bounded,
    _Context,
    _date,
    _dated,
    _Failure,
    _heavy_input,
    _int,
    _is_empty,
    _show_short,
    _single,
    _text,
    _values,
)

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
    return None if ticks is None else _dated("DateFromNum", column, dates.from_filetime, ticks)


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
    return _dated("DateAdd", column, dates.add_interval, unit, n, when)


@_register_strict("DateDiff")
def _date_diff(column: int, interval: Value, first: Value, second: Value) -> Value:
    unit = _text(interval, "DateDiff", column)
    a = _date(first, "DateDiff", column)
    b = _date(second, "DateDiff", column)
    if a is None or b is None or unit is None:
        return None
    return _dated("DateDiff", column, dates.date_diff, unit, a, b)


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
