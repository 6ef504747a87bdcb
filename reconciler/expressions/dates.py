"""Date handling for expression functions: .NET custom format strings, AD FILETIME numbers, VB DateAdd
and DateDiff rules, and the en-US ``M/d/yyyy h:mm:ss tt`` rendering. Pure; no I/O, no clock.

Every DateTime here is an aware ``datetime``. Inputs with an offset are converted to UTC, as the service
(which runs in UTC) does; inputs without one are taken as UTC.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "DateError",
    "add_interval",
    "check_format",
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


def _q(text: str) -> str:
    """``text`` quoted for a message; a long one (values reach a megabyte) is cut."""
    return f"'{text}'" if len(text) <= 80 else f"'{text[:80]}'..."


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
    raise DateError(f"{_q(text)} is not a date this tool can read")


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
                raise DateError(f"unclosed quote in date format {_q(fmt)}")
            out.append(("lit", fmt[i + 1 : j]))
            i = j + 1
        elif ch == "\\":
            if i + 1 >= n:
                raise DateError(f"date format {_q(fmt)} ends with a backslash")
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


# .NET reads a format of exactly one character as a standard format; these are the invariant
# culture's patterns for them. Any other single character is a FormatException in .NET.
_STANDARD = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "U": "dddd, dd MMMM yyyy HH:mm:ss",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}


def _custom(fmt: str) -> str:
    """The custom format ``fmt`` stands for: a standard one expanded; raises DateError as .NET does."""
    if not fmt:
        raise DateError("the date format is empty")
    if len(fmt) == 1:
        pattern = _STANDARD.get(fmt)
        if pattern is None:
            hint = f"; for the custom specifier alone write '%{fmt}'" if fmt in _SPECIFIERS else ""
            raise DateError(
                f"'{fmt}' is not a .NET standard date format (a format of one character is read as one){hint}"
            )
        return pattern
    return fmt


def check_format(fmt: str, *, reading: bool) -> None:
    """Raise DateError if .NET would refuse ``fmt`` as an output format or, with ``reading``, as the
    format to read a date with (which must also name at least one date or time field)."""
    custom = _custom(fmt)
    tokens = _tokens(custom)
    if reading:
        if not any(kind == "spec" and tok[0] != "g" for kind, tok in tokens):
            raise DateError(f"the date format {_q(fmt)} has no date or time field to read")
        _parse_regex(custom)


def format_datetime(value: datetime, fmt: str) -> str:
    """Render ``value`` with a .NET date and time format string (invariant culture)."""
    parts: list[str] = []
    for kind, tok in _tokens(_custom(fmt)):
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
    uses: dict[str, int] = {}

    def group(name: str, body: str) -> str:
        # A field may appear twice ("yyyy ... yyyy"); .NET then needs both to agree (_fields checks).
        uses[name] = uses.get(name, 0) + 1
        return f"(?P<{name}__{uses[name]}>{body})"

    for kind, tok in _tokens(fmt):
        if kind == "lit":
            pattern.append(re.escape(tok))
            continue
        ch, width = tok[0], len(tok)
        if ch == "y":
            pattern.append(group("y", r"\d{4}") if width >= 3 else group("yy", r"\d{1,2}"))
        elif ch == "M":
            pattern.append(
                group("M", r"\d{1,2}")
                if width == 1
                else group("M", r"\d{2}")
                if width == 2
                else group("Mname", "[A-Za-z]+")
            )
        elif ch == "d":
            pattern.append(
                group("d", r"\d{1,2}") if width == 1 else group("d", r"\d{2}") if width == 2 else "[A-Za-z]+"
            )
        elif ch in "hHms":
            name = {"h": "h", "H": "H", "m": "mi", "s": "s"}[ch]
            pattern.append(group(name, r"\d{1,2}") if width == 1 else group(name, r"\d{2}"))
        elif ch == "f":
            pattern.append(group("f", rf"\d{{{min(width, 7)}}}"))
        elif ch == "F":
            pattern.append(group("f", rf"\d{{0,{min(width, 7)}}}"))
        elif ch == "t":
            pattern.append(group("t", "[AaPp]") if width == 1 else group("t", "[AaPp][Mm]"))
        elif ch in "zK":
            pattern.append(group("tz", r"Z|[+-]\d{1,2}(?::?\d{2})?") + ("?" if ch == "K" else ""))
        elif ch == "g":
            pattern.append(r"(?:A\.D\.|AD)")
    try:
        return re.compile("".join(pattern))
    except re.error as exc:
        raise DateError(f"date format {_q(fmt)} cannot be used for reading: {exc}") from exc


def _fields(m: re.Match[str]) -> dict[str, str]:
    """Each field's text; a field read twice must have the same value both times."""
    fields: dict[str, str] = {}
    for key, text in m.groupdict().items():
        if text is None:
            continue
        name = key.rpartition("__")[0]
        seen = fields.get(name)
        if (
            seen is not None
            and seen.upper() != text.upper()
            and not (seen.isdigit() and text.isdigit() and int(seen) == int(text))
        ):
            raise DateError(f"the date gives two different values ({_q(seen)}, {_q(text)}) for one field")
        fields.setdefault(name, text)
    return fields


def parse_with_format(text: str, fmt: str) -> datetime:
    """Read ``text`` written in the .NET format ``fmt`` (leading/trailing spaces allowed)."""
    check_format(fmt, reading=True)
    m = _parse_regex(_custom(fmt)).fullmatch(text.strip())
    if m is None:
        raise DateError(f"{_q(text)} does not match the date format {_q(fmt)}")
    g = _fields(m)
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
            raise DateError(f"{_q(g['Mname'])} is not a month name")
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
