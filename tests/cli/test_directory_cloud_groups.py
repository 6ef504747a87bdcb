"""``reconciler directory load`` and ``list`` with cloud groups, as child processes on a real tenant file:
the load message counts them, ``list`` shows them after the on-premises objects (text and JSON, with
``--type``), a hostile display name is printed escaped, and a bad file changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.tenant.store import TenantStore
from reconciler.testing.commands import Result, child_env, cli

FINANCE = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"
ATLAS = "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d"
U1, U2 = "3f8a1c2e-5b7d-4e9f-a1c3-5e7f9b1d3a01", "3f8a1c2e-5b7d-4e9f-a1c3-5e7f9b1d3a02"

DIRECTORY = f"""\
kind: Directory
objects:
  - {{dn: "CN=Ann,DC=contoso,DC=com", type: user}}
  - {{dn: "CN=Staff,DC=contoso,DC=com", type: group, members: ["CN=Ann,DC=contoso,DC=com"]}}
cloudGroups:
  - id: {FINANCE.upper()}
    displayName: "Finance\\e[31m Approvers"
    members: [{U1}, {U2}]
  - {{id: {ATLAS}, displayName: Project Atlas, description: Atlas, members: [{U2}]}}
"""


def _run(folder: Path, *args: str) -> Result:
    result = cli(folder, *args, "--target", f"local:{folder / 'tenant.db'}", env=child_env(folder))
    assert not result.hung and "Traceback" not in result.err, result.describe()
    return result


def test_load_and_list_show_the_cloud_groups(tmp_path: Path) -> None:
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    r = _run(tmp_path, "directory", "load", "directory.yaml")
    assert r.code == 0, r.err
    assert r.out.startswith(
        "Loaded 2 objects (1 group, 1 user) and 1 memberships, and 2 cloud groups (3 members) into local:"
    )

    r = _run(tmp_path, "directory", "list")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "user               CN=Ann,DC=contoso,DC=com",
        "group              CN=Staff,DC=contoso,DC=com  (1 members)",
        f"cloud group        {FINANCE}  Finance\\x1b[31m Approvers  (2 members)",  # escaped, not obeyed
        f"cloud group        {ATLAS}  Project Atlas  (1 members)",
    ]
    r = _run(tmp_path, "directory", "list", "--type", "user")
    assert r.code == 0 and "cloud group" not in r.out and "CN=Ann" in r.out
    r = _run(tmp_path, "directory", "list", "--type", "group")
    assert [line.split()[0] for line in r.out.splitlines()] == ["group", "cloud", "cloud"]

    r = _run(tmp_path, "directory", "list", "--format", "json")
    assert r.code == 0 and "\x1b" not in r.out
    rows = json.loads(r.out)
    assert [row.get("dn") or row["id"] for row in rows] == [
        "CN=Ann,DC=contoso,DC=com",
        "CN=Staff,DC=contoso,DC=com",
        FINANCE,
        ATLAS,
    ]
    assert rows[2] == {
        "id": FINANCE,
        "objectType": "Group",
        "attributes": {
            "displayName": "Finance\x1b[31m Approvers",
            "securityEnabled": True,
            "mailEnabled": False,
            "members": [U1, U2],
        },
    }
    assert rows[3]["attributes"]["description"] == "Atlas"

    # Replacing with a file that lists Atlas only removes Finance Approvers, and says so.
    (tmp_path / "atlas.yaml").write_text(
        f"kind: Directory\ncloudGroups:\n  - {{id: {ATLAS}, displayName: A}}\n"
    )
    r = _run(tmp_path, "directory", "load", "atlas.yaml")
    assert r.code == 0 and "; removed 2 objects and 1 cloud group that are not in the files" in r.out, r.out
    r = _run(tmp_path, "directory", "list")
    assert r.out.splitlines() == [f"cloud group        {ATLAS}  A  (0 members)"]


def test_a_bad_cloud_group_is_an_error_with_file_and_line_and_nothing_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    assert _run(tmp_path, "directory", "load", "directory.yaml").code == 0
    (tmp_path / "bad.yaml").write_text(
        f"kind: Directory\ncloudGroups:\n  - id: {ATLAS}\n    displayName: B\n    member: [{U1}]\n"
        "    onPremisesSyncEnabled: yes please\n"
    )
    r = _run(tmp_path, "directory", "load", "bad.yaml")
    assert r.code == 1, r.out + r.err
    assert "bad.yaml:5:5: unknown field 'member' of a cloud group; did you mean 'members'?" in r.err
    assert "bad.yaml:6:28: cloudGroups: onPremisesSyncEnabled must be true or false" in r.err
    assert "Traceback" not in r.err
    store = TenantStore(tmp_path / "tenant.db")
    try:
        assert store.directory_cloud_ids() == [FINANCE, ATLAS]  # as the good load left them
        assert len(store.list_onprem_objects()) == 2
    finally:
        store.close()
