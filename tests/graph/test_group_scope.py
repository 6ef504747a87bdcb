"""The groups an Entra ID -> AD configuration that scopes all groups selects, evaluated as Microsoft's
how-to describes the service doing it: the default clause first, clauses ANDed in a filter, filters
ORed, each documented operator; a filter on an attribute not read, a pattern that does not compile or
runs too long leaves the selection unknown."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.group_limits import FilterSelection
from reconciler.core.model import FilterClause
from reconciler.graph.group_scope import GROUP_SELECT, extension_names, group_select, select_groups


def group(id: str, **properties: Any) -> dict[str, Any]:
    return {
        "id": id,
        "securityEnabled": True,
        "mailEnabled": False,
        "onPremisesSyncEnabled": None,
        **properties,
    }


GROUPS = [
    group("a", displayName="sec-Finance", description="Money", classification="10"),
    group("b", displayName="SEC-hr", description=None, classification="7"),
    group("c", displayName="sec-Synced", onPremisesSyncEnabled=True),  # from AD: never in scope
    group("d", displayName="sec-Mail", mailEnabled=True),  # mail-enabled: never in scope
    group("e", displayName="sec-NotSecurity", securityEnabled=False),
    group("f", displayName="Marketing", description="", isAssignableToRole=True),
]


def chosen(*filters: list[FilterClause]) -> tuple[str, ...] | None:
    return select_groups(list(filters), GROUPS).groups


def c(attribute: str, operator: str, value: str | None = None) -> FilterClause:
    return FilterClause(attribute, operator, value)


def test_the_default_clause_comes_first_and_no_filter_selects_every_group_it_lets_through() -> None:
    assert chosen() == ("a", "b", "f")


def test_each_documented_operator() -> None:
    assert chosen([c("displayName", "EQUALS", "Marketing")]) == ("f",)
    assert chosen([c("displayName", "EQUALS", "marketing")]) == ()  # case sensitive
    assert chosen([c("displayName", "NOT_EQUALS", "Marketing")]) == ("a", "b")
    assert chosen([c("displayName", "REGEX_MATCH", "^sec-")]) == ("a",)  # case sensitive
    assert chosen([c("displayName", "REGEX_MATCH", "(?i)^sec-")]) == ("a", "b")
    # NOT REGEX MATCH is false on an empty value, as documented.
    assert chosen([c("description", "NOT_REGEX_MATCH", "Money")]) == ()
    assert chosen([c("description", "IS_NULL")]) == ("b", "f")
    assert chosen([c("description", "IS_NOT_NULL")]) == ("a",)
    assert chosen([c("isAssignableToRole", "IS_TRUE")]) == ("f",)
    assert chosen([c("isAssignableToRole", "IS_FALSE")]) == ()  # null is not false
    assert chosen([c("classification", "GREATER_THAN", "7")]) == ("a",)
    assert chosen([c("classification", "GREATER_THAN_OR_EQUALS", "7")]) == ("a", "b")


def test_clauses_of_a_filter_are_anded_and_filters_ored() -> None:
    both = [c("displayName", "REGEX_MATCH", "(?i)^sec-"), c("description", "IS_NOT_NULL")]
    assert chosen(both) == ("a",)
    assert chosen(both, [c("displayName", "EQUALS", "Marketing")]) == ("a", "f")


def test_attribute_names_are_read_without_case_and_in_azure_ad_spelling() -> None:
    assert chosen([c("DISPLAYNAME", "EQUALS", "Marketing")]) == ("f",)
    assert chosen([c("objectId", "EQUALS", "b")]) == ("b",)
    assert "onPremisesSyncEnabled" in GROUP_SELECT.split(",")


def test_what_cannot_be_evaluated_is_unknown_never_guessed() -> None:
    unread = select_groups([[c("extensionAttribute1", "EQUALS", "x")]], GROUPS)
    assert unread.groups is None and "extensionAttribute1" in str(unread.unknown)
    broken = select_groups([[c("displayName", "REGEX_MATCH", "(")]], GROUPS)
    assert broken.groups is None and "does not compile" in str(broken.unknown)
    slow = select_groups(
        [[c("displayName", "REGEX_MATCH", "^(a|aa)+$")]], [group("x", displayName="a" * 60 + "b")]
    )
    assert slow == FilterSelection(
        None, "a regular expression of the filters ran too long on a group's value"
    )


@given(st.lists(st.text(max_size=12), max_size=8), st.text(max_size=6))
def test_equals_and_not_equals_split_the_groups_with_a_value(names: list[str], wanted: str) -> None:
    groups = [group(str(i), displayName=n) for i, n in enumerate(names)]
    equal = select_groups([[c("displayName", "EQUALS", wanted)]], groups).groups
    other = select_groups([[c("displayName", "NOT_EQUALS", wanted)]], groups).groups
    assert equal is not None and other is not None
    assert set(equal).isdisjoint(other) and set(equal) | set(other) == {g["id"] for g in groups}


WRITEBACK = "extension_9d2f1c0b7e3a4b5c8d6e7f8091a2b3c4_WritebackEnabled"


def test_a_directory_extension_is_selected_by_its_name_and_tested() -> None:
    tagged = [
        group("x", displayName="one", **{WRITEBACK: True}),
        group("y", displayName="two", **{WRITEBACK.lower(): False}),
        group("z", displayName="three"),
    ]
    filters = [[c(WRITEBACK, "IS_TRUE")]]
    assert select_groups(filters, tagged) == FilterSelection(("x",))
    assert select_groups([[c(WRITEBACK.upper(), "IS_FALSE")]], tagged) == FilterSelection(("y",))
    assert extension_names([[c(WRITEBACK, "IS_TRUE")], [c(WRITEBACK.upper(), "IS_NULL")]]) == [WRITEBACK]
    assert group_select(extension_names(filters)) == f"{GROUP_SELECT},{WRITEBACK}"
    # A name of that shape but not an extension property's is not read.
    assert select_groups([[c("extension_nothex_x", "IS_TRUE")]], tagged).groups is None


def test_integers_are_whole_ascii_numbers_and_anything_else_is_not_greater() -> None:
    odd = [
        group(str(i), classification=v)
        for i, v in enumerate(["--1", "+-5", "²", "1e3", " 12 ", "-3", "9" * 60])
    ]
    assert select_groups([[c("classification", "GREATER_THAN", "5")]], odd).groups == ("4",)
    assert select_groups([[c("classification", "GREATER_THAN", "-4")]], odd).groups == ("4", "5")
    # A filter value that is no integer selects nothing, and never fails.
    assert select_groups([[c("classification", "GREATER_THAN", "+-5")]], odd).groups == ()


def test_dir_sync_enabled_of_a_cloud_group_is_false_as_the_default_clause_reads_it() -> None:
    assert chosen([c("dirSyncEnabled", "IS_FALSE")]) == ("a", "b", "f")
    assert chosen([c("dirSyncEnabled", "IS_NULL")]) == ()
    assert chosen([c("dirSyncEnabled", "IS_TRUE")]) == ()  # synced groups never pass the default clause


def test_all_the_evaluation_has_one_time_limit() -> None:
    # Each value has its own limit (above); the whole evaluation has one too, spent here at once.
    spent = select_groups([[c("displayName", "REGEX_MATCH", "^sec-")]], GROUPS, seconds=0.0)
    assert spent == FilterSelection(None, "evaluating the filters on the tenant's groups took more than 0 s")
    # Filters without a pattern need no time limit.
    assert select_groups([[c("displayName", "IS_NOT_NULL")]], GROUPS, seconds=0.0).groups == ("a", "b", "f")


def test_a_group_without_an_id_is_left_out() -> None:
    assert select_groups([], [{"securityEnabled": True}, group("k")]).groups == ("k",)


def test_the_selection_keeps_the_names_the_listing_gave() -> None:
    selection = select_groups([[c("displayName", "EQUALS", "Marketing")]], GROUPS)
    assert selection.groups == ("f",) and dict(selection.names) == {"f": "Marketing"}
