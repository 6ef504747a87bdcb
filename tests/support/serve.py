"""Helpers: ``reconciler serve`` as a real child process on 127.0.0.1, following a real git repository
into a local tenant file, with its own state folder; signed pushes; /metrics read with the Prometheus
client's parser."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from reconciler.graph.identity import PROVISIONING_TEMPLATE, find_job
from reconciler.providers.local import LocalProvider
from reconciler.testing.gitrepos import GitRepo, configuration, git_env, make_repo

SECRET = "serve-test-webhook-secret-5f1c"
# Generous: two cores shared with other suites; every wait ends as soon as its condition holds.
WAIT = 90.0

__all__ = [
    "HOSTILE_EMAIL",
    "SECRET",
    "WAIT",
    "GitRepo",
    "Scene",
    "Served",
    "configuration",
    "new_repo",
    "signed",
    "staged",
    "start",
    "status_count",
    "wait_for",
]


def wait_for(check: Callable[[], Any], timeout: float = WAIT, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def new_repo(folder: Path) -> GitRepo:
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    return make_repo(folder / "source", git_env(home))


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    tenant: Path
    state_dir: Path
    stderr_path: Path
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))

    @property
    def target(self) -> str:
        return f"local:{self.tenant}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str) -> httpx.Response:
        return self.client.get(self.url + path)

    def push(self, payload: dict[str, Any], *, headers: dict[str, str] | None = None) -> httpx.Response:
        body = json.dumps(payload).encode()
        sent = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body)}
        sent.update(headers or {})
        return self.client.post(self.url + "/hooks/git", content=body, headers=sent)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, read with the Prometheus client's own parser."""
        from prometheus_client.parser import text_string_to_metric_families

        response = self.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    def stop(self, timeout: float = WAIT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.client.close()
            if self.proc.poll() is None:
                self.proc.kill()


def start(
    repo: GitRepo,
    work: Path,
    *args: str,
    secret: str | None = SECRET,
    interval: str = "1h",
    tenant: Path | None = None,
    target: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Served:
    """Start ``reconciler serve configs`` on a free port and wait until it answers.

    The target is the local tenant ``tenant`` (default ``work/tenant.db``) unless ``target`` names another.
    """
    env = {k: v for k, v in repo.env.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_STATE_DIR=str(work / "state"), NO_COLOR="1", **(extra_env or {}))
    if secret is not None:
        env["RECONCILER_WEBHOOK_SECRET"] = secret
    tenant = tenant or work / "tenant.db"
    stderr_path = work / f"serve-{time.monotonic_ns()}.err"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "serve",
                "configs",
                "--repo",
                str(repo.path),
                "--target",
                target or f"local:{tenant}",
                "--listen",
                "127.0.0.1:0",
                "--interval",
                interval,
                *args,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )

    def address() -> str | None:
        assert proc.poll() is None, stderr_path.read_text()
        found = re.search(r"Serving on (http://127\.0\.0\.1:\d+)/", stderr_path.read_text())
        return found.group(1) if found else None

    try:
        url = wait_for(address, what="the server to start")
    except BaseException:
        proc.kill()
        raise
    return Served(proc, url, tenant, work / "state", stderr_path)


# A live value with markup in it: the pages must show it as text.
HOSTILE_EMAIL = "<b>portal</b>@alpha.example.com"
# A job run as the service reports it, with its counts.
CHARLIE_LAST_RUN = {
    "state": "Succeeded",
    "timeBegan": "2026-12-06T09:58:00Z",
    "timeEnded": "2026-12-06T10:00:00Z",
    "countEntitled": 120,
    "countExported": 7,
    "countImported": 130,
    "countEscrowed": 2,
    "error": None,
}


@dataclass
class Scene:
    served: Served
    repo: GitRepo
    head: str


def status_count(served: Served, status: str) -> float:
    return served.metrics().get(("reconciler_configurations", (("status", status),)), -1.0)


@contextmanager
def staged(work: Path) -> Iterator[Scene]:
    """A service that applied four configurations, then met one of each trouble: ``alpha`` drifted (its
    e-mail changed in the portal), ``bravo`` quarantined, ``delta`` removed from git (its delete held
    back), ``charlie`` in sync."""
    repo = new_repo(work)
    for name in ("alpha", "bravo", "charlie", "delta"):
        repo.write(f"configs/{name}.yaml", configuration(name))
    repo.commit("four configurations")
    served = start(repo, work)
    try:
        wait_for(lambda: status_count(served, "in_sync") == 4, what="four configurations in sync")
        repo.remove("configs/delta.yaml")
        head = repo.commit("delta leaves")
        assert served.push({"ref": "refs/heads/main", "after": head}).status_code == 202
        wait_for(lambda: status_count(served, "held_delete") == 1, what="the held delete")

        provider = LocalProvider(str(served.tenant))
        try:
            by_name = {o.name: o for o in provider.read_all()}
            alpha, bravo = by_name["alpha"], by_name["bravo"]
            provider.update_settings(
                alpha.id,
                replace(alpha.settings, notification_email=HOSTILE_EMAIL),
                deletion_protection=False,
                restart_token=None,
            )
            job = find_job(provider.store.list_jobs(bravo.id), PROVISIONING_TEMPLATE)
            assert job is not None
            provider.store.quarantine(bravo.id, job["id"], reason="TooManyDeletes")
            charlie = by_name["charlie"]
            job = find_job(provider.store.list_jobs(charlie.id), PROVISIONING_TEMPLATE)
            assert job is not None
            provider.store.set_status(charlie.id, job["id"], lastExecution=CHARLIE_LAST_RUN)
        finally:
            provider.close()
        # The same commit again (another delivery): a drift pass.
        assert served.push({"ref": "refs/heads/main", "after": head, "n": 2}).status_code == 202
        wait_for(
            lambda: status_count(served, "drifted") == 1 and status_count(served, "quarantined") == 1,
            what="the drift and the quarantine",
        )
        yield Scene(served, repo, head)
    finally:
        served.stop()
