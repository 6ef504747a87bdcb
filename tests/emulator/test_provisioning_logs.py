"""The emulator's provisioning logs (``GET /auditLogs/provisioning``, both versions) over real HTTP on
127.0.0.1: a job quarantined for too many deletes is listed with one staged delete per object held, in
the metadata's shape of provisioningObjectSummary, with the $filter operators, $orderby and paging the
reference page lists, and a 403 for a token without AuditLog.Read.All."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.graph import TOKEN, StartEmulator

from reconciler.emulator import Emulator
from reconciler.graph.identity import PROVISIONING_TEMPLATE
from reconciler.graph.metadata import metadata
from reconciler.graph.provisioning_logs import staged_delete_filter

VERSIONS = ("v1.0", "beta")


@pytest.fixture
def held(start_emulator: StartEmulator) -> Iterator[tuple[Emulator, httpx.Client, str, str]]:
    """An emulator whose one job holds three deletes; (emulator, client, job id, quarantine start)."""
    emulator = start_emulator(token=TOKEN, page_size=2)
    store = emulator.store
    sp = store.instantiate("contoso.com")["servicePrincipal"]
    job = store.create_job(sp["id"], PROVISIONING_TEMPLATE)
    objects = [{"id": f"CN={n},OU=Sales,DC=contoso,DC=com", "displayName": n} for n in ("ann", "bob", "cy")]
    since = store.hold_deletes(sp["id"], job["id"], objects)["status"]["quarantine"]["seriesBegan"]
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield emulator, c, str(job["id"]), str(since)


def _all(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    answer = client.get(url, params=params)
    while True:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["value"]
        if "@odata.nextLink" not in body:
            return items
        answer = client.get(body["@odata.nextLink"])


@pytest.mark.parametrize("version", VERSIONS)
def test_a_quarantine_for_too_many_deletes_lists_its_staged_deletes(
    held: tuple[Emulator, httpx.Client, str, str], version: str
) -> None:
    _, client, job_id, since = held
    first = client.get(f"/{version}/auditLogs/provisioning")
    assert first.json()["@odata.context"].endswith(f"/{version}/$metadata#auditLogs/provisioning")
    assert len(first.json()["value"]) == 2 and "@odata.nextLink" in first.json()  # paged
    entries = _all(client, f"/{version}/auditLogs/provisioning")
    properties = metadata(version).properties("graph.provisioningObjectSummary") or {}
    for entry in entries:
        assert set(entry) == {n for n, p in properties.items() if not p["navigation"]}
        assert metadata(version).check_value(entry, "graph.provisioningObjectSummary", False, "entry") == []
    assert {e["sourceIdentity"]["displayName"] for e in entries} == {"ann", "bob", "cy"}
    assert {(e["jobId"], e["provisioningAction"]) for e in entries} == {(job_id, "stagedDelete")}

    # The filter the Graph provider sends (jobId, provisioningAction, activityDateTime gt).
    mine = _all(
        client, f"/{version}/auditLogs/provisioning", {"$filter": staged_delete_filter(job_id, since)}
    )
    assert len(mine) == 3
    later = staged_delete_filter(job_id, "2099-01-01T00:00:00Z")
    assert _all(client, f"/{version}/auditLogs/provisioning", {"$filter": later}) == []
    assert _all(client, f"/{version}/auditLogs/provisioning", {"$filter": "jobId eq 'another'"}) == []
    found = _all(
        client, f"/{version}/auditLogs/provisioning", {"$filter": f"contains(jobId, '{job_id[:8]}')"}
    )
    assert len(found) == 3
    ordered = _all(client, f"/{version}/auditLogs/provisioning", {"$orderby": "activityDateTime desc"})
    assert len(ordered) == 3


@pytest.mark.parametrize("version", VERSIONS)
def test_what_the_reference_page_does_not_list_is_refused(
    held: tuple[Emulator, httpx.Client, str, str], version: str
) -> None:
    _, client, job_id, _since = held
    for clause in (
        f"jobId ne '{job_id}'",
        "durationInMilliseconds eq 0",
        "activityDateTime ge 2026-01-01T00:00:00Z",
    ):
        answer = client.get(f"/{version}/auditLogs/provisioning", params={"$filter": clause})
        assert answer.status_code == 400, clause
        assert answer.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_a_token_without_audit_log_permission_is_refused(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN, lacking=frozenset({"AuditLog.Read.All"}))
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        answer = c.get("/v1.0/auditLogs/provisioning")
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "Authorization_RequestDenied"
        # Everything else is answered as before.
        assert c.get("/v1.0/servicePrincipals").status_code == 200
