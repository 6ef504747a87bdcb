"""Hostile files: saved plan files (edited, re-signed, cut, bit-flipped, sparse), YAML (anchors, tags,
links, FIFOs, huge and deep documents) and expressions, fixed and seeded random ones.

I/O: writes each case's files into the folder the case is prepared in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reconciler.testing.hostile.cases import ACCEPT, EITHER, REJECT, Case, Project

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
