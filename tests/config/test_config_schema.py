"""Schema checks: unknown fields, types, required fields, enums, patterns, ranges; the schema files."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from support.config import CONTOSO

from reconciler.config import schema
from reconciler.config.yamlio import parse_documents

Problems = Callable[[dict[str, str | bytes]], list[str]]

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILES = (
    "cloudsync.schema.json",
    "configuration.schema.json",
    "scope.schema.json",
    "attributemappings.schema.json",
)
EXAMPLES = sorted((REPO / "examples" / "configs").glob("*.yaml"))


def edit(old: str, new: str) -> str:
    assert old in CONTOSO
    return CONTOSO.replace(old, new)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            edit("  notificationEmail:", "  notificationEmial:"),
            # Not also "missing required field 'notificationEmail'": it is the same mistake.
            ["a.yaml:8:3: unknown field 'notificationEmial' in spec; did you mean 'notificationEmail'?"],
        ),
        (
            edit("  domain: contoso.com\n", "  domain: contoso.com\n  passwordHashsync: false\n"),
            ["a.yaml:8:3: unknown field 'passwordHashsync' in spec; did you mean 'passwordHashSync'?"],
        ),
        (
            edit("    user:\n", "    users:\n"),
            ["a.yaml:13:5: unknown field 'users' in spec.attributeMappings; did you mean 'user'?"],
        ),
        (
            edit("{target: department, source: department}", "{target: department, sorce: department}"),
            ["a.yaml:14:30: unknown field 'sorce' in spec.attributeMappings.user[0]; did you mean 'source'?"],
        ),
        (
            edit("  labels: {tier: standard}\n", "  labels: {tier: standard}\n  color: blue\n"),
            ["a.yaml:6:3: unknown field 'color' in metadata"],
        ),
    ],
)
def test_unknown_fields(problems: Problems, text: str, expected: list[str]) -> None:
    assert problems({"a.yaml": text}) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            edit("  domain: contoso.com\n", "  domain: contoso.com\n  enabled: yes\n"),
            "a.yaml:8:12: spec.enabled: expected true or false, got a string ('yes')",
        ),
        (
            edit("constant: FTE}", "constant: true}"),
            "a.yaml:15:49: spec.attributeMappings.user[1].constant: expected a string, got a boolean (true); "
            "quote it to keep it as text",
        ),
        (
            edit("      - OU=Sales,DC=contoso,DC=com\n", "      OU=Sales,DC=contoso,DC=com\n"),
            "a.yaml:11:7: spec.scope.organizationalUnits: expected a list, got a string "
            "('OU=Sales,DC=contoso,DC=com')",
        ),
        (
            edit(
                "  domain: contoso.com\n", "  domain: contoso.com\n  accidentalDeletes: {threshold: '500'}\n"
            ),
            "a.yaml:8:34: spec.accidentalDeletes.threshold: expected an integer, got a string ('500')",
        ),
        (
            edit("  domain: contoso.com\n", "  domain: contoso.com\n  restartToken: [1]\n"),
            "a.yaml:8:17: spec.restartToken: expected a string or an integer, got a list",
        ),
        (
            edit("  labels: {tier: standard}\n", "  labels: {tier: 1}\n"),
            "a.yaml:5:18: metadata.labels.tier: expected a string, got a number (1); quote it to "
            "keep it as text",
        ),
    ],
)
def test_wrong_types(problems: Problems, text: str, expected: str) -> None:
    assert problems({"a.yaml": text}) == [expected]


def test_missing_required_fields_point_at_their_parent(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": edit("  domain: contoso.com\n", ""),
        "b.yaml": "apiVersion: cloudsync/v1\nkind: Configuration\nmetadata: {name: x}\n",
        "c.yaml": "apiVersion: cloudsync/v1\nkind: Scope\nmetadata: {}\nspec: {groups: [CN=a,DC=b,DC=c]}\n",
    }
    assert problems(files) == [
        "a.yaml:6:1: missing required field 'domain' in spec",
        "b.yaml:1:1: missing required field 'spec'",
        "c.yaml:3:1: missing required field 'name' in metadata",
        "c.yaml:4:1: missing required field 'configuration' in spec",
    ]


def test_missing_kind(problems: Problems) -> None:
    text = CONTOSO.replace("kind: Configuration\n", "")
    assert problems({"a.yaml": text}) == [
        "a.yaml:1:1: missing required field 'kind' (one of Configuration, Scope, AttributeMappings)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            CONTOSO.replace("kind: Configuration", "kind: Configuraton"),
            "a.yaml:2:7: unknown kind 'Configuraton'; expected one of Configuration, Scope, "
            "AttributeMappings; "
            "did you mean 'Configuration'?",
        ),
        (
            CONTOSO.replace("apiVersion: cloudsync/v1", "apiVersion: cloudsync/v2"),
            "a.yaml:1:13: apiVersion: must be 'cloudsync/v1', not 'cloudsync/v2'",
        ),
        (
            edit(
                "{target: department, source: department}",
                "{target: department, source: department, apply: onUpdate}",
            ),
            "a.yaml:14:57: spec.attributeMappings.user[0].apply: 'onUpdate' is not one of: always, onCreate; "
            "did you mean 'onCreate'?",
        ),
        (
            edit(
                "{target: department, source: department}",
                "{target: department, source: department, apply: oncreate}",
            ),
            "a.yaml:14:57: spec.attributeMappings.user[0].apply: 'oncreate' is not one of: always, onCreate; "
            "did you mean 'onCreate'?",
        ),
        (
            edit("{target: department, source: department}", "{target: department, remove: false}"),
            "a.yaml:14:38: spec.attributeMappings.user[0].remove: can only be true; leave it out otherwise",
        ),
    ],
)
def test_bad_enum_and_constant_values(problems: Problems, text: str, expected: str) -> None:
    assert problems({"a.yaml": text}) == [expected]


def test_attribute_mappings_object_enum(problems: Problems) -> None:
    text = """\
        apiVersion: cloudsync/v1
        kind: AttributeMappings
        metadata: {name: shared}
        spec:
          configurations: [contoso]
          object: User
          mappings: [{target: department, source: department}]
        """
    assert problems({"a.yaml": CONTOSO, "m.yaml": text}) == [
        "m.yaml:6:11: spec.object: 'User' is not one of: user, inetOrgPerson, group, contact; did "
        "you mean 'user'?"
    ]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        ("0", "must be at least 1 (got 0)"),
        ("100001", "must be at most 100000 (got 100001)"),
    ],
)
def test_threshold_out_of_range(problems: Problems, threshold: str, expected: str) -> None:
    text = edit(
        "  domain: contoso.com\n", f"  domain: contoso.com\n  accidentalDeletes: {{threshold: {threshold}}}\n"
    )
    assert problems({"a.yaml": text}) == [f"a.yaml:8:34: spec.accidentalDeletes.threshold: {expected}"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  name: contoso\n",
            "  name: Contoso_EU\n",
            "a.yaml:4:9: metadata.name: 'Contoso_EU' must be 1-63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit",
        ),
        ("  name: contoso\n", f"  name: {'a' * 64}\n", None),
        (
            "  domain: contoso.com\n",
            "  domain: contoso\n",
            "a.yaml:7:11: spec.domain: 'contoso' is not a DNS domain name (like contoso.com)",
        ),
        (
            "  domain: contoso.com\n",
            "  domain: contoso_eu.com\n",
            "a.yaml:7:11: spec.domain: 'contoso_eu.com' is not a DNS domain name (like contoso.com)",
        ),
        (
            "  domain: contoso.com\n",
            "  domain: 10.0.0.1\n",
            "a.yaml:7:11: spec.domain: '10.0.0.1' is not a DNS domain name (like contoso.com)",
        ),
        (
            "  notificationEmail: identity-ops@contoso.com\n",
            "  notificationEmail: identity-ops.contoso.com\n",
            "a.yaml:8:22: spec.notificationEmail: 'identity-ops.contoso.com' is not an e-mail address "
            "(like identity-ops@contoso.com)",
        ),
        (
            "  notificationEmail: identity-ops@contoso.com\n",
            "  notificationEmail: ops..team@contoso.com\n",
            "a.yaml:8:22: spec.notificationEmail: 'ops..team@contoso.com' is not an e-mail address "
            "(like identity-ops@contoso.com)",
        ),
        (
            "  notificationEmail: identity-ops@contoso.com\n",
            '  notificationEmail: "ops@contoso.com\\n"\n',
            "a.yaml:8:22: spec.notificationEmail: 'ops@contoso.com\n' is not an e-mail address "
            "(like identity-ops@contoso.com)",
        ),
    ],
)
def test_patterns(problems: Problems, old: str, new: str, expected: str | None) -> None:
    found = problems({"a.yaml": edit(old, new)})
    if expected is None:
        assert len(found) == 1 and found[0].startswith("a.yaml:4:9: metadata.name: ")
    else:
        assert found == [expected]


def test_label_keys_and_values(problems: Problems) -> None:
    text = edit("  labels: {tier: standard}\n", "  labels:\n    'bad key': x\n    tier: '-standard'\n")
    assert problems({"a.yaml": text}) == [
        "a.yaml:6:5: metadata.labels: key 'bad key' is not a valid label key ([prefix/]name; name: "
        "1-63 letters, "
        "digits, '-', '_' or '.', starting and ending with a letter or digit)",
        "a.yaml:7:11: metadata.labels.tier: '-standard' is not a valid label value (at most 63 "
        "letters, digits, "
        "'-', '_' or '.', starting and ending with a letter or digit)",
    ]


def test_every_schema_problem_of_a_document_is_reported_at_once(problems: Problems) -> None:
    text = edit("  domain: contoso.com\n", "  domain: 5\n  enabled: 'no'\n  extra: 1\n")
    assert problems({"a.yaml": text}) == [
        "a.yaml:7:11: spec.domain: expected a string, got a number (5); quote it to keep it as text",
        "a.yaml:8:12: spec.enabled: expected true or false, got a string ('no')",
        "a.yaml:9:3: unknown field 'extra' in spec",
    ]


# -- the schema files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_shipped_schemas_and_editor_copies_are_identical(name: str) -> None:
    shipped = (REPO / "reconciler" / "data" / "schemas" / name).read_bytes()
    assert (REPO / "schemas" / name).read_bytes() == shipped
    assert schema.schema_text(name).encode() == shipped


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schemas_are_valid_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(json.loads(schema.schema_text(name)))


def _registry() -> Registry:  # type: ignore[type-arg]
    resources = [
        (name, Resource.from_contents(json.loads(schema.schema_text(name)))) for name in SCHEMA_FILES
    ]
    return Registry().with_resources(resources)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_the_editor_schemas(path: Path) -> None:
    """The combined schema an editor uses (modeline) and the per-kind files accept every example document."""
    registry = _registry()
    combined = Draft202012Validator(
        json.loads(schema.schema_text("cloudsync.schema.json")), registry=registry
    )
    docs, problems = parse_documents(path.name, path.read_bytes())
    assert problems == [] and docs
    for doc in docs:
        assert list(combined.iter_errors(doc.value)) == []
        kind = doc.value["kind"]  # type: ignore[index]
        per_kind = json.loads(schema.schema_text(f"{kind.lower()}.schema.json"))
        assert list(Draft202012Validator(per_kind, registry=registry).iter_errors(doc.value)) == []


def test_the_combined_schema_picks_the_kind() -> None:
    combined = Draft202012Validator(
        json.loads(schema.schema_text("cloudsync.schema.json")), registry=_registry()
    )
    doc: dict[str, object] = {
        "apiVersion": "cloudsync/v1",
        "kind": "Scope",
        "metadata": {"name": "x"},
        "spec": {"domain": "a.b"},
    }
    assert sorted(e.message for e in combined.iter_errors(doc)) == [
        "'configuration' is a required property",
        "Additional properties are not allowed ('domain' was unexpected)",
    ]
    doc["kind"] = "Nope"
    assert [e.message for e in combined.iter_errors(doc)] == [
        "'Nope' is not one of ['Configuration', 'Scope', 'AttributeMappings']"
    ]


def test_every_example_has_the_modeline() -> None:
    for path in EXAMPLES:
        assert "# yaml-language-server: $schema=../../schemas/cloudsync.schema.json" in path.read_text()


# --------------------------------------------------------------------------------------------------
# The fast check (mapping entries checked apart, each distinct one once) accepts exactly what the
# kind's whole schema accepts.

_ENTRY_KEYS = ("target", "source", "constant", "expression", "remove", "default", "apply", "other")
_ENTRY_VALUES = st.one_of(
    st.sampled_from(["", "department", "C1", "always", "onCreate", "Trim([mail])"]),
    st.booleans(),
    st.integers(-1, 2),
    st.none(),
    st.just(["x"]),
    st.just({"a": "b"}),
)
_ENTRIES = st.one_of(
    st.dictionaries(st.sampled_from(_ENTRY_KEYS), _ENTRY_VALUES, max_size=4),
    st.sampled_from(["text", 1, None, ["target"]]),
)


@functools.cache
def _whole(kind: str) -> Callable[[object], object]:
    import fastjsonschema

    validate: Callable[[object], object] = fastjsonschema.compile(
        schema.kind_schema(kind), use_default=False, use_formats=False
    )
    return validate


def _accepts(check: Callable[[object], object], value: object) -> bool:
    import fastjsonschema

    try:
        check(value)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lists=st.dictionaries(
        st.sampled_from(["user", "group", "contact", "device"]), st.lists(_ENTRIES, max_size=4), max_size=3
    ),
    shared=st.lists(_ENTRIES, max_size=4),
)
def test_fast_check_accepts_exactly_what_the_whole_schema_accepts(
    lists: dict[str, list[object]], shared: list[object]
) -> None:
    configuration = {
        "apiVersion": "cloudsync/v1",
        "kind": "Configuration",
        "metadata": {"name": "contoso"},
        "spec": {
            "domain": "contoso.com",
            "notificationEmail": "ops@contoso.com",
            "attributeMappings": lists,
        },
    }
    mapping_set = {
        "apiVersion": "cloudsync/v1",
        "kind": "AttributeMappings",
        "metadata": {"name": "shared"},
        "spec": {"object": "user", "configurations": ["contoso"], "mappings": shared},
    }
    for kind, value in (("Configuration", configuration), ("AttributeMappings", mapping_set)):
        # Twice: the second time the entries seen valid are not checked again.
        for _ in range(2):
            fast = _accepts(functools.partial(schema._check_fast, kind), value)
            assert fast == _accepts(_whole(kind), value), value
