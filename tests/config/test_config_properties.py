"""Property tests: whatever the input, the loader gives a value or a clean LoadError, never a crash."""

from __future__ import annotations

import copy
from typing import Any

import fastjsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from support.config import CONTOSO

from reconciler.config import schema
from reconciler.config.files import SourceFile
from reconciler.config.load import LoadResult, load_files
from reconciler.config.yamlio import parse_documents
from reconciler.errors import LoadError

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_or_error(data: bytes) -> LoadResult | LoadError:
    try:
        return load_files([SourceFile("fuzz.yaml", data)])
    except LoadError as exc:
        assert exc.diagnostics, "a LoadError always says why"
        for d in exc.diagnostics:
            assert d.file == "fuzz.yaml" and d.line >= 1 and d.col >= 1 and d.message
        return exc


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["cloudsync/v1", "Configuration", "Scope", "AttributeMappings", "contoso.com", "user"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)

# Pieces of YAML syntax, so that random text reaches anchors, tags, flow collections and merges.
TOKENS = [
    "a",
    "b",
    "kind",
    "spec",
    ": ",
    ":",
    "- ",
    "-",
    "\n",
    "  ",
    "    ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    '"',
    "&x ",
    "*x",
    "&y ",
    "*y",
    "<<: ",
    "!!str ",
    "!!int ",
    "!!python/name:os.system ",
    "!x ",
    "? ",
    "|\n",
    ">\n",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "\t",
    "é",
    "\\",
    "0x1F",
    "1e9",
    ".inf",
    "~",
    "null",
]


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_parses_or_reports(text: str) -> None:
    parse_documents("fuzz.yaml", text.encode("utf-8", errors="surrogatepass"))


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_load_or_report(data: bytes) -> None:
    load_or_error(data)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_yaml_like_text_loads_or_reports(tokens: list[str]) -> None:
    load_or_error("".join(tokens).encode())


@SETTINGS
@given(st.lists(values, min_size=1, max_size=3))
def test_any_yaml_values_load_or_report(docs: list[Any]) -> None:
    load_or_error(yaml.safe_dump_all(docs, allow_unicode=True).encode())


BASE: dict[str, Any] = yaml.safe_load(CONTOSO)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


PATHS = _paths(BASE)[1:]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """The sample configuration with a few values replaced, removed or added."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=12))] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this path
    return doc


@SETTINGS
@given(mutated())
def test_mutated_configurations_load_or_report(doc: dict[str, Any]) -> None:
    load_or_error(yaml.safe_dump(doc, allow_unicode=True).encode())


@SETTINGS
@given(mutated())
def test_the_fast_validator_agrees_with_the_full_one(doc: dict[str, Any]) -> None:
    full = Draft202012Validator(schema.kind_schema("Configuration"))
    fast = fastjsonschema.compile(schema.kind_schema("Configuration"), use_default=False, use_formats=False)
    # Round-trip through our reader, so that both see the values the loader would give them.
    docs, problems = parse_documents("x.yaml", yaml.safe_dump(doc, allow_unicode=True).encode())
    if problems or not docs:
        return
    value = docs[0].value
    try:
        fast(value)
        fast_ok = True
    except fastjsonschema.JsonSchemaException:
        fast_ok = False
    assert fast_ok == full.is_valid(value)


EXPRESSION_TOKENS = [
    "Join(",
    "IIF(",
    "Trim(",
    ")",
    "(",
    "[",
    "]",
    '"',
    ",",
    " ",
    "givenName",
    "&",
    "=",
    "%x%",
    "1",
]


@SETTINGS
@given(st.text(max_size=40) | st.lists(st.sampled_from(EXPRESSION_TOKENS), max_size=20).map("".join))
def test_any_expression_text_loads_or_reports(text: str) -> None:
    doc = copy.deepcopy(BASE)
    doc["spec"]["attributeMappings"]["user"].append({"target": "displayName", "expression": text})
    load_or_error(yaml.safe_dump(doc, allow_unicode=True).encode())


PYTHON_TAGS = [
    "!!python/object/apply:os.system ",
    "!!python/object/new:subprocess.Popen ",
    "!!python/name:os.system ",
    "!!python/module:os ",
    "!!python/object:__main__.X ",
    "!<tag:yaml.org,2002:python/object/apply:os.system> ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
]
PLAIN = (dict, list, str, int, float, bool, type(None))


def _only_plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _only_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_only_plain(v) for v in value)
    return type(value) in PLAIN


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS + PYTHON_TAGS), max_size=60))
def test_yaml_builds_nothing_but_plain_values(tokens: list[str]) -> None:
    # Whatever the tags say: a value is a dict, list, str, int, float, bool or None, or it is refused.
    docs, _problems = parse_documents("fuzz.yaml", "".join(tokens).encode())
    assert all(_only_plain(doc.value) for doc in docs)
