"""Helpers for the security regression tests: a real git repository in a temporary folder and the
command line run in a subprocess with a time limit and an address-space limit, so that a regression
(a hang, a read without end) fails the test instead of stalling or exhausting the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Generous: a CLI start with its imports takes well under a second; only a hang comes near this.
TIMEOUT = 120
MEMORY_LIMIT = 2 * 1024**3


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def _limits(umask: int | None) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        if umask is not None:
            os.umask(umask)

    return apply


def configuration(name: str, domain: str | None = None, extra: str = "") -> str:
    domain = domain or f"{name}.example.com"
    dc = ",".join(f"DC={p}" for p in domain.split("."))
    return (
        f"apiVersion: cloudsync/v1\nkind: Configuration\nmetadata:\n  name: {name}\nspec:\n"
        f"  domain: {domain}\n  notificationEmail: ops@{domain}\n"
        f"  scope:\n    organizationalUnits:\n      - OU=Sales,{dc}\n{extra}"
    )


@dataclass
class Sandbox:
    """A git repository (``repo``) with a ``configs`` folder, its own state folder and git settings."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def state(self) -> Path:
        return self.repo / ".reconciler"

    @property
    def db(self) -> Path:
        return self.state / "tenant.db"

    def run(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, umask: int | None = None
    ) -> Ran:
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=cwd or self.repo,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT,
            preexec_fn=_limits(umask),
            stdin=subprocess.DEVNULL,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd or self.repo, env=self.env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def write(self, rel: str, text: str) -> Path:
        path = self.repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def configurations(self) -> dict[str, dict[str, Any]]:
        """What the local tenant holds, by name (managed or not), read in this process."""
        from reconciler.providers.local import LocalProvider

        provider = LocalProvider(str(self.db))
        try:
            return {
                (o.name or o.id): {"id": o.id, "managed": o.managed, "protected": o.deletion_protection}
                for o in provider.read_all()
            }
        finally:
            provider.close()


def resign(doc: dict[str, Any]) -> dict[str, Any]:
    """Recompute a plan document's checksum, as anyone who can edit the file can."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    doc["checksum"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return doc


def edit_plan(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(resign(doc)), encoding="utf-8")
