"""The string functions of the expression language: Trim, Append, Left, Mid, Join, Split, Word, InStr,
case and diacritics, Base64 and hex encodings, SID and DN parsing. Each registers its builder with
``compiler``; the null and multi-value rules are in ``evaluator``'s docstring. Pure; no I/O.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable

from reconciler.expressions.compiler import (
    _BUILDERS,
    Builder,
    _per_value,
    _register_strict,
    _register_timed,
    _timed,
)
from reconciler.expressions.runtime import (
    _BIG,
    MAX_TEXT,
    Value,
    _bounded,
    _Context,
    _Failure,
    _growing_input,
    _heavy_input,
    _int,
    _show,
    _text,
    _too_big,
    _values,
)

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


def _register_encoder(fname: str, encode: Callable[[str], str]) -> None:
    """A one-string function whose result outgrows its input (an encoding): the input is timed when
    large and the result bounded."""

    @_register_timed(fname)
    def convert(ctx: _Context, column: int, source: Value) -> Value:
        text = _text(source, fname, column)
        if text is None:
            return None
        _growing_input(ctx, text, fname, column)
        return _bounded(ctx, encode(text), fname, column)


_register_encoder("ConvertToBase64", lambda text: base64.b64encode(text.encode("utf-16-le")).decode("ascii"))
_register_encoder("ConvertToUTF8Hex", lambda text: text.encode("utf-8").hex().upper())


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
