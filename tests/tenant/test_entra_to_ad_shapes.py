"""The Entra ID -> AD shapes the local tenant and the emulator hand out (inferred; docs/graph.md): the
group provisioning application template, its one job template, the job's schema built from the
documented default mappings, and app-role assignments ("selected groups") on the configuration's
principal. Over the emulator through real HTTP as well as on the store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from reconciler.core.model import Direction
from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.errors import ConflictError, NotFoundError, ProviderError
from reconciler.graph.identity import (
    GROUP_PROVISIONING_TEMPLATE,
    GROUP_TEMPLATE_APP_ID,
    PROVISIONING_TEMPLATE,
)
from reconciler.graph.reading import read_schema, template_defaults_for
from reconciler.tenant.store import TenantStore

ROLE = "1a0abf4d-b9fa-4512-a3a2-51ee82c6fd9f"  # the public cloud's role (cloud-sync-directions.md 1.3)
GROUP = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"


def test_the_store_makes_group_provisioning_principals_jobs_and_assignments(tmp_path: Path) -> None:
    store = TenantStore(tmp_path / "t.db")
    sp = store.instantiate("contoso.com", GROUP_TEMPLATE_APP_ID)["servicePrincipal"]
    assert [t["id"] for t in store.list_templates(sp["id"])] == [GROUP_PROVISIONING_TEMPLATE]
    with pytest.raises(ProviderError, match="not a template of this application"):
        store.create_job(sp["id"], PROVISIONING_TEMPLATE)
    job = store.create_job(sp["id"], GROUP_PROVISIONING_TEMPLATE)
    _scope, rows, *_ = read_schema(store.get_schema(sp["id"], job["id"]))
    # Users (preview) start switched off: their rows are read only once a configuration asks for them.
    groups = tuple(m for m in template_defaults_for(Direction.ENTRA_TO_AD) if m.object == "group")
    assert rows == groups
    assert {m.object for m in template_defaults_for(Direction.ENTRA_TO_AD)} == {"group", "user"}
    assert {m.target for m in rows if m.object == "group"} >= {"member", "parentDistinguishedName", "cn"}

    made = store.assign_app_role(sp["id"], GROUP, ROLE)
    assert store.list_app_role_assignments(sp["id"]) == [made]
    with pytest.raises(ConflictError):
        store.assign_app_role(sp["id"], GROUP, ROLE)
    store.remove_app_role_assignment(sp["id"], made["id"])
    assert store.list_app_role_assignments(sp["id"]) == []
    with pytest.raises(NotFoundError):
        store.remove_app_role_assignment(sp["id"], made["id"])
    store.assign_app_role(sp["id"], GROUP, ROLE)
    store.delete_service_principal(sp["id"])
    with pytest.raises(NotFoundError):
        store.list_app_role_assignments(sp["id"])


def test_the_emulator_hands_out_the_inferred_template_and_job_schema(tmp_path: Path) -> None:
    token = "t0ken-entra-to-ad"
    emulator = Emulator(tmp_path / "t.db", EmulatorConfig(token=token)).start()
    try:
        with httpx.Client(base_url=emulator.url + "/v1.0", headers={"Authorization": f"Bearer {token}"}) as c:
            made = c.post(
                f"/applicationTemplates/{GROUP_TEMPLATE_APP_ID}/instantiate", json={"displayName": "x"}
            )
            assert made.status_code == 201, made.text
            sp_id = made.json()["servicePrincipal"]["id"]
            templates = c.get(f"/servicePrincipals/{sp_id}/synchronization/templates").json()["value"]
            assert [t["id"] for t in templates] == [GROUP_PROVISIONING_TEMPLATE]
            job = c.post(
                f"/servicePrincipals/{sp_id}/synchronization/jobs",
                json={"templateId": GROUP_PROVISIONING_TEMPLATE},
            )
            assert job.status_code == 201, job.text
            schema = c.get(
                f"/servicePrincipals/{sp_id}/synchronization/jobs/{job.json()['id']}/schema"
            ).json()
            (rule,) = schema["synchronizationRules"]
            assert (rule["sourceDirectoryName"], rule["targetDirectoryName"]) == (
                "Azure Active Directory",
                "Active Directory",
            )
            groups = [m for m in template_defaults_for(Direction.ENTRA_TO_AD) if m.object == "group"]
            assert list(read_schema(schema)[1]) == groups
    finally:
        emulator.stop()


ASSIGNMENT_PROPERTIES = {
    "id",
    "appRoleId",
    "createdDateTime",
    "deletedDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
}


def test_the_emulator_answers_app_templates_and_app_role_assignments_as_documented(tmp_path: Path) -> None:
    # v1.0: "Get applicationTemplate", "servicePrincipal: list appRoleAssignedTo", "Grant an
    # appRoleAssignment for a service principal", "Delete appRoleAssignedTo".
    token = "t0ken-assignments"
    emulator = Emulator(tmp_path / "t.db", EmulatorConfig(token=token)).start()
    try:
        with httpx.Client(base_url=emulator.url + "/v1.0", headers={"Authorization": f"Bearer {token}"}) as c:
            template = c.get(f"/applicationTemplates/{GROUP_TEMPLATE_APP_ID}")
            assert template.status_code == 200 and template.json()["id"] == GROUP_TEMPLATE_APP_ID
            assert c.get("/applicationTemplates/00000000-0000-0000-0000-000000000000").status_code == 404
            listed = c.get("/applicationTemplates").json()["value"]
            assert GROUP_TEMPLATE_APP_ID in {t["id"] for t in listed}

            made = c.post(
                f"/applicationTemplates/{GROUP_TEMPLATE_APP_ID}/instantiate", json={"displayName": "x"}
            ).json()["servicePrincipal"]
            sp_id = made["id"]
            (role,) = [r["id"] for r in made["appRoles"]]
            assert role == ROLE
            path = f"/servicePrincipals/{sp_id}/appRoleAssignedTo"
            body = {"principalId": GROUP, "resourceId": sp_id, "appRoleId": role}
            created = c.post(path, json=body)
            assert created.status_code == 201, created.text
            assignment = created.json()
            assert set(assignment) - {"@odata.context"} == ASSIGNMENT_PROPERTIES
            assert (assignment["principalId"], assignment["resourceId"], assignment["appRoleId"]) == (
                GROUP,
                sp_id,
                role,
            )
            assert assignment["principalType"] == "Group" and assignment["resourceDisplayName"] == "x"

            # Refused with 400: the same assignment again, a role the principal does not list, another
            # resource, a missing id, a property appRoleAssignment does not have.
            other = "11111111-2222-3333-4444-555555555555"
            for bad in (
                body,
                {**body, "appRoleId": other},
                {**body, "resourceId": other},
                {"principalId": GROUP, "resourceId": sp_id},
                {**body, "principalId": GROUP.replace("0b", "0c"), "colour": "blue"},
            ):
                refused = c.post(path, json=bad)
                assert refused.status_code == 400, (bad, refused.text)
                # The metadata check answers BadRequest once it knows the type; the handler's own,
                # Request_BadRequest.
                assert refused.json()["error"]["code"] in ("BadRequest", "Request_BadRequest")

            page = c.get(path).json()
            assert [a["id"] for a in page["value"]] == [assignment["id"]]
            assert page["@odata.context"].endswith(f"servicePrincipals('{sp_id}')/appRoleAssignedTo")
            assert c.delete(f"{path}/{assignment['id']}").status_code == 204
            assert c.get(path).json()["value"] == []
            assert c.delete(f"{path}/{assignment['id']}").status_code == 404
            assert (
                c.get("/servicePrincipals/00000000-0000-0000-0000-000000000000/appRoleAssignedTo").status_code
                == 404
            )
    finally:
        emulator.stop()
