"""The emulator's directory-object writes (applications, extension properties, app-role assignments)
check their bodies against the version's metadata and refuse a bad one in the directory's error shape,
over real HTTP on 127.0.0.1, with body validation on and off."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.graph import TOKEN, StartEmulator

VERSIONS = ("v1.0", "beta")
GOOD = {"name": "costCenter", "dataType": "String", "targetObjects": ["User"]}


@pytest.fixture(params=[True, False], ids=["validating", "not-validating"])
def client(start_emulator: StartEmulator, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    emulator = start_emulator(token=TOKEN, validate_bodies=request.param)
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


def _refused(answer: httpx.Response, *words: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "Request_BadRequest"
    assert all(w in error["message"] for w in words), error["message"]
    assert error["innerError"]["request-id"]


@pytest.mark.parametrize("version", VERSIONS)
def test_an_extension_property_with_an_unknown_or_mistyped_property_is_refused(
    client: httpx.Client, version: str
) -> None:
    app = client.post(f"/{version}/applications", json={"displayName": "extensions"})
    assert app.status_code == 201, app.text
    path = f"/{version}/applications/{app.json()['id']}/extensionProperties"

    _refused(client.post(path, json={**GOOD, "description": "not a property"}), "'description'")
    _refused(client.post(path, json={**GOOD, "isMultiValued": "yes"}), "isMultiValued")
    _refused(client.post(path, json=["not", "an", "object"]), "JSON object")
    assert client.get(path).json()["value"] == []  # nothing refused was made

    made = client.post(path, json={**GOOD, "@odata.type": "#microsoft.graph.extensionProperty"})
    assert made.status_code == 201, made.text
    assert made.json()["name"].endswith("_costCenter") and made.json()["isMultiValued"] is False
    assert [p["id"] for p in client.get(path).json()["value"]] == [made.json()["id"]]


@pytest.mark.parametrize("version", VERSIONS)
def test_an_application_with_an_unknown_property_is_refused(client: httpx.Client, version: str) -> None:
    _refused(client.post(f"/{version}/applications", json={"displayName": "x", "colour": "red"}), "'colour'")
    assert client.get(f"/{version}/applications").json()["value"] == []
