"""The ``reconciler`` command group and ``main()``, the console-script entry point.

Each command lives in its own module and is registered here explicitly; ``main`` runs the group
under the one error handler that maps errors to exit codes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from reconciler import __version__
from reconciler.cli.apply_cmd import apply
from reconciler.cli.diff_cmd import diff
from reconciler.cli.directory_cmd import directory
from reconciler.cli.emulator_cmd import emulator
from reconciler.cli.errors import error_handler
from reconciler.cli.expr_cmd import expr
from reconciler.cli.history_cmd import history
from reconciler.cli.import_cmd import import_
from reconciler.cli.plan_cmd import plan
from reconciler.cli.preview_cmd import preview
from reconciler.cli.provision_cmd import provision
from reconciler.cli.reconcile_cmd import reconcile
from reconciler.cli.status_cmd import restart, status
from reconciler.cli.validate_cmd import validate

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Declarative GitOps for Microsoft Entra Cloud Sync: describe configurations in YAML, review a plan,
    apply exactly that plan, and keep the target in line with git."""


for command in (
    validate,
    plan,
    apply,
    diff,
    status,
    restart,
    history,
    reconcile,
    import_,
    expr,
    preview,
    provision,
    directory,
    emulator,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting when called from tests."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with error_handler():
            rv = cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    # click returns the code of a --help/--version exit here; commands themselves return None.
    return rv if isinstance(rv, int) else 0
