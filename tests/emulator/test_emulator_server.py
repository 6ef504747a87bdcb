"""The emulator as a network server: what it checks before it reads a body, and where its links point.

Requests are written on raw sockets to 127.0.0.1, because an HTTP client would not send the malformed
or oversized headers these tests need.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
from support.graph import TOKEN, StartEmulator

from reconciler.emulator import Emulator
from reconciler.graph.identity import TEMPLATE_APP_ID


def raw_request(emulator: Emulator, head: str, body: bytes = b"", *, send_body: bool = True) -> bytes:
    """Send ``head`` (request line and headers, CRLF-terminated lines) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + (body if send_body else b""))
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if _complete(b"".join(chunks)):
                break
    return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def status_and_body(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else {}


def test_an_anonymous_body_is_refused_before_it_is_read(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN)
    # A petabyte is announced and nothing is sent: the 401 comes back at once, the body is never awaited.
    head = "POST /v1.0/servicePrincipals HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n"
    status, body = status_and_body(raw_request(emulator, head, send_body=False))
    assert status == 401 and body["error"]["code"] == "InvalidAuthenticationToken"
    assert set(body["error"]["innerError"]) >= {"request-id", "client-request-id", "date"}


def test_an_oversized_body_is_refused_with_413_without_being_read(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN, max_body_bytes=1000)
    head = (
        "POST /v1.0/servicePrincipals HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000000000000000\r\n"
    )
    status, body = status_and_body(raw_request(emulator, head, send_body=False))
    assert status == 413 and body["error"]["code"] == "RequestEntityTooLarge"


def test_a_content_length_that_is_not_a_number_is_a_400(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN)
    for value in ("abc", "-5", "1e3", "0x10", "99999999999999999999999"):
        head = (
            "POST /v1.0/servicePrincipals HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {value}\r\n"
        )
        status, body = status_and_body(raw_request(emulator, head, b"{}"))
        assert status == 400, value
        assert "Content-Length" in body["error"]["message"]
    # The emulator still serves after all of them.
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        assert c.get(emulator.url + "/v1.0/servicePrincipals").status_code == 200


def test_a_chunked_body_is_refused(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN)
    head = (
        "POST /v1.0/servicePrincipals HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n"
    )
    status, _ = status_and_body(raw_request(emulator, head, b"2\r\n{}\r\n0\r\n\r\n"))
    assert status == 411


def test_links_never_echo_the_host_header(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN, page_size=1)
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        for name in ("a.example", "b.example"):
            c.post(
                emulator.url + f"/v1.0/applicationTemplates/{TEMPLATE_APP_ID}/instantiate",
                json={"displayName": name},
            )
        r = c.get(emulator.url + "/v1.0/servicePrincipals", headers={"Host": "evil.example"})
    body = r.json()
    assert body["@odata.context"].startswith(emulator.url + "/v1.0/$metadata#")
    assert body["@odata.nextLink"].startswith(emulator.url + "/v1.0/servicePrincipals?")
    assert "evil" not in r.text


def test_links_use_the_configured_base_url(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN, base_url="https://graph.test/proxy/")
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        r = c.get(emulator.url + "/v1.0/servicePrincipals", headers={"Host": "evil.example"})
    assert r.json()["@odata.context"] == "https://graph.test/proxy/v1.0/$metadata#servicePrincipals"


def test_a_hostile_client_request_id_is_not_echoed(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(token=TOKEN)
    with httpx.Client(timeout=30) as c:
        r = c.get(emulator.url + "/v1.0/servicePrincipals", headers={"client-request-id": "x" * 5000})
    assert r.status_code == 401
    assert r.json()["error"]["innerError"]["client-request-id"] == r.headers["request-id"]


def test_the_command_takes_a_base_url(emulator_process: Callable[..., Any]) -> None:
    proc, url = emulator_process("--base-url", "https://emulator.test")
    with httpx.Client(timeout=30) as c:
        r = c.get(url + "/v1.0/servicePrincipals")
    assert r.json()["@odata.context"].startswith("https://emulator.test/v1.0/$metadata#")
    assert isinstance(proc, subprocess.Popen)
