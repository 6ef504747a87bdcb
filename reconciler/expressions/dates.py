"""Date handling for expression functions: .NET custom format strings, AD FILETIME numbers, VB DateAdd
and DateDiff rules, and the en-US ``M/d/yyyy h:mm:ss tt`` rendering. Pure; no I/O, no clock.

Every DateTime here is an aware ``datetime``. Inputs with an offset are converted to UTC, as the service
(which runs in UTC) does; inputs without one are taken as UTC.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = [
    "DateError",
    "add_interval",
    "date_diff",
    "format_datetime",
    "format_default",
    "from_filetime",
    "parse_flexible",
    "parse_with_format",
    "to_filetime",
]

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_MONTHS = [calendar.month_name[i] for i in range(1, 13)]
_MONTHS_ABBR = [calendar.month_abbr[i] for i in range(1, 13)]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class DateError(ValueError):
    """A date string or format cannot be used."""


def format_default(value: datetime) -> str:
    """``M/d/yyyy h:mm:ss tt`` (en-US), the rendering of CDate, DateAdd and Now."""
    hour = value.hour % 12 or 12
    ampm = "AM" if value.hour < 12 else "PM"
    return f"{value.month}/{value.day}/{value.year} {hour}:{value.minute:02d}:{value.second:02d} {ampm}"


def from_filetime(ticks: int) -> datetime:
    """An AD large-integer date (100-ns ticks since 1601-01-01 UTC) as a datetime."""
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError as exc:
        raise DateError(f"{ticks} is outside the range of dates") from exc


def to_filetime(value: datetime) -> int:
    """The AD large-integer form of ``value``."""
    delta = value.astimezone(UTC) - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


# -- flexible parsing (CDate and the date parameters of DateAdd / DateDiff) ----------------------

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T ](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,7}))?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?"
)
_US = re.compile(
    r"(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
    r"(?:\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ampm>[AaPp][Mm])?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?"
)


def _offset(text: str | None) -> timedelta:
    if not text or text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4] or 0)
    return sign * timedelta(hours=hours, minutes=minutes)


def _build(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    micro: int = 0,
    offset: timedelta | None = None,
) -> datetime:
    try:
        value = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as exc:
        raise DateError(str(exc)) from exc
    return value - offset if offset else value


def parse_flexible(text: str) -> datetime:
    """Parse the date forms the references show: ISO 8601 (``2012-03-16-07:00``, ``2021-06-30+08:00``,
    ``2009-06-15T01:45:30-07:00``, ``2021-08-24``) and en-US ``8/25/2021 5:41:18 PM``."""
    stripped = text.strip()
    m = _ISO.fullmatch(stripped)
    if m is not None:
        frac = (m.group("f") or "").ljust(6, "0")[:6]
        return _build(
            int(m.group("y")),
            int(m.group("mo")),
            int(m.group("d")),
            int(m.group("h") or 0),
            int(m.group("mi") or 0),
            int(m.group("s") or 0),
            int(frac),
            _offset(m.group("tz")),
        )
    m = _US.fullmatch(stripped)
    if m is not None:
        hour = int(m.group("h") or 0)
        ampm = (m.group("ampm") or "").upper()
        if ampm:
            if not 1 <= hour <= 12:
                raise DateError(f"hour {hour} with {ampm}")
            hour = hour % 12 + (12 if ampm == "PM" else 0)
        return _build(
            int(m.group("y")),
            int(m.group("mo")),
            int(m.group("d")),
            hour,
            int(m.group("mi") or 0),
            int(m.group("s") or 0),
            0,
            _offset(m.group("tz")),
        )
    raise DateError(f"'{text}' is not a date this tool can read")


# -- .NET custom format strings ----------------------------------------------------------------

_SPECIFIERS = "yMdhHmsfFtzKg"


@functools.lru_cache(maxsize=256)
def _tokens(fmt: str) -> tuple[tuple[str, str], ...]:
    """Split a .NET custom format into ("spec", "yyyy") and ("lit", "text") tokens."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch in _SPECIFIERS:
            j = i
            while j < n and fmt[j] == ch:
                j += 1
            out.append(("spec", fmt[i:j]))
            i = j
        elif ch in "'\"":
            j = fmt.find(ch, i + 1)
            if j < 0:
                raise DateError(f"unclosed quote in date format '{fmt}'")
            out.append(("lit", fmt[i + 1 : j]))
            i = j + 1
        elif ch == "\\":
            if i + 1 >= n:
                raise DateError(f"date format '{fmt}' ends with a backslash")
            out.append(("lit", fmt[i + 1]))
            i += 2
        elif ch == "%":
            # "%d" is the single-letter custom specifier d, not the standard format "d".
            i += 1
        else:
            out.append(("lit", ch))
            i += 1
    return tuple(out)


def _offset_text(value: datetime, width: int) -> str:
    delta = value.utcoffset() or timedelta(0)
    total = int(delta.total_seconds() // 60)
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    if width == 1:
        return f"{sign}{hours}"
    if width == 2:
        return f"{sign}{hours:02d}"
    return f"{sign}{hours:02d}:{minutes:02d}"


_STANDARD: dict[str, Callable[[datetime], str]] = {
    "o": lambda v: v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond:06d}0Z",
    "O": lambda v: v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond:06d}0Z",
    "s": lambda v: v.strftime("%Y-%m-%dT%H:%M:%S"),
    "u": lambda v: v.strftime("%Y-%m-%d %H:%M:%SZ"),
    "d": lambda v: f"{v.month:02d}/{v.day:02d}/{v.year:04d}",
    "G": lambda v: f"{v.month:02d}/{v.day:02d}/{v.year:04d} {v:%H:%M:%S}",
}


def format_datetime(value: datetime, fmt: str) -> str:
    """Render ``value`` with a .NET custom date and time format string (invariant culture)."""
    if len(fmt) == 1 and fmt not in _SPECIFIERS:
        standard = _STANDARD.get(fmt)
        return standard(value) if standard is not None else fmt
    parts: list[str] = []
    for kind, tok in _tokens(fmt):
        if kind == "lit":
            parts.append(tok)
            continue
        ch, width = tok[0], len(tok)
        if ch == "y":
            year = value.year
            if width <= 2:
                parts.append(str(year % 100).zfill(width))
            else:
                parts.append(str(year).zfill(width))
        elif ch == "M":
            parts.append(
                str(value.month)
                if width == 1
                else f"{value.month:02d}"
                if width == 2
                else _MONTHS_ABBR[value.month - 1]
                if width == 3
                else _MONTHS[value.month - 1]
            )
        elif ch == "d":
            weekday = _DAYS[value.weekday()]
            parts.append(
                str(value.day)
                if width == 1
                else f"{value.day:02d}"
                if width == 2
                else weekday[:3]
                if width == 3
                else weekday
            )
        elif ch in "hH":
            hour = value.hour if ch == "H" else value.hour % 12 or 12
            parts.append(str(hour) if width == 1 else f"{hour:02d}")
        elif ch == "m":
            parts.append(str(value.minute) if width == 1 else f"{value.minute:02d}")
        elif ch == "s":
            parts.append(str(value.second) if width == 1 else f"{value.second:02d}")
        elif ch in "fF":
            digits = f"{value.microsecond:06d}0"[: min(width, 7)]
            parts.append(digits.rstrip("0") if ch == "F" else digits)
        elif ch == "t":
            ampm = "AM" if value.hour < 12 else "PM"
            parts.append(ampm[:1] if width == 1 else ampm)
        elif ch == "z":
            parts.append(_offset_text(value, min(width, 3)))
        elif ch == "K":
            utc = (value.utcoffset() or timedelta(0)) == timedelta(0)
            parts.append("Z" if utc else _offset_text(value, 3))
        elif ch == "g":
            parts.append("A.D.")
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def _parse_regex(fmt: str) -> re.Pattern[str]:
    pattern: list[str] = []
    for kind, tok in _tokens(fmt):
        if kind == "lit":
            pattern.append(re.escape(tok))
            continue
        ch, width = tok[0], len(tok)
        if ch == "y":
            pattern.append(r"(?P<y>\d{4})" if width >= 3 else r"(?P<yy>\d{1,2})")
        elif ch == "M":
            pattern.append(
                r"(?P<M>\d{1,2})"
                if width == 1
                else r"(?P<M>\d{2})"
                if width == 2
                else r"(?P<Mname>[A-Za-z]+)"
            )
        elif ch == "d":
            pattern.append(
                r"(?P<d>\d{1,2})" if width == 1 else r"(?P<d>\d{2})" if width == 2 else r"[A-Za-z]+"
            )
        elif ch in "hHms":
            group = {"h": "h", "H": "H", "m": "mi", "s": "s"}[ch]
            pattern.append(rf"(?P<{group}>\d{{1,2}})" if width == 1 else rf"(?P<{group}>\d{{2}})")
        elif ch == "f":
            pattern.append(rf"(?P<f>\d{{{min(width, 7)}}})")
        elif ch == "F":
            pattern.append(rf"(?P<f>\d{{0,{min(width, 7)}}})")
        elif ch == "t":
            pattern.append(r"(?P<t>[AaPp])" if width == 1 else r"(?P<t>[AaPp][Mm])")
        elif ch in "zK":
            pattern.append(r"(?P<tz>Z|[+-]\d{1,2}(?::?\d{2})?)" + ("?" if ch == "K" else ""))
        elif ch == "g":
            pattern.append(r"(?:A\.D\.|AD)")
    try:
        return re.compile("".join(pattern))
    except re.error as exc:
        # A specifier repeated in one format (e.g. "yyyy ... yyyy") names one group twice.
        raise DateError(f"date format '{fmt}' cannot be used for reading: {exc}") from exc


def parse_with_format(text: str, fmt: str) -> datetime:
    """Read ``text`` written in the .NET custom format ``fmt`` (leading/trailing spaces allowed)."""
    m = _parse_regex(fmt).fullmatch(text.strip())
    if m is None:
        raise DateError(f"'{text}' does not match the date format '{fmt}'")
    g = m.groupdict()
    if g.get("y"):
        year = int(g["y"])
    elif g.get("yy"):
        yy = int(g["yy"])
        year = 2000 + yy if yy < 50 else 1900 + yy
    else:
        year = 1
    if g.get("Mname"):
        name = g["Mname"].capitalize()
        if name in _MONTHS:
            month = _MONTHS.index(name) + 1
        elif name in _MONTHS_ABBR:
            month = _MONTHS_ABBR.index(name) + 1
        else:
            raise DateError(f"'{g['Mname']}' is not a month name")
    else:
        month = int(g.get("M") or 1)
    day = int(g.get("d") or 1)
    hour = int(g.get("H") or 0)
    if g.get("h"):
        hour = int(g["h"]) % 12
        if (g.get("t") or "A").upper().startswith("P"):
            hour += 12
    minute = int(g.get("mi") or 0)
    second = int(g.get("s") or 0)
    micro = int((g.get("f") or "").ljust(6, "0")[:6] or 0)
    return _build(year, month, day, hour, minute, second, micro, _offset(g.get("tz")))


# -- DateAdd / DateDiff ------------------------------------------------------------------------

INTERVALS = ("yyyy", "m", "d", "ww", "h", "n", "s")


def _add_months(value: datetime, months: int) -> datetime:
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise DateError("the result is outside the range of dates")
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def add_interval(interval: str, amount: int, value: datetime) -> datetime:
    """VB DateAdd: months and years keep the day, clamped to the month's length."""
    try:
        if interval == "yyyy":
            return _add_months(value, 12 * amount)
        if interval == "m":
            return _add_months(value, amount)
        step = {
            "d": timedelta(days=1),
            "ww": timedelta(weeks=1),
            "h": timedelta(hours=1),
            "n": timedelta(minutes=1),
            "s": timedelta(seconds=1),
        }.get(interval)
        if step is None:
            raise DateError(f"unknown interval '{interval}'; use one of {', '.join(INTERVALS)}")
        return value + step * amount
    except OverflowError as exc:
        raise DateError("the result is outside the range of dates") from exc


def _fix(x: float) -> int:
    return int(x)  # int() truncates toward zero, like VB Fix


def date_diff(interval: str, date1: datetime, date2: datetime) -> int:
    """VB.NET DateDiff: signed count of ``interval`` from date1 to date2.

    Days, hours, minutes and seconds truncate the elapsed time; weeks ("ww") count the Sundays
    crossed; months and years compare calendar fields. These reproduce every documented example
    (e.g. ww from 8/25/2021 5:41:18 PM to 2012-03-16-07:00 is -493).
    """
    delta = date2 - date1
    if interval == "yyyy":
        return date2.year - date1.year
    if interval == "m":
        return (date2.year - date1.year) * 12 + date2.month - date1.month
    if interval == "d":
        return _fix(delta.total_seconds() / 86_400)
    if interval == "ww":
        # Move both dates back to the Sunday that starts their week (Python's Monday is 0).
        start1 = date1 - timedelta(days=(date1.weekday() + 1) % 7)
        start2 = date2 - timedelta(days=(date2.weekday() + 1) % 7)
        return int(_fix((start2 - start1).total_seconds() / 86_400) / 7)
    if interval == "h":
        return _fix(delta.total_seconds() / 3_600)
    if interval == "n":
        return _fix(delta.total_seconds() / 60)
    if interval == "s":
        return _fix(delta.total_seconds())
    raise DateError(f"unknown interval '{interval}'; use one of {', '.join(INTERVALS)}")
