"""The ``reconciler expr`` command, through click's CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from reconciler.cli.expr_cmd import expr
from reconciler.errors import ExpressionError, ExpressionRaised


def run(*args: str) -> tuple[int, str, str, BaseException | None]:
    result = CliRunner().invoke(expr, list(args))
    return result.exit_code, result.stdout, result.stderr, result.exception


def test_text_value() -> None:
    code, out, _, _ = run('Join(" ", [givenName], [sn])', "--attr", "givenName=John", "--attr", "sn=Doe")
    assert (code, out) == (0, "John Doe\n")


def test_multi_valued_one_per_line() -> None:
    code, out, _, _ = run(
        "Trim([proxyAddresses])", "--attr", "proxyAddresses= smtp:a@x , SMTP:b@x", "--multi", "proxyAddresses"
    )
    assert (code, out) == (0, "smtp:a@x\nSMTP:b@x\n")


def test_multi_valued_attribute_given_twice_accumulates() -> None:
    code, out, _, _ = run("Count([p])", "--attr", "p=a,b", "--attr", "p=c", "--multi", "p")
    assert (code, out) == (0, "3\n")


def test_null_does_not_flow_and_booleans() -> None:
    assert run("Trim([missing])")[1] == "(null)\n"
    assert run("IgnoreFlowIfNullOrEmpty([missing])")[1] == "(does not flow)\n"
    assert run("IsPresent([x])", "--attr", "x=1")[1] == "True\n"
    assert run('""')[1] == "(null)\n"


def test_json_format() -> None:
    assert json.loads(run('Split([a], ",")', "--attr", "a=x,y", "--format", "json")[1]) == {
        "value": ["x", "y"],
        "flows": True,
    }
    assert json.loads(run("IgnoreFlowIfNullOrEmpty([a])", "--format", "json")[1]) == {
        "value": None,
        "flows": False,
    }
    assert json.loads(run('InStr("abc", "c")', "--format", "json")[1]) == {"value": 3, "flows": True}


def test_domain_parameter() -> None:
    expression = 'Append(Item(Split([userPrincipalName], "@"), 1), Append("@", %DomainFQDN%))'
    code, out, _, _ = run(
        expression, "--attr", "userPrincipalName=jdoe@contoso.com", "--domain", "corp.contoso.com"
    )
    assert (code, out) == (0, "jdoe@corp.contoso.com\n")


def test_invalid_expression_shows_a_caret_and_raises() -> None:
    code, out, err, exc = run('Join(",", Trm([a]))')
    assert code != 0 and out == ""
    assert isinstance(exc, ExpressionError)
    assert err == "Join(\",\", Trm([a]))\n          ^\nunknown function 'Trm'; did you mean 'Trim'?\n"


def test_caret_on_the_right_line_of_a_multi_line_expression() -> None:
    code, _, err, _ = run('IIF([a] = "1",\n  Left([b], 2),\n  Word([c], 1))')
    assert code != 0
    assert err.splitlines() == [
        "  Word([c], 1))",
        "  ^",
        "Word takes 3 arguments: Word(string, wordNumber, delimiters); got 2",
    ]


def test_error_function_raises() -> None:
    code, _, err, exc = run('IIF(IsPresent([a]), [a], Error("a is required"))')
    assert code != 0 and isinstance(exc, ExpressionRaised)
    assert err.endswith("a is required\n")


def test_bad_attr_is_a_usage_error() -> None:
    code, _, err, _ = run("[a]", "--attr", "novalue")
    assert code == 2 and "expected NAME=VALUE" in err
    code, _, err, _ = run("[a]", "--attr", "a=1", "--attr", "a=2")
    assert code == 2 and "--multi a" in err
