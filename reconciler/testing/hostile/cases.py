"""What every hostile case shares: a case and how it is judged, the command line run in this process with
its output captured, the project fed to it, and the tally of outcomes.

I/O: the process environment and standard streams, swapped while a case runs; files of the project folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.providers.local import LocalProvider
from reconciler.testing.commands import token_for
from reconciler.testing.desired_states import make_scenario, write_desired
from reconciler.testing.tenant_checks import plant

# How long one command may take before it counts as a hang.
CASE_TIMEOUT = 60.0
REJECT, ACCEPT, EITHER = "reject", "accept", "either"


@dataclass(frozen=True, slots=True)
class Ran:
    code: int  # -1: still running after CASE_TIMEOUT
    out: str
    err: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    name: str
    expect: str
    ran: Ran
    problem: str | None  # None: handled cleanly
    leaked: bool = False

    @property
    def rejected(self) -> bool:
        return self.problem is None and self.ran.code == 1


@dataclass(slots=True)
class Tally:
    tried: int = 0
    rejected: int = 0
    accepted: int = 0
    leaks: int = 0
    failures: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.tried += 1
        self.leaks += outcome.leaked
        if outcome.problem is not None:
            self.failures.append(f"{outcome.kind}: {outcome.name}: {outcome.problem}")
        elif outcome.ran.code == 1:
            self.rejected += 1
        else:
            self.accepted += 1


# --------------------------------------------------------------------------------------------------
# running the command line in this process


_run_lock = threading.Lock()


@contextlib.contextmanager
def _fast_retries() -> Iterator[None]:
    """Production retry counts with short waits, so that a case that retries is over in moments.

    It swaps the client's default policy for the whole process, so it is used only inside ``run_main``'s
    lock (``run_main(..., fast_retries=True)``), where one command at a time runs in this process.
    """
    from reconciler.graph import client as graphhttp

    original = graphhttp.RetryPolicy
    fast = functools.partial(original, base_delay=0.01, max_delay=0.05)
    setattr(graphhttp, "RetryPolicy", fast)  # noqa: B010
    try:
        yield
    finally:
        setattr(graphhttp, "RetryPolicy", original)  # noqa: B010


def run_main(
    args: Sequence[str], env: Mapping[str, str], timeout: float = CASE_TIMEOUT, *, fast_retries: bool = False
) -> Ran:
    """``reconciler ARGS`` through ``main()`` with ``env`` as the only reconciler variables.

    It runs on a thread so that a hang is reported (as code -1) instead of waited for. ``fast_retries``:
    the Graph client retries as often as in production, with waits of a few milliseconds.
    """
    from reconciler.cli.main import main

    with _run_lock, _fast_retries() if fast_retries else contextlib.nullcontext():
        saved = dict(os.environ)
        for key in [k for k in os.environ if k.startswith("RECONCILER_")]:
            del os.environ[key]
        os.environ.update(env)
        out, err = io.StringIO(), io.StringIO()
        box: dict[str, int] = {}

        def target() -> None:
            try:
                box["code"] = main(list(args))
            except BaseException as exc:  # what main() lets escape is itself a finding
                err.write(f"Traceback: {type(exc).__name__}: {exc}\n")
                box["code"] = -2

        began = time.monotonic()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                thread = threading.Thread(target=target, daemon=True)
                thread.start()
                thread.join(timeout)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return Ran(box.get("code", -1), out.getvalue(), err.getvalue(), time.monotonic() - began)


def tenant_digest(db: Path) -> str:
    """A digest of everything a target write could change in the tenant."""
    digest = hashlib.sha256()
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
        for table, order in (
            ("service_principals", "id"),
            ("applications", "id"),
            ("jobs", "sp_id, id"),
            ("secrets", "sp_id"),
            ("job_actions", "seq"),
        ):
            for row in con.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile input: ``prepare`` writes it into the case folder and returns the arguments."""

    kind: str
    name: str
    prepare: Callable[[Path], list[str]]
    expect: str = REJECT
    # What the error must say, when it must say something in particular.
    says: str | None = None


def _judge(case: Case, ran: Ran, changed: bool, leaked: list[str], extra: str | None = None) -> str | None:
    text = ran.out + ran.err
    if ran.code == -1:
        return f"no answer after {CASE_TIMEOUT:g}s"
    if "Traceback" in text or ran.code in (-2, 3):
        return f"exit {ran.code}: {text.strip().splitlines()[-1:] if text.strip() else ''}"
    if leaked:
        return "the token is in " + ", ".join(leaked)
    if changed:
        return "the target was written"
    if extra:
        return extra
    if case.expect == REJECT and ran.code != 1:
        return f"accepted (exit {ran.code}) instead of refused"
    if case.expect == ACCEPT and ran.code not in (0, 2):
        return f"refused (exit {ran.code}): {ran.err.strip()[-300:]}"
    if ran.code == 1 and "error:" not in ran.err:
        return "exit 1 without an error: line"
    if case.says is not None and ran.code == 1 and case.says not in ran.err:
        return f"the message does not say {case.says!r}: {ran.err.strip()[-300:]}"
    return None


# --------------------------------------------------------------------------------------------------
# a project to feed hostile input to: two managed configurations and an unmanaged one


@dataclass(frozen=True, slots=True)
class Project:
    folder: Path
    db: Path
    configs: Path  # a changed desired state (the saved plans' source)
    current: Path  # the desired state the target holds
    plan: Path  # a good saved plan of a change to both configurations
    other_plan: Path  # a good plan made for another target
    unmanaged_id: str
    token: str

    @property
    def target(self) -> str:
        return f"local:{self.db}"

    def env(self, case_folder: Path) -> dict[str, str]:
        return {
            "RECONCILER_STATE_DIR": str(case_folder / "state"),
            "RECONCILER_TARGET": self.target,
            "RECONCILER_GRAPH_TOKEN": self.token,
            "NO_COLOR": "1",
        }


def make_project(folder: Path) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    scenario = make_scenario(7)
    db, configs = folder / "tenant.db", folder / "configs"
    token = token_for(7, "hostile")
    planted = plant(db)
    write_desired(folder / "current", scenario.before[:2])
    env = {"RECONCILER_STATE_DIR": str(folder / "state"), "RECONCILER_TARGET": f"local:{db}"}
    ran = run_main(["apply", str(folder / "current"), "--auto-approve"], env)
    if ran.code != 0:
        raise RuntimeError(f"setting up the hostile-input project failed: {ran.err}")
    # The plan of a change, saved and never applied: the cases edit copies of it.
    changed = [scenario.after[0], scenario.after[1]]
    write_desired(configs, changed)
    ran = run_main(["plan", str(configs), "--out", str(folder / "plan.json")], env)
    # A plan only reads, so it needs a tenant that exists: an empty one.
    LocalProvider(str(folder / "other.db")).close()
    other = run_main(
        [
            "plan",
            str(configs),
            "--out",
            str(folder / "other.json"),
            "--target",
            f"local:{folder / 'other.db'}",
        ],
        env,
    )
    if ran.code != 0 or other.code != 0:
        raise RuntimeError(f"making the plans failed: {ran.err} {other.err}")
    return Project(
        folder,
        db,
        configs,
        folder / "current",
        folder / "plan.json",
        folder / "other.json",
        planted.unmanaged_id,
        token,
    )
