"""Apply progress: the terminal bar and the CI lines, fed outcomes as apply reports them."""

from __future__ import annotations

import io

import pytest

from reconciler.cli.progress import INTERVAL_ENV, ApplyProgress
from reconciler.core.plan import Action, Change
from reconciler.engine.apply import Outcome
from reconciler.engine.journal import ChangeOutcome


def outcomes() -> list[Outcome]:
    return [
        Outcome(Change("a", Action.CREATE), ChangeOutcome.OK, None, 0.1),
        Outcome(Change("b", Action.CREATE), ChangeOutcome.FAILED, "refused \x1b[31m by the service", 0.2),
        Outcome(Change("a", Action.START), ChangeOutcome.OK, None, 0.1),
    ]


def test_on_a_terminal_a_bar_and_each_failure_as_it_happens() -> None:
    stream = io.StringIO()
    with ApplyProgress(stream, terminal=True) as progress:
        for done, outcome in enumerate(outcomes(), 1):
            progress(outcome, done, 3)
    text = stream.getvalue()
    # Escaped: a value from the service cannot send a sequence to the terminal.
    assert "✗ create b: refused \\x1b[31m by the service" in text and "\x1b[31m by" not in text


def test_without_a_terminal_lines_at_the_interval_and_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "3600")
    stream = io.StringIO()
    with ApplyProgress(stream, terminal=False) as progress:
        for done, outcome in enumerate(outcomes(), 1):
            progress(outcome, done, 3)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("✗ create b: refused")
    (last,) = lines[1:]
    assert last.startswith("apply: 3/3 changes done, 1 failed, ") and last.endswith("s elapsed")
