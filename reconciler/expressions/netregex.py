"""Regular expressions written for .NET, as Replace takes them, compiled for a matcher with a time limit.
Pure; no I/O.

The service evaluates Replace's regexPattern with .NET's engine, so patterns and replacement strings
are .NET syntax. They run here on the ``regex`` package, because its matching functions take a
``timeout``: a pattern that backtracks without end on some value (``^(a|aa)+$`` on forty ``a``) is
stopped and reported instead of holding the process. Python's own ``re`` has no time limit and cannot
be interrupted from another thread. ``regex`` also reads most .NET constructs as written (``(?<name>)``,
lookbehind of any length, atomic groups, ``\\p{L}``); the two spellings it lacks are rewritten:
``(?'name'...)`` and ``\\k<name>`` / ``\\k'name'``.

Replacement strings use .NET substitutions: ``$1``, ``${name}``, ``$&`` (the whole match) and ``$$``
(a dollar sign). A reference to a group the pattern does not have stays as written, as in .NET.

A time limit has a price: ``regex`` reads the process's CPU clock at every match attempt, and that
clock is a system call (microseconds on a virtual machine), several times what matching a short
attribute value costs. So a pattern whose worst case is known to be small runs on Python's ``re``
without a limit: one made only of characters, classes, anchors and plain groups, with no alternation,
lookaround or back-reference, no repeated group holding more than one character, and at most two
repeats that can take a varying count. Such a pattern tries at most about n^(k+1) paths on n
characters with k varying repeats (n start positions times the splits between the repeats), so it
takes the fast way only while that count stays under ``FAST_STEPS``; everything else, and every
longer value, goes through ``regex`` with the limit. ``Compiled.cost`` reports the count so that a
caller can spend its own time budget on many small fast calls too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import regex

__all__ = ["FAST_STEPS", "Compiled", "RegexError", "Template", "compile_net", "template"]

# The most backtracking paths a pattern may try on one value to run without a time limit.
FAST_STEPS = 1 << 20

_NET_NAMED_GROUP = re.compile(r"\(\?<(?![=!])([A-Za-z_][A-Za-z0-9_]*)>|\(\?'([A-Za-z_][A-Za-z0-9_]*)'")
_NET_BACKREF = re.compile(r"\\k<([A-Za-z_][A-Za-z0-9_]*)>|\\k'([A-Za-z_][A-Za-z0-9_]*)'")
_NET_SUBSTITUTION = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*|\d+)\}|(\d+)|([$&]))")


class RegexError(ValueError):
    """A pattern that cannot be compiled; the message says why."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """A .NET pattern ready to run: ``timed`` on ``regex`` (give it a ``timeout``), and ``fast`` on
    ``re`` when the pattern's worst case is small: ``varying`` repeats that can take a varying count,
    ``weight`` the pattern's length plus its fixed repeat counts, and ``fast_limit`` the longest value
    ``fast`` may be used on (-1 when there is no fast way).
    """

    timed: regex.Pattern[str]
    fast: re.Pattern[str] | None
    varying: int
    weight: int
    fast_limit: int

    @property
    def groups(self) -> int:
        return self.timed.groups

    @property
    def groupindex(self) -> Any:
        return self.timed.groupindex

    def cost(self, value: str) -> int | None:
        """The most paths the fast way can try on ``value``, or None when it must not be used."""
        if len(value) > self.fast_limit:
            return None
        steps: int = self.weight * (len(value) + 1) ** (self.varying + 1)
        return steps


def _fast_limit(varying: int, weight: int) -> int:
    """The longest value n with weight * (n + 1) ** (varying + 1) <= FAST_STEPS."""
    # An empty pattern has weight 0; counted as 1, since with 0 the search below would never end.
    weight = max(weight, 1)
    n = int((FAST_STEPS / weight) ** (1 / (varying + 1))) - 1
    while n >= 0 and weight * (n + 1) ** (varying + 1) > FAST_STEPS:
        n -= 1
    while weight * (n + 2) ** (varying + 1) <= FAST_STEPS:
        n += 1
    return n


@functools.lru_cache(maxsize=512)
def compile_net(pattern: str) -> Compiled:
    """The compiled form of a .NET pattern (cached). Raises RegexError."""
    translated = _NET_NAMED_GROUP.sub(lambda m: f"(?P<{m.group(1) or m.group(2)}>", pattern)
    translated = _NET_BACKREF.sub(lambda m: f"(?P={m.group(1) or m.group(2)})", translated)
    try:
        timed = regex.compile(translated, regex.VERSION0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise RegexError(str(exc)) from None
    shape = _shape(translated)
    fast = None
    if shape is not None:
        try:
            fast = re.compile(shape[2])
        except (re.error, ValueError, OverflowError, RecursionError):
            fast = None
    varying, weight, _ = shape or (0, 0, "")
    return Compiled(timed, fast, varying, weight, _fast_limit(varying, weight) if fast is not None else -1)


# Escapes that mean the same to ``re`` and ``regex``. The class escapes are not among them: ``re``
# reads \w, \d and \s by Python's string methods, ``regex`` (like .NET) by Unicode properties, so
# they differ on some characters. \s, the common one, is spelled out as .NET's set (``_SPACES``).
_SIMPLE_ESCAPES = frozenset("AZntrfv.\\+*?()[]{}|^$-/@#%&=!:;,'\" <>~`_")
_SPACES = "\\t\\n\\x0b\\x0c\\r\\x85 \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_QUANTIFIER = re.compile(r"[*+?]|\{(\d+)(,(\d*))?\}")


def _shape(pattern: str) -> tuple[int, int, str] | None:
    """(k, w, text) for a ``pattern`` (Python syntax) of the small subset whose worst case on n
    characters is about w * n^(k+1) steps: k repeats with a varying count, w the pattern's length plus
    its fixed repeat counts, and the pattern as ``re`` must be given it to match what ``regex`` does.
    None for anything else, or when k is more than 2.

    Conservative on purpose: whatever this scan does not recognise sends the pattern to the
    time-limited matcher, which is always correct, only slower.
    """
    varying = 0
    weight = len(pattern)
    spaces: list[tuple[int, bool]] = []  # where \s is written, and whether inside a class
    i, n = 0, len(pattern)
    # For each open group: the number of one-character atoms and whether it holds anything else.
    groups: list[list[int]] = []
    last: str | None = None  # what a quantifier here would repeat: "atom", "group1" (one atom), "other"
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < n and pattern[i + 1] == "s":
                spaces.append((i, False))
            elif i + 1 >= n or pattern[i + 1] not in _SIMPLE_ESCAPES:
                return None
            i += 2
            last = "atom"
        elif ch == "[":
            end = _class_end(pattern, i, spaces)
            if end is None:
                return None
            i = end
            last = "atom"
        elif ch == "(":
            if pattern.startswith("(?:", i):
                i += 3
            elif pattern.startswith("(?P<", i):
                close = pattern.find(">", i)
                if close < 0:
                    return None
                i = close + 1
            elif pattern.startswith("(?", i):
                return None  # lookaround, inline flags, comments, atomic groups, back-references
            else:
                i += 1
            groups.append([0, 0])
            last = None
            continue
        elif ch == ")":
            if not groups:
                return None
            atoms, other = groups.pop()
            i += 1
            last = "group1" if atoms == 1 and not other else "other"
            if groups:
                groups[-1][1] += 1  # a group inside a group is "something else" to the outer one
            if not _QUANTIFIER.match(pattern, i):
                continue
        elif ch == "|":
            return None
        elif ch in "^$":
            i += 1
            last = None
            continue
        elif ch in "*+?{":
            m = _QUANTIFIER.match(pattern, i)
            if m is None:
                return None  # a brace that is not a quantifier: the engines disagree on some ("{,3}")
            else:
                if last not in ("atom", "group1"):
                    return None
                low = int(m.group(1)) if m.group(1) else None
                high = m.group(3)
                fixed = low is not None and (m.group(2) is None or high == str(low))
                if not fixed:
                    varying += 1
                elif low is not None:
                    weight += low
                i = m.end()
                if i < n and pattern[i] in "?+":
                    if pattern[i] == "+":
                        return None  # possessive: not .NET
                    i += 1
                if groups:
                    groups[-1][1] += 1  # a group holding a repeat is never "one character" itself
                last = None
                continue
        else:
            i += 1
            last = "atom"
        if groups and last == "atom":
            groups[-1][0] += 1
    if groups or varying > 2:
        return None
    text, pos = [], 0
    for at, in_class in spaces:
        text += [pattern[pos:at], _SPACES if in_class else f"[{_SPACES}]"]
        pos = at + 2
    text.append(pattern[pos:])
    return varying, weight, "".join(text)


def _class_end(pattern: str, start: int, spaces: list[tuple[int, bool]]) -> int | None:
    """The index after the ``]`` closing the class that opens at ``start``; None if unusual. Each
    ``\\s`` inside is added to ``spaces``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < len(pattern) and pattern[i + 1] == "s":
                spaces.append((i, True))
            elif i + 1 >= len(pattern) or pattern[i + 1] not in _SIMPLE_ESCAPES:
                return None
            i += 2
        elif ch == "[":
            return None  # nested sets, POSIX classes, .NET subtraction: not in the subset
        elif ch == "]":
            return i + 1
        else:
            i += 1
    return None


@dataclass(frozen=True, slots=True)
class Template:
    """A .NET replacement string prepared for one pattern.

    ``text`` is the same replacement in the ``regex`` package's template syntax, for its ``sub``;
    ``literal`` counts the characters it inserts itself and ``groups`` the group references, so that a
    caller can bound the size of a result before making it.
    """

    text: str
    literal: int
    groups: int


@functools.lru_cache(maxsize=512)
def template(pattern: str, replacement: str) -> Template:
    """``replacement`` (.NET substitutions) as a template for the .NET ``pattern`` (cached by the two
    texts, whose hashes Python keeps). Raises RegexError for an invalid pattern."""
    rx = compile_net(pattern)
    parts: list[str] = []
    literal = groups = 0
    pos = 0

    def text(piece: str) -> None:
        nonlocal literal
        literal += len(piece)
        parts.append(piece.replace("\\", "\\\\"))

    for m in _NET_SUBSTITUTION.finditer(replacement):
        text(replacement[pos : m.start()])
        pos = m.end()
        ref = m.group(1) or m.group(2)
        if m.group(3) == "$":
            text("$")
        elif m.group(3) == "&":
            parts.append("\\g<0>")
            groups += 1
        elif ref is not None and (ref in rx.groupindex or (ref.isdigit() and int(ref) <= rx.groups)):
            parts.append(f"\\g<{int(ref) if ref.isdigit() else ref}>")
            groups += 1
        else:
            # .NET leaves a reference to a group that does not exist as written.
            text(m.group())
    text(replacement[pos:])
    return Template("".join(parts), literal, groups)
