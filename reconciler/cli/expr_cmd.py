"""``reconciler expr``: evaluate one attribute-mapping expression against attributes from the command line.

Writes the value to stdout; for an invalid expression, the expression with a caret under the problem to
stderr. No other I/O.
"""

from __future__ import annotations

import click

from reconciler.cli.options import format_option
from reconciler.errors import ExpressionError
from reconciler.expressions import DOES_NOT_FLOW, AttributeValue, Result, evaluate
from reconciler.render.escape import json_text, printable

__all__ = ["expr"]


def _parse_attributes(pairs: tuple[str, ...], multi: tuple[str, ...]) -> dict[str, AttributeValue]:
    multi_names = set(multi)
    attributes: dict[str, AttributeValue] = {name: [] for name in multi_names}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--attr")
        if name in multi_names:
            existing = attributes[name]
            assert isinstance(existing, list)
            existing.extend(value.split(",") if value else [])
        elif name in attributes:
            raise click.BadParameter(
                f"{name} is given twice; mark it --multi {name} for a multi-valued attribute",
                param_hint="--attr",
            )
        else:
            attributes[name] = value
    return attributes


def _caret(error: ExpressionError) -> str:
    text = error.expression or ""
    offset = min(max(error.column - 1, 0), len(text))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line = printable(text[line_start : line_end if line_end >= 0 else len(text)], None)
    # The caret sits under the escaped text: each character before it counts as wide as it is shown.
    pad = " " * len(printable(text[line_start:offset], None))
    return f"{line}\n{pad}^\n{printable(error.message)}"


def _render_text(value: Result) -> str:
    if value is DOES_NOT_FLOW:
        return "(does not flow)"
    if value is None:
        return "(null)"
    if isinstance(value, list):
        return "\n".join(printable(v, None) for v in value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return printable(str(value), None)


def _render_json(value: Result) -> str:
    flows = value is not DOES_NOT_FLOW
    return json_text({"value": value if flows else None, "flows": flows}, ensure_ascii=False)


@click.command("expr", short_help="Evaluate a mapping expression against given attributes.")
@click.argument("expression")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE", help="A source attribute value.")
@click.option(
    "--multi",
    multiple=True,
    metavar="NAME",
    help="Treat NAME as multi-valued: its --attr value is split on commas.",
)
@format_option("text", "json")
@click.option("--domain", metavar="FQDN", help="The value of %DomainFQDN%.")
def expr(
    expression: str, attrs: tuple[str, ...], multi: tuple[str, ...], fmt: str, domain: str | None
) -> None:
    """Evaluate EXPRESSION against the given attributes and print the value.

    Text output prints a multi-valued result one value per line, null as (null) and an
    IgnoreFlowIfNullOrEmpty that drops the attribute as (does not flow).
    """
    attributes = _parse_attributes(attrs, multi)
    try:
        value = evaluate(expression, attributes, domain_fqdn=domain)
    except ExpressionError as exc:
        click.echo(_caret(exc), err=True)
        raise
    click.echo(_render_json(value) if fmt == "json" else _render_text(value))
