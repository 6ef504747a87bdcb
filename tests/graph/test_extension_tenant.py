"""The tenant id that names the directory extensions application (api://<tenantId>/...): taken from the
access token's ``tid`` claim when the token is a JWT, else asked of ``GET /organization``; over the
emulator on 127.0.0.1, with its request log as the witness."""

from __future__ import annotations

import base64
import json

from support.graph import TOKEN, StartEmulator, provider_for


def _jwt(claims: dict[str, str]) -> str:
    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


def test_the_tenant_comes_from_the_token_when_it_names_one(start_emulator: StartEmulator) -> None:
    tid = "0c7ef1a5-3c1d-4d2a-9a0e-5b7f1d2c3e4f"
    token = _jwt({"tid": tid, "aud": "https://graph.microsoft.com"})
    emulator = start_emulator(token=token)
    provider = provider_for(emulator, token)
    assert provider.read_extensions() is None
    assert [r.path for r in emulator.recorded if r.path.startswith("/organization")] == []
    queries = [r.path for r in emulator.recorded if r.path.startswith("/applications?")]
    assert len(queries) == 1 and tid in queries[0]


def test_an_opaque_token_asks_the_organization_once(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN)
    provider = provider_for(emulator, TOKEN)
    assert provider.read_extensions() is None
    assert provider.read_extensions() is None
    asked = [r.path for r in emulator.recorded if r.path.startswith("/organization")]
    assert len(asked) == 1
    queries = [r.path for r in emulator.recorded if r.path.startswith("/applications?")]
    assert queries and all(emulator.store.tenant_id in q for q in queries)
