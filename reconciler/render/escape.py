"""The one escaper for every text the tool prints: renderers, diagnostics, errors and command output.

Values come from hostile places (YAML, a tenant edited in the portal, commit messages, expression
results). Printed raw, a value could end a line and print a fake diagnostic or plan line, move the
cursor back (CR), set a terminal's title or clipboard (OSC), or read backwards (bidi controls). Every
such character is shown escaped (``\\n``, ``\\x1b``, ``\\u202e``), never stripped, so the text printed
is the value, only visible; long values are cut with a marker that says how much was left out.

``message`` escapes a text made of several lines the tool itself put together (an error with its
reasons): each line is escaped, and every line after the first is indented, so that no value can
produce a line that starts at the margin like one of the tool's own. ``json_text`` is JSON whose
strings carry these characters as ``\\u`` escapes. ``mentions`` splits out ``@name`` and ``@org/team``
for the Markdown renderers, which show them as code so that a value never notifies anyone.

Pure, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_SHOWN", "cut", "json_text", "mentions", "message", "printable"]

# C0 and C1 controls (ESC and CSI start terminal sequences; CR and LF break lines), the line and
# paragraph separators, and the bidirectional controls that make text read differently from what it is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# JSON strings keep everything but these as they are; json itself already escapes C0 controls.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A GitHub mention: @user, @org/team (not an e-mail address: no word character before the @).
_MENTION = re.compile(r"(?<![\w.+`-])@[A-Za-z0-9](?:[A-Za-z0-9-]*)(?:/[A-Za-z0-9_.-]+)?")

# One value shown in full up to this many characters; more is cut with a marker.
MAX_SHOWN = 4096


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def cut(text: str, limit: int = MAX_SHOWN) -> str:
    """``text``, or its first ``limit`` characters and a marker saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters not shown]"


def printable(text: str, limit: int | None = MAX_SHOWN) -> str:
    """``text`` on one line with every control, separator and bidi character shown escaped; cut when long."""
    shown = _UNPRINTABLE.sub(_escape_char, text)
    return shown if limit is None else cut(shown, limit)


def message(text: str, limit: int | None = MAX_SHOWN) -> str:
    """A message of the tool's own lines: each escaped; lines after the first start indented."""
    lines = [printable(line, limit) for line in text.split("\n")]
    return "\n".join([lines[0], *(ln if ln.startswith(" ") else "  " + ln for ln in lines[1:])])


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` whose strings carry C1 controls, separators and bidi controls as ``\\u`` escapes.

    These characters can only occur inside JSON strings, where ``\\uXXXX`` means the same character:
    the document is unchanged for a JSON reader, and inert on a terminal.
    """
    return _JSON_UNSAFE.sub(_json_escape, json.dumps(value, **kwargs))


def mentions(text: str) -> Iterator[tuple[bool, str]]:
    """``text`` in pieces, each with whether it is a mention (``@name``, ``@org/team``)."""
    at = 0
    for m in _MENTION.finditer(text):
        if m.start() > at:
            yield False, text[at : m.start()]
        yield True, m.group()
        at = m.end()
    if at < len(text) or not text:
        yield False, text[at:]
