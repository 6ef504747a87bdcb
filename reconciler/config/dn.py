"""Distinguished names (RFC 4514) as scoping entries use them: parse, find the domain, compare.

The parser is strict on purpose: the service matches scoped OUs by comparing DN text, so a DN written
with a space after a comma, or with a special character left unescaped, would silently match nothing.
No I/O.
"""

from __future__ import annotations

import re

__all__ = ["DNError", "dn_domain", "dn_key", "parse_dn"]

Rdn = tuple[tuple[str, str], ...]  # one relative name: (attribute type, unescaped value) pairs

_TYPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+")
_HEXPAIR_RE = re.compile(r"[0-9A-Fa-f]{2}")
_ESCAPABLE = set('"+,;<>\\ #=')
_MUST_ESCAPE = set('"+,;<>\\')


class DNError(ValueError):
    """The text is not a DN; ``offset`` is the 0-based index of the offending character."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def parse_dn(text: str) -> tuple[Rdn, ...]:
    """``OU=Sales,DC=contoso,DC=com`` -> ``((("OU", "Sales"),), (("DC", "contoso"),), (("DC", "com"),))``."""
    if not text:
        raise DNError("a DN cannot be empty", 0)
    rdns: list[Rdn] = []
    pos = 0
    while True:
        rdn: list[tuple[str, str]] = []
        while True:
            attr, pos = _attribute_type(text, pos)
            value, pos = _attribute_value(text, pos)
            rdn.append((attr, value))
            if pos < len(text) and text[pos] == "+":
                pos += 1
                continue
            break
        rdns.append(tuple(rdn))
        if pos == len(text):
            return tuple(rdns)
        # _attribute_value stops only at the end, '+' or ','.
        pos += 1


def _attribute_type(text: str, pos: int) -> tuple[str, int]:
    match = _TYPE_RE.match(text, pos)
    if match is None:
        if pos < len(text) and text[pos] == " ":
            raise DNError("unexpected space: RFC 4514 allows no spaces around ',' '+' or '='", pos)
        what = f"'{text[pos]}'" if pos < len(text) else "the end"
        raise DNError(f"expected an attribute type such as OU or DC, found {what}", pos)
    end = match.end()
    if end >= len(text) or text[end] != "=":
        if end < len(text) and text[end] == " ":
            raise DNError("unexpected space: RFC 4514 allows no spaces around ',' '+' or '='", end)
        raise DNError(f"expected '=' after '{match.group()}'", end)
    return match.group(), end + 1


def _attribute_value(text: str, pos: int) -> tuple[str, int]:
    if pos < len(text) and text[pos] == "#":
        return _hex_value(text, pos)
    out: list[str] = []
    pending = bytearray()  # \XX escapes collect UTF-8 bytes until the next other character
    start = pos
    last_plain_space = -1
    while pos < len(text):
        ch = text[pos]
        if ch in ",+":
            break
        if ch == "\\":
            pair = _HEXPAIR_RE.match(text, pos + 1)
            if pair is not None:
                pending.append(int(pair.group(), 16))
                pos += 3
                continue
            if pos + 1 < len(text) and text[pos + 1] in _ESCAPABLE:
                _flush(pending, out, pos)
                out.append(text[pos + 1])
                pos += 2
                continue
            raise DNError("'\\' must be followed by a special character or two hexadecimal digits", pos)
        _flush(pending, out, pos)
        if ch in _MUST_ESCAPE:
            raise DNError(f"'{ch}' must be escaped as '\\{ch}'", pos)
        if ord(ch) < 0x20 or ch == "\x7f":
            raise DNError("control characters are not allowed", pos)
        if ch == " ":
            if pos == start:
                raise DNError("unexpected space: RFC 4514 allows no spaces around ',' '+' or '='", pos)
            last_plain_space = pos
        out.append(ch)
        pos += 1
    _flush(pending, out, pos)
    if pos == start:
        raise DNError("empty attribute value", pos)
    if last_plain_space == pos - 1:
        raise DNError("a trailing space must be escaped as '\\ ' (or removed)", pos - 1)
    return "".join(out), pos


def _flush(pending: bytearray, out: list[str], pos: int) -> None:
    if pending:
        try:
            out.append(pending.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DNError("hexadecimal escapes do not form UTF-8 text", pos - 3 * len(pending)) from exc
        pending.clear()


def _hex_value(text: str, pos: int) -> tuple[str, int]:
    end = pos + 1
    while _HEXPAIR_RE.match(text, end):
        end += 2
    if end == pos + 1 or (end < len(text) and text[end] not in ",+"):
        raise DNError("'#' starts a hexadecimal value; escape it as '\\#' for a literal '#'", pos)
    return text[pos:end], end


def dn_domain(rdns: tuple[Rdn, ...]) -> str:
    """The DNS domain the DN lies in, from its trailing DC= parts (``contoso.com``); empty if none."""
    labels: list[str] = []
    for rdn in reversed(rdns):
        if len(rdn) != 1 or rdn[0][0].casefold() != "dc":
            break
        labels.append(rdn[0][1])
    return ".".join(reversed(labels))


def dn_key(rdns: tuple[Rdn, ...]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """A comparison key: attribute types and values compare case-insensitively, as AD compares them."""
    return tuple(tuple(sorted((a.casefold(), v.casefold()) for a, v in rdn)) for rdn in rdns)
