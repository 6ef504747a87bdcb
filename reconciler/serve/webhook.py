"""Push webhooks from GitHub and GitLab: signature checks, replay detection, the push's branch.

GitHub signs the body with HMAC-SHA256 under the hook's secret (``X-Hub-Signature-256:
sha256=<hex>``); GitLab sends the secret itself (``X-GitLab-Token``). Both are compared in constant
time, and nothing of the body is parsed before it passed. A request with neither header, a wrong
signature or a wrong token is refused (401). A body is read up to ``MAX_BODY_BYTES``; a larger one is
refused (413) without reading the rest.

A signed body sent again (a replay, or the host's redelivery of a push already handled) starts no
second pass: the digests of the latest accepted bodies and delivery ids are remembered (in memory,
per process, the last ``REMEMBERED``).

Pure apart from the in-memory replay memory; no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "MAX_BODY_BYTES",
    "SECRET_ENV",
    "Push",
    "Refused",
    "ReplayGuard",
    "parse_push",
    "verify",
]

SECRET_ENV = "RECONCILER_WEBHOOK_SECRET"
# GitHub caps push payloads at 25 MB, but a push of ordinary size is a few kilobytes to a few hundred;
# what the loop needs (the branch) is at the start. A megabyte leaves room for large pushes.
MAX_BODY_BYTES = 1024 * 1024
REMEMBERED = 4096


class Refused(Exception):
    """A webhook request refused: ``status`` is the HTTP status, ``result`` the metric's label."""

    def __init__(self, status: int, result: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.result = result


@dataclass(frozen=True, slots=True)
class Push:
    """What a verified request asks: ``event`` is push, ping or another host event."""

    host: str  # github | gitlab
    event: str
    ref: str | None = None
    after: str | None = None
    delivery: str | None = None

    @property
    def branch(self) -> str | None:
        if self.ref and self.ref.startswith("refs/heads/"):
            return self.ref[len("refs/heads/") :]
        return None

    @property
    def deleted(self) -> bool:
        return bool(self.after) and set(self.after or "") == {"0"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name) if name in headers else headers.get(name.lower())


def verify(headers: Mapping[str, str], body: bytes, secret: bytes) -> str:
    """The host whose signature (GitHub) or token (GitLab) is valid for ``body``; else ``Refused``."""
    signature = _header(headers, "x-hub-signature-256")
    if signature is not None:
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(signature.strip().encode(), expected.encode()):
            return "github"
        raise Refused(401, "unauthorized", "the X-Hub-Signature-256 signature does not match")
    token = _header(headers, "x-gitlab-token")
    if token is not None:
        if hmac.compare_digest(token.encode(), secret):
            return "gitlab"
        raise Refused(401, "unauthorized", "the X-Gitlab-Token does not match")
    raise Refused(401, "unauthorized", "no signature: send X-Hub-Signature-256 (GitHub) or X-Gitlab-Token")


def parse_push(host: str, headers: Mapping[str, str], body: bytes) -> Push:
    """The verified request's event; a push's ref and new head commit."""
    if host == "github":
        event = (_header(headers, "x-github-event") or "").strip().lower()
        delivery = _header(headers, "x-github-delivery")
    else:
        raw = (_header(headers, "x-gitlab-event") or "").strip().lower()
        event = "push" if raw == "push hook" else raw
        delivery = _header(headers, "x-gitlab-event-uuid") or _header(headers, "idempotency-key")
    if event != "push":
        return Push(host, event or "unknown", delivery=delivery)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Refused(400, "bad_request", "the push body is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("ref"), str):
        raise Refused(400, "bad_request", "the push body has no ref")
    after = data.get("after")
    return Push(host, "push", data["ref"], after if isinstance(after, str) else None, delivery)


class ReplayGuard:
    """The digests and delivery ids of the latest accepted requests (thread-safe)."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, body: bytes, delivery: str | None) -> bool:
        """True the first time this body (or delivery id) is seen; it is remembered from now on."""
        keys = ["body:" + hashlib.sha256(body).hexdigest()]
        if delivery:
            keys.append("id:" + delivery[:200])
        with self._lock:
            if any(k in self._seen for k in keys):
                return False
            for k in keys:
                self._seen[k] = None
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
        return True
