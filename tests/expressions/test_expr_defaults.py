"""The published default mappings evaluate as intended on sample objects, and the attribute catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import ExpressionRaised
from reconciler.expressions import (
    DOES_NOT_FLOW,
    KNOWN_ATTRIBUTES,
    evaluate,
    known_attribute,
    parse,
    referenced_attributes,
)

DEFAULT_MAPPINGS = Path(__file__).with_name("default_mapping_expressions.json")

ACCOUNT_ENABLED = (
    'IIF(IsPresent([userAccountControl]), IIF(BitAnd([userAccountControl], 2)="0", "True", "False"), '
    "Not([accountDisabled]))"
)
UPN = (
    "IIF(IsPresent([onPremisesUserPrincipalName]), [onPremisesUserPrincipalName], "
    'Append(Item(Split([userPrincipalName], "@"), 1), Append("@", %DomainFQDN%)))'
)
PARENT_DN = (
    'IIF(IsNullOrEmpty([onPremisesDistinguishedName]), "OU=Cloud_Users,DC=contoso,DC=com", '
    'Replace([onPremisesDistinguishedName], , "^.*?,(?=(?:CN|OU|DC)=)", , "", , ))'
)
PASSWORD_CHANGE = (
    'IIF(IsPresent([pwdLastSet]), FormatDateTime(DateFromNum([pwdLastSet]), , "yyyyMMddHHmmss.0Z"), )'
)
CLOUD_UPN = (
    "IIF(IsPresent([userPrincipalName]), [userPrincipalName], IIF(IsPresent([sAMAccountName]), "
    'Join("@", [sAMAccountName], ), Error("AccountName is not present")))'
)


@pytest.mark.parametrize(
    ("expression", "attributes", "expected"),
    [
        (ACCOUNT_ENABLED, {"userAccountControl": "512"}, "True"),
        (ACCOUNT_ENABLED, {"userAccountControl": "514"}, "False"),
        (ACCOUNT_ENABLED, {"accountDisabled": "True"}, False),
        (
            'Append(Append(Left(Trim([displayName]),51),"_"),Mid([objectId],25,12))',
            {"displayName": " Sales Team ", "objectId": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"},
            "Sales Team_44ee44ee44ee",
        ),
        ('Append("Group_",[objectId])', {"objectId": "abc"}, "Group_abc"),
        (
            'Left(Item(Split([userPrincipalName], "@"), 1), 15)',
            {"userPrincipalName": "averyverylongname@x.com"},
            "averyverylongna",
        ),
        (UPN, {"userPrincipalName": "jdoe@contoso.onmicrosoft.com"}, "jdoe@corp.contoso.com"),
        (
            UPN,
            {"onPremisesUserPrincipalName": "jdoe@corp.contoso.com", "userPrincipalName": "x@y"},
            "jdoe@corp.contoso.com",
        ),
        (PARENT_DN, {}, "OU=Cloud_Users,DC=contoso,DC=com"),
        (
            PARENT_DN,
            {"onPremisesDistinguishedName": "CN=Doe\\, John,OU=Sales,DC=contoso,DC=com"},
            "OU=Sales,DC=contoso,DC=com",
        ),
        ("IgnoreFlowIfNullOrEmpty(Trim([department]))", {"department": "  "}, DOES_NOT_FLOW),
        ("IgnoreFlowIfNullOrEmpty(Trim([department]))", {"department": " Sales "}, "Sales"),
        ("Not([accountEnabled])", {"accountEnabled": "True"}, False),
        (
            PASSWORD_CHANGE,
            {"pwdLastSet": "129699324000000000"},
            "20120101230000.0Z",
        ),
        (
            PASSWORD_CHANGE,
            {},
            None,
        ),
        (
            'IIF(IsPresent([postOfficeBox]), Left(Trim(Item([postOfficeBox], 1)), 448), "")',
            {"postOfficeBox": [" PO 1 ", "PO 2"]},
            "PO 1",
        ),
        (
            "RemoveDuplicates(Trim([proxyAddresses]))",
            {"proxyAddresses": ["smtp:a@x ", " smtp:a@x"]},
            ["smtp:a@x"],
        ),
        (CLOUD_UPN, {"sAMAccountName": "jdoe"}, "jdoe"),
    ],
)
def test_default_mapping(
    expression: str, attributes: dict[str, str | list[str] | None], expected: object
) -> None:
    assert evaluate(expression, attributes, domain_fqdn="corp.contoso.com") == expected


def test_default_mapping_error_branch() -> None:
    with pytest.raises(ExpressionRaised, match="AccountName is not present"):
        evaluate(CLOUD_UPN, {})


def test_every_default_mapping_parses() -> None:
    for text in json.loads(DEFAULT_MAPPINGS.read_text(encoding="utf-8")):
        parse(text, strict=True)


def test_catalog_knows_the_attributes_the_ad_defaults_read() -> None:
    ad_user = KNOWN_ATTRIBUTES["user"]
    for text in (ACCOUNT_ENABLED, CLOUD_UPN, "RemoveDuplicates(Trim([proxyAddresses]))"):
        for name in referenced_attributes(text):
            assert name.casefold() in ad_user, name
    entra_user = KNOWN_ATTRIBUTES["entra_user"]
    for name in referenced_attributes(UPN) | referenced_attributes(PARENT_DN):
        assert name.casefold() in entra_user, name


def test_catalog_is_case_insensitive() -> None:
    assert "samaccountname" in KNOWN_ATTRIBUTES["user"]
    assert known_attribute("User", "SAMACCOUNTNAME") == "sAMAccountName"
    assert known_attribute("group", "member") == "member"
    assert known_attribute("user", "notAnAttribute") is None
    assert known_attribute("spaceship", "cn") is None
