"""Hostile expressions are bounded: a regular expression that backtracks without end, or a value that
doubles at every level, ends in a clear error naming the function (and, in ``preview`` and
``provision``, the mapping) instead of hanging or exhausting memory.

The command-line cases run the real CLI in subprocesses with a wall-clock timeout and an address-space
limit, so a regression fails the test instead of hanging it or taking the machine's memory. The
fuzzing cases give Hypothesis hostile expressions and check that every one ends, within a bounded
processor time, in a value within the size limit or an ExpressionError.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ExpressionError, ExpressionLimitError
from reconciler.expressions import MAX_TEXT, Budget, Node, evaluate, parse

# Generous bounds: the evaluation's own limit is TIME_LIMIT seconds of processor time; a loaded
# machine stretches that in wall-clock time, and a CLI start costs a second or two.
WALL_SECONDS = 180
MEMORY_BYTES = 1 << 30

BACKTRACKING = 'Replace([info], , "^(a|aa)+$", , "x", , )'
ISSUE_PATTERN = 'Replace([info], , "(a+)+$", , "x", , )'
SLOW_VALUE = "a" * 40 + "!"


def doubling(levels: int) -> str:
    """The issue's expression: each level doubles the value (1.3 KB of text at 40 levels)."""
    text = "[info]"
    for _ in range(levels):
        text = f'Replace({text}, , "(.+)", , "$1$1", , )'
    return text


# The child limits its own address space before it starts the CLI (a preexec_fn is not safe in a
# test process that runs threads).
_LIMITED_CLI = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_BYTES}, {MEMORY_BYTES})); "
    "sys.argv[0] = 'reconciler'; "
    "runpy.run_module('reconciler', run_name='__main__', alter_sys=True)"
)


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RECONCILER_TARGET": f"local:{folder / 'tenant.db'}",
        "RECONCILER_STATE_DIR": str(folder / "state"),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", _LIMITED_CLI, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=WALL_SECONDS,
        check=False,
    )


def test_the_child_runs_under_the_memory_limit(tmp_path: Path) -> None:
    # A value the size of the limit cannot be made: the limit is really in force in the child.
    result = cli(tmp_path, "expr", f'Join("", {", ".join(["[a]"] * 4)})', "--attr", "a=x")
    assert result.returncode == 0 and result.stdout == "xxxx\n", result.stderr
    probe = subprocess.run(
        [sys.executable, "-c", _LIMITED_CLI.split("sys.argv")[0] + f"bytearray({MEMORY_BYTES})"],
        capture_output=True,
        text=True,
        timeout=WALL_SECONDS,
        check=False,
    )
    assert probe.returncode != 0 and "MemoryError" in probe.stderr


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout
    assert "MemoryError" not in result.stderr + result.stdout


# -- reconciler expr --------------------------------------------------------------------------------


def test_expr_stops_a_backtracking_regex_at_the_time_limit(tmp_path: Path) -> None:
    started = time.monotonic()
    result = cli(tmp_path, "expr", BACKTRACKING, "--attr", f"info={SLOW_VALUE}")
    assert result.returncode == 1, result.stderr
    _no_traceback(result)
    assert "Replace: the regular expression '^(a|aa)+$' did not finish within the time limit" in (
        result.stderr
    )
    assert time.monotonic() - started < WALL_SECONDS


def test_expr_with_the_issues_pattern_finishes(tmp_path: Path) -> None:
    result = cli(tmp_path, "expr", ISSUE_PATTERN, "--attr", f"info={'a' * 30}!", "--format", "json")
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"value": "a" * 30 + "!", "flows": True}


def test_expr_stops_a_doubling_value_at_the_size_limit(tmp_path: Path) -> None:
    text = doubling(40)
    assert len(text) < 1400
    result = cli(tmp_path, "expr", text, "--attr", "info=ab")
    assert result.returncode == 1, result.stderr
    _no_traceback(result)
    assert f"more than the limit of {MAX_TEXT:,}" in result.stderr


@pytest.mark.parametrize(
    "expression",
    [
        "BitAnd(&H" + "F" * 20_000 + ", 1)",  # wider than any .NET integer, and than Python prints
        'Left("abc", ' + "9" * 5_000 + ")",
        "Left([info], -9223372036854775809)",
    ],
    ids=["hex", "decimal", "just-below-int64"],
)
def test_expr_refuses_numbers_wider_than_64_bits_cleanly(tmp_path: Path, expression: str) -> None:
    result = cli(tmp_path, "expr", expression, "--attr", "info=abc")
    _no_traceback(result)
    assert result.returncode == 1, result.stderr  # not 3, the exit code of a crash
    assert "whole number" in result.stderr
    message = result.stderr.splitlines()[-1]
    assert len(message) < 300  # it quotes the start of a long value, not all of it


# -- preview and provision on the local tenant ----------------------------------------------------

DN = "CN=Ada Lovelace,OU=Staff,DC=contoso,DC=com"

CONFIG = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: hostile
spec:
  domain: contoso.com
  notificationEmail: ops@contoso.com
  scope:
    organizationalUnits: ["OU=Staff,DC=contoso,DC=com"]
  attributeMappings:
    user:
      - target: employeeType
        expression: {expression}
"""


def _project(folder: Path, expression: str, info: str) -> None:
    (folder / "configs").mkdir()
    (folder / "configs" / "hostile.yaml").write_text(CONFIG.format(expression=json.dumps(expression)))
    directory = {
        "kind": "Directory",
        "domain": "contoso.com",
        "objects": [
            {"dn": "OU=Staff,DC=contoso,DC=com", "type": "organizationalUnit"},
            {
                "dn": DN,
                "type": "user",
                "attributes": {
                    "objectGUID": "5b0b3cbb-8a8a-4d7e-9e0c-3f1c2b6d7aff",
                    "sAMAccountName": "ada",
                    "userPrincipalName": "ada@contoso.com",
                    "displayName": "Ada Lovelace",
                    "info": info,
                },
            },
        ],
    }
    (folder / "directory.json").write_text(json.dumps(directory))


HOSTILE = [
    pytest.param(BACKTRACKING, SLOW_VALUE, "did not finish within the time limit", id="backtracking"),
    pytest.param(doubling(40), "ab", f"more than the limit of {MAX_TEXT:,}", id="doubling"),
]


@pytest.mark.parametrize(("expression", "info", "message"), HOSTILE)
def test_preview_names_the_mapping_and_ends(tmp_path: Path, expression: str, info: str, message: str) -> None:
    _project(tmp_path, expression, info)
    args = ["preview", "configs", "--config", "hostile", "--object", "directory.json", "--format", "json"]
    result = cli(tmp_path, *args)
    _no_traceback(result)
    assert result.returncode == 1, result.stderr + result.stdout
    (obj,) = json.loads(result.stdout)["objects"]
    failed = {name: out for name, out in obj["attributes"].items() if out["outcome"] == "error"}
    assert list(failed) == ["employeeType"]
    assert message in failed["employeeType"]["error"]
    assert obj["attributes"]["DisplayName"]["value"] == "Ada Lovelace"  # the other mappings still ran


@pytest.mark.parametrize(("expression", "info", "message"), HOSTILE)
def test_local_provisioning_names_the_mapping_and_writes_nothing(
    tmp_path: Path, expression: str, info: str, message: str
) -> None:
    _project(tmp_path, expression, info)
    setup = cli(tmp_path, "directory", "load", "directory.json")
    assert setup.returncode == 0, setup.stderr
    setup = cli(tmp_path, "apply", "configs", "--auto-approve")
    assert setup.returncode == 0, setup.stderr + setup.stdout
    result = cli(tmp_path, "provision", "hostile", "--subject", DN, "--format", "json")
    _no_traceback(result)
    assert result.returncode == 1, result.stderr + result.stdout
    response = json.loads(result.stdout)
    key, log = json.loads(response["key"]), json.loads(response["value"])
    assert key["result"] == "Failure"
    assert key["details"]["errorCode"] == "ExpressionEvaluationFailed"
    assert message in key["details"]["errorMessage"]
    export = log["provisioningSteps"][-1]
    assert export["status"] == "Failure"
    assert "The mapping of employeeType failed" in export["description"]
    assert message in export["details"]["employeeType"]


# -- fuzzing ----------------------------------------------------------------------------------------

# Patterns that backtrack badly on some values, or make values grow, beside harmless ones.
PATTERNS = [
    "^(a|aa)+$",
    "(x+x+)+y",
    "(a+)+$",
    "(.*a){12}",
    "(\\\\w+\\\\s?)*$",
    "(.+)",
    "a*a*b",
    "[()\\\\s-]+",
]
GROWING = ["ConvertToUTF8Hex", "ConvertToBase64", "ToUpper", "NormalizeDiacritics", "PCase"]
REPLACEMENTS = ["$1$1", "$0$0$0", "$&$&$&$&", "", "zz", "${x}"]

LEAVES = st.one_of(
    st.just("[a]"),
    st.just("[b]"),
    st.integers(min_value=0, max_value=4000).map(lambda n: '"' + "a" * n + '!"'),
)


def _branches(child: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pattern = st.sampled_from(PATTERNS)
    replacement = st.sampled_from(REPLACEMENTS)
    return st.one_of(
        st.tuples(child, pattern, replacement).map(lambda t: f'Replace({t[0]}, , "{t[1]}", , "{t[2]}", , )'),
        st.tuples(child, pattern).map(lambda t: f'Replace({t[0]}, , "(?<x>{t[1]})", "x", "yy", , )'),
        child.map(lambda c: f'Replace({c}, "a", , , "aaaaaaaa", , )'),
        child.map(lambda c: f'Replace({c}, "<v>", , , , , "<v><v><v><v>")'),
        st.lists(child, min_size=2, max_size=4).map(lambda cs: 'Join("", ' + ", ".join(cs) + ")"),
        st.tuples(child, child).map(lambda t: f"Append({t[0]}, {t[1]})"),
        st.tuples(child, child).map(lambda t: f"{t[0]} & {t[1]}"),
        st.tuples(st.sampled_from(GROWING), child).map(lambda t: f"{t[0]}({t[1]})"),
        child.map(lambda c: f'Word({c}, 2, "!")'),
        child.map(lambda c: f'InStr({c}, "!")'),
        st.tuples(child, child, child).map(lambda t: f"IIF(IsPresent({t[0]}), {t[1]}, {t[2]})"),
    )


HOSTILE_TEXT = st.recursive(LEAVES, _branches, max_leaves=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(HOSTILE_TEXT, st.integers(min_value=0, max_value=50_000))
def test_hostile_expressions_end_in_bounded_time_within_the_size_limit(text: str, length: int) -> None:
    attributes = {"a": "a" * length + "!", "b": "(425) 555-0100 " * (length // 16)}
    started = time.process_time()
    try:
        value = evaluate(text, attributes, budget=Budget(0.25))
    except ExpressionLimitError as exc:
        assert "limit" in exc.message
    except ExpressionError:
        pass
    else:
        size = len(value) if isinstance(value, str) else 0
        assert size <= MAX_TEXT
    # The budget bounds the costly steps; the rest is bounded by the size limit. Processor time, not
    # wall-clock time, so that a loaded machine does not make this fail.
    assert time.process_time() - started < 20


GRAMMAR_PIECES = [
    *'()[]",\\%&=<>-+ \n\tabcHx0123456789{}$^*?|.',
    "Replace(",
    "FormatDateTime(",
    "Mid(",
    "Join(",
    "[a]",
    '"(a+)+$"',
    '"$1$1"',
    '"yyyy-MM-dd"',
    '"Q"',
    ", , ",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(GRAMMAR_PIECES), max_size=60).map("".join)))
def test_the_parser_ends_quickly_with_a_tree_or_an_expression_error(text: str) -> None:
    started = time.process_time()
    try:
        tree = parse(text)
    except ExpressionError as exc:
        assert 1 <= exc.column <= len(text) + 1
    else:
        assert isinstance(tree, Node)
    assert time.process_time() - started < 5


def test_an_expression_longer_than_the_limit_is_refused_at_once() -> None:
    text = '"' + "x" * (MAX_TEXT + 1) + '"'
    started = time.process_time()
    with pytest.raises(ExpressionError, match="the limit is"):
        parse(text)
    assert time.process_time() - started < 5
