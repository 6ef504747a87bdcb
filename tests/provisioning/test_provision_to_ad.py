"""Provisioning on demand Entra ID -> AD: one cloud group and up to five of its members, through the
real CLI on the local tenant (the group lands in the tenant's on-premises directory), and the
documented limit of five members refused before anything is asked of the target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.provisioning import Run

from reconciler.cli.errors import EXIT_USAGE
from reconciler.tenant.store import TenantStore

GROUP = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"
ANN = "6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5b"  # a cloud user with an AD account
NEW = "7b2e1d4f-3c5e-4f6a-9b0c-1d2e3f4a5b6c"  # a cloud-only user: no AD account, not written
ANN_DN = "CN=Ann Lee,OU=Staff,DC=contoso,DC=com"
CONFIG = f"""\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: contoso-groups
spec:
  direction: entraToAd
  domain: contoso.com
  notificationEmail: ops@contoso.com
  scope:
    selectedGroups: [{GROUP}]
  targetContainer: OU=Cloud Groups,DC=contoso,DC=com
  attributeMappings:
    group:
      - target: sAMAccountName
        expression: 'Join("_", [displayName], "Cloud")'
"""


def _decoded(out: str) -> tuple[dict[str, Any], dict[str, Any]]:
    response = json.loads(out)
    return json.loads(response["key"]), json.loads(response["value"])


def _tenant(project: Path, run: Run) -> TenantStore:
    (project / "configs").mkdir()
    (project / "configs" / "contoso-groups.yaml").write_text(CONFIG)
    r = run("apply", project / "configs", "--auto-approve")
    assert r.code == 0, r.err + r.out
    store = TenantStore(project / "tenant.db")
    store.put_cloud_object(GROUP, "Group", {"displayName": "Finance Approvers", "description": "Approvers"})
    store.put_onprem_object(ANN_DN, "user", {"displayName": "Ann Lee", "objectGUID": ANN})
    store.put_cloud_object(ANN, "User", {"displayName": "Ann Lee", "onPremisesDistinguishedName": ANN_DN})
    store.put_cloud_object(NEW, "User", {"displayName": "New Hire"})
    return store


def test_a_group_and_its_members_with_an_ad_account_are_written_to_ad(project: Path, run: Run) -> None:
    store = _tenant(project, run)
    args = ("provision", "contoso-groups", "--subject", GROUP, "--type", "group")
    r = run(*args, "--member", ANN, "--member", NEW, "--format", "json")
    assert r.code == 0, r.err
    key, log = _decoded(r.out)
    assert key["result"] == "Success"
    assert [(s["type"], s["status"]) for s in log["provisioningSteps"]] == [
        ("Import", "Success"),
        ("Scoping", "Success"),
        ("Matching", "Success"),
        ("Export", "Success"),
    ]
    assert log["provisioningSteps"][0]["details"]["membersWithoutAnADAccount"] == NEW
    (group,) = store.list_onprem_objects("group")
    # Where the target container says, named by the template's cn expression, joined as the docs say.
    assert group["dn"].endswith(",OU=Cloud Groups,DC=contoso,DC=com")
    assert group["attributes"]["msDS-ExternalDirectoryObjectId"] == f"Group_{GROUP}"
    assert group["attributes"]["sAMAccountName"] == "Finance Approvers_Cloud"
    assert store.list_members(group["dn"]) == [ANN_DN]

    # Again: nothing to change.
    r = run(*args, "--member", ANN, "--format", "json")
    key, log = _decoded(r.out)
    assert key["result"] == "Skipped" and r.code == 0


def test_more_than_five_members_are_refused_before_the_target_is_asked(project: Path, run: Run) -> None:
    members = [arg for i in range(6) for arg in ("--member", f"00000000-0000-0000-0000-00000000000{i}")]
    # No configuration and no tenant exist: the limit is said before either is looked at.
    r = run("provision", "contoso-groups", "--subject", GROUP, "--type", "group", *members)
    assert r.code == EXIT_USAGE
    assert "at most 5 members" in r.err
    assert not (project / "tenant.db").exists()


def test_members_and_types_that_do_not_apply_are_refused(project: Path, run: Run) -> None:
    _tenant(project, run)
    r = run("provision", "contoso-groups", "--subject", GROUP, "--type", "contact")
    assert r.code == EXIT_USAGE and "group" in r.err
    r = run("provision", "contoso-groups", "--subject", "nobody", "--type", "group", "--format", "json")
    key, _log = _decoded(r.out)
    assert key["result"] == "Failure" and r.code == 1
