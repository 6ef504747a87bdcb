"""Mapping evaluation and scope checks for one object, against literal expected values."""

from __future__ import annotations

import pytest

from reconciler.core.model import ApplyMode, Mapping, MappingKind, Scope, ScopeKind
from reconciler.expressions import parse
from reconciler.provisioning.evaluate import (
    MappingEvaluator,
    OutcomeKind,
    ScopeMatcher,
    check_scope,
    dn_compare_key,
    evaluate_mappings,
    normalize_attributes,
    show_value,
)

D, C, E = MappingKind.DIRECT, MappingKind.CONSTANT, MappingKind.EXPRESSION

UPN = (
    "IIF(IsPresent([userPrincipalName]), [userPrincipalName], IIF(IsPresent([sAMAccountName]), "
    'Join("@", [sAMAccountName], %DomainFQDN%), Error("AccountName is not present")))'
)


def m(target: str, kind: MappingKind, value: str, **kw: object) -> Mapping:
    return Mapping("user", target, kind, value, **kw)  # type: ignore[arg-type]


def outcomes(
    mappings: list[Mapping], attrs: dict[str, object], **kw: object
) -> dict[str, tuple[str, object]]:
    ev = evaluate_mappings(mappings, attrs, parameters={"DomainFQDN": "contoso.com"}, **kw)  # type: ignore[arg-type]
    return {
        o.target: (o.kind.value, o.error if o.kind is OutcomeKind.ERROR else o.value) for o in ev.outcomes
    }


def test_direct_constant_expression() -> None:
    got = outcomes(
        [
            m("department", D, "department"),
            m("extensionAttribute1", C, "FTE"),
            m("displayName", E, 'Join(" ", [givenName], [sn])'),
        ],
        {"department": "Sales", "givenName": "Adele", "sn": "Vance"},
    )
    assert got == {
        "department": ("value", "Sales"),
        "displayName": ("value", "Adele Vance"),
        "extensionAttribute1": ("value", "FTE"),
    }


def test_outcomes_are_in_target_order_and_keep_the_mapping() -> None:
    maps = [m("zeta", C, "z"), m("Alpha", C, "a"), m("beta", C, "b")]
    ev = evaluate_mappings(maps, {})
    assert [o.target for o in ev.outcomes] == ["Alpha", "beta", "zeta"]
    assert ev.by_target()["beta"].mapping is maps[2]


def test_attribute_names_are_case_insensitive() -> None:
    got = outcomes(
        [m("mail", D, "Mail"), m("sn", E, "Trim([SN])")],
        {"mail": "a@contoso.com", "sn": " Vance "},
    )
    assert got == {"mail": ("value", "a@contoso.com"), "sn": ("value", "Vance")}


def test_yaml_numbers_and_booleans_become_text() -> None:
    attrs = normalize_attributes(
        {"uac": 514, "flag": True, "ratio": 1.5, "none": None, "empty": "", "l": [1, ""]}
    )
    assert attrs == {"uac": "514", "flag": "True", "ratio": "1.5", "l": ["1"]}


def test_results_become_text_as_the_service_flows_them() -> None:
    got = outcomes(
        [
            m("enabled", E, 'IIF(BitAnd([uac], 2)="0", "True", "False")'),
            m("bit", E, "BitAnd([uac], 2)"),
            m("present", E, "IsPresent([uac])"),
            m("proxies", E, "RemoveDuplicates(Trim([proxyAddresses]))"),
        ],
        {"uac": 514, "proxyAddresses": ["SMTP:a@x", " SMTP:a@x ", "smtp:b@x"]},
    )
    assert got == {
        "bit": ("value", "2"),
        "enabled": ("value", "False"),
        "present": ("value", "True"),
        "proxies": ("value", ["SMTP:a@x", "smtp:b@x"]),
    }


def test_null_takes_the_default_on_create_only() -> None:
    maps = [
        m("department", D, "department", default="Unassigned"),
        m("title", E, "Trim([title])", default="-"),
    ]
    assert outcomes(maps, {}) == {"department": ("default", "Unassigned"), "title": ("default", "-")}
    assert outcomes(maps, {}, create=False) == {"department": ("null", None), "title": ("null", None)}
    assert outcomes(maps, {"department": "Sales"}, create=False)["department"] == ("value", "Sales")


def test_empty_text_and_the_empty_expression_are_null() -> None:
    got = outcomes([m("a", D, "a"), m("b", E, '""'), m("c", C, "")], {"a": ""})
    assert got == {"a": ("null", None), "b": ("null", None), "c": ("null", None)}


def test_on_create_mappings_apply_only_on_create() -> None:
    maps = [m("displayName", E, 'Join(" ", [givenName], [sn])', apply=ApplyMode.ON_CREATE)]
    assert outcomes(maps, {"givenName": "A", "sn": "B"}) == {"displayName": ("value", "A B")}
    ev = evaluate_mappings(maps, {"givenName": "A"}, create=False)
    assert ev.outcomes[0].kind is OutcomeKind.NOT_APPLIED
    assert ev.attributes == {}


def test_ignore_flow_does_not_flow() -> None:
    ev = evaluate_mappings([m("x", E, "IgnoreFlowIfNullOrEmpty([x])"), m("y", D, "y")], {})
    assert [o.kind for o in ev.outcomes] == [OutcomeKind.DOES_NOT_FLOW, OutcomeKind.NULL]
    assert ev.attributes == {"y": None}


def test_error_call_fails_only_its_mapping_with_the_message() -> None:
    ev = evaluate_mappings([m("userPrincipalName", E, UPN), m("sn", D, "sn")], {"sn": "Jensen"})
    upn = ev.by_target()["userPrincipalName"]
    assert upn.kind is OutcomeKind.ERROR and upn.raised and upn.error == "AccountName is not present"
    assert not ev.ok and ev.errors == (upn,)
    assert ev.attributes == {"sn": "Jensen"}


def test_the_upn_fallback_uses_the_domain_parameter() -> None:
    assert outcomes([m("userPrincipalName", E, UPN)], {"sAMAccountName": "alexw"}) == {
        "userPrincipalName": ("value", "alexw@contoso.com")
    }


def test_evaluation_errors_and_invalid_expressions_are_errors_too() -> None:
    ev = evaluate_mappings([m("a", E, "Item([x], 5)"), m("b", E, "Trim([x]")], {"x": ["one"]})
    a, b = ev.outcomes
    assert a.kind is OutcomeKind.ERROR and not a.raised and a.error
    assert b.kind is OutcomeKind.ERROR and b.error is not None and b.error.startswith("invalid expression")


def test_special_constants_take_the_configuration_parameters() -> None:
    maps = [m("dnsDomainName", C, "%DomainFQDN%"), m("other", C, "%Unknown%")]
    assert outcomes(maps, {}) == {"dnsDomainName": ("value", "contoso.com"), "other": ("value", "%Unknown%")}


def test_parse_results_are_cached_per_expression_text() -> None:
    text = 'Join("-", [a], [b], "cache-check")'
    assert parse(text) is parse(text)
    evaluator = MappingEvaluator([m("x", E, text)])
    assert evaluator.evaluate({"a": "1"}).outcomes[0].value == "1-cache-check"


def test_show_value() -> None:
    assert show_value(None) is None
    assert show_value("a") == "a"
    assert show_value(["a", 'b"c']) == '["a", "b\\"c"]'


# -- scope -------------------------------------------------------------------------------------------

OUS = Scope(
    ScopeKind.ORGANIZATIONAL_UNITS,
    ("OU=Sales,DC=contoso,DC=com", "OU=Zürich\\, Schweiz,OU=Offices,DC=contoso,DC=com"),
)


@pytest.mark.parametrize(
    ("dn", "inside"),
    [
        ("CN=Adele Vance,OU=Sales,DC=contoso,DC=com", True),
        ("cn=adele vance,ou=SALES,dc=Contoso,dc=COM", True),  # case-insensitive
        ("CN=Deep,OU=East,OU=Sales,DC=contoso,DC=com", True),  # nested OUs are in scope
        ("OU=Sales,DC=contoso,DC=com", True),  # the OU itself
        ("CN=Pat,OU=Presales,DC=contoso,DC=com", False),  # not at an RDN boundary
        ("CN=Pat,OU=Sales,DC=contoso,DC=org", False),
        ("CN=Lee\\,OU=Sales,DC=contoso,DC=com", False),  # the comma is part of the CN
        ("CN=Lidia,OU=Zürich\\, Schweiz,OU=Offices,DC=contoso,DC=com", True),
        ("CN=Lidia,OU=Z\\C3\\BCrich\\2C Schweiz,OU=Offices,DC=contoso,DC=com", True),  # hex escapes
        ("CN=Kim,OU=Offices,DC=contoso,DC=com", False),
        ("CN=Spaced, OU=Sales, DC=contoso, DC=com", True),  # lenient for hand-written DNs
    ],
)
def test_ou_scope_compares_whole_rdns(dn: str, inside: bool) -> None:
    assert check_scope(OUS, dn).in_scope is inside


def test_ou_scope_reason_names_the_ou() -> None:
    assert (
        check_scope(OUS, "CN=A,OU=Sales,DC=contoso,DC=com").reason
        == "in organizational unit OU=Sales,DC=contoso,DC=com"
    )
    out = check_scope(OUS, "CN=A,OU=Other,DC=contoso,DC=com")
    assert not out.in_scope and "OU=Sales,DC=contoso,DC=com" in out.reason


def test_group_scope_counts_direct_members_only() -> None:
    scope = Scope(ScopeKind.GROUPS, ("CN=Pilot,OU=Groups,DC=fabrikam,DC=com",))
    matcher = ScopeMatcher(scope)
    assert matcher.check("CN=N,DC=fabrikam,DC=com", ["cn=pilot,ou=groups,dc=fabrikam,dc=com"]).in_scope
    nested = matcher.check("CN=J,DC=fabrikam,DC=com", ["CN=Pilot Wave 2,OU=Groups,DC=fabrikam,DC=com"])
    assert not nested.in_scope and "nested" in nested.reason
    assert not matcher.check("CN=G,DC=fabrikam,DC=com").in_scope


def test_no_scope_holds_everything() -> None:
    assert check_scope(Scope.all(), "CN=Anyone,DC=x,DC=y").in_scope


def test_dn_compare_key_unescapes_and_folds() -> None:
    assert dn_compare_key("OU=A\\2CB,DC=X") == dn_compare_key("ou=a\\,b,dc=x")
    assert dn_compare_key("CN=A+UID=1,DC=x") == dn_compare_key("UID=1+CN=a,DC=X")
