"""The ``reconciler`` command group and ``main()``, the console-script entry point.

Commands are registered by name in ``COMMANDS`` and imported only when one of them runs (or its own
help is asked for): ``reconciler --help`` and ``--version`` load click and nothing else of ours, and a
command loads only its own code and libraries. ``main`` runs the group under the one error handler that
maps errors to exit codes.

I/O: none of its own (the commands do theirs).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping, Sequence

import click

from reconciler import __version__
from reconciler.cli.errors import error_handler

__all__ = ["COMMANDS", "cli", "main"]

# name -> (module, attribute, the one-line help `reconciler --help` lists). The line is also the
# command's own ``short_help`` (a test keeps the two equal), so the listing needs no command module.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": (
        "validate_cmd",
        "validate",
        "Check the desired-state files (YAML, schema, meaning, expressions).",
    ),
    "plan": ("plan_cmd", "plan", "Show (or save) what apply would change on the target."),
    "apply": ("apply_cmd", "apply", "Apply a saved plan, or plan and apply after approval."),
    "show": ("show_cmd", "show", "Render a saved plan file; no target is read."),
    "diff": ("diff_cmd", "diff", "What a change between two commits means for the desired state."),
    "status": ("status_cmd", "status", "Each configuration's job status, quarantine and last run."),
    "restart": ("status_cmd", "restart", "Restart one configuration's provisioning job now."),
    "approve-deletes": (
        "status_cmd",
        "approve_deletes",
        "Release the deletes a configuration's delete threshold holds.",
    ),
    "history": ("history_cmd", "history", "Past applies, restarts and reconcile passes, with outcomes."),
    "reconcile": (
        "reconcile_cmd",
        "reconcile",
        "Keep a target in line with a git branch; report or heal drift.",
    ),
    "serve": (
        "serve_cmd",
        "serve",
        "Run the reconcile loop as a service: dashboard, metrics, git webhook.",
    ),
    "import": ("import_cmd", "import_", "Write YAML for what a target holds; --adopt marks it managed."),
    "expr": ("expr_cmd", "expr", "Evaluate a mapping expression against given attributes."),
    "preview": ("preview_cmd", "preview", "The Entra ID attributes a configuration's mappings give objects."),
    "provision": ("provision_cmd", "provision", "Provision one object on demand and show what happened."),
    "directory": ("directory_cmd", "directory", "The local tenant's on-premises directory (load, list)."),
    "emulator": ("emulator_cmd", "emulator", "Serve a Graph emulator of the synchronization API."),
}


class _LazyCommands(MutableMapping[str, click.Command]):
    """The group's command table: a command's module is imported the first time the command is looked up."""

    def __init__(self) -> None:
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            module, attribute, _ = COMMANDS[name]
            command = getattr(importlib.import_module(f"reconciler.cli.{module}"), attribute)
            assert isinstance(command, click.Command)
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._loaded]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._loaded))


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        # The order of COMMANDS (the order people meet the commands in), not the alphabet.
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_line) for name, (_, _, help_line) in COMMANDS.items()])


@click.group(
    cls=_LazyGroup,
    commands=_LazyCommands(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(
    __version__, "--version", "-V", prog_name="reconciler", help="Show the version and exit."
)
@click.option(
    "--state",
    envvar="RECONCILER_STATE",
    default=None,
    metavar="URL",
    help="Where locks, the journal and status live: sqlite:PATH or postgresql://USER@HOST/DB "
    "(default: an SQLite file next to a local tenant, else under the user's state folder). "
    "Env: RECONCILER_STATE.",
)
def cli(state: str | None) -> None:
    """Declarative GitOps for Microsoft Entra Cloud Sync: describe configurations in YAML, review a plan,
    apply exactly that plan, and keep the target in line with git."""
    # The state store module is loaded by the commands that use a store; a plan does not. Unloaded,
    # it holds no setting to reset.
    if state is not None or "reconciler.state" in sys.modules:
        from reconciler.state import configure

        configure(state)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting when called from tests."""
    args = list(sys.argv[1:] if argv is None else argv)
    # The group's one option with a value (--state) takes a URL, never a command's name, so the first
    # word that names a command is the command.
    command = next((a for a in args if a in COMMANDS), None)
    try:
        with error_handler(command):
            rv = cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    # click returns the code of a --help/--version exit here; commands themselves return None.
    return rv if isinstance(rv, int) else 0
