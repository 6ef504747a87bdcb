"""Progress of an apply on stderr: a bar on a terminal, a short line every few seconds in a CI log.

On a terminal the bar (rich) shows done/total and the elapsed time, and a failed change is printed
above it as it happens. Without a terminal a line ``apply: D/T changes done, F failed, Ns elapsed`` is
printed at most every ``RECONCILER_PROGRESS_INTERVAL`` seconds (default 5) and at the end, so a long
apply in a CI job is never silent for long; failures are printed as they happen. ``--quiet`` shows none
of it (the command prints failures with its summary instead).

I/O: stderr only.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

import click

# Imported only while an apply runs, when the engine is loaded already.
from reconciler.engine.journal import ChangeOutcome

if TYPE_CHECKING:
    from reconciler.engine.apply import Outcome

__all__ = ["INTERVAL_ENV", "ApplyProgress", "failure_line"]

INTERVAL_ENV = "RECONCILER_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 5.0


def failure_line(outcome: Outcome) -> str:
    from reconciler.render._format import printable

    change = outcome.change
    return printable(f"✗ {change.action.value} {change.name}: {outcome.error}")


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


class ApplyProgress:
    """The ``progress`` callback of an apply, as a context manager that cleans the bar up."""

    def __init__(self, stream: TextIO | None = None, *, terminal: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.began = time.monotonic()
        self.last_line = self.began
        self.interval = _interval()
        self.failed = 0
        self.done = 0
        self.total = 0
        self._last_reported = -1
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ApplyProgress:
        self.began = self.last_line = time.monotonic()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.done and self.done != self._last_reported:
            self._line()

    def __call__(self, outcome: Outcome, done: int, total: int) -> None:
        self.done, self.total = done, total
        if outcome.status == ChangeOutcome.FAILED:
            self.failed += 1
        if self.terminal:
            self._advance(outcome)
            return
        if outcome.status == ChangeOutcome.FAILED:
            click.echo(failure_line(outcome), file=self.stream)
        now = time.monotonic()
        if done == total or now - self.last_line >= self.interval:
            self._line()
            self.last_line = now

    def _line(self) -> None:
        elapsed = time.monotonic() - self.began
        failed = f", {self.failed} failed" if self.failed else ""
        click.echo(
            f"apply: {self.done}/{self.total} changes done{failed}, {elapsed:.0f}s elapsed", file=self.stream
        )
        self._last_reported = self.done

    def _advance(self, outcome: Outcome) -> None:
        if self._bar is None:
            # Loaded only for a terminal: a CI job never pays for it.
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, highlight=False)
            self._bar = Progress(
                TextColumn("apply"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._task = self._bar.add_task("apply", total=self.total)
            self._bar.start()
        if outcome.status == ChangeOutcome.FAILED:
            self._bar.console.print(failure_line(outcome), markup=False, highlight=False)
        self._bar.update(self._task, completed=self.done, total=self.total)
