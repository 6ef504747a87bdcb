"""The evaluator's bounds: the size limit on every value, the time budget, and the fast way for
regular expressions whose worst case is small (which must give the same answers as the timed way)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.core.model import Mapping, MappingKind
from reconciler.errors import ExpressionLimitError
from reconciler.expressions import MAX_TEXT, Budget, evaluate
from reconciler.expressions.netregex import FAST_STEPS, compile_net, template
from reconciler.provisioning.evaluate import MappingEvaluator, OutcomeKind

BIG = "a" * (MAX_TEXT // 2 + 1)


@pytest.mark.parametrize(
    "expression",
    [
        'Replace([a], "a", , , "aaa", , )',  # literal replace, refused before the text is made
        'Replace([a], "a", , , , , "<a><a><a>")',  # template
        'Replace([a], , "(a+)", , "$1$1$1", , )',  # regular expression: one match, tripled
        'Replace([a], , "(?<g>a{1000})", "g", [a], , )',  # named group, replaced by the whole value
        "Join([a], [a], [a], [a])",
        "Append([a], [a]) & [a]",
        "ConvertToUTF8Hex([a])",
        "ConvertToBase64([a])",
    ],
)
def test_a_value_over_the_limit_is_refused(expression: str) -> None:
    with pytest.raises(ExpressionLimitError, match=f"more than the limit of {MAX_TEXT:,}"):
        evaluate(expression, {"a": BIG})


@pytest.mark.parametrize("function", ["ConvertToUTF8Hex", "ConvertToBase64", "ToUpper", "PCase", "Trim"])
def test_an_attribute_over_the_limit_is_refused_before_it_is_lengthened(function: str) -> None:
    huge = {"a": "a" * (8 * MAX_TEXT)}  # a directory file may hold one; the function would make 64 MiB
    if function == "Trim":  # Trim cannot lengthen it: it passes through untouched
        assert evaluate(f"{function}([a])", huge) == huge["a"]
        return
    with pytest.raises(ExpressionLimitError, match="the value given is 8,388,608 characters"):
        evaluate(f"{function}([a])", huge)


def test_values_up_to_the_limit_are_fine() -> None:
    half = "a" * (MAX_TEXT // 2)
    assert evaluate("Append([a], [a])", {"a": half}) == half + half
    assert evaluate('Replace([a], "a", , , "b", , )', {"a": half}) == "b" * len(half)
    assert evaluate('Replace([a], , "(a+)", , "$1$1", , )', {"a": half}) == half + half


def test_the_time_budget_stops_a_backtracking_pattern() -> None:
    started = time.process_time()
    with pytest.raises(ExpressionLimitError, match="did not finish within the time limit") as info:
        evaluate('Trim(Replace([a], , "^(a|aa)+$", , "", , ))', {"a": "a" * 45 + "!"}, budget=Budget(0.2))
    assert info.value.column == 6  # the Replace, not the Trim
    assert time.process_time() - started < 10


def test_one_objects_mappings_share_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    budgets: list[Budget] = []

    def small_budget() -> Budget:
        budgets.append(Budget(0.3))
        return budgets[-1]

    monkeypatch.setattr("reconciler.provisioning.evaluate.Budget", small_budget)
    evil = 'Replace([a], , "^(a|aa)+$", , "", , )'
    mappings = [Mapping("user", target, MappingKind.EXPRESSION, evil) for target in ("one", "two", "three")]
    mappings.append(Mapping("user", "plain", MappingKind.DIRECT, "a"))
    evaluator = MappingEvaluator(mappings)
    started = time.process_time()
    outcomes = evaluator.evaluate({"a": "a" * 45 + "!"}).by_target()
    spent = time.process_time() - started
    assert len(budgets) == 1  # one budget for the object, not one per mapping
    assert {t for t, o in outcomes.items() if o.kind is OutcomeKind.ERROR} == {"one", "two", "three"}
    assert outcomes["plain"].value == "a" * 45 + "!"
    assert all("time limit" in (outcomes[t].error or "") for t in ("one", "two", "three"))
    assert spent < 10


# -- the fast way ------------------------------------------------------------------------------------

SLOW_PATTERNS = [
    "(a+)+$",
    "^(a|aa)+$",
    "(x+x+)+y",
    "(.*a){12}",
    "(\\w+\\s?)*$",
    "a*a*a*b",  # three varying repeats
    "((a))*",
    "(?:ab)*c",
    "(a)\\1",
    "(?=a)a*",
    "a{,3}",  # a quantifier to Python, a literal to .NET
]


@pytest.mark.parametrize("pattern", SLOW_PATTERNS)
def test_patterns_with_a_large_worst_case_always_run_with_the_time_limit(pattern: str) -> None:
    assert compile_net(pattern).cost("a" * 5) is None


@pytest.mark.parametrize("pattern", ["[()\\s-]+", "(?<Suffix>@(.)*)", "\\+(?<i>[0-9]* )(?<p>[0-9]{10})"])
def test_common_patterns_take_the_fast_way_on_short_values_only(pattern: str) -> None:
    compiled = compile_net(pattern)
    assert compiled.cost("+1 (425) 555-0100") is not None
    assert compiled.cost("x" * 100_000) is None
    assert (compiled.cost("x" * 100) or 0) <= FAST_STEPS


ATOMS = st.sampled_from(
    ["a", "b", ".", "[ab]", "[^a\\s]", "\\d", "\\s", "\\w", "(a)", "(?:b)", "(?<n>.)", "x", "\\."]
)
QUANTIFIERS = st.sampled_from(["", "", "*", "+", "?", "*?", "{2}", "{1,3}", "{2,}"])
PATTERNS = st.lists(st.tuples(ATOMS, QUANTIFIERS).map("".join), min_size=1, max_size=5).map("".join)
# Characters on which Python's re and the regex package read \s, \w or \d differently, beside plain ones.
VALUES = st.text(alphabet="ab x1.\t\n\x1c\x1f\x85\xa0\u2003\u3000²٣_", max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(PATTERNS, VALUES, st.sampled_from(["", "-", "$0$0", "${n}", "$1"]))
def test_the_fast_way_answers_as_the_timed_way_does(pattern: str, value: str, replacement: str) -> None:
    compiled = compile_net(pattern)
    if compiled.fast is None:
        return
    text = template(pattern, replacement).text
    assert compiled.fast.sub(text, value) == compiled.timed.sub(text, value)
    fast, timed = compiled.fast.search(value), compiled.timed.search(value)
    assert (fast and fast.span()) == (timed and timed.span())


def test_an_empty_pattern_compiles_and_matches_between_every_character() -> None:
    # An empty pattern once sent the fast-way limit search into a loop without end.
    assert compile_net("").fast_limit >= 0
    assert evaluate('Replace([a], , "", , "-", , )', {"a": "abc"}) == "-a-b-c-"
