"""How the directory file's readers word a problem: a did-you-mean hint and a short name for a value.

Pure, no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["hint", "what"]


def hint(word: str, choices: Sequence[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``choices``, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def what(value: object) -> str:
    """A value as an error message names it: ``a mapping``, ``a list``, ``nothing`` or ``'text'``."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else f"'{value}'"
