"""Conversion to and from the service's attributeMappingSource trees.

The expected trees are transcribed from a published 2020 AD2AAD schema (GET .../schema output) and
from the Graph parseExpression documentation, so they are what the service itself returns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ExpressionError
from reconciler.expressions import from_service_tree, parse, to_service_tree

DEFAULT_MAPPINGS = Path(__file__).with_name("default_mapping_expressions.json")


def A(name: str) -> dict[str, Any]:
    return {"expression": f"[{name}]", "name": name, "type": "Attribute", "parameters": []}


def C(value: str) -> dict[str, Any]:
    return {"expression": json.dumps(value), "name": value, "type": "Constant", "parameters": []}


def F(name: str, expression: str, *params: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "expression": expression,
        "name": name,
        "type": "Function",
        "parameters": [{"key": k, "value": v} for k, v in params],
    }


ACCOUNT_ENABLED = (
    'IIF(IsPresent([userAccountControl]), IIF(BitAnd([userAccountControl], 2)="0", "True", "False"), '
    "Not([accountDisabled]))"
)
LAST_PASSWORD_CHANGE = (
    'IIF(IsPresent([pwdLastSet]), FormatDateTime(DateFromNum([pwdLastSet]), , "yyyyMMddHHmmss.0Z"), )'
)
POST_OFFICE_BOX = 'IIF(IsPresent([postOfficeBox]), Left(Trim(Item([postOfficeBox], 1)), 448), "")'

SERVICE_TREES: list[tuple[str, dict[str, Any]]] = [
    ("[mail]", A("mail")),
    ('"True"', C("True")),
    (
        ACCOUNT_ENABLED,
        F(
            "IIF",
            ACCOUNT_ENABLED,
            ("one", F("IsPresent", "IsPresent([userAccountControl])", ("source", A("userAccountControl")))),
            (
                "four",
                F(
                    "IIF",
                    'IIF(BitAnd([userAccountControl], 2)="0", "True", "False")',
                    (
                        "one",
                        F(
                            "BitAnd",
                            "BitAnd([userAccountControl], 2)",
                            ("left", A("userAccountControl")),
                            ("right", C("2")),
                        ),
                    ),
                    ("two", C("=")),
                    ("three", C("0")),
                    ("four", C("True")),
                    ("five", C("False")),
                ),
            ),
            ("five", F("Not", "Not([accountDisabled])", ("source", A("accountDisabled")))),
        ),
    ),
    (
        "IIF(IsPresent([displayName]), [displayName], [cn])",
        F(
            "IIF",
            "IIF(IsPresent([displayName]), [displayName], [cn])",
            ("one", F("IsPresent", "IsPresent([displayName])", ("source", A("displayName")))),
            ("four", A("displayName")),
            ("five", A("cn")),
        ),
    ),
    (
        "Left(Trim([description]), 448)",
        F(
            "Left",
            "Left(Trim([description]), 448)",
            ("source", F("Trim", "Trim([description])", ("source", A("description")))),
            ("length", C("448")),
        ),
    ),
    (
        LAST_PASSWORD_CHANGE,
        F(
            "IIF",
            LAST_PASSWORD_CHANGE,
            ("one", F("IsPresent", "IsPresent([pwdLastSet])", ("source", A("pwdLastSet")))),
            (
                "four",
                F(
                    "FormatDateTime",
                    'FormatDateTime(DateFromNum([pwdLastSet]), , "yyyyMMddHHmmss.0Z")',
                    ("source", F("DateFromNum", "DateFromNum([pwdLastSet])", ("source", A("pwdLastSet")))),
                    ("outputFormat", C("yyyyMMddHHmmss.0Z")),
                ),
            ),
        ),
    ),
    (
        POST_OFFICE_BOX,
        F(
            "IIF",
            POST_OFFICE_BOX,
            ("one", F("IsPresent", "IsPresent([postOfficeBox])", ("source", A("postOfficeBox")))),
            (
                "four",
                F(
                    "Left",
                    "Left(Trim(Item([postOfficeBox], 1)), 448)",
                    (
                        "source",
                        F(
                            "Trim",
                            "Trim(Item([postOfficeBox], 1))",
                            (
                                "source",
                                F(
                                    "Item",
                                    "Item([postOfficeBox], 1)",
                                    ("source", A("postOfficeBox")),
                                    ("index", C("1")),
                                ),
                            ),
                        ),
                    ),
                    ("length", C("448")),
                ),
            ),
            ("five", C("")),
        ),
    ),
    (
        "RemoveDuplicates(Trim([proxyAddresses]))",
        F(
            "RemoveDuplicates",
            "RemoveDuplicates(Trim([proxyAddresses]))",
            ("source", F("Trim", "Trim([proxyAddresses])", ("source", A("proxyAddresses")))),
        ),
    ),
    (
        'Error("AccountName is not present")',
        F("Error", 'Error("AccountName is not present")', ("message", C("AccountName is not present"))),
    ),
    (
        'Join("@", [sAMAccountName], )',
        F("Join", 'Join("@", [sAMAccountName], )', ("separator", C("@")), ("source", A("sAMAccountName"))),
    ),
    (
        'Replace([preferredLanguage], "-", , , "_", ,  )',
        F(
            "Replace",
            'Replace([preferredLanguage], "-", , , "_", ,  )',
            ("source", A("preferredLanguage")),
            ("Find", C("-")),
            ("Replacement", C("_")),
        ),
    ),
    (
        "Mid([userPrincipalName], 1, 8)",
        F(
            "Mid",
            "Mid([userPrincipalName], 1, 8)",
            ("source", A("userPrincipalName")),
            ("start", C("1")),
            ("length", C("8")),
        ),
    ),
    (
        'Append("@", %DomainFQDN%)',
        F(
            "Append",
            'Append("@", %DomainFQDN%)',
            ("source", C("@")),
            ("suffix", {"expression": None, "name": "%DomainFQDN%", "type": "Constant", "parameters": []}),
        ),
    ),
]


@pytest.mark.parametrize(("text", "tree"), SERVICE_TREES)
def test_to_service_tree_matches_the_service(text: str, tree: dict[str, Any]) -> None:
    assert to_service_tree(text) == tree


@pytest.mark.parametrize(("text", "tree"), SERVICE_TREES)
def test_from_service_tree_reads_the_service(text: str, tree: dict[str, Any]) -> None:
    assert parse(from_service_tree(tree)) == parse(text)


def test_canonical_text_from_the_service() -> None:
    # Constants in number parameters come back unquoted; trailing empty slots are not restored.
    assert from_service_tree(dict(SERVICE_TREES[4][1])) == "Left(Trim([description]), 448)"
    assert from_service_tree(dict(SERVICE_TREES[10][1])) == 'Replace([preferredLanguage], "-", , , "_")'
    assert from_service_tree(dict(SERVICE_TREES[5][1])) == (
        'IIF(IsPresent([pwdLastSet]), FormatDateTime(DateFromNum([pwdLastSet]), , "yyyyMMddHHmmss.0Z"), )'
    )


def test_to_service_tree_accepts_a_tree() -> None:
    tree = parse("Trim([company])")
    assert to_service_tree(tree) == F("Trim", "Trim([company])", ("source", A("company")))


@pytest.mark.parametrize(
    "text",
    [
        'Switch([a], "d", "k", , "k2", "v")',
        'Switch([Active], , "1", "True", "0", "False")',
        'FormatDateTime([x], , "yyyyMMdd", "yyyy")',
        'FormatDateTime([x], "in", "yyyyMMdd", "yyyy")',
        'Join(",", , [a])',
        'Coalesce(, [a], "x")',
        "CBool([attrib1] = [attrib2])",
        'IIF([a] & [b] = "xy", , "no")',
        'InStr("repEated","e",3,vbBinaryCompare)',
        "BitAnd(&HF, &HF7)",
        'Replace([telephoneNumber], , "\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})", '
        '"phoneNumber" , , [mobile], )',
        '"%DomainFQDN%"',
        '""',
    ],
)
def test_round_trip_where_layout_matters(text: str) -> None:
    assert parse(from_service_tree(to_service_tree(text))) == parse(text)


def test_default_mappings_round_trip() -> None:
    for text in json.loads(DEFAULT_MAPPINGS.read_text(encoding="utf-8")):
        assert parse(from_service_tree(to_service_tree(text))) == parse(text), text


def test_operations_outside_iif_use_the_operator_as_function_name() -> None:
    tree = to_service_tree('CBool([a] = "x")')
    inner = tree["parameters"][0]["value"]
    assert inner["name"] == "=" and inner["type"] == "Function"
    assert [p["key"] for p in inner["parameters"]] == ["one", "two", "three"]


def test_unknown_parameter_keys_fall_back_to_the_expression_text() -> None:
    tree = F("InStr", 'InStr([a], ",")', ("value1", A("a")), ("value2", C(",")))
    assert from_service_tree(tree) == 'InStr([a], ",")'


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"type": "Function", "name": "Nope", "parameters": []}, "unknown function 'Nope'"),
        ({"type": "Attribute", "name": ""}, "an Attribute source needs a name"),
        ({"type": "Thing", "name": "x"}, "unknown attributeMappingSource type 'Thing'"),
        (
            {
                "type": "Function",
                "name": "Mid",
                "expression": None,
                "parameters": [{"key": "zzz", "value": A("a")}],
            },
            "cannot read the parameters of Mid",
        ),
        (F("Trim", "", ("source", A("a")), ("source", A("b"))), "cannot read the parameters of Trim"),
        (F("Trim", "Trim([a], [b])", ("source", A("a")), ("source", A("b"))), "Trim takes 1 argument"),
    ],
)
def test_invalid_service_trees(tree: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        from_service_tree(tree)
