"""Flags shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = [
    "delete_options",
    "format_option",
    "lock_options",
    "lock_timeout_option",
    "paths_argument",
    "quiet_option",
    "seconds_option",
    "target_option",
    "verbose_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def target_option(f: F) -> F:
    return click.option(
        "--target",
        "-t",
        envvar="RECONCILER_TARGET",
        default=None,
        metavar="TARGET",
        help="Where configurations live: local:PATH (default local:.reconciler/tenant.db), graph, "
        "or graph+http://HOST:PORT (emulator). Env: RECONCILER_TARGET.",
    )(f)


def verbose_option(f: F) -> F:
    return click.option(
        "--verbose", "-v", is_flag=True, help="List every warning, not one line per distinct cause."
    )(f)


def quiet_option(f: F) -> F:
    return click.option(
        "--quiet", "-q", is_flag=True, help="Print only errors and the summary line (no plan, no progress)."
    )(f)


def paths_argument(f: F) -> F:
    return click.argument("paths", nargs=-1, type=click.Path(), metavar="[PATH]...")(f)


def format_option(*choices: str, default: str = "text", help: str = "Output format.") -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(list(choices)),
            default=default,
            show_default=True,
            help=help,
        )(f)

    return deco


def seconds_option(flag: str, default: float, help: str, *, minimum: float = 0) -> Callable[[F], F]:
    """A duration in seconds, at least ``minimum``, with its default shown."""

    def deco(f: F) -> F:
        return click.option(
            flag,
            type=click.FloatRange(min=minimum),
            default=default,
            show_default=True,
            metavar="SECONDS",
            help=help,
        )(f)

    return deco


def lock_timeout_option(f: F) -> F:
    return seconds_option(
        "--lock-timeout", 0.0, "How long to wait for another run's lock on the target before failing."
    )(f)


def lock_options(f: F) -> F:
    f = lock_timeout_option(f)
    f = click.option(
        "--parallelism",
        type=click.IntRange(min=1, max=100),
        default=10,
        show_default=True,
        help="How many configurations are changed at once.",
    )(f)
    return f


def delete_options(f: F) -> F:
    f = click.option(
        "--max-deletes",
        type=click.IntRange(min=0),
        default=1,
        show_default=True,
        help="More deletes than this in one plan also need --allow-mass-delete.",
    )(f)
    f = click.option("--allow-mass-delete", is_flag=True, help="Allow more than --max-deletes deletes.")(f)
    f = click.option(
        "--allow-delete",
        is_flag=True,
        help="Allow deleting managed configurations that are no longer in the desired state.",
    )(f)
    return f
