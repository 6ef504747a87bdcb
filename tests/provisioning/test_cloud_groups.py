"""``cloudGroups`` of a directory file: reading (each problem with its line), loading into a real tenant
file, replace and merge, and the cloud objects on-demand provisioning wrote, which a load never removes."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.provisioning import ADELE, CONTOSO_DIR, FABRIKAM_DIR, Run

from reconciler.errors import LoadError
from reconciler.provisioning.directory import load_into, parse_directory, read_directory
from reconciler.tenant.store import TenantStore

FINANCE = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"
ATLAS = "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d"
U1, U2, U3 = (f"3f8a1c2e-5b7d-4e9f-a1c3-5e7f9b1d3a0{i}" for i in (1, 2, 3))
WRITEBACK = "extension_9d2f1c0b7e3a4b5c8d6e7f8091a2b3c4_WritebackEnabled"  # a directory extension
CODES = "extension_9d2f1c0b7e3a4b5c8d6e7f8091a2b3c4_Codes"  # a multi-valued one


def problems(text: str) -> list[str]:
    with pytest.raises(LoadError) as info:
        parse_directory("d.yaml", text)
    return [str(d) for d in info.value.diagnostics]


def groups_file(path: Path, *groups: str) -> Path:
    """A directory file of cloud groups only: each ``groups`` entry is one YAML flow mapping."""
    path.write_text("kind: Directory\ncloudGroups:\n" + "".join(f"  - {g}\n" for g in groups))
    return path


def test_the_example_holds_the_groups_contoso_groups_selects() -> None:
    d = read_directory(CONTOSO_DIR, FABRIKAM_DIR)
    finance, atlas = d.cloud_groups
    assert (finance.id, finance.display_name) == (FINANCE, "Finance Approvers")
    assert (atlas.id, atlas.display_name, atlas.description) == (ATLAS, "Project Atlas", None)
    assert finance.members == (U1, U2, U3)  # in file order
    assert set(finance.members) & set(atlas.members) == {U3}
    selected = (CONTOSO_DIR.parents[1] / "configs" / "contoso-groups.yaml").read_text()
    assert FINANCE in selected and ATLAS in selected


def test_ids_are_kept_in_lowercase_members_default_to_none_and_objects_may_be_left_out() -> None:
    text = f"""\
kind: Directory
cloudGroups:
  - id: {FINANCE.upper()}
    displayName: Finance Approvers
    description: Approvers
    members: [{U2.upper()}, {U1}]
  - {{id: {ATLAS}, displayName: Project Atlas}}
"""
    finance, atlas = parse_directory("d.yaml", text).cloud_groups
    assert finance.id == FINANCE and finance.members == (U2, U1)
    assert finance.attributes() == {
        "displayName": "Finance Approvers",
        "description": "Approvers",
        "securityEnabled": True,
        "mailEnabled": False,
        "members": [U2, U1],
    }
    assert atlas.members == () and "description" not in atlas.attributes()
    assert str(finance.origin) == "d.yaml:3:5"


def test_optional_group_properties_are_stored_with_the_group(tmp_path: Path) -> None:
    text = f"""\
kind: Directory
cloudGroups:
  - id: {FINANCE}
    displayName: Finance Approvers
    onPremisesSyncEnabled: true
    mailNickname: finance-approvers
    mail: finance-approvers@contoso.com
    classification: High
    visibility: Private
    isAssignableToRole: false
    {WRITEBACK}: true
    {CODES}: [a, 7]
  - {{id: {ATLAS}, displayName: Project Atlas}}
"""
    path = tmp_path / "d.yaml"
    path.write_text(text)
    store = TenantStore(tmp_path / "t.db")
    try:
        load_into(store, read_directory(path))
        finance, atlas = (store.get_cloud_object(g) for g in (FINANCE, ATLAS))
        assert finance is not None and atlas is not None
        assert finance["attributes"] == {
            "displayName": "Finance Approvers",
            "mailNickname": "finance-approvers",
            "mail": "finance-approvers@contoso.com",
            "classification": "High",
            "visibility": "Private",
            "isAssignableToRole": False,
            "onPremisesSyncEnabled": True,
            WRITEBACK: True,
            CODES: ["a", 7],
            "securityEnabled": True,
            "mailEnabled": False,
            "members": [],
        }
        assert set(atlas["attributes"]) == {"displayName", "securityEnabled", "mailEnabled", "members"}
    finally:
        store.close()


def test_an_optional_group_property_of_the_wrong_type_is_an_error_with_its_line() -> None:
    text = f"""\
kind: Directory
cloudGroups:
  - id: {FINANCE}
    displayName: A
    mailNickname: 42
    mail: [a]
    classification: true
    visibility: {{x: 1}}
    isAssignableToRole: "yes"
    onPremisesSyncEnabled: 1
    visibilty: Private
    {WRITEBACK}: {{x: 1}}
    {CODES}: []
    extension_nothex_x: 1
"""
    assert problems(text) == [
        "d.yaml:5:19: cloudGroups: mailNickname must be a text, not '42'",
        "d.yaml:6:11: cloudGroups: mail must be a text, not a list",
        "d.yaml:7:21: cloudGroups: classification must be a text, not 'True'",
        "d.yaml:8:17: cloudGroups: visibility must be a text, not a mapping",
        "d.yaml:9:25: cloudGroups: isAssignableToRole must be true or false, not 'yes'",
        "d.yaml:10:28: cloudGroups: onPremisesSyncEnabled must be true or false, not '1'",
        "d.yaml:11:5: unknown field 'visibilty' of a cloud group; did you mean 'visibility'?",
        f"d.yaml:12:{len(WRITEBACK) + 7}: cloudGroups: {WRITEBACK} must be a text, a number, true or false, "
        "or a list of texts or numbers, not a mapping",
        f"d.yaml:13:{len(CODES) + 7}: cloudGroups: {CODES} must be a text, a number, true or false, "
        "or a list of texts or numbers, not a list",
        "d.yaml:14:5: unknown field 'extension_nothex_x' of a cloud group",
    ]


def test_every_problem_is_reported_with_its_line() -> None:
    text = f"""\
kind: Directory
cloudGroup: []
objects: []
cloudGroups:
  - id: not-a-guid
    displayName: A
  - displayName: B
    members: [{U1}, 42, {U1.upper()}]
  - id: {ATLAS}
    displayName: ""
    description: [x]
    memberz: []
  - id: {FINANCE}
    displayName: D
    members: {U1}
  - just text
  - id: {FINANCE.upper()}
    displayName: Twice
"""
    assert problems(text) == [
        "d.yaml:2:1: unknown field 'cloudGroup'; did you mean 'cloudGroups'?",
        "d.yaml:5:9: cloudGroups: id must be the group's object id (a GUID), not 'not-a-guid'",
        "d.yaml:7:5: cloudGroups: id must be the group's object id (a GUID), not nothing",
        "d.yaml:8:53: cloudGroups: members[1] is not an object id (a GUID): '42'",
        f"d.yaml:8:57: cloudGroups: member {U1.upper()} is listed twice (first at line 8, column 15)",
        "d.yaml:10:18: cloudGroups: displayName must be a non-empty text, not ''",
        "d.yaml:11:18: cloudGroups: description must be a text, not a list",
        "d.yaml:12:5: unknown field 'memberz' of a cloud group; did you mean 'members'?",
        f"d.yaml:15:14: cloudGroups: members must be a list of object ids, not '{U1}'",
        "d.yaml:16:5: a cloudGroups entry is a mapping with id, displayName and members, not 'just text'",
    ]
    # Once the groups read, an id given twice (in any case) is the one problem left.
    good = text.replace("not-a-guid", U2).replace(
        "  - displayName: B\n", f"  - id: {U3}\n    displayName: B\n"
    )
    good = good.replace(f", 42, {U1.upper()}", "").replace("cloudGroup: []\n", "")
    good = good.replace('""', "C").replace("[x]", "x").replace("memberz", "members")
    good = good.replace(f"members: {U1}", f"members: [{U1}]").replace("  - just text\n", "")
    assert problems(good) == [
        f"d.yaml:16:5: cloudGroups: the group {FINANCE} is listed twice (first at d.yaml:13:5)"
    ]


def test_cloud_groups_must_be_a_list_and_a_file_needs_objects_or_cloud_groups() -> None:
    assert problems("kind: Directory\ncloudGroups: {id: x}\n") == [
        "d.yaml:2:14: cloudGroups must be a list of {id, displayName, members}, not a mapping"
    ]
    assert problems("kind: Directory\n") == ["d.yaml:1:1: missing field 'objects'"]
    assert parse_directory("d.yaml", "kind: Directory\ncloudGroups: []\n").cloud_groups == ()


def test_an_id_listed_in_two_files_is_an_error_naming_both(tmp_path: Path) -> None:
    one = groups_file(tmp_path / "one.yaml", f"{{id: {FINANCE}, displayName: A}}")
    two = groups_file(
        tmp_path / "two.yaml",
        f"{{id: {ATLAS}, displayName: B}}",
        f"{{id: {FINANCE.upper()}, displayName: C}}",
    )
    with pytest.raises(LoadError) as info:
        read_directory(one, two)
    assert [str(d) for d in info.value.diagnostics] == [
        f"{two}:4:5: cloudGroups: the group {FINANCE} is listed twice (first at {one}:3:5)"
    ]


def test_a_group_over_the_documented_member_limit_loads(tmp_path: Path) -> None:
    """50,000 members is the documented limit of a group provisioned to AD: a file must be able to go
    over it, for the check of that limit to be tried on the local tenant."""
    members = [str(uuid.UUID(int=i)) for i in range(1, 50_002)]
    path = tmp_path / "big.yaml"
    body = "".join(f"      - {m}\n" for m in members)
    path.write_text(
        f"kind: Directory\ncloudGroups:\n  - id: {FINANCE}\n    displayName: Big\n    members:\n{body}"
    )
    directory = read_directory(path)
    store = TenantStore(tmp_path / "t.db")
    try:
        summary = load_into(store, directory)
        assert (summary.cloud_groups, summary.cloud_members) == (1, 50_001)
        stored = store.get_cloud_object(FINANCE)
        assert stored is not None and stored["attributes"]["members"] == members
    finally:
        store.close()
    # A member given twice is found however long the list is.
    path.write_text(path.read_text() + f"      - {members[7].upper()}\n")
    with pytest.raises(
        LoadError, match=f"big.yaml:50007:9: cloudGroups: member {members[7].upper()} is listed twice"
    ):
        read_directory(path)


def test_replace_removes_the_groups_a_load_wrote_and_merge_keeps_them(tmp_path: Path) -> None:
    first = groups_file(tmp_path / "first.yaml", f"{{id: {FINANCE}, displayName: A, members: [{U1}]}}")
    second = groups_file(tmp_path / "second.yaml", f"{{id: {ATLAS}, displayName: B, members: [{U2}, {U3}]}}")
    store = TenantStore(tmp_path / "t.db")
    try:
        provisioned = "7d0e5c1a-0000-4000-8000-00000000abcd"  # as on-demand provisioning writes one
        store.put_cloud_object(provisioned, "User", {"displayName": "Adele Vance"})
        load_into(store, read_directory(first))
        summary = load_into(store, read_directory(second), replace=False)
        assert summary.removed_cloud_groups == 0 and store.directory_cloud_ids() == [FINANCE, ATLAS]
        summary = load_into(store, read_directory(second))
        assert summary.removed_cloud_groups == 1 and store.directory_cloud_ids() == [ATLAS]
        assert store.get_cloud_object(FINANCE) is None
        assert store.get_cloud_object(provisioned) is not None  # never a load's to remove
        summary = load_into(store, read_directory(FABRIKAM_DIR))  # no cloud groups at all
        assert summary.removed_cloud_groups == 1 and store.directory_cloud_ids() == []
        assert [o["id"] for o in store.list_cloud_objects()] == [provisioned]
    finally:
        store.close()


def test_a_tenant_file_from_before_the_cloud_groups_gains_them(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    TenantStore(db).close()
    with sqlite3.connect(db) as conn:  # the file as an earlier version left it
        conn.execute("DROP TABLE directory_cloud_objects")
        conn.execute(
            "INSERT INTO cloud_objects (id, object_type, attributes, created, modified) "
            "VALUES ('old-user', 'User', '{}', 'x', 'x')"
        )
    store = TenantStore(db)
    try:
        summary = load_into(store, read_directory(CONTOSO_DIR))
        assert summary.cloud_groups == 2 and store.directory_cloud_ids() == [FINANCE, ATLAS]
        load_into(store, read_directory(FABRIKAM_DIR))
        assert [o["id"] for o in store.list_cloud_objects()] == ["old-user"]
    finally:
        store.close()


def test_a_load_never_removes_what_on_demand_provisioning_wrote(tenant: Path, run: Run) -> None:
    """Through the real CLI on a real tenant file: the example directory is loaded and the example
    configurations applied (fixture), contoso provisions Adele into the cloud, contoso-groups provisions
    a loaded cloud group into AD; reloading another directory removes the cloud groups only."""
    r = run("provision", "contoso", "--subject", ADELE)
    assert r.code == 0, r.out + r.err
    r = run("provision", "contoso-groups", "--type", "group", "--subject", FINANCE.upper())
    assert r.code == 0 and "Retrieved group 'Finance Approvers'" in r.out, r.out + r.err
    store = TenantStore(tenant / "tenant.db")
    try:
        (adele,) = store.list_cloud_objects("User")
        assert {g["id"] for g in store.list_cloud_objects("Group")} == {FINANCE, ATLAS}
    finally:
        store.close()
    # The 13 objects of contoso.yaml go, and the AD group provisioning wrote from Finance Approvers.
    r = run("directory", "load", FABRIKAM_DIR)
    assert r.code == 0 and "removed 14 objects and 2 cloud groups that are not in the files" in r.out, r.out
    store = TenantStore(tenant / "tenant.db")
    try:
        assert [o["id"] for o in store.list_cloud_objects()] == [adele["id"]]
    finally:
        store.close()


_GUIDS = st.uuids().map(str)


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(_GUIDS, min_size=1, max_size=6, unique=True), data=st.data())
def test_ids_in_any_case_read_as_one_id(ids: list[str], data: st.DataObject) -> None:
    def any_case(text: str) -> str:
        flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
        return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))

    written = [any_case(i) for i in ids]
    text = (
        f"kind: Directory\ncloudGroups:\n  - {{id: {any_case(ids[0])}, displayName: G, members: [MEMBERS]}}\n"
    )
    (group,) = parse_directory("d.yaml", text.replace("MEMBERS", ", ".join(written))).cloud_groups
    assert group.id == ids[0] and group.members == tuple(ids)
    again = any_case(ids[0])
    found = problems(text.replace("MEMBERS", ", ".join([*written, again])))
    assert len(found) == 1 and f"member {again} is listed twice" in found[0]
