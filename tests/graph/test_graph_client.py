"""The Graph HTTP client on its own, against httpx's MockTransport: retries, errors, $batch, tokens."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from support.graph import SleepRecorder

from reconciler.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ProviderError,
    TransientProviderError,
)
from reconciler.graph.client import BatchItem, GraphClient, RetryPolicy
from reconciler.graph.tokens import AzureIdentityToken, NoToken, StaticToken, token_provider_for

BASE = "https://graph.example.test/v1.0"
SECRET = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-payload.signature"

Handler = Callable[[httpx.Request], httpx.Response]


def error(
    status: int, code: str, message: str = "nope", *, request_id: str = "rid-1", **headers: str
) -> httpx.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2024-01-01T00:00:00", "request-id": request_id},
        }
    }
    return httpx.Response(status, json=body, headers=headers)


def client(
    handler: Handler, *, tokens: Any = None, sleep: SleepRecorder | None = None, **kw: Any
) -> GraphClient:
    return GraphClient(
        BASE,
        tokens or StaticToken(SECRET),
        transport=httpx.MockTransport(handler),
        sleep=sleep or SleepRecorder(),
        rng=random.Random(7),
        **kw,
    )


class Script:
    """A handler that answers from a list, one response per request, and remembers the requests."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


# --------------------------------------------------------------------------------------------------
# retries


def test_429_waits_the_retry_after_then_succeeds() -> None:
    script = Script(
        error(429, "TooManyRequests", **{"Retry-After": "7"}), httpx.Response(200, json={"ok": 1})
    )
    sleep = SleepRecorder()
    assert client(script, sleep=sleep).get("/x") == {"ok": 1}
    assert len(script.requests) == 2
    (wait,) = sleep.waits
    assert 7 <= wait <= 8  # all of Retry-After, plus a little jitter


@pytest.mark.parametrize("status", [503, 504])
def test_503_and_504_honour_retry_after_for_reads(status: int) -> None:
    script = Script(error(status, "serviceNotAvailable", **{"Retry-After": "3"}), httpx.Response(204))
    sleep = SleepRecorder()
    assert client(script, sleep=sleep).request("PUT", "/x", body={"a": 1}) is None
    assert sleep.waits and sleep.waits[0] >= 3


def test_a_post_is_retried_after_429_but_not_after_a_5xx() -> None:
    throttled = Script(
        error(429, "TooManyRequests", **{"Retry-After": "1"}), httpx.Response(201, json={"id": "x"})
    )
    assert client(throttled).request("POST", "/things", body={}) == {"id": "x"}
    assert len(throttled.requests) == 2
    failed = Script(error(503, "serviceNotAvailable"), httpx.Response(201, json={"id": "y"}))
    with pytest.raises(TransientProviderError):
        client(failed).request("POST", "/things", body={})
    assert len(failed.requests) == 1  # the outcome is unknown: the caller looks before sending again


def test_dropped_connections_are_retried_only_when_safe() -> None:
    dropped = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    reads = Script(dropped, httpx.ReadTimeout("slow"), httpx.Response(200, json={"v": 1}))
    assert client(reads).get("/x") == {"v": 1}
    posts = Script(dropped, httpx.Response(201, json={}))
    with pytest.raises(TransientProviderError, match="dropped"):
        client(posts).request("POST", "/x", body={})
    # Nothing reached the service: a refused connection is retried whatever the method.
    refused = Script(httpx.ConnectError("refused"), httpx.Response(201, json={"id": 1}))
    assert client(refused).request("POST", "/x", body={}) == {"id": 1}


def test_backoff_grows_with_jitter_and_gives_up() -> None:
    script = Script(*[error(500, "generalException") for _ in range(4)])
    sleep = SleepRecorder()
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=30.0)
    with pytest.raises(TransientProviderError) as err:
        client(script, sleep=sleep, retry=policy).get("/x")
    assert len(script.requests) == 4 and len(sleep.waits) == 3
    for n, wait in enumerate(sleep.waits):
        ceiling = 1.0 * 2**n
        assert ceiling / 2 <= wait <= ceiling
    assert (
        err.value.code == "generalException" and err.value.status == 500 and err.value.request_id == "rid-1"
    )


def test_a_retry_after_longer_than_the_cap_is_not_waited() -> None:
    script = Script(error(429, "TooManyRequests", **{"Retry-After": "3600"}))
    sleep = SleepRecorder()
    with pytest.raises(TransientProviderError) as err:
        client(script, sleep=sleep, retry=RetryPolicy(max_retry_after=60)).get("/x")
    assert sleep.waits == [] and err.value.retry_after == 3600


def test_concurrency_is_bounded() -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json={})

    c = client(handler, concurrency=3)
    threads = [threading.Thread(target=c.get, args=("/x",)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["peak"] == 3
    assert c.requests_sent == 12


# --------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ProviderError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, TransientProviderError),
        (502, TransientProviderError),
    ],
)
def test_graph_errors_become_the_error_tree(status: int, kind: type[ProviderError]) -> None:
    script = Script(*[error(status, "SomeCode", "Something failed.", request_id="req-42")] * 8)
    with pytest.raises(kind) as err:
        client(script, retry=RetryPolicy(max_attempts=2)).request("PATCH", "/servicePrincipals/abc", body={})
    assert type(err.value) is kind
    assert err.value.code == "SomeCode" and err.value.status == status and err.value.request_id == "req-42"
    assert "req-42" in str(err.value) and "SomeCode" in str(err.value)


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("GET", "/servicePrincipals", "Application.Read.All"),
        ("GET", "/servicePrincipals/abc/synchronization/jobs", "Synchronization.Read.All"),
        ("GET", "/servicePrincipals/abc/synchronization/secrets", "Synchronization.Read.All"),
        ("PUT", "/servicePrincipals/abc/synchronization/jobs/j/schema", "Synchronization.ReadWrite.All"),
        ("POST", "/servicePrincipals/abc/synchronization/jobs/j/restart", "Synchronization.ReadWrite.All"),
        ("PATCH", "/servicePrincipals/abc", "Application.ReadWrite.All"),
        ("POST", "/applicationTemplates/t/instantiate", "Application.ReadWrite.All"),
        ("DELETE", "/applications(appId='x')", "Application.ReadWrite.All"),
    ],
)
def test_a_403_names_the_permission_the_call_needs(method: str, path: str, permission: str) -> None:
    script = Script(error(403, "Authorization_RequestDenied", "Insufficient privileges."))
    with pytest.raises(AuthenticationError) as err:
        client(script, retry=RetryPolicy(max_attempts=1)).request(method, path, body=None, idempotent=True)
    text = str(err.value)
    assert f"needs the Graph permission {permission} " in text
    assert "Insufficient privileges" in text and "Hybrid Identity Administrator" in text


def test_a_403_inside_a_batch_names_the_permission_of_that_request() -> None:
    answer = {
        "responses": [
            {"id": "0", "status": 200, "body": {"value": []}},
            {"id": "1", "status": 403, "body": {"error": {"code": "Forbidden", "message": "No."}}},
        ]
    }
    script = Script(httpx.Response(200, json=answer))
    results = client(script).batch(
        [
            BatchItem("GET", "/servicePrincipals/a/synchronization/jobs"),
            BatchItem("GET", "/servicePrincipals/a"),
        ]
    )
    assert results[0] == {"value": []}
    assert isinstance(results[1], AuthenticationError)
    assert "needs the Graph permission Application.Read.All " in str(results[1])


def test_request_id_from_a_nested_lowercase_innererror_or_the_header() -> None:
    body = {"error": {"code": "X", "message": "m", "innererror": {"innererror": {"request-id": "deep"}}}}
    with pytest.raises(ProviderError) as err:
        client(Script(httpx.Response(400, json=body))).get("/x")
    assert err.value.request_id == "deep"
    with pytest.raises(ProviderError) as err:
        client(Script(httpx.Response(400, text="not json", headers={"request-id": "hdr"}))).get("/x")
    assert err.value.request_id == "hdr" and err.value.code is None


def test_tokens_never_reach_an_error_message() -> None:
    echo = error(400, "BadRequest", f"the header was Bearer {SECRET}")
    with pytest.raises(ProviderError) as err:
        client(Script(echo)).get("/x")
    assert SECRET not in str(err.value) and "***" in str(err.value)
    with pytest.raises(AuthenticationError) as auth:
        client(
            Script(
                error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
            )
        ).get("/x")
    text = str(auth.value)
    assert SECRET not in text and "expired" in text and "RECONCILER_GRAPH_TOKEN" in text
    assert repr(StaticToken(SECRET)) == "StaticToken(<hidden>)"


def test_the_token_is_sent_as_a_bearer_header() -> None:
    script = Script(httpx.Response(200, json={}))
    client(script).get("/x")
    assert script.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    script = Script(httpx.Response(200, json={}))
    client(script, tokens=NoToken()).get("/x")
    assert "Authorization" not in script.requests[0].headers


def test_a_next_link_to_another_host_is_not_followed() -> None:
    script = Script(
        httpx.Response(200, json={"value": [{"id": "1"}], "@odata.nextLink": "https://evil.test/v1.0/x"})
    )
    pages = client(script).pages("/x")
    assert next(pages) == [{"id": "1"}]
    with pytest.raises(ProviderError, match="another host"):
        next(pages)
    assert len(script.requests) == 1


def test_pages_follow_next_links() -> None:
    script = Script(
        httpx.Response(200, json={"value": [{"id": "1"}], "@odata.nextLink": BASE + "/x?$skiptoken=1"}),
        httpx.Response(200, json={"value": [{"id": "2"}]}),
    )
    assert list(client(script).pages("/x", {"$top": "1"})) == [[{"id": "1"}], [{"id": "2"}]]
    assert script.requests[1].url.params["$skiptoken"] == "1"


@pytest.mark.parametrize(
    "body",
    [{}, {"value": None}, {"value": {"id": "1"}}, [{"id": "1"}], {"value": [{"id": "1"}, "x"]}, "value"],
)
def test_a_page_without_a_list_of_objects_is_refused_not_read_as_empty(body: Any) -> None:
    # Taken for "nothing there", an answer like this would have every configuration created again.
    pages = client(Script(httpx.Response(200, json=body))).pages("/x")
    with pytest.raises(ProviderError, match="not a collection"):
        next(pages)


def test_a_next_link_sent_twice_is_not_followed_again() -> None:
    again = {"value": [{"id": "1"}], "@odata.nextLink": BASE + "/x?$skiptoken=1"}
    script = Script(*(httpx.Response(200, json=again) for _ in range(3)))
    pages = client(script).pages("/x")
    assert next(pages) == [{"id": "1"}] and next(pages) == [{"id": "1"}]
    with pytest.raises(ProviderError, match="sent before"):
        next(pages)
    assert len(script.requests) == 2


def test_a_service_that_pages_for_ever_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every answer names a new next page, so the repeated-link check never fires.
    monkeypatch.setattr("reconciler.graph.client.MAX_PAGES", 3)
    requests: list[httpx.Request] = []

    def endless(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        link = f"{BASE}/x?$skiptoken={len(requests)}"
        return httpx.Response(200, json={"value": [{"id": str(len(requests))}], "@odata.nextLink": link})

    pages = client(endless).pages("/x")
    assert [next(pages) for _ in range(3)] == [[{"id": "1"}], [{"id": "2"}], [{"id": "3"}]]
    with pytest.raises(ProviderError, match="more than 3 pages"):
        next(pages)
    assert len(requests) == 3


def test_an_answer_larger_than_the_limit_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reconciler.graph.client.MAX_ANSWER_BYTES", 1000)
    declared = httpx.Response(200, content=b"{}", headers={"Content-Length": "5000"})
    with pytest.raises(ProviderError, match="too large"):
        client(Script(declared)).get("/x")

    def chunks() -> Iterator[bytes]:
        while True:  # no length given; it never ends
            yield b" " * 300

    streamed = httpx.Response(200, content=chunks())
    with pytest.raises(ProviderError, match="larger than 1000 bytes"):
        client(Script(streamed)).get("/x")


def test_an_answer_that_trickles_in_is_cut_off() -> None:
    def trickle() -> Iterator[bytes]:
        for ch in b'{"value": []}':
            time.sleep(0.05)  # each read is well within the timeout
            yield bytes([ch])

    began = time.monotonic()
    with pytest.raises(ProviderError, match="still arriving"):
        client(Script(httpx.Response(200, content=trickle())), timeout=0.04).get("/x")
    assert time.monotonic() - began < 0.5


def test_an_answer_nested_too_deeply_is_not_json() -> None:
    deep = httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(TransientProviderError, match="not JSON"):
        client(Script(deep)).get("/x")


# --------------------------------------------------------------------------------------------------
# $batch


def batch_handler(
    inner: Callable[[dict[str, Any]], tuple[int, Any, dict[str, str]]], log: list[list[dict[str, Any]]]
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/$batch" and request.method == "POST"
        requests = json.loads(request.content)["requests"]
        log.append(requests)
        responses = []
        for r in requests:
            status, body, headers = inner(r)
            responses.append({"id": r["id"], "status": status, "headers": headers, "body": body})
        return httpx.Response(200, json={"responses": list(reversed(responses))})  # any order

    return handler


def test_batch_packs_twenty_per_request_and_keeps_the_order() -> None:
    log: list[list[dict[str, Any]]] = []
    c = client(batch_handler(lambda r: (200, {"url": r["url"]}, {}), log))
    items = [BatchItem("GET", f"/things/{i}") for i in range(45)]
    results = c.batch(items)
    assert [r["url"] for r in results] == [f"/things/{i}" for i in range(45)]
    assert sorted(len(b) for b in log) == [5, 20, 20]
    assert all("body" not in r and "headers" not in r for b in log for r in b)


def test_batch_retries_throttled_inner_requests_and_reports_failures() -> None:
    log: list[list[dict[str, Any]]] = []
    seen: dict[str, int] = {}

    def inner(r: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        seen[r["url"]] = seen.get(r["url"], 0) + 1
        if r["url"] == "/missing":
            return 404, {"error": {"code": "Request_ResourceNotFound", "message": "gone"}}, {}
        if seen[r["url"]] == 1:
            return 429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": "2"}
        return 200, {"ok": r["url"]}, {}

    sleep = SleepRecorder()
    c = client(batch_handler(inner, log), sleep=sleep)
    a, missing, b = c.batch([BatchItem("GET", "/a"), BatchItem("GET", "/missing"), BatchItem("GET", "/b")])
    assert a == {"ok": "/a"} and b == {"ok": "/b"}
    assert isinstance(missing, NotFoundError) and missing.code == "Request_ResourceNotFound"
    assert [len(x) for x in log] == [3, 2]  # only the throttled ones went again
    assert sleep.waits and sleep.waits[0] >= 2


@pytest.mark.parametrize("answer", [[], {"responses": None}, {"responses": {"id": "0"}}, "x"])
def test_a_batch_answer_of_the_wrong_shape_is_an_error(answer: Any) -> None:
    with pytest.raises(ProviderError, match="no 'responses' list"):
        client(Script(httpx.Response(200, json=answer))).batch([BatchItem("GET", "/a")])


@pytest.mark.parametrize("status", ["OK", None, 200.5, True])
def test_an_inner_answer_without_a_status_is_an_error(status: Any) -> None:
    c = client(batch_handler(lambda r: (status, {"ok": 1}, {}), []))
    (result,) = c.batch([BatchItem("GET", "/a")])
    assert isinstance(result, ProviderError) and "no status" in str(result)


def test_batch_bodies_carry_a_content_type() -> None:
    log: list[list[dict[str, Any]]] = []
    c = client(batch_handler(lambda r: (204, None, {}), log))
    c.batch([BatchItem("PUT", "/x", {"a": 1})])
    (request,) = log[0]
    assert request["body"] == {"a": 1} and request["headers"] == {"Content-Type": "application/json"}


# --------------------------------------------------------------------------------------------------
# token sources


def test_token_source_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(token_provider_for(BASE, {"RECONCILER_GRAPH_TOKEN": "abc"}), StaticToken)
    real = token_provider_for("https://graph.microsoft.com/v1.0", {})
    assert isinstance(real, AzureIdentityToken) and real.scope == "https://graph.microsoft.com/.default"
    # An emulator or proxy never gets credentials from the azure-identity chain.
    assert isinstance(token_provider_for("http://127.0.0.1:9/v1.0", {}), NoToken)
    assert isinstance(token_provider_for("https://graph.microsoft.com.evil.test/v1.0", {}), NoToken)


class FakeAccessToken:
    def __init__(self, token: str, expires_on: float) -> None:
        self.token = token
        self.expires_on = expires_on


class FakeCredential:
    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, scope: str) -> FakeAccessToken:
        self.calls += 1
        return FakeAccessToken(f"token-{self.calls}", time.time() + 3600)


def test_azure_identity_tokens_are_cached_and_renewed_after_a_401() -> None:
    credential = FakeCredential()
    tokens = AzureIdentityToken("https://graph.microsoft.com/.default", credential)
    script = Script(
        httpx.Response(200, json={}),
        error(401, "InvalidAuthenticationToken", "expired"),
        httpx.Response(200, json={"again": True}),
    )
    c = client(script, tokens=tokens)
    c.get("/a")
    assert c.get("/b") == {"again": True}
    assert [r.headers["Authorization"] for r in script.requests] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert credential.calls == 2


def test_no_azure_credentials_is_a_clear_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)

    class Failing:
        def get_token(self, scope: str) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.")

    c = client(Script(), tokens=AzureIdentityToken("https://graph.microsoft.com/.default", Failing()))
    with pytest.raises(AuthenticationError) as err:
        c.get("/x")
    text = str(err.value)
    assert "az login" in text and "RECONCILER_GRAPH_TOKEN" in text and "docs/graph.md" in text
    # azure-identity's own account of every credential it tried is left out: one line says what to do.
    assert "DefaultAzureCredential failed" not in text and "\n" not in text


@pytest.mark.parametrize(
    "content",
    [
        b'{"\xff": 1, "responses": []}',
        b'{"responses": [{"id": "\xff", "status": 200}]}',
        b'{"responses": [{"id": "0", "status": 500, "headers": {"a": "\xff"}}]}',
    ],
    ids=["envelope key", "inner id", "inner header"],
)
@pytest.mark.parametrize("raw", [False, True])
def test_a_batch_answer_that_is_not_utf8_is_not_json(content: bytes, raw: bool) -> None:
    c = client(lambda r: httpx.Response(200, content=content))
    with pytest.raises(TransientProviderError, match="the answer is not JSON"):
        c.batch([BatchItem("GET", "/a")], raw=raw)


@pytest.mark.parametrize("raw", [False, True])
def test_a_batch_answer_nested_as_deep_as_json_readers_allow_is_read(raw: bool) -> None:
    deep = "[" * 1000 + "]" * 1000
    content = b'{"responses": [{"id": "0", "status": 200, "body": {"x": ' + deep.encode() + b"}}]}"
    c = client(lambda r: httpx.Response(200, content=content))
    (result,) = c.batch([BatchItem("GET", "/a")], raw=raw)
    body = orjson.loads(result) if isinstance(result, bytes) else result
    assert isinstance(body, dict) and list(body) == ["x"]


def test_an_unreadable_batch_answer_to_a_create_is_not_sent_again() -> None:
    # A number out of range: the answer cannot be read, and the create may have happened.
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            200, content=b'{"responses": [{"id": "0", "status": 201, "headers": {"x": 1e400}, "body": {}}]}'
        )

    with pytest.raises(TransientProviderError, match="not JSON"):
        client(answer).batch([BatchItem("POST", "/things", {"a": 1})])
    assert len(calls) == 1


def test_a_failed_sign_in_is_one_line_naming_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    from reconciler.errors import AuthenticationError
    from reconciler.graph.tokens import AzureIdentityToken, missing_credential

    class Refusing:
        def get_token(self, *_: object) -> None:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token " + "x" * 800)

    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "RECONCILER_GRAPH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")
    with pytest.raises(AuthenticationError) as info:
        AzureIdentityToken("https://graph.microsoft.com/.default", credential=Refusing()).token()
    message = str(info.value)
    assert "\n" not in message and len(message) < 200 and "xxx" not in message
    assert "AZURE_CLIENT_ID is set but AZURE_TENANT_ID is not" in message and "docs/graph.md" in message
    assert "az login" in missing_credential({})
    both = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"}
    assert "none of AZURE_CLIENT_SECRET" in missing_credential(both)
