from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest

from reconciler.core.diff import FieldChange
from reconciler.core.plan import Action, Change, Plan
from reconciler.render import text
from reconciler.render._format import format_value

Plans = dict[str, Callable[[], Plan]]


def test_golden(case: tuple[str, Plan], golden: Callable[[str, str], None]) -> None:
    name, plan = case
    golden(f"{name}.txt", text.render(plan, color=False))


def test_golden_in_color(plans: Plans, golden: Callable[[str, str], None]) -> None:
    golden("update.color.txt", text.render(plans["update"](), color=True))


def test_no_escape_codes_without_color(case: tuple[str, Plan]) -> None:
    _, plan = case
    assert "\x1b" not in text.render(plan, color=False)


@pytest.mark.parametrize(
    ("plan_name", "colored"),
    [
        ("create", "\x1b[32m+\x1b[0m"),
        ("update", "\x1b[33m~\x1b[0m"),
        ("update", "\x1b[36m↻\x1b[0m"),
        ("delete", "\x1b[31m-\x1b[0m"),
    ],
)
def test_actions_are_colored(plans: Plans, plan_name: str, colored: str) -> None:
    assert colored in text.render(plans[plan_name](), color=True)


@pytest.mark.parametrize(
    ("plan_name", "last_line"),
    [
        ("create", "Plan: 1 to create, 0 to update, 1 to start, 0 to restart, 0 to delete, 0 held back."),
        ("update", "Plan: 0 to create, 1 to update, 1 to restart, 0 to delete, 0 held back."),
        ("pause", "Plan: 0 to create, 0 to update, 1 to pause, 0 to restart, 0 to delete, 0 held back."),
        (
            "held_deletes",
            "Plan: 0 to create, 0 to update, 0 to restart, 0 to delete, "
            "2 held back (not applied: the target still differs).",
        ),
        ("delete", "Plan: 0 to create, 0 to update, 0 to restart, 1 to delete, 0 held back."),
        ("health", "No changes. The target matches the desired state."),
        ("no_changes", "No changes. The target matches the desired state."),
    ],
)
def test_summary_line(plans: Plans, plan_name: str, last_line: str) -> None:
    assert text.render(plans[plan_name](), color=False).splitlines()[-1] == last_line


def test_field_rows_read_like_the_portal(plans: Plans) -> None:
    out = text.render(plans["update"](), color=False).splitlines()
    for row in (
        '~ settings.notificationEmail: "a@fabrikam.com" -> "b@fabrikam.com"',
        "~ settings.accidentalDeletes.threshold: 500 -> 100",
        "+ mappings.user.department: [department]",
        "- mappings.user.ExtensionAttribute3: Trim([extensionAttribute3])",
        '~ mappings.user.jobTitle: [title] -> "Staff" (on create only)',
        '~ scope: groups ["CN=Sync,OU=Groups,DC=fabrikam,DC=com"] -> '
        'organizationalUnits ["OU=Staff,DC=fabrikam,DC=com"]',
    ):
        assert f"      {row}" in out
    assert "      reason: attribute mappings changed" in out


def test_mapping_notes(plans: Plans) -> None:
    out = text.render(plans["create"](), color=False)
    assert '+ mappings.user.displayName: Join(" ", [givenName], [sn]) (default "unknown")' in out
    assert '+ mappings.user.employeeType: "FTE" (on create only)' in out
    assert "+ mappings.user.onPremisesSamAccountName: [sAMAccountName] (matching priority 1)" in out


def test_held_changes_say_what_releases_them(plans: Plans) -> None:
    out = text.render(plans["mass_delete"](), color=False)
    assert out.count("include it with --allow-mass-delete") == 2


def test_user_text_cannot_drive_the_terminal(plans: Plans) -> None:
    out = text.render(plans["hostile"](), color=False)
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "configuration.evil\\x1b[2J" in out
    # A newline inside a warning stays inside its row.
    assert "| # not a heading\\nsecond line" in out


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("no_color", "tty", "expected"),
    [
        (None, True, True),
        (None, False, False),
        ("1", True, False),
        ("", True, False),
    ],
)
def test_use_color(monkeypatch: pytest.MonkeyPatch, no_color: str | None, tty: bool, expected: bool) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert text.use_color(_Stream(tty)) is expected


def test_use_color_without_isatty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert text.use_color(object()) is False  # type: ignore[arg-type]


def test_a_list_change_shows_each_entry_added_or_removed() -> None:
    from reconciler.core.diff import FieldChange
    from reconciler.core.plan import Action, Change, Plan
    from reconciler.render import markdown

    before = {"kind": "organizationalUnits", "entries": ["OU=A,DC=x", "OU=B,DC=x"]}
    after = {"kind": "organizationalUnits", "entries": ["ou=b,dc=x", "OU=C,DC=x"]}
    change = Change("x", Action.UPDATE, "id-1", fields=(FieldChange("scope", before, after),))
    out = text.render(Plan(target="t", changes=(change,)), color=False)
    assert '      - scope.organizationalUnits: "OU=A,DC=x"' in out
    assert '      + scope.organizationalUnits: "OU=C,DC=x"' in out
    # Same entry in another case: the service compares DNs without regard to case.
    assert "OU=B" not in out and "ou=b" not in out
    md = markdown.render(Plan(target="t", changes=(change,)))
    assert (
        '- scope.organizationalUnits: "OU=A,DC=x"' in md and '+ scope.organizationalUnits: "OU=C,DC=x"' in md
    )


def test_a_partial_plan_says_so_and_names_what_it_covers() -> None:
    from reconciler.core.plan import Plan, PlanOptions
    from reconciler.render import json as json_format
    from reconciler.render import markdown

    plan = Plan(target="t", options=PlanOptions(only=frozenset({"b", "a"})))
    line = "Partial plan (--changed-since): it covers only the 2 configurations whose files changed: a, b."
    assert line in text.render(plan, color=False)
    assert "Partial plan (--changed-since)" in markdown.render(plan)
    doc = json.loads(json_format.render(plan))
    assert doc["partial"] is True and doc["options"]["only"] == ["a", "b"]
    assert "Partial" not in text.render(Plan(target="t"), color=False)


def test_attribute_filters_are_shown_and_a_change_of_them_is_visible() -> None:
    sec = [{"attribute": "displayName", "operator": "REGEX_MATCH", "value": "^sec-"}]
    both = [*sec, {"attribute": "description", "operator": "IS_NOT_NULL", "value": None}]
    before = {"kind": "all", "entries": [], "filters": [sec]}
    after = {"kind": "all", "entries": [], "filters": [both, [{"attribute": "mail", "operator": "IS_NULL"}]]}
    assert format_value("scope", {"kind": "all", "entries": []}) == "all"
    assert format_value("scope", before) == 'all where displayName REGEX_MATCH "^sec-"'
    assert format_value("scope", after) == (
        'all where (displayName REGEX_MATCH "^sec-" and description IS_NOT_NULL) or mail IS_NULL'
    )
    change = Change("groups", Action.UPDATE, "sp-1", fields=(FieldChange("scope", before, after),))
    shown = text.render(Plan(target="t", changes=(change,)), color=False)
    assert (
        '~ scope: all where displayName REGEX_MATCH "^sec-" -> all where (displayName REGEX_MATCH "^sec-" '
        "and description IS_NOT_NULL) or mail IS_NULL"
    ) in shown
