"""Test support: real git repositories in temporary folders, with a pinned author and dates.

Every commit gets the same committer and a date one minute after the previous one, so shas are the same
on every run. Git reads no user or system configuration.

I/O: the folders it is given; git runs as a child process.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

AUTHOR = ("Alice Example", "alice@example.com")
BASE_TIME = 1767225600  # 2026-01-01T00:00:00Z


def configuration(
    name: str,
    *,
    domain: str | None = None,
    ous: tuple[str, ...] | None = None,
    mappings: str = "",
    labels: str = "",
    extra: str = "",
) -> str:
    """A Configuration document; ``mappings`` is the YAML of ``attributeMappings.user`` items."""
    domain = domain or f"{name}.example.com"
    dc = ",".join(f"DC={part}" for part in domain.split("."))
    ous = ous if ous is not None else (f"OU=Sales,{dc}",)
    text = f"apiVersion: cloudsync/v1\nkind: Configuration\nmetadata:\n  name: {name}\n"
    if labels:
        text += f"  labels:\n{labels}"
    text += f"spec:\n  domain: {domain}\n  notificationEmail: ops@{domain}\n"
    if ous:
        text += "  scope:\n    organizationalUnits:\n" + "".join(f"      - {ou}\n" for ou in ous)
    if mappings:
        text += "  attributeMappings:\n    user:\n" + mappings
    return text + extra


@dataclass
class GitRepo:
    path: Path
    env: dict[str, str]
    tick: int = 0
    shas: list[str] = field(default_factory=list)

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=self.env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def write(self, rel: str, text: str) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def remove(self, rel: str) -> None:
        (self.path / rel).unlink()

    def commit(self, message: str, *, author: tuple[str, str] = AUTHOR) -> str:
        self.tick += 1
        date = f"@{BASE_TIME + 60 * self.tick} +0000"
        env = dict(
            self.env,
            GIT_AUTHOR_NAME=author[0],
            GIT_AUTHOR_EMAIL=author[1],
            GIT_AUTHOR_DATE=date,
            GIT_COMMITTER_DATE=date,
        )
        subprocess.run(["git", "add", "-A"], cwd=self.path, env=env, check=True)
        subprocess.run(
            ["git", "commit", "-q", "--allow-empty", "-m", message], cwd=self.path, env=env, check=True
        )
        sha = self.git("rev-parse", "HEAD")
        self.shas.append(sha)
        return sha


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=AUTHOR[0],
        GIT_AUTHOR_EMAIL=AUTHOR[1],
        GIT_COMMITTER_NAME="CI Robot",
        GIT_COMMITTER_EMAIL="ci@example.com",
        GIT_AUTHOR_DATE=f"@{BASE_TIME} +0000",
        GIT_COMMITTER_DATE=f"@{BASE_TIME} +0000",
    )
    return env


def make_repo(path: Path, env: dict[str, str]) -> GitRepo:
    path.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(path, env)
    repo.git("init", "-q", "-b", "main")
    return repo
