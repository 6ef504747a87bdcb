"""The emulator's ``GET /groups`` over real HTTP on 127.0.0.1, over a real tenant file loaded from a real
directory file: the store's cloud groups in the ``group`` shape of each version's metadata, the listing
the Graph provider sends to size the "all groups" scope (its exact ``$filter`` and ``$select``, every
page), and the ``$filter`` rules of the group reference page (others are Graph's 400)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.graph import TOKEN, StartEmulator

from reconciler.emulator import Emulator
from reconciler.graph.group_scope import GROUP_SELECT, group_select
from reconciler.graph.metadata import metadata
from reconciler.provisioning.directory import load_into, read_directory

VERSIONS = ("v1.0", "beta")
# The request the Graph provider sends to list the tenant's cloud security groups.
SECURITY_GROUPS = "securityEnabled eq true and mailEnabled eq false"
SELECTED = (
    "id,displayName,description,mailNickname,mail,classification,visibility,isAssignableToRole,"
    "securityEnabled,mailEnabled,onPremisesSyncEnabled"
)
FINANCE = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"
ATLAS = "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d"
SYNCED = "6e3d0f52-8b4c-4a9f-87d2-1fa09b8c7d6e"
ADMINS = "7f4e1a63-9c5d-4b0a-98e3-2ab1ac9d8e7f"
PLAIN = "8a5f2b74-ad6e-4c1b-a9f4-3bc2bdae9f80"
MAIL_GROUP = "9b6a3c85-be7f-4d2c-baa5-4cd3cebfa091"  # mail-enabled, written by provisioning from AD
DIRECTORY = f"""\
kind: Directory
cloudGroups:
  - id: {FINANCE}
    displayName: Finance Approvers
    description: Approve invoices
    mailNickname: finance-approvers
    mail: finance-approvers@contoso.com
    classification: High
    visibility: Private
    members: [3f8a1c2e-5b7d-4e9f-a1c3-5e7f9b1d3a01]
  - {{id: {ATLAS}, displayName: Project Atlas, classification: Low}}
  - {{id: {SYNCED}, displayName: Synced Sales, onPremisesSyncEnabled: true}}
  - {{id: {ADMINS}, displayName: Role Admins, isAssignableToRole: true}}
  - {{id: {PLAIN}, displayName: Plain}}
"""
LOADED = [FINANCE, ATLAS, SYNCED, ADMINS, PLAIN]


@pytest.fixture
def client(start_emulator: StartEmulator, tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of an emulator (pages of 2) whose tenant holds the file's five groups and one
    mail-enabled group provisioning wrote."""
    emulator = start_emulator(token=TOKEN, page_size=2)
    path = tmp_path / "directory.yaml"
    path.write_text(DIRECTORY)
    load_into(emulator.store, read_directory(path))
    emulator.store.put_cloud_object(
        MAIL_GROUP,
        "Group",
        {"displayName": "Newsletter", "securityEnabled": True, "mailEnabled": True, "members": []},
    )
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


def every_page(
    client: httpx.Client, url: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a listing, following ``@odata.nextLink``; (items, the number of pages)."""
    items: list[dict[str, Any]] = []
    answer = client.get(url, params=params, headers=headers)
    pages = 1
    while True:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["value"]
        if "@odata.nextLink" not in body:
            return items, pages
        answer = client.get(body["@odata.nextLink"], headers=headers)
        pages += 1


def refusal(client: httpx.Client, version: str, params: dict[str, str], eventual: bool = False) -> str:
    headers = {"ConsistencyLevel": "eventual"} if eventual else {}
    answer = client.get(f"/{version}/groups", params=params, headers=headers)
    assert answer.status_code == 400, answer.text
    return str(answer.json()["error"]["code"])


def documented(version: str) -> set[str]:
    properties = metadata(version).properties("graph.group") or {}
    return {name for name, p in properties.items() if not p["navigation"]}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_security_groups_listing_pages_through_the_selected_properties(
    client: httpx.Client, version: str
) -> None:
    params = {"$filter": SECURITY_GROUPS, "$select": SELECTED, "$top": "2"}
    first = client.get(f"/{version}/groups", params=params).json()
    assert first["@odata.context"].endswith(f"/{version}/$metadata#groups({SELECTED})")
    items, pages = every_page(client, f"/{version}/groups", params)
    assert pages == 3  # five groups, two a page
    assert [g["id"] for g in items] == LOADED  # the mail-enabled group is left out
    for group in items:
        assert set(group) == set(SELECTED.split(","))  # nothing that was not selected
    by_id = {g["id"]: g for g in items}
    assert by_id[FINANCE] == {
        "id": FINANCE,
        "displayName": "Finance Approvers",
        "description": "Approve invoices",
        "mailNickname": "finance-approvers",
        "mail": "finance-approvers@contoso.com",
        "classification": "High",
        "visibility": "Private",
        "isAssignableToRole": None,
        "securityEnabled": True,
        "mailEnabled": False,
        "onPremisesSyncEnabled": None,  # a cloud group: never synced from AD
    }
    assert by_id[SYNCED]["onPremisesSyncEnabled"] is True
    assert by_id[ADMINS]["isAssignableToRole"] is True
    assert by_id[PLAIN]["description"] is None and by_id[PLAIN]["mailNickname"] is None
    # The provider's own page size: everything on one page.
    items, pages = every_page(client, f"/{version}/groups", {**params, "$top": "999"})
    assert (pages, [g["id"] for g in items]) == (1, LOADED)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_group_has_every_documented_property_of_its_version(client: httpx.Client, version: str) -> None:
    items, pages = every_page(client, f"/{version}/groups", {})
    assert pages == 3 and [g["id"] for g in items] == [*LOADED, MAIL_GROUP]  # pages of 2 by default
    # Graph leaves out what the reference page returns only on $select, and never returns these two.
    on_select = {"allowExternalSenders", "assignedLabels", "assignedLicenses", "autoSubscribeNewMembers"}
    on_select |= {"hideFromAddressLists", "hideFromOutlookClients", "isSubscribedByMail"}
    on_select |= {"licenseProcessingState", "membershipRuleProcessingStatus", "unseenConversationsCount"}
    on_select |= {"unseenCount", "unseenMessagesCount", "hasMembersWithLicenseErrors", "isArchived"}
    for group in items:
        assert set(group) == documented(version) - on_select
        assert metadata(version).check_value(group, "graph.group", False, "group") == []
        assert group["groupTypes"] == [] and group["deletedDateTime"] is None
        assert group["createdDateTime"].endswith("Z")
    assert ("createdByAppId" in items[0]) == (version == "beta")  # beta's group has more properties
    assert items[-1]["mailEnabled"] is True and items[-1]["securityEnabled"] is True
    # A property returned only on $select is there when named, as null or Graph's default.
    answer = client.get(f"/{version}/groups", params={"$select": "id,allowExternalSenders,isArchived"})
    assert answer.json()["value"][0] == {"id": FINANCE, "allowExternalSenders": None}


def test_a_property_of_beta_only_is_refused_in_v1(client: httpx.Client) -> None:
    answer = client.get("/v1.0/groups", params={"$select": "id,createdByAppId"})
    assert answer.status_code == 400 and "createdByAppId" in answer.json()["error"]["message"]
    answer = client.get("/beta/groups", params={"$select": "id,createdByAppId"})
    assert answer.status_code == 200 and answer.json()["value"][0] == {"id": FINANCE, "createdByAppId": None}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_filters_of_the_reference_page_select_groups(client: httpx.Client, version: str) -> None:
    eventual = {"ConsistencyLevel": "eventual"}

    def ids(clause: str, advanced: bool = False) -> list[str]:
        params = {"$filter": clause, **({"$count": "true"} if advanced else {})}
        items, _ = every_page(client, f"/{version}/groups", params, eventual if advanced else None)
        return [g["id"] for g in items]

    assert ids("mailNickname eq 'finance-approvers'") == [FINANCE]
    assert ids("startswith(displayName, 'project')") == [ATLAS]  # without case, as Graph compares
    assert ids("classification eq 'High' or classification eq 'Low'") == [FINANCE, ATLAS]
    # A group provisioning wrote (no directory load) came from AD: synced.
    assert ids("onPremisesSyncEnabled eq true") == [SYNCED, MAIL_GROUP]
    assert ids("isAssignableToRole eq true") == [ADMINS]
    assert ids(f"id in ('{PLAIN}', '{ATLAS}')") == [ATLAS, PLAIN]
    assert ids("mailEnabled eq true") == [MAIL_GROUP]
    # Advanced queries: ConsistencyLevel: eventual and $count=true.
    assert ids("onPremisesSyncEnabled ne true", advanced=True) == [FINANCE, ATLAS, ADMINS, PLAIN]
    assert ids("onPremisesSyncEnabled eq null", advanced=True) == [FINANCE, ATLAS, ADMINS, PLAIN]
    assert ids("not(securityEnabled eq true and mailEnabled eq false)", advanced=True) == [MAIL_GROUP]
    assert ids("endswith(mail, '@contoso.com')", advanced=True) == [FINANCE]
    assert ids("description eq 'Approve invoices'", advanced=True) == [FINANCE]
    assert ids("createdDateTime ge 2000-01-01T00:00:00Z") == [*LOADED, MAIL_GROUP]
    answer = client.get(
        f"/{version}/groups",
        params={"$filter": SECURITY_GROUPS, "$count": "true", "$top": "1"},
        headers=eventual,
    )
    assert answer.json()["@odata.count"] == 5 and len(answer.json()["value"]) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_what_the_reference_page_does_not_document_is_graphs_400(client: httpx.Client, version: str) -> None:
    advanced = {"$count": "true"}
    # Advanced operators without ConsistencyLevel (and $count=true).
    for clause in (
        "endswith(mail, '@contoso.com')",
        "mailEnabled ne true",
        "not(isAssignableToRole eq true)",
        "description eq 'Approve invoices'",
        "displayName eq null",
    ):
        assert refusal(client, version, {"$filter": clause}) == "Request_UnsupportedQuery", clause
        assert refusal(client, version, {"$filter": clause, **advanced}) == "Request_BadRequest", clause
    # Not documented on the property at all, with or without the advanced query parameters.
    for clause in (
        "visibility eq 'Private'",
        "endswith(displayName, 'Approvers')",
        "startswith(mailEnabled, 'x')",
        "classification eq null",
        "classification in ('High', 'Low')",
        "theme eq 'Teal'",
        "members/any(m: m eq 'x')",
    ):
        assert refusal(client, version, {"$filter": clause}) == "Request_UnsupportedQuery", clause
        code = refusal(client, version, {"$filter": clause, **advanced}, eventual=True)
        assert code == "Request_UnsupportedQuery", clause
    assert refusal(client, version, {"$count": "true"}) == "Request_BadRequest"  # no ConsistencyLevel
    assert refusal(client, version, {"$select": "id,nosuch"}) == "BadRequest"


def test_the_selected_properties_are_those_the_graph_provider_reads() -> None:
    assert set(GROUP_SELECT.split(",")) == set(SELECTED.split(","))


def test_a_directory_extension_registered_for_groups_can_be_selected(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator(token=TOKEN)
    store = emulator.store
    app = store.create_application("CloudSyncCustomExtensionsApp", [])
    writeback = store.create_extension_property(
        app["id"], {"name": "WritebackEnabled", "dataType": "Boolean", "targetObjects": ["Group"]}
    )["name"]
    for_users = store.create_extension_property(
        app["id"], {"name": "CostCenter", "dataType": "String", "targetObjects": ["User"]}
    )["name"]
    group = {"securityEnabled": True, "mailEnabled": False, "members": []}
    # The store keeps what provisioning or a test wrote, in any case of the name.
    store.put_cloud_object(FINANCE, "Group", {**group, "displayName": "A", writeback.upper(): True})
    store.put_cloud_object(ATLAS, "Group", {**group, "displayName": "B"})
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        params = {"$filter": SECURITY_GROUPS, "$select": group_select([writeback]), "$top": "999"}
        items, _ = every_page(c, "/v1.0/groups", params)
        assert [(g["id"], g.get(writeback)) for g in items] == [(FINANCE, True), (ATLAS, None)]
        assert writeback not in items[1]  # Graph leaves out an extension without a value
        unselected, _ = every_page(c, "/v1.0/groups", {})
        assert all(writeback not in g for g in unselected)  # returned only when selected
        for name in (for_users, "extension_00000000000000000000000000000000_Nothing"):
            answer = c.get("/v1.0/groups", params={"$select": f"id,{name}"})
            assert answer.status_code == 400 and name in answer.json()["error"]["message"]


# (securityEnabled, mailEnabled, onPremisesSyncEnabled as stored, written by a directory load)
group_rows = st.lists(
    st.tuples(st.booleans(), st.booleans(), st.sampled_from([None, True, False]), st.booleans()), max_size=7
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=group_rows, top=st.integers(min_value=1, max_value=4))
def test_the_listing_holds_exactly_the_matching_groups_whatever_the_page_size(
    emulator: Emulator, rows: list[tuple[bool, bool, bool | None, bool]], top: int
) -> None:
    # One emulator for every example (a test's fixtures are made once, not per example).
    store = emulator.store
    for old in store.list_cloud_objects("Group"):
        store.delete_cloud_object(str(old["id"]))
    wanted = []
    for i, (security, mail, synced, loaded) in enumerate(rows):
        id = f"{i:08x}-0000-4000-8000-000000000000"
        attributes: dict[str, Any] = {
            "displayName": f"G{i}",
            "securityEnabled": security,
            "mailEnabled": mail,
        }
        if synced is not None:
            attributes["onPremisesSyncEnabled"] = synced
        store.put_cloud_object(id, "Group", {**attributes, "members": []}, from_directory=loaded)
        if security and not mail:
            # What the store holds, else: cloud-only when a load wrote it, synced from AD when not.
            wanted.append((id, synced if synced is not None else (None if loaded else True)))
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        params = {"$filter": SECURITY_GROUPS, "$select": SELECTED, "$top": str(top)}
        items, pages = every_page(c, "/v1.0/groups", params)
    assert [(g["id"], g["onPremisesSyncEnabled"]) for g in items] == wanted
    assert pages == max(1, -(-len(wanted) // top))
