"""YAML reading: syntax, duplicate keys, tags, aliases, YAML 1.2 scalars, merge keys, positions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.config import CONTOSO
from yaml.nodes import ScalarNode

from reconciler.config.yamlio import (
    _MAX_RESOLVED,
    _MAX_RESOLVED_LENGTH,
    _RESOLVED,
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    _implicit_tag,
    _Loader,
    parse_documents,
)

Problems = Callable[[dict[str, str | bytes]], list[str]]


def values(text: str) -> list[object]:
    docs, problems = parse_documents("a.yaml", text.encode())
    assert problems == []
    return [d.value for d in docs]


def only_problems(text: str) -> list[str]:
    _, problems = parse_documents("a.yaml", text.encode())
    return [str(p) for p in problems]


def test_syntax_error_points_at_the_problem(problems: Problems) -> None:
    text = CONTOSO.replace("  domain: contoso.com\n", "  domain: [contoso.com\n")
    assert problems({"a.yaml": text}) == [
        "a.yaml:8:20: YAML syntax error: did not find expected ',' or ']' "
        "(while parsing a flow sequence that starts on line 7)"
    ]


def test_duplicate_key_is_refused_with_both_lines(problems: Problems) -> None:
    text = CONTOSO.replace("  domain: contoso.com\n", "  domain: contoso.com\n  domain: fabrikam.com\n")
    assert problems({"a.yaml": text}) == ["a.yaml:8:3: duplicate key 'domain' (first given on line 7)"]


def test_duplicate_keys_in_flow_mappings_and_every_document_are_reported() -> None:
    text = "a: {x: 1, x: 2}\n---\nb: 1\nb: 2\n"
    assert only_problems(text) == [
        "a.yaml:1:11: duplicate key 'x' (first given on line 1)",
        "a.yaml:4:1: duplicate key 'b' (first given on line 3)",
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!!python/object/apply:os.system ['true']", "!!python/object/apply:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!Ref contoso", "!Ref"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
        ("!!timestamp 2026-11-26", "!!timestamp"),
    ],
)
def test_tags_beyond_the_standard_ones_are_refused(problems: Problems, value: str, shown: str) -> None:
    text = CONTOSO.replace("  domain: contoso.com\n", f"  domain: {value}\n")
    assert problems({"a.yaml": text}) == [
        f"a.yaml:7:11: tag {shown} is not allowed: only YAML's standard tags are"
    ]


def test_standard_tags_are_accepted() -> None:
    assert values(
        "a: !!str 123\nb: !!int '7'\nc: !!bool 'true'\nd: !!null ''\ne: !!seq [1]\nf: !!map {}\n"
    ) == [{"a": "123", "b": 7, "c": True, "d": None, "e": [1], "f": {}}]


def test_a_standard_tag_on_a_value_it_does_not_fit_is_refused() -> None:
    assert only_problems("a: !!int twelve\n") == ["a.yaml:1:4: 'twelve' is not a valid !!int value"]


def test_plain_scalars_resolve_as_yaml_1_2_core() -> None:
    text = (
        "no: no\non: on\nyes: Yes\ndate: 2026-11-26\nsexagesimal: 1:20\noctal: 0o17\nold_octal: 017\n"
        "hex: 0x1F\nt: true\nf: FALSE\nn: ~\nempty:\nfloat: 1.5e3\ninf: -.inf\n"
    )
    assert values(text) == [
        {
            "no": "no",
            "on": "on",
            "yes": "Yes",
            "date": "2026-11-26",
            "sexagesimal": "1:20",
            "octal": 15,
            "old_octal": 17,
            "hex": 31,
            "t": True,
            "f": False,
            "n": None,
            "empty": None,
            "float": 1500.0,
            "inf": float("-inf"),
        }
    ]


def test_keys_are_kept_as_written() -> None:
    assert values("1: a\ntrue: b\nnull: c\n~: d\n") == [{"1": "a", "true": "b", "null": "c", "~": "d"}]


def test_a_collection_as_key_is_refused() -> None:
    assert only_problems("? [a, b]\n: c\n") == [
        "a.yaml:1:3: a mapping key must be a plain value, not a list or mapping"
    ]


def test_an_integer_too_large_for_python_is_an_error_not_a_crash() -> None:
    assert only_problems("a: " + "9" * 5000 + "\n") == ["a.yaml:1:4: integer too large"]


def test_billion_laughs_is_refused(problems: Problems) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(lines) + "\n"
    found = problems({"a.yaml": text})
    assert len(found) == 1
    assert found[0].startswith("a.yaml:")
    assert found[0].endswith(f": aliases expand to more than {MAX_ALIAS_NODES} nodes")


def test_modest_aliases_are_fine() -> None:
    text = "base: &b {tier: standard}\nx: *b\ny: [*b, *b]\n"
    assert values(text) == [
        {"base": {"tier": "standard"}, "x": {"tier": "standard"}, "y": [{"tier": "standard"}] * 2}
    ]


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert only_problems("a: &x [1, *x]\n") == [
        "a.yaml:1:4: an alias refers to the collection that contains it"
    ]


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    depth = MAX_DEPTH + 1
    found = only_problems("a: " + "[" * depth + "]" * depth + "\n")
    assert found == [f"a.yaml:1:{3 + MAX_DEPTH}: nested more than {MAX_DEPTH} levels deep"]


def test_merge_keys_merge_and_written_keys_win() -> None:
    text = "base: &b {a: 1, b: 2}\nother: &o {b: 9, c: 3}\nx:\n  <<: [*b, *o]\n  a: 0\n"
    assert values(text)[0] == {
        "base": {"a": 1, "b": 2},
        "other": {"b": 9, "c": 3},
        "x": {"a": 0, "b": 2, "c": 3},
    }


def test_a_merge_key_needs_mappings() -> None:
    assert only_problems("x:\n  <<: 5\n") == [
        "a.yaml:2:7: a merge key (<<) takes a mapping or a list of mappings"
    ]


def test_a_document_that_is_not_a_mapping_is_refused(problems: Problems) -> None:
    assert problems({"a.yaml": "- contoso\n- fabrikam\n", "b.yaml": "just text\n"}) == [
        "a.yaml:1:1: a document must be a mapping (apiVersion, kind, metadata, spec), not a list",
        "b.yaml:1:1: a document must be a mapping (apiVersion, kind, metadata, spec), not a single value",
    ]


def test_empty_documents_are_skipped(load: Callable[[dict[str, str | bytes]], object]) -> None:
    result = load({"a.yaml": "---\n# nothing yet\n---\n" + CONTOSO + "---\n"})
    assert [c.name for c in result.state.configurations] == ["contoso"]  # type: ignore[attr-defined]


def test_locator_positions_are_one_based_and_count_characters() -> None:
    docs, _ = parse_documents("a.yaml", "é: {ü: 'x'}\nlist:\n  - b\n".encode())
    root = docs[0].root
    inner = root.find(("é", "ü"))
    assert (inner.line, inner.col, inner.quoted) == (1, 8, True)
    key = root.find(("list",), key=True)
    assert (key.line, key.col) == (2, 1)
    item = root.find(("list", 0))
    assert (item.line, item.col, item.quoted) == (3, 5, False)


_PLAIN = st.one_of(
    st.sampled_from(["true", "False", "~", "null", "0o17", "0x1F", ".nan", "1e3", "<<", "no", "017"]),
    st.from_regex(r"[-+.0-9a-zA-Z~<]{0,8}", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(_PLAIN, min_size=1, max_size=5))
def test_a_plain_scalar_reads_the_same_whether_its_tag_was_remembered_or_not(texts: list[str]) -> None:
    # Tags of short plain scalars are remembered across files: a remembered tag must be the one the
    # rules give.
    text = "".join(f"k{i}: {t}\n" for i, t in enumerate(texts) if not t.startswith(("-", "<<")))
    _RESOLVED.clear()
    fresh = parse_documents("a.yaml", text.encode())
    remembered = parse_documents("a.yaml", text.encode())
    assert repr([d.value for d in fresh[0]]) == repr([d.value for d in remembered[0]])  # NaN != NaN
    assert fresh[1] == remembered[1]
    for t in texts:
        assert _Loader("").resolve(ScalarNode, t, (True, False)) == _implicit_tag(t)


def test_the_remembered_tags_stay_bounded() -> None:
    for i in range(_MAX_RESOLVED + 10):
        _Loader("").resolve(ScalarNode, f"v{i}", (True, False))
    _Loader("").resolve(ScalarNode, "x" * (_MAX_RESOLVED_LENGTH + 1), (True, False))
    assert len(_RESOLVED) <= _MAX_RESOLVED
    assert "x" * (_MAX_RESOLVED_LENGTH + 1) not in _RESOLVED


def test_values_and_positions_survive_a_second_reading_of_the_same_file() -> None:
    first, _ = parse_documents("a.yaml", CONTOSO.encode())
    second, _ = parse_documents("a.yaml", CONTOSO.encode())
    assert [d.value for d in first] == [d.value for d in second]
    assert [d.root.find(("spec", "domain")).origin("a.yaml") for d in first] == [
        d.root.find(("spec", "domain")).origin("a.yaml") for d in second
    ]
