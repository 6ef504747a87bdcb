"""Test support: the command line as a child process (run, or killed after a while), its environment,
and the search for a secret in what it printed and the files it left.

I/O: child processes in the folders given; ``find_secret`` reads the files under the folders given.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.testing.killswitch import KILL_ENV

__all__ = [
    "COMMAND_TIMEOUT",
    "Result",
    "child_env",
    "cli",
    "command",
    "find_secret",
    "killed_cli",
    "token_for",
]

# No command may take longer than this; one that does is reported as a hang.
COMMAND_TIMEOUT = 240.0


def token_for(seed: int, kind: str) -> str:
    """A bearer token no other text would contain by chance."""
    return f"tkn-{kind}-{seed}-{random.Random(f'{kind}{seed}').getrandbits(64):016x}-never-print"


def find_secret(secret: str, texts: Mapping[str, str], folders: Iterable[Path] = ()) -> list[str]:
    """Where ``secret`` occurs: the names of ``texts`` holding it, and files under ``folders``."""
    found = [name for name, text in texts.items() if secret in text]
    needle = secret.encode()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(str(path))
    return found


@dataclass(frozen=True, slots=True)
class Result:
    args: tuple[str, ...]
    code: int  # -9: killed by SIGKILL; -1: still running after COMMAND_TIMEOUT (a hang)
    out: str
    err: str

    @property
    def hung(self) -> bool:
        return self.code == -1

    def describe(self) -> str:
        tail = (self.err or self.out).strip().splitlines()[-3:]
        return f"`reconciler {' '.join(self.args)}` exited {self.code}: {' | '.join(tail)}"


def child_env(folder: Path, token: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a command run in ``folder``: its own state folder, nothing inherited from
    reconciler's variables, and ``token`` as the Graph bearer token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_STATE_DIR=str(folder / "state"), NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    if token:
        env["RECONCILER_GRAPH_TOKEN"] = token
    env.update(extra)
    return env


def command(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``reconciler ARGS`` as a child process runs it; through the kill switch when ``env`` sets it."""
    module = "reconciler.testing.killswitch" if env.get(KILL_ENV) else "reconciler"
    return [sys.executable, "-m", module, *args]


def cli(folder: Path, *args: str, env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT) -> Result:
    """Run ``reconciler ARGS`` in ``folder`` as a child process."""
    try:
        done = subprocess.run(
            command(args, env), cwd=folder, env=dict(env), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        return Result(tuple(args), -1, _text(exc.stdout), _text(exc.stderr))
    return Result(tuple(args), done.returncode, done.stdout, done.stderr)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""


def killed_cli(folder: Path, *args: str, env: Mapping[str, str], after: float | None) -> Result:
    """Run ``reconciler ARGS`` and, with ``after``, SIGKILL it that many seconds after it started."""
    proc = subprocess.Popen(
        command(args, env),
        cwd=folder,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=after if after is not None else COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        if after is None:
            return Result(tuple(args), -1, out, err)
    return Result(tuple(args), proc.returncode, out, err)
