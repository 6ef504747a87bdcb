"""Start-up: the command group lists and versions without loading any command, and every option says
what it is for. Run as real processes, as a shell or a CI job runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest

from reconciler import __version__
from reconciler.cli.main import COMMANDS, cli

_LOADED = """\
import json, sys
from reconciler.cli.main import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules if m.startswith("reconciler."))}))
"""


def _loaded(*args: str) -> tuple[int, list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *args], capture_output=True, text=True, timeout=120, check=True
    )
    last = json.loads(done.stdout.strip().splitlines()[-1])
    return last["code"], last["modules"], done.stdout


@pytest.mark.parametrize("flag", ["--help", "-h", "--version", "-V"])
def test_help_and_version_load_no_command(flag: str) -> None:
    code, modules, out = _loaded(flag)
    assert code == 0
    assert not [m for m in modules if m.endswith("_cmd")], modules
    for heavy in ("reconciler.engine", "reconciler.config", "reconciler.core", "reconciler.providers"):
        assert not [m for m in modules if m.startswith(heavy)], (heavy, modules)
    if flag in ("--version", "-V"):
        assert f"reconciler, version {__version__}" in out


def test_a_command_loads_its_own_module_only() -> None:
    code, modules, _ = _loaded("expr", "ToUpper([a])", "--attr", "a=x")
    assert code == 0
    assert [m for m in modules if m.endswith("_cmd")] == ["reconciler.cli.expr_cmd"]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flags_through_the_console_entry_point(flag: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", flag], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"reconciler, version {__version__}"


def test_the_listing_is_every_command_with_its_own_short_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    with click.Context(cli) as ctx:
        for name, (_, _, line) in COMMANDS.items():
            command = cli.get_command(ctx, name)
            assert command is not None and command.name == name
            # The listing is taken from COMMANDS; the command's own --help from the command.
            assert command.short_help == line, name
            assert name in done.stdout
        assert cli.list_commands(ctx) == list(COMMANDS)


def _commands(group: click.Group, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """``group`` itself, then every command under it, groups within groups included."""
    yield prefix, group
    with click.Context(group) as ctx:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                yield from _commands(command, (*prefix, name))
            else:
                yield (*prefix, name), command


def test_every_option_of_every_command_has_help() -> None:
    walked = list(_commands(cli, ("reconciler",)))
    assert {path[1] for path, _ in walked if len(path) > 1} == set(COMMANDS)
    missing = []
    for path, command in walked:
        with click.Context(command) as ctx:
            # get_params: the command's own options and the --help option click adds.
            for param in command.get_params(ctx):
                if isinstance(param, click.Option) and not (param.help or "").strip():
                    missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert not missing


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [("reconciler pl", "1", "plain,plan"), ("reconciler plan --detailed", "2", "plain,--detailed-exitcode")],
)
def test_click_shell_completion_completes_commands_and_options(words: str, cword: str, expected: str) -> None:
    # What the bash script that `_RECONCILER_COMPLETE=bash_source reconciler` prints asks for.
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": cword, "_RECONCILER_COMPLETE": "bash_complete"}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler"], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0 and expected in done.stdout.splitlines()
    for shell in ("bash", "zsh", "fish"):
        env = {**os.environ, "_RECONCILER_COMPLETE": f"{shell}_source"}
        script = subprocess.run(
            [sys.executable, "-m", "reconciler"], capture_output=True, text=True, timeout=120, env=env
        )
        assert script.returncode == 0 and "_reconciler_completion" in script.stdout
