from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from reconciler.core.plan import Plan
from reconciler.render import text

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
        ("held_deletes", "Plan: 0 to create, 0 to update, 0 to restart, 0 to delete, 2 held back."),
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
