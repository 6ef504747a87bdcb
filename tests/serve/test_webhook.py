"""Push-hook signatures and payloads, for any body and secret (signatures computed here with ``hmac``)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.serve.view import classify
from reconciler.serve.webhook import Refused, ReplayGuard, parse_push, verify

secrets = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)


def _github(body: bytes, secret: bytes) -> dict[str, str]:
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", "x-github-event": "push"}


@given(body=bodies, secret=secrets)
def test_a_github_signature_of_the_body_under_the_secret_passes(body: bytes, secret: bytes) -> None:
    assert verify(_github(body, secret), body, secret) == "github"


@given(body=bodies, secret=secrets, other=secrets, tail=st.binary(min_size=1, max_size=8))
def test_another_secret_or_body_is_refused(body: bytes, secret: bytes, other: bytes, tail: bytes) -> None:
    if other != secret:
        with pytest.raises(Refused) as refused:
            verify(_github(body, other), body, secret)
        assert refused.value.status == 401
    with pytest.raises(Refused):
        verify(_github(body, secret), body + tail, secret)


@given(secret=secrets, token=st.binary(max_size=64))
def test_a_gitlab_token_passes_only_when_it_is_the_secret(secret: bytes, token: bytes) -> None:
    text = token.decode("latin-1")
    headers = {"x-gitlab-token": text, "x-gitlab-event": "Push Hook"}
    if text.encode() == secret:
        assert verify(headers, b"{}", secret) == "gitlab"
    else:
        with pytest.raises(Refused):
            verify(headers, b"{}", secret)


def test_no_signature_is_refused() -> None:
    with pytest.raises(Refused) as refused:
        verify({"x-github-event": "push"}, b"{}", b"secret")
    assert (refused.value.status, refused.value.result) == (401, "unauthorized")


def test_a_push_names_its_branch() -> None:
    body = json.dumps({"ref": "refs/heads/release/2026", "after": "a" * 40}).encode()
    push = parse_push("github", {"x-github-event": "push", "x-github-delivery": "d-1"}, body)
    assert (push.branch, push.after, push.delivery, push.deleted) == ("release/2026", "a" * 40, "d-1", False)
    tag = parse_push("gitlab", {"x-gitlab-event": "Tag Push Hook"}, body)
    assert tag.event == "tag push hook" and tag.branch is None  # not a push: its body is not read
    gone = parse_push(
        "github", {"x-github-event": "push"}, json.dumps({"ref": "refs/heads/x", "after": "0" * 40}).encode()
    )
    assert gone.deleted
    for bad in (b"[]", b'{"ref": 1}', b"\xff", b"[" * 100000):
        with pytest.raises(Refused) as refused:
            parse_push("github", {"x-github-event": "push"}, bad)
        assert refused.value.status == 400


def test_the_replay_guard_remembers_bodies_and_deliveries_up_to_its_size() -> None:
    guard = ReplayGuard(size=4)
    assert guard.first_time(b"one", "d1")
    assert not guard.first_time(b"one", None)
    assert not guard.first_time(b"another body", "d1")
    for i in range(4):
        assert guard.first_time(f"body {i}".encode(), None)
    assert guard.first_time(b"one", None)  # forgotten after 4 newer ones


@pytest.mark.parametrize(
    ("entry", "drifted", "status"),
    [
        ({"managed": False}, True, "unmanaged"),
        ({"health": {"code": "Quarantine", "lastRunState": "Failed"}}, True, "quarantined"),
        ({"health": {"code": "Active", "lastRunState": "Failed"}}, True, "error"),
        ({"health": {"code": "Active"}, "jobs": [{"code": "Quarantine"}]}, True, "quarantined"),
        ({"health": {"code": "Active"}, "jobs": [{"code": "Active", "lastError": "x"}]}, True, "error"),
        ({"health": {"code": "Active"}, "pending": {"heldDeletes": 1}}, True, "held delete"),
        ({"health": {"code": "Active"}, "pending": {"changes": 1}}, True, "drifted"),
        ({"health": {"code": "Active"}, "pending": {"changes": 2}}, False, "changes pending"),
        ({"health": None, "pending": {"changes": 1}}, False, "changes pending"),
        ({"health": {"code": "Active"}, "pending": {"changes": 0}}, False, "in sync"),
    ],
)
def test_each_configuration_gets_the_first_status_that_holds(
    entry: dict[str, object], drifted: bool, status: str
) -> None:
    assert classify(entry, drifted) == status
