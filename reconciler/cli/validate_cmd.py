"""``reconciler validate``: check the desired-state files without reaching any target.

Reads the files under the given paths; writes the result to stdout (summary, or JSON) and the
diagnostics to stderr (text format). Exit 0 when valid, 1 when not.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from reconciler.cli.options import format_option, target_option, verbose_option
from reconciler.core.collector import collector_paused
from reconciler.errors import LoadError

if TYPE_CHECKING:
    from reconciler.errors import Diagnostic

__all__ = ["validate"]


def _count(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def _json(valid: bool, diagnostics: tuple[Diagnostic, ...]) -> str:
    return json.dumps({"valid": valid, "diagnostics": [d.as_dict() for d in diagnostics]}, indent=2)


@click.command("validate", short_help="Check the desired-state files (YAML, schema, meaning, expressions).")
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(
    "text",
    "json",
    help="text: one FILE:LINE:COL: message per line on stderr; json: {valid, diagnostics} on stdout.",
)
@click.option(
    "--ref", metavar="REF", help="Check the desired state as commit REF has it (the work tree is not read)."
)
@click.option(
    "--remote",
    is_flag=True,
    help="Also have the target's service parse every expression (Graph parseExpression; needs --target).",
)
@target_option
@verbose_option
# The collector resumes only once what was loaded is freed, on return: resumed while it lived, it would
# walk all of it once.
@collector_paused()
def validate(
    paths: tuple[str, ...], fmt: str, ref: str | None, remote: bool, target: str | None, verbose: bool
) -> None:
    """Check the desired-state files under PATH... (default: the current folder).

    Every *.yaml and *.yml file is read; every problem is reported, each at its FILE:LINE:COL.
    """
    # Imported here, not at the top: what a command needs is loaded only when it runs (start-up time).
    from reconciler.cli.output import echo_warnings
    from reconciler.git.source import choose, load

    try:
        result = load(choose(list(paths) or ["."], ref=ref)).result
        if remote:
            from reconciler.engine.remote_check import remote_expression_check
            from reconciler.providers import open_target

            provider = open_target(target, read_only=True)
            try:
                rejected = remote_expression_check(result.state, provider)
            finally:
                provider.close()
            if rejected:
                raise LoadError([*rejected, *result.warnings])
    except LoadError as exc:
        if fmt == "json":
            click.echo(_json(False, exc.diagnostics))
            raise click.exceptions.Exit(1) from exc
        raise
    if fmt == "json":
        click.echo(_json(True, result.warnings))
        return
    echo_warnings(result.warnings, verbose=verbose)
    configs = len(result.state.configurations)
    click.echo(f"{_count(configs, 'configuration')} valid ({_count(len(result.files), 'file')})")
