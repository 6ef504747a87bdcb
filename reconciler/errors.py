"""The one error tree of the project.

Every failure a user can cause or meet is one of these classes; the CLI maps them to exit codes in
one place (``reconciler.cli.errors``). Third-party exceptions are translated at the boundary where they
happen, with ``raise ... from exc``, so nothing else escapes to the user as a traceback.

    ReconcilerError                      exit 1 unless stated
    ├── ConfigError                      desired state cannot be loaded
    │   ├── LoadError                    carries every Diagnostic (FILE:LINE:COL: message)
    │   └── FileReadError                a file cannot be read: not a regular file, too large, ...
    ├── ExpressionError                  an attribute-mapping expression does not parse (message, column)
    │   └── ExpressionEvaluationError    it parses but cannot be evaluated (wrong argument type, ...)
    │       ├── ExpressionRaised         the expression called Error("...")
    │       └── ExpressionLimitError     a value grew past the size cap, or the time limit ran out
    ├── PlanError                        a plan cannot be made or used
    │   ├── PlanFileError                a saved plan file is unreadable, edited or of another version
    │   ├── StalePlanError               the target or the desired files changed since the plan was made
    │   └── GuardError                   a write refused right before it was made (deletion protection, ...)
    ├── ApplyError                       one or more changes failed while applying
    ├── LockError                        another run holds the target's apply lock
    ├── ProviderError                    the target refused or failed a request (code, request id)
    │   ├── TransientProviderError       worth retrying (throttled, 5xx, connection dropped)
    │   ├── AuthenticationError          missing, expired or rejected credentials
    │   ├── NotFoundError
    │   └── ConflictError
    ├── GitError                         a repository, ref or commit cannot be read
    ├── StateError                       the state store (lock, journal, status) cannot be reached or used
    ├── StateFileError                   a file of the state folder is not what the tool keeps there
    └── UserAbort                        the user answered no at a prompt

No message of any of these may contain a secret: callers pass identifiers, never tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ApplyError",
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "Diagnostic",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionLimitError",
    "ExpressionRaised",
    "FileReadError",
    "GitError",
    "GuardError",
    "LoadError",
    "LockError",
    "NotFoundError",
    "PlanError",
    "PlanFileError",
    "ProviderError",
    "ReconcilerError",
    "StalePlanError",
    "StateError",
    "StateFileError",
    "TransientProviderError",
    "UserAbort",
]


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One problem found in the desired state, pointing at the file position that causes it."""

    file: str
    line: int
    col: int
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
        }


class ReconcilerError(Exception):
    """Base of every error the tool reports to its user without a traceback."""

    exit_code = 1


class ConfigError(ReconcilerError):
    """The desired state cannot be loaded."""


class LoadError(ConfigError):
    """Loading found problems; every one of them is kept, sorted by file and position."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(diagnostics))
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors)} problem(s) in the desired state")

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


class FileReadError(ConfigError):
    """A file the tool was given cannot be read: missing, not a regular file, or over its size limit."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def diagnostic(self, shown: str | None = None) -> Diagnostic:
        return Diagnostic(shown if shown is not None else self.path, 1, 1, self.reason)


class ExpressionError(ReconcilerError):
    """An expression is not valid. ``column`` is 1-based within the expression text."""

    def __init__(self, message: str, column: int = 1, expression: str | None = None) -> None:
        self.message = message
        self.column = column
        self.expression = expression
        super().__init__(f"column {column}: {message}")


class ExpressionEvaluationError(ExpressionError):
    """A valid expression that cannot be evaluated on the given attributes."""


class ExpressionRaised(ExpressionEvaluationError):
    """The expression called ``Error("...")``; the service would fail the object with this message."""


class ExpressionLimitError(ExpressionEvaluationError):
    """Evaluation stopped at a bound: a value larger than the size cap, or the time limit used up."""


class PlanError(ReconcilerError):
    """A plan cannot be made or used."""


class PlanFileError(PlanError):
    """A saved plan file is unreadable, was edited by hand, or is of a format this version does not know."""


class StalePlanError(PlanError):
    """The saved plan no longer matches the target or the desired files; make a new plan."""

    def __init__(self, message: str, reasons: Sequence[str] = ()) -> None:
        self.reasons = tuple(reasons)
        text = message if not self.reasons else message + "\n" + "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(text)


class GuardError(PlanError):
    """A write refused right before it was made: the plan asks for something the guards forbid."""


class ApplyError(ReconcilerError):
    """Some changes failed; the others were carried out. The next plan shows what is left."""


class LockError(ReconcilerError):
    """The target's apply lock is held by another run."""


class StateError(ReconcilerError):
    """The state store (lock, journal, status) cannot be reached or used; nothing was changed after it."""


class ProviderError(ReconcilerError):
    """A target refused or failed a request."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.request_id = request_id
        details = []
        if status is not None:
            details.append(f"HTTP {status}")
        if code:
            details.append(f"code {code}")
        if request_id:
            details.append(f"request-id {request_id}")
        super().__init__(message + (f" ({', '.join(details)})" if details else ""))


class TransientProviderError(ProviderError):
    """A failure worth retrying: throttling, a server error, a dropped connection."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class AuthenticationError(ProviderError):
    """Credentials are missing, expired or rejected."""


class NotFoundError(ProviderError):
    """The object does not exist on the target."""


class ConflictError(ProviderError):
    """The target holds something that conflicts with the request."""


class GitError(ReconcilerError):
    """A repository, ref or commit cannot be read."""


class StateFileError(ReconcilerError):
    """A file of the state folder (the journal, ...) is not a regular file, or cannot be written."""


class UserAbort(ReconcilerError):
    """The user declined at a confirmation prompt."""
