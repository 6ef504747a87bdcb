"""Hostile inputs for the command line: plan files, YAML, expressions and Graph answers.

Each case is fed to the real entry point (``reconciler.cli.main.main``, in this process, with its
output captured) and must end cleanly: a case that must be rejected exits 1 with an ``error:`` line;
one that is valid input exits 0 (or 2); none may print a traceback, exit 3, hang, write to the target,
or leave the token in its output or files. Graph answers come from a small server on 127.0.0.1 that
serves the emulator's answers spoiled one way or another (``GRAPH_CASES``).

``run_corpus(folder, seeds)`` runs the fixed cases plus seeded random ones and returns a ``Tally``;
``benchmarks/reliability.py`` prints it and ``tests/adversarial`` asserts on it.

I/O: files under the folder it is given; one HTTP server thread on 127.0.0.1 per Graph case; the
process environment and standard streams, swapped while a case runs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import random
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.providers.local import LocalProvider
from reconciler.testing.scenarios import (
    find_secret,
    make_scenario,
    plant,
    token_for,
    write_desired,
)

__all__ = [
    "GRAPH_CASES",
    "Case",
    "Outcome",
    "Tally",
    "expression_cases",
    "graph_case",
    "plan_file_cases",
    "run_corpus",
    "run_main",
    "tenant_digest",
    "yaml_cases",
]

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


# --------------------------------------------------------------------------------------------------
# saved plan files


def _checksum(doc: dict[str, Any]) -> str:
    """What the plan format's checksum is; a hand edit that recomputes it is still checked further."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _plan_case(
    project: Project,
    name: str,
    make: Callable[[bytes], bytes],
    says: str | None = None,
    suffix: str = ".json",
) -> Case:
    def prepare(folder: Path) -> list[str]:
        path = folder / f"plan{suffix}"
        path.write_bytes(make(project.plan.read_bytes()))
        return ["apply", str(path)]

    return Case("plan file", name, prepare, REJECT, says)


def _edited(change: Callable[[dict[str, Any]], Any], *, resign: bool) -> Callable[[bytes], bytes]:
    def make(data: bytes) -> bytes:
        doc = json.loads(data)
        change(doc)
        if resign:
            doc["checksum"] = _checksum(doc)
        return json.dumps(doc).encode()

    return make


def _delete_unmanaged(project: Project) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["changes"] = [
            {
                "address": "configuration.portal",
                "name": "portal",
                "action": "delete",
                "target_id": project.unmanaged_id,
                "reasons": [],
                "before": {},
                "after": {},
                "write_settings": False,
                "write_schema": False,
                "reset_scope": None,
                "spec": None,
            }
        ]
        doc["options"]["allow_delete"] = True

    return change


def _only_first_change(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["changes"] = [{**doc["changes"][0], **fields}]

    return change


def _sparse(size: int) -> Callable[[Path], list[str]]:
    def prepare(folder: Path) -> list[str]:
        path = folder / "huge.json"
        with open(path, "wb") as fh:
            fh.truncate(size)  # a sparse file: this size on paper, nothing on disk
        return ["apply", str(path)]

    return prepare


def plan_file_cases(project: Project, rng: random.Random | None = None, random_cases: int = 0) -> list[Case]:
    """Saved plan files truncated, flipped, edited by hand, made elsewhere or of another version."""
    size = project.plan.stat().st_size
    other = project.other_plan.read_bytes()
    cases = [
        _plan_case(project, "empty", lambda d: b"", "not a plan file"),
        _plan_case(project, "only whitespace", lambda d: b"  \n\t\n", "not a plan file"),
        _plan_case(project, "null", lambda d: b"null", "not a reconciler plan file"),
        _plan_case(project, "a JSON list", lambda d: b"[1, 2]", "not a reconciler plan file"),
        _plan_case(project, "a JSON string", lambda d: b'"plan"', "not a reconciler plan file"),
        _plan_case(project, "not JSON", lambda d: b"plan: yes\nchanges: []\n", "not a plan file"),
        _plan_case(project, "binary", lambda d: bytes(range(256)) * 8, "not a plan file"),
        _plan_case(project, "UTF-16", lambda d: d.decode().encode("utf-16"), "not a plan file"),
        _plan_case(project, "a byte-order mark", lambda d: b"\xef\xbb\xbf" + d, "not a plan file"),
        _plan_case(
            project, "nested 100,000 deep", lambda d: b"[" * 100_000 + b"]" * 100_000, "not a plan file"
        ),
        _plan_case(
            project, "an object nested 100,000 deep", lambda d: b'{"a":' * 100_000 + b"1" + b"}" * 100_000
        ),
        _plan_case(
            project, "a 5,000-digit number", lambda d: b'{"kind": 1' + b"0" * 5000 + b"}", "not a plan file"
        ),
        _plan_case(project, "cut to its first half", lambda d: d[: len(d) // 2], "not a plan file"),
        _plan_case(project, "the last byte missing", lambda d: d[:-2], "not a plan file"),
        _plan_case(project, "cut short, named .plan", lambda d: d[:10], "not a plan file", suffix=".plan"),
        _plan_case(
            project,
            "notification e-mail edited",
            lambda d: d.replace(b"@", b"@attacker.example.", 1),
            "changed after it was made",
        ),
        _plan_case(
            project,
            "checksum removed",
            _edited(lambda doc: doc.pop("checksum"), resign=False),
            "changed after it was made",
        ),
        _plan_case(
            project, "kind changed", _edited(lambda doc: doc.update(kind="terraform-plan"), resign=True)
        ),
        _plan_case(
            project,
            "a future format version",
            _edited(lambda doc: doc.update(format_version=2), resign=True),
            "format version 2 is not supported",
        ),
        _plan_case(
            project,
            "format version as text",
            _edited(lambda doc: doc.update(format_version="1"), resign=True),
            "not supported",
        ),
        _plan_case(
            project,
            "a future format version, checksum not redone",
            _edited(lambda doc: doc.update(format_version=99), resign=False),
        ),
        _plan_case(
            project,
            "target edited, checksum redone",
            _edited(lambda doc: doc.update(target="local:/tmp/elsewhere.db"), resign=True),
            "made for target",
        ),
        Case(
            "plan file",
            "made for another target",
            lambda folder: _write(folder / "other.json", other, "apply"),
            REJECT,
            "made for target",
        ),
        _plan_case(
            project,
            "an action this version does not know, checksum redone",
            _edited(lambda doc: doc["changes"][0].update(action="explode"), resign=True),
            "malformed",
        ),
        _plan_case(
            project,
            "changes not a list, checksum redone",
            _edited(lambda doc: doc.update(changes={"a": 1}), resign=True),
        ),
        _plan_case(
            project,
            "a change without its spec, checksum redone",
            _edited(lambda doc: doc["changes"][0].update(spec={"settings": {}}), resign=True),
            "malformed",
        ),
        _plan_case(
            project,
            "options missing, checksum redone",
            _edited(lambda doc: doc.pop("options"), resign=True),
            "malformed",
        ),
        _plan_case(
            project,
            "fingerprints not an object, checksum redone",
            _edited(lambda doc: doc.update(fingerprints=[1]), resign=True),
        ),
        _plan_case(
            project,
            "made to delete the unmanaged configuration, checksum redone",
            _edited(_delete_unmanaged(project), resign=True),
            "does not match what the desired state it pins",
        ),
        _plan_case(
            project,
            "a change's id pointing elsewhere, checksum redone",
            _edited(_only_first_change(target_id="../../../etc/passwd"), resign=True),
        ),
        Case("plan file", "300 MB", _sparse(300 * 1024 * 1024), REJECT, "too large"),
    ]
    for i in range(random_cases):
        assert rng is not None
        offset = rng.randrange(1, size)
        cases.append(
            _plan_case(project, f"truncated at byte {offset}", functools.partial(_cut, offset=offset))
        )
        where, bits = rng.randrange(size), rng.randrange(1, 256)
        original = project.plan.read_bytes()[where]
        if original in _JSON_SPACE and original ^ bits in _JSON_SPACE:
            bits = 0xFF  # one kind of JSON white space for another changes nothing: flip it to a non-space
        cases.append(
            _plan_case(project, f"byte {where} xor {bits}", functools.partial(_flip, where=where, bits=bits))
        )
        del i
    return cases


_JSON_SPACE = frozenset(b" \t\n\r")


def _cut(data: bytes, offset: int) -> bytes:
    return data[:offset]


def _flip(data: bytes, where: int, bits: int) -> bytes:
    return data[:where] + bytes([data[where] ^ bits]) + data[where + 1 :]


def _write(path: Path, data: bytes, *args: str) -> list[str]:
    path.write_bytes(data)
    return [*args, str(path)]


# --------------------------------------------------------------------------------------------------
# YAML


_CONFIG = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: {name}
spec:
  domain: {name}.contoso.com
  notificationEmail: ops@{name}.contoso.com
"""

_TOKENS = [
    "a", "kind", "spec", ": ", "- ", "\n", "  ", "[", "]", "{", "}", ",", "'", '"', "&x ", "*x", "<<: ",
    "!!str ", "!!python/object/apply:os.system ", "!x ", "? ", "|\n", "#", "---\n", "...\n", "%YAML 1.1\n",
    "\t", "é", "\\", "0x1F", "1e9", ".inf", "~", "null", "Configuration", "cloudsync/v1", "metadata",
    "name: alpha", "domain: ", "../../etc/passwd",
]  # fmt: skip


def _yaml_case(
    name: str,
    files: Mapping[str, str | bytes],
    expect: str = REJECT,
    says: str | None = None,
    kind: str = "YAML",
) -> Case:
    """Files to be refused go to ``apply --auto-approve`` (so a wrong acceptance would show as a write);
    input that may be valid goes to ``plan``, which writes nothing either way."""

    def prepare(folder: Path) -> list[str]:
        configs = folder / "configs"
        configs.mkdir()
        for rel, content in files.items():
            path = configs / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        if expect == REJECT:
            return ["apply", str(configs), "--auto-approve"]
        return ["plan", str(configs)]

    return Case(kind, name, prepare, expect, says)


def _linked(name: str, target: str, says: str) -> Case:
    def prepare(folder: Path) -> list[str]:
        configs = folder / "configs"
        configs.mkdir()
        (configs / "ok.yaml").write_text(_CONFIG.format(name="alpha"))
        os.symlink(target, configs / name)
        return ["apply", str(configs), "--auto-approve"]

    return Case("YAML", f"a symbolic link to {target}", prepare, REJECT, says)


def _fifo_case() -> Case:
    def prepare(folder: Path) -> list[str]:
        configs = folder / "configs"
        configs.mkdir()
        os.mkfifo(configs / "pipe.yaml")  # reading it would wait for ever
        return ["apply", str(configs / "pipe.yaml"), "--auto-approve"]

    return Case("YAML", "a named pipe called pipe.yaml", prepare, REJECT, "not a regular file")


def yaml_cases(marker: Path, rng: random.Random | None = None, random_cases: int = 0) -> list[Case]:
    """Desired-state files that must be refused (``marker`` must never be created: YAML that would
    run a command writes it), and seeded random YAML-like text that may go either way."""
    touch = f"touch {marker}"
    python = [
        ("!!python/object/apply:os.system", f"!!python/object/apply:os.system [{json.dumps(touch)}]"),
        ("!!python/object/new:subprocess.Popen", f"!!python/object/new:subprocess.Popen [[touch, {marker}]]"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!!python/module:os", "!!python/module:os"),
        ("!!python/object:__main__.X", "!!python/object:__main__.X {a: 1}"),
        (
            "a verbatim python tag",
            f"!<tag:yaml.org,2002:python/object/apply:os.system> [{json.dumps(touch)}]",
        ),
        ("a local tag", "!include /etc/passwd"),
    ]
    cases = [
        _yaml_case(
            f"{label} as a value", {"a.yaml": _CONFIG.format(name="alpha") + f"  restartToken: {value}\n"}
        )
        for label, value in python
    ]
    cases += [_yaml_case(f"{label} as a document", {"a.yaml": value + "\n"}) for label, value in python[:3]]
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    )
    cases += [
        _yaml_case("a billion laughs", {"a.yaml": laughs}),
        _yaml_case("an alias to itself", {"a.yaml": "a: &a [*a]\n"}),
        _yaml_case("over 1 MiB", {"a.yaml": _CONFIG.format(name="alpha") + "#" + "x" * (1024 * 1024) + "\n"}),
        _yaml_case(
            "not UTF-8", {"a.yaml": _CONFIG.format(name="alpha").encode() + b"  restartToken: \xff\xfe\n"}
        ),
        _yaml_case("a NUL byte", {"a.yaml": _CONFIG.format(name="alpha") + "  restartToken: a\x00b\n"}),
        _yaml_case("nested 10,000 deep", {"a.yaml": "[" * 10_000 + "]" * 10_000}),
        _yaml_case(
            "a key given twice", {"a.yaml": _CONFIG.format(name="alpha") + "  domain: evil.example\n"}
        ),
        _yaml_case(
            "a path as the name",
            {"a.yaml": _CONFIG.format(name="alpha").replace("name: alpha", "name: ../../etc/passwd")},
        ),
        _yaml_case(
            "a path as the domain",
            {
                "a.yaml": _CONFIG.format(name="alpha").replace(
                    "domain: alpha.contoso.com", "domain: ../../etc"
                )
            },
        ),
        _yaml_case(
            "a number too large",
            {"a.yaml": _CONFIG.format(name="alpha") + "  accidentalDeletes: {threshold: 1e99999}\n"},
        ),
        _yaml_case("a name 10,000 long", {"a.yaml": _CONFIG.format(name="a" * 10_000)}),
        _yaml_case("10,000 empty documents", {"a.yaml": "---\n" * 10_000}, EITHER),
        _yaml_case(
            "two configurations of one name",
            {"a.yaml": _CONFIG.format(name="alpha"), "b.yaml": _CONFIG.format(name="alpha")},
        ),
        _linked("passwd.yaml", "/etc/passwd", "leads outside"),
        _linked("etc", "/etc", "leads outside"),
        _linked("loop.yaml", "loop.yaml", "leads nowhere"),
        _fifo_case(),
        Case("YAML", "a device as the path", lambda folder: ["apply", "/dev/zero", "--auto-approve"], REJECT),
    ]
    for i in range(random_cases):
        assert rng is not None
        text = "".join(rng.choice(_TOKENS) for _ in range(rng.randint(1, 60)))
        cases.append(_yaml_case(f"random YAML-like text #{i}", {"a.yaml": text}, EITHER))
    return cases


# --------------------------------------------------------------------------------------------------
# expressions


def _mapping_yaml(expression: str) -> str:
    return _CONFIG.format(name="alpha") + (
        "  attributeMappings:\n    user:\n      - target: department\n"
        f"        expression: {json.dumps(expression)}\n"
    )


_VALID = [
    'Join(" ", [givenName], [sn])',
    'IIF([department]="Sales", "S", "O")',
    'Switch([c], "x", "NL", "Netherlands", "BE", "Belgium")',
    "Trim(Left([displayName], 20))",
]


def expression_cases(rng: random.Random | None = None, random_cases: int = 0) -> list[Case]:
    """Expressions in a configuration (through ``validate``) and on ``reconciler expr``."""
    hostile = [
        ("an unclosed call", "Join(", REJECT),
        ("an unclosed attribute", "[givenName", REJECT),
        ("an unterminated string", '"abc', REJECT),
        ("an unknown function", "Explode([a])", REJECT),
        ("calls nested 5,000 deep", "Trim(" * 5000 + "[a]" + ")" * 5000, REJECT),
        ("a chain of 200,000 operators", "&".join(["[a]"] * 200_000), REJECT),
        ("a call with 100,000 arguments", "Join(" + ", ".join(['" "'] + ["[a]"] * 100_000) + ")", EITHER),
        ("a string of 500,000 characters", '"' + "x" * 500_000 + '"', ACCEPT),
        ("control characters", "Trim([a\x01\x02])", EITHER),
        ("a path as an attribute", "[../../etc/passwd]", EITHER),
        ("a huge number", "Left([a], 99999999999999999999999999)", EITHER),
        ("a parameter never defined", "%NotAParameter%", EITHER),
        ("AND", 'IIF([a]="1" AND [b]="2", "x", "y")', REJECT),
    ]
    cases: list[Case] = []
    for name, text, expect in hostile:
        cases.append(
            _yaml_case(f"{name} in a mapping", {"a.yaml": _mapping_yaml(text)}, expect, kind="expression")
        )
        if len(text) < 120_000:  # an argument, not a file: keep it to what a shell would pass
            cases.append(
                Case(
                    "expression",
                    f"{name} on the command line",
                    functools.partial(_expr_args, text),
                    expect if expect != ACCEPT else EITHER,
                )
            )
    for i in range(random_cases):
        assert rng is not None
        chars = list(rng.choice(_VALID))
        for _ in range(rng.randint(1, 4)):
            where = rng.randrange(len(chars) + 1)
            if rng.random() < 0.5 and where < len(chars):
                del chars[where]
            else:
                chars.insert(where, rng.choice('()[]",&=<>%\\ aZ9\n'))
        mutated = "".join(chars)
        cases.append(
            _yaml_case(
                f"mutated expression #{i}", {"a.yaml": _mapping_yaml(mutated)}, EITHER, kind="expression"
            )
        )
        cases.append(
            Case("expression", f"mutated expression #{i}", functools.partial(_expr_args, mutated), EITHER)
        )
    return cases


def _expr_args(text: str, folder: Path) -> list[str]:
    return ["expr", text, "--attr", "a=x", "--attr", "givenName=Ada", "--attr", "sn=Lovelace"]


# --------------------------------------------------------------------------------------------------
# Graph answers


Spoil = Callable[[str, str, Any, Any], "Raw | None"]


@dataclass(frozen=True, slots=True)
class Raw:
    """An answer as bytes on the wire; ``trickle`` sends the body a byte at a time."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    length: int | None = None  # Content-Length to claim (the real length when None)
    trickle: bool = False


def _json(data: Any, status: int = 200) -> Raw:
    return Raw(status, json.dumps(data).encode())


def _listing(spoil: Callable[[dict[str, Any]], Any]) -> Spoil:
    def answer(method: str, path: str, request: Any, reply: Any) -> Raw | None:
        if method == "GET" and path == "/servicePrincipals":
            return _json(spoil(reply.body))
        return None

    return answer


def _inner(url_test: Callable[[str], bool], spoil: Callable[[Any], Any]) -> Spoil:
    """Spoil the bodies of the inner answers to requests of a ``$batch`` whose URL passes the test."""

    def answer(method: str, path: str, request: Any, reply: Any) -> Raw | None:
        if path != "/$batch" or not isinstance(reply.body, dict):
            return None
        urls = {r.get("id"): r.get("url", "") for r in request.get("requests", [])}
        for item in reply.body.get("responses", []):
            if url_test(urls.get(item.get("id"), "")) and "body" in item:
                item["body"] = spoil(item["body"])
        return _json(reply.body)

    return answer


def _every(raw: Raw) -> Spoil:
    return lambda method, path, request, reply: raw


def _batch(spoil: Callable[[dict[str, Any]], Any]) -> Spoil:
    def answer(method: str, path: str, request: Any, reply: Any) -> Raw | None:
        return _json(spoil(reply.body)) if path == "/$batch" else None

    return answer


def _each(items: list[Any], change: Callable[[dict[str, Any]], dict[str, Any]]) -> list[Any]:
    return [change(dict(x)) for x in items]


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {k: v for k, v in d.items() if k != key}


def _user_rows(schema: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    for rule in schema.get("synchronizationRules") or []:
        for om in rule.get("objectMappings") or []:
            if om.get("sourceObjectName") == "user":
                for am in om.get("attributeMappings") or []:
                    change(am)
    return schema


def _deep_tree(depth: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"name": "a", "type": "Attribute", "expression": None, "parameters": []}
    for _ in range(depth):
        tree = {
            "name": "Trim",
            "type": "Function",
            "expression": None,
            "parameters": [{"key": "source", "value": tree}],
        }
    return tree


def _set_source(source: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(am: dict[str, Any]) -> None:
        if str(am.get("targetAttributeName")).casefold() == "displayname":
            am["source"] = source

    return change


def _jobs(url: str) -> bool:
    return url.endswith("/synchronization/jobs")


def _secrets(url: str) -> bool:
    return url.endswith("/synchronization/secrets")


def _schema(url: str) -> bool:
    return "/schema" in url


# name -> (how the answers are spoiled, what must come of it)
GRAPH_CASES: dict[str, tuple[Spoil, str]] = {
    "a listing without 'value'": (_listing(_without("value")), REJECT),
    "a listing with 'value': null": (_listing(lambda b: {**b, "value": None}), REJECT),
    "a listing that is a list": (_listing(lambda b: b["value"]), REJECT),
    "a listing with items that are not objects": (
        _listing(lambda b: {**b, "value": [*b["value"], "sp", 1]}),
        REJECT,
    ),
    "service principals without an id": (
        _listing(lambda b: {**b, "value": _each(b["value"], _without("id"))}),
        REJECT,
    ),
    "a service principal id that is an object": (
        _listing(lambda b: {**b, "value": _each(b["value"], lambda sp: {**sp, "id": {"x": 1}})}),
        REJECT,
    ),
    "tags that are a string": (
        _listing(
            lambda b: {**b, "value": _each(b["value"], lambda sp: {**sp, "tags": "reconciler:managed"})}
        ),
        REJECT,
    ),
    "a next-page link back to itself": (
        _listing(lambda b: {**b, "@odata.nextLink": "SELF"}),
        REJECT,
    ),
    "a next-page link to another host": (
        _listing(lambda b: {**b, "@odata.nextLink": "http://192.0.2.1/v1.0/servicePrincipals"}),
        REJECT,
    ),
    "jobs without 'value'": (_inner(_jobs, lambda b: {}), REJECT),
    "a job without an id": (
        _inner(_jobs, lambda b: {**b, "value": _each(b["value"], _without("id"))}),
        REJECT,
    ),
    "an unknown schedule state": (
        _inner(
            _jobs,
            lambda b: {
                **b,
                "value": _each(
                    b["value"], lambda j: {**j, "schedule": {**j["schedule"], "state": "Hibernating"}}
                ),
            },
        ),
        REJECT,
    ),
    "an unknown job status code": (
        _inner(
            _jobs,
            lambda b: {
                **b,
                "value": _each(b["value"], lambda j: {**j, "status": {**j["status"], "code": "Frobnicated"}}),
            },
        ),
        ACCEPT,
    ),
    "a job status that is a string": (
        _inner(_jobs, lambda b: {**b, "value": _each(b["value"], lambda j: {**j, "status": "Active"})}),
        REJECT,
    ),
    "secrets that are not objects": (_inner(_secrets, lambda b: {**b, "value": [1, 2]}), REJECT),
    "a secret without a key": (
        _inner(_secrets, lambda b: {**b, "value": [*b["value"], {"value": "x"}]}),
        REJECT,
    ),
    "secrets without 'value'": (_inner(_secrets, lambda b: {"value": "Domain"}), REJECT),
    "a schema that is a list": (_inner(_schema, lambda b: ["not", "a", "schema"]), REJECT),
    "rules that are a string": (_inner(_schema, lambda b: {**b, "synchronizationRules": "x"}), REJECT),
    "a mapping without a target": (
        _inner(_schema, lambda b: _user_rows(b, lambda am: am.pop("targetAttributeName", None))),
        REJECT,
    ),
    "an unknown mapping source type": (
        _inner(_schema, lambda b: _user_rows(b, lambda am: (am.get("source") or {}).update(type="Quantum"))),
        REJECT,
    ),
    "an unknown flow type": (
        _inner(_schema, lambda b: _user_rows(b, lambda am: am.update(flowType="Sometimes"))),
        REJECT,
    ),
    # As deep as the JSON encoder here can write (three levels a call); deeper than the parser allows.
    "a function tree nested 250 deep": (
        _inner(_schema, lambda b: _user_rows(b, _set_source(_deep_tree(250)))),
        REJECT,
    ),
    "a $batch answer without responses": (_batch(lambda b: {}), REJECT),
    "a $batch answer with every response missing": (_batch(lambda b: {"responses": []}), REJECT),
    "a $batch status that is text": (
        _batch(lambda b: {"responses": [{**r, "status": "OK"} for r in b["responses"]]}),
        REJECT,
    ),
    "an HTML page with 200": (
        _every(Raw(200, b"<html><body>Sign in</body></html>", (("Content-Type", "text/html"),))),
        REJECT,
    ),
    "an HTML error page with 502": (
        _every(Raw(502, b"<html>Bad gateway</html>", (("Content-Type", "text/html"),))),
        REJECT,
    ),
    "JSON cut in half": (
        lambda m, p, r, reply: Raw(200, json.dumps(reply.body).encode()[: len(json.dumps(reply.body)) // 2]),
        REJECT,
    ),
    "JSON nested 100,000 deep": (_every(Raw(200, b"[" * 100_000 + b"]" * 100_000)), REJECT),
    "a length claimed and not sent": (_every(Raw(200, b'{"value": [', length=100_000)), REJECT),
    "a body claimed to be 300 MB": (_every(Raw(200, b"{}", length=300 * 1024 * 1024)), REJECT),
    "an answer sent a byte at a time": (
        lambda m, p, r, reply: (
            Raw(200, json.dumps(reply.body).encode(), trickle=True) if p == "/servicePrincipals" else None
        ),
        REJECT,
    ),
    "an error that quotes the bearer token": (
        _every(
            _json(
                {"error": {"code": "InvalidAuthenticationToken", "message": "token ECHO_TOKEN is bad"}}, 401
            )
        ),
        REJECT,
    ),
    "an error with a 5 MB message": (
        _every(_json({"error": {"code": "x" * 2000, "message": "m" * 5_000_000}}, 400)),
        REJECT,
    ),
    "429 with Retry-After: nan": (_every(Raw(429, b"", (("Retry-After", "nan"),))), REJECT),
    "429 with Retry-After: a year": (_every(Raw(429, b"", (("Retry-After", "31536000"),))), REJECT),
    "JSON with the wrong content type": (
        lambda m, p, r, reply: Raw(
            reply.status,
            b"" if reply.body is None else json.dumps(reply.body).encode(),
            (("Content-Type", "text/plain"),),
        ),
        ACCEPT,
    ),
}


class _Hostile(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    emulator: Emulator
    spoil: Spoil
    writes: list[str]
    errors: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Kept, not printed: the case's standard error is being captured.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            self.errors.append(f"{type(error).__name__}: {error}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Hostile

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        request = json.loads(data) if data else None
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path.removeprefix("/v1.0") or "/"
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        reads_only = path == "/$batch" and all(
            r.get("method") == "GET" for r in (request or {}).get("requests", [])
        )
        if self.command != "GET" and not reads_only:
            self.server.writes.append(f"{self.command} {path}")
            raw: Raw | None = Raw(503, b"", (("Retry-After", "0"),))  # never carried out
        else:
            base = f"http://127.0.0.1:{self.server.server_address[1]}/v1.0"
            reply = self.server.emulator.run(self.command, path, query, request, base, "hostile")
            if path == "/servicePrincipals" and isinstance(reply.body, dict):
                reply.body = {**reply.body}
            raw = self.server.spoil(self.command, path, request, reply)
            if raw is not None and b'"SELF"' in raw.body:
                raw = Raw(raw.status, raw.body.replace(b'"SELF"', json.dumps(base + self.path[5:]).encode()))
            if raw is not None and b"ECHO_TOKEN" in raw.body:
                bearer = self.headers.get("Authorization", "").partition(" ")[2]
                raw = Raw(raw.status, raw.body.replace(b"ECHO_TOKEN", bearer.encode()), raw.headers)
            if raw is None:
                raw = Raw(reply.status, b"" if reply.body is None else json.dumps(reply.body).encode())
        assert raw is not None
        self._send(raw)

    def _send(self, raw: Raw) -> None:
        self.send_response(raw.status)
        for name, value in raw.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(raw.length if raw.length is not None else len(raw.body)))
        self.end_headers()
        try:
            if raw.trickle:
                for i in range(len(raw.body)):
                    self.wfile.write(raw.body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(raw.body)
        except OSError:
            pass  # the client gave up
        if raw.length is not None:
            self.close_connection = True


@contextlib.contextmanager
def _hostile_server(db: Path, spoil: Spoil) -> Iterator[_Hostile]:
    emulator = Emulator(db, EmulatorConfig())
    server = _Hostile(("127.0.0.1", 0), _Handler)
    server.emulator, server.spoil, server.writes, server.errors = emulator, spoil, [], []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        emulator.stop()


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


# The cases whose answers never finish: only these need a short client timeout to end in moments. Every
# other case is given a timeout no loaded machine reaches, so that a slow answer is never its outcome.
_UNFINISHED_ANSWERS = frozenset({"an answer sent a byte at a time", "a length claimed and not sent"})
_SHORT_TIMEOUT, _LONG_TIMEOUT = "0.5", "60"


def _own_tenant(db: Path, folder: Path) -> Path:
    """A copy of the project's tenant for one case (SQLite's backup, so a live journal is included)."""
    copy = folder / "tenant.db"
    with contextlib.closing(sqlite3.connect(db)) as source, contextlib.closing(sqlite3.connect(copy)) as dest:
        source.backup(dest)
    return copy


def graph_case(project: Project, name: str, folder: Path) -> list[Outcome]:
    """``plan`` and ``apply --auto-approve`` against a server giving the spoiled answers ``name``."""
    spoil, expect = GRAPH_CASES[name]
    timeout = _SHORT_TIMEOUT if name in _UNFINISHED_ANSWERS else _LONG_TIMEOUT
    outcomes = []
    for args in (["plan", str(project.current)], ["apply", str(project.current), "--auto-approve"]):
        case = Case("Graph answer", f"{name} ({args[0]})", lambda _f: [], expect)
        case_folder = folder / args[0]
        case_folder.mkdir(parents=True)
        # Each case has a tenant and a server of its own: no case sees what another one left.
        db = _own_tenant(project.db, case_folder)
        before = tenant_digest(db)
        with _hostile_server(db, spoil) as server:
            target = f"graph+http://127.0.0.1:{server.server_address[1]}"
            env = {**project.env(case_folder), "RECONCILER_TARGET": target}
            env["RECONCILER_GRAPH_TIMEOUT"] = timeout
            ran = run_main(args, env, fast_retries=True)
            writes, errors = list(server.writes), list(server.errors)
        leaked = find_secret(project.token, {"stdout": ran.out, "stderr": ran.err}, [case_folder])
        extra = f"it sent {writes[0]}" if writes else None
        if errors:
            extra = f"the hostile server itself failed: {errors[0]}"
        problem = _judge(case, ran, tenant_digest(db) != before, leaked, extra)
        outcomes.append(Outcome(case.kind, case.name, expect, ran, problem, bool(leaked)))
    return outcomes


# --------------------------------------------------------------------------------------------------
# running cases


def run_case(project: Project, case: Case, folder: Path, marker: Path | None = None) -> Outcome:
    folder.mkdir(parents=True)
    args = case.prepare(folder)
    before = tenant_digest(project.db)
    ran = run_main(args, project.env(folder))
    changed = tenant_digest(project.db) != before
    leaked = find_secret(project.token, {"stdout": ran.out, "stderr": ran.err}, [folder])
    extra = f"{marker} was created: YAML ran a command" if marker is not None and marker.exists() else None
    problem = _judge(case, ran, changed, leaked, extra)
    return Outcome(case.kind, case.name, case.expect, ran, problem, bool(leaked))


def run_corpus(folder: Path, seeds: Iterable[int], *, random_cases: int = 20) -> Tally:
    """Every fixed case, plus ``random_cases`` random ones of each kind per seed."""
    tally = Tally()
    project = make_project(folder / "project")
    marker = folder / "PWNED"
    cases = plan_file_cases(project) + yaml_cases(marker) + expression_cases()
    for seed in seeds:
        rng = random.Random(seed)
        cases += plan_file_cases(project, rng, random_cases)
        cases += yaml_cases(marker, rng, random_cases)
        cases += expression_cases(rng, random_cases)
    for i, case in enumerate(cases):
        tally.add(run_case(project, case, folder / f"case-{i}", marker))
    for i, name in enumerate(GRAPH_CASES):
        for outcome in graph_case(project, name, folder / f"graph-{i}"):
            tally.add(outcome)
    return tally
