"""Distinguished names (RFC 4514): what parses, what does not and why, domains and comparison keys."""

from __future__ import annotations

import pytest

from reconciler.config.dn import DNError, dn_domain, dn_key, parse_dn


@pytest.mark.parametrize(
    ("text", "rdns"),
    [
        ("OU=Sales,DC=contoso,DC=com", ((("OU", "Sales"),), (("DC", "contoso"),), (("DC", "com"),))),
        ("CN=Smith\\, John,DC=x,DC=y", ((("CN", "Smith, John"),), (("DC", "x"),), (("DC", "y"),))),
        ("OU=Zürich,DC=x", ((("OU", "Zürich"),), (("DC", "x"),))),
        ("OU=Z\\C3\\BCrich,DC=x", ((("OU", "Zürich"),), (("DC", "x"),))),
        ("CN=a+UID=b,DC=x", ((("CN", "a"), ("UID", "b")), (("DC", "x"),))),
        ("OU=\\ lead\\#x\\ ,DC=x", ((("OU", " lead#x "),), (("DC", "x"),))),
        ("OU=a=b,DC=x", ((("OU", "a=b"),), (("DC", "x"),))),
        ("OU=R&D (EU),DC=x", ((("OU", "R&D (EU)"),), (("DC", "x"),))),
        ("2.5.4.11=Sales,DC=x", ((("2.5.4.11", "Sales"),), (("DC", "x"),))),
        ("CN=#04024869,DC=x", ((("CN", "#04024869"),), (("DC", "x"),))),
        ("OU=\\\\back,DC=x", ((("OU", "\\back"),), (("DC", "x"),))),
    ],
)
def test_valid_dns(text: str, rdns: object) -> None:
    assert parse_dn(text) == rdns


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("", "a DN cannot be empty", 0),
        ("OU=Sales, DC=contoso", "unexpected space: RFC 4514 allows no spaces around ',' '+' or '='", 9),
        ("OU =Sales", "unexpected space: RFC 4514 allows no spaces around ',' '+' or '='", 2),
        ("OU= Sales", "unexpected space: RFC 4514 allows no spaces around ',' '+' or '='", 3),
        ("OU=Sales ,DC=x", "a trailing space must be escaped as '\\ ' (or removed)", 8),
        ("OU=Sales,", "expected an attribute type such as OU or DC, found the end", 9),
        ("Sales", "expected '=' after 'Sales'", 5),
        ("OU=,DC=x", "empty attribute value", 3),
        ("OU=a;b,DC=x", "';' must be escaped as '\\;'", 4),
        ('OU="quoted",DC=x', "'\"' must be escaped as '\\\"'", 3),
        ("OU=a<b", "'<' must be escaped as '\\<'", 4),
        ("OU=a\\qb", "'\\' must be followed by a special character or two hexadecimal digits", 4),
        ("OU=\\FF,DC=x", "hexadecimal escapes do not form UTF-8 text", 3),
        ("OU=#zz", "'#' starts a hexadecimal value; escape it as '\\#' for a literal '#'", 3),
        ("OU=a\tb", "control characters are not allowed", 4),
        ("=Sales", "expected an attribute type such as OU or DC, found '='", 0),
    ],
)
def test_invalid_dns(text: str, message: str, offset: int) -> None:
    with pytest.raises(DNError) as info:
        parse_dn(text)
    assert (info.value.message, info.value.offset) == (message, offset)


def test_domain_comes_from_the_trailing_dc_parts() -> None:
    assert dn_domain(parse_dn("OU=Sales,DC=contoso,DC=com")) == "contoso.com"
    assert dn_domain(parse_dn("OU=Sales,DC=emea,DC=contoso,DC=com")) == "emea.contoso.com"
    assert dn_domain(parse_dn("DC=x,OU=Sales,DC=contoso,DC=com")) == "contoso.com"
    assert dn_domain(parse_dn("OU=Sales,O=Contoso")) == ""


def test_comparison_ignores_case_and_escaping_style() -> None:
    assert dn_key(parse_dn("ou=sales,dc=Contoso,dc=COM")) == dn_key(parse_dn("OU=Sales,DC=contoso,DC=com"))
    assert dn_key(parse_dn("OU=a\\2Cb,DC=x")) == dn_key(parse_dn("OU=a\\,b,DC=x"))
    assert dn_key(parse_dn("CN=a+UID=b,DC=x")) == dn_key(parse_dn("UID=b+CN=a,DC=x"))
    assert dn_key(parse_dn("OU=Sales,DC=x")) != dn_key(parse_dn("OU=Sales2,DC=x"))
