"""The on-premises directory format: reading, every problem with its line, loading into a tenant."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.provisioning import ADELE, CONTOSO_DIR, FABRIKAM_DIR, ISAIAH, NESTOR, SALES_TEAM

from reconciler.errors import LoadError
from reconciler.provisioning.directory import load_into, parse_directory, read_directory, read_objects
from reconciler.tenant.store import TenantStore


def problems(text: str, **kw: bool) -> list[str]:
    with pytest.raises(LoadError) as info:
        parse_directory("d.yaml", text, **kw)
    return [str(d) for d in info.value.diagnostics]


def test_the_examples_read() -> None:
    d = read_directory(CONTOSO_DIR, FABRIKAM_DIR)
    by_dn = {o.dn: o for o in d.objects}
    adele = by_dn[ADELE]
    assert adele.object_type == "user"  # from objectClass, most specific last
    assert adele.attributes["userAccountControl"] == "512"
    assert adele.attributes["proxyAddresses"] == ["SMTP:AdeleV@contoso.com", "smtp:adele.vance@contoso.com"]
    # implied attributes
    assert adele.attributes["distinguishedName"] == ADELE and adele.attributes["cn"] == "Adele Vance"
    assert (SALES_TEAM, ADELE) in d.memberships()
    assert d.member_of(ISAIAH) == ["CN=Helpdesk,OU=Groups,DC=fabrikam,DC=com"]  # written with memberOf
    assert d.member_of(NESTOR) == ["CN=Cloud Sync Pilot,OU=Groups,DC=fabrikam,DC=com"]


def test_object_guid_is_derived_from_the_dn_when_not_written() -> None:
    text = "kind: Directory\nobjects:\n  - {dn: 'CN=A,DC=x,DC=y', type: user}\n"
    one = parse_directory("a.yaml", text).objects[0].attributes["objectGUID"]
    again = (
        parse_directory("b.yaml", text.replace("CN=A,DC=x", "cn=a,dc=X")).objects[0].attributes["objectGUID"]
    )
    assert one == again and len(str(one)) == 36


def test_every_problem_is_reported_with_its_line() -> None:
    text = """\
kind: Directory
domain: contoso.com
objectz: []
objects:
  - dn: CN=A,OU=Sales,DC=contoso,DC=com
    type: usr
  - dn: CN=B, OU=Sales,DC=contoso,DC=com
    type: user
  - dn: CN=C,DC=fabrikam,DC=com
    type: user
    memberz: []
  - dn: CN=D,DC=contoso,DC=com
    type: user
    members: ["CN=A,OU=Sales,DC=contoso,DC=com"]
    attributes: {nested: {a: 1}}
  - dn: CN=E,DC=contoso,DC=com
    type: user
    memberOf: [CN=G,OU=Groups,DC=contoso,DC=com]
"""
    assert problems(text) == [
        "d.yaml:3:1: unknown field 'objectz'; did you mean 'objects'?",
        "d.yaml:6:11: type must be one of user, inetOrgPerson, group, contact, organizationalUnit, "
        "container, not 'usr'; did you mean 'user'?",
        "d.yaml:7:14: dn is not a valid DN: unexpected space: "
        "RFC 4514 allows no spaces around ',' '+' or '='",
        "d.yaml:9:5: CN=C,DC=fabrikam,DC=com is not in the domain contoso.com",
        "d.yaml:11:5: unknown field 'memberz' of an object; did you mean 'members'?",
        "d.yaml:14:5: only a group has members",
        "d.yaml:15:26: attribute 'nested' must be a value or a list of values, not a nested structure",
        "d.yaml:18:16: memberOf[0] 'CN=G' looks like part of a DN: quote DNs in a [..] list",
        "d.yaml:18:21: memberOf[1] 'OU=Groups' looks like part of a DN: quote DNs in a [..] list",
        "d.yaml:18:31: memberOf[2] 'DC=contoso' looks like part of a DN: quote DNs in a [..] list",
        "d.yaml:18:42: memberOf[3] 'DC=com' looks like part of a DN: quote DNs in a [..] list",
    ]


def test_references_duplicates_and_types() -> None:
    text = """\
kind: Directory
objects:
  - {dn: "CN=G,DC=x,DC=y", type: group, members: ["CN=Missing,DC=x,DC=y"]}
  - {dn: "CN=U,DC=x,DC=y", objectClass: [top, person, user], memberOf: ["CN=V,DC=x,DC=y"]}
  - {dn: "CN=V,DC=x,DC=y", type: user}
  - {dn: "cn=v,dc=X,dc=Y", type: user}
"""
    assert problems(text) == [
        "d.yaml:3:5: member CN=Missing,DC=x,DC=y is not an object of the directory",
        "d.yaml:4:5: CN=V,DC=x,DC=y is a user, not a group",
        "d.yaml:6:5: duplicate object cn=v,dc=X,dc=Y (first given at d.yaml:5:5)",
    ]
    # Sample objects for preview may name groups that are not among them.
    assert (
        len(
            parse_directory("d.yaml", text.replace("cn=v,dc=X", "CN=V2,DC=x"), check_references=False).objects
        )
        == 4
    )


def test_object_types() -> None:
    text = """\
kind: Directory
objects:
  - {dn: "CN=W,DC=x,DC=y", objectClass: [top, computer]}
  - {dn: "CN=Z,DC=x,DC=y"}
  - {dn: "CN=G,DC=x,DC=y", type: group, members: ["CN=Z,DC=x,DC=y"]}
"""
    # The member that failed to read is not reported again as missing.
    assert problems(text) == [
        "d.yaml:3:41: objectClass must name one of user, inetOrgPerson, group, contact, organizationalUnit, "
        "container (the most specific class last)",
        "d.yaml:4:5: an object needs 'type' (one of user, inetOrgPerson, group, contact, organizationalUnit, "
        "container) or 'objectClass'",
    ]


def test_sample_objects_may_be_one_object_or_a_list(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("dn: CN=A,OU=Sales,DC=contoso,DC=com\ntype: user\nmemberOf: ['CN=Elsewhere,DC=x']\n")
    assert [o.dn for o in read_objects(one).objects] == ["CN=A,OU=Sales,DC=contoso,DC=com"]
    many = tmp_path / "many.yaml"
    many.write_text("- {dn: 'CN=A,DC=x', type: user}\n- {dn: 'CN=B,DC=x', type: contact}\n")
    assert [o.object_type for o in read_objects(many).objects] == ["user", "contact"]
    with pytest.raises(LoadError, match="cannot read the file"):
        read_objects(tmp_path / "missing.yaml")
    with pytest.raises(LoadError, match="kind: Directory"):
        read_directory(one)  # a whole directory needs its kind


def test_yaml_syntax_errors_are_load_errors() -> None:
    assert problems("kind: Directory\nobjects: [\n")[0].startswith("d.yaml:")


def test_load_replaces_or_merges(tmp_path: Path) -> None:
    store = TenantStore(tmp_path / "t.db")
    try:
        summary = load_into(store, read_directory(CONTOSO_DIR))
        assert summary.objects == 13 and summary.memberships == 2 and summary.removed == 0
        assert dict(summary.by_type) == {"group": 1, "organizationalUnit": 6, "user": 6}
        assert store.list_members(SALES_TEAM) == [ADELE, "CN=Megan Bowen,OU=Sales,DC=contoso,DC=com"]

        fabrikam = read_directory(FABRIKAM_DIR)
        load_into(store, fabrikam, replace=False)
        assert store.get_onprem_object(ADELE) is not None  # merged: contoso kept
        assert store.member_of(ISAIAH) == ["CN=Helpdesk,OU=Groups,DC=fabrikam,DC=com"]

        summary = load_into(store, fabrikam)  # replace: only fabrikam is left
        assert summary.removed == 13
        assert store.get_onprem_object(ADELE) is None and store.list_members(SALES_TEAM) == []
        assert {o["objectType"] for o in store.list_onprem_objects()} == {
            "user",
            "group",
            "organizationalUnit",
        }
    finally:
        store.close()
