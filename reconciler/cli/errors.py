"""The one place where errors become exit codes and messages.

    0    success (plan: no changes with --detailed-exitcode)
    1    a ReconcilerError: one clear message on stderr, no traceback
    2    plan --detailed-exitcode: changes present; reconcile --once: drift found and not healed
    3    an unexpected error: a short message, the traceback goes to a log file in the state folder
    64   usage error (bad flags or arguments), so that 2 always means "changes"
    130  interrupted (Ctrl-C)

Writes: stderr, and the crash log file on an unexpected error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from reconciler.errors import LoadError, ReconcilerError
from reconciler.render.escape import message, printable

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_UNEXPECTED", "EXIT_USAGE", "error_handler"]

EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_UNEXPECTED = 3
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130


class ExitCode(Exception):
    """Raised by commands to end with a specific exit code after rendering their output."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(code)


def _crash_log(exc: BaseException) -> str:
    # Imported here: only a crash needs them, and every start of the command line would pay for them.
    import datetime as _dt
    import os
    import tempfile
    import traceback
    from pathlib import Path

    from reconciler.state.folder import private_dir, state_dir, write_private

    state = state_dir()
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = "".join(traceback.format_exception(exc))
    for folder in (state, Path(tempfile.gettempdir())):
        try:
            path = private_dir(folder) / f"crash-{stamp}-{os.getpid()}.log"
            write_private(path, text.encode("utf-8"))
            return str(path)
        except OSError:
            continue
    return "(could not write a log file)"


# What a desired state that does not load stopped, in the words of the command that was run.
_NOT_DONE = {
    "plan": "; no plan was made",
    "apply": "; nothing was applied",
    "reconcile": "; nothing was applied",
    "preview": "; nothing was evaluated",
}


@contextmanager
def error_handler(command: str | None = None) -> Iterator[None]:
    """Run a command; turn whatever escapes into a message and a ``SystemExit`` with our code.

    ``command`` (the command's name) words the end of a report of invalid desired files.
    """
    try:
        yield
    except ExitCode as exc:
        raise SystemExit(exc.code) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.UsageError as exc:
        exc.show()
        raise SystemExit(EXIT_USAGE) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(EXIT_ERROR) from None
    except (click.Abort, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except LoadError as exc:
        for diag in exc.diagnostics:
            click.echo(printable(str(diag)), err=True)
        errors = sum(1 for d in exc.diagnostics if d.severity == "error")
        click.echo(f"error: {errors} problem(s) found{_NOT_DONE.get(command or '', '')}.", err=True)
        raise SystemExit(exc.exit_code) from None
    except ReconcilerError as exc:
        click.echo(message(f"error: {exc}"), err=True)
        raise SystemExit(exc.exit_code) from None
    except BrokenPipeError:
        # The reader went away (| head); nothing more to say.
        sys.stderr.close()
        raise SystemExit(EXIT_ERROR) from None
    except Exception as exc:
        where = _crash_log(exc)
        click.echo(
            f"error: an unexpected error occurred ({type(exc).__name__}); details were written to {where}",
            err=True,
        )
        raise SystemExit(EXIT_UNEXPECTED) from None
