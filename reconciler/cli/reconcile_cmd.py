"""``reconciler reconcile``: keep a target in line with a git branch, continuously or once (for cron)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import click

from reconciler.cli.errors import ExitCode
from reconciler.cli.options import delete_options, seconds_option, target_option
from reconciler.cli.plan_cmd import plan_options_from
from reconciler.engine.reconcile import LoopOptions, Reconciler, stop_on_signals
from reconciler.providers import open_target

__all__ = ["loop_options", "loop_options_from", "parse_interval", "reconcile"]

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_interval(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h`` as seconds."""
    match = _INTERVAL.match(text)
    if not match or float(match.group(1)) <= 0:
        raise click.BadParameter(f"{text!r} is not a duration like 30s, 5m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _repo_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    """PATH... as repository paths ('/'-separated, relative to the top folder; "" for all of it)."""
    out = []
    for p in paths or (".",):
        parts = [x for x in PurePosixPath(p.replace("\\", "/")).parts if x not in (".", "/")]
        if ".." in parts:
            raise click.BadParameter(f"{p}: give paths inside the repository, without '..'")
        out.append("/".join(parts))
    return tuple(out)


def loop_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the reconcile loop, shared by ``reconcile`` and ``serve``."""
    for option in reversed(_LOOP_OPTIONS):
        command = option(command)
    return command


_LOOP_OPTIONS: tuple[Callable[[Callable[..., Any]], Callable[..., Any]], ...] = (
    click.argument("paths", nargs=-1, metavar="[PATH]..."),
    click.option(
        "--repo",
        "--git",
        "repo",
        default=".",
        show_default=True,
        metavar="PATH_OR_URL",
        help="The git repository to follow: a folder or a URL.",
    ),
    click.option("--branch", default="main", show_default=True, help="The branch to follow."),
    target_option,
    click.option(
        "--interval",
        default="5m",
        show_default=True,
        help="Time between passes (30s, 5m, 1h); up to 10% is added at random.",
    ),
    click.option("--self-heal", is_flag=True, help="Revert drift (changes made behind git's back)."),
    click.option(
        "--status-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Where to write the JSON status (default: in the state folder, one file per target).",
    ),
    seconds_option("--lock-timeout", 60.0, "How long an apply waits for another run's lock on the target."),
    seconds_option(
        "--lease-ttl",
        30.0,
        "The leader lease of replicas: a standby takes over this long after the active loop died.",
        minimum=1,
    ),
    delete_options,
)


def loop_options_from(params: dict[str, Any]) -> LoopOptions:
    """The ``LoopOptions`` the options of ``loop_options`` give (``params`` as click passes them)."""
    return LoopOptions(
        source=params["repo"],
        branch=params["branch"],
        paths=_repo_paths(params["paths"]),
        interval=parse_interval(params["interval"]),
        self_heal=params["self_heal"],
        plan_options=plan_options_from(
            params["allow_delete"], params["allow_mass_delete"], params["max_deletes"]
        ),
        status_file=params["status_file"],
        lock_timeout=params["lock_timeout"],
        lease_ttl=params["lease_ttl"],
    )


@click.command(short_help="Keep a target in line with a git branch; report or heal drift.")
@loop_options
@click.option("--once", is_flag=True, help="One pass, then exit: 0 in sync, 2 drift not healed, 1 error.")
def reconcile(target: str | None, once: bool, **loop: Any) -> None:
    """Apply each new commit of BRANCH to the target, and look for drift at every interval.

    PATH... are desired-state folders or files, relative to the repository's top folder (default: all
    of it); they are read from the branch's head commit, never from a work tree. A loop
    runs until SIGTERM or SIGINT, which stop it between two changes; of the loops started for one target
    (replicas), one is active and the others stand by until its lease expires.
    """
    options = loop_options_from(loop)
    provider = open_target(target)
    try:
        reconciler = Reconciler(options, provider, report=lambda line: click.echo(line, err=True))
        if not once:
            click.echo(
                f"Following {options.branch} of {reconciler.status.source} into {provider.target}; "
                f"status in {reconciler.status_path}",
                err=True,
            )
        with stop_on_signals(reconciler.stop):
            code = reconciler.run(once=once)
    finally:
        provider.close()
    if code:
        raise ExitCode(code)
