from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from reconciler.core.diff import FieldChange
from reconciler.core.plan import Action, Change, Held, Plan
from reconciler.render import markdown

Plans = dict[str, Callable[[], Plan]]

TABLE_HEAD = "| Action | Count |\n| :-- | --: |\n"


def test_golden(case: tuple[str, Plan], golden: Callable[[str, str], None]) -> None:
    name, plan = case
    golden(f"{name}.md", markdown.render(plan))


def test_summary_table_counts_every_action(plans: Plans) -> None:
    out = markdown.render(plans["create"]())
    assert TABLE_HEAD in out
    assert "| Create | 1 |\n| Update | 0 |\n| Start | 1 |\n| Pause | 0 |" in out
    assert "| Held back | 0 |" in out


def test_updates_show_both_sides_in_a_diff_block(plans: Plans) -> None:
    out = markdown.render(plans["update"]())
    assert (
        "```diff\n"
        "- mappings.user.ExtensionAttribute3: Trim([extensionAttribute3])\n"
        "+ mappings.user.department: [department]\n"
        "- mappings.user.jobTitle: [title]\n"
        '+ mappings.user.jobTitle: "Staff" (on create only)\n'
    ) in out
    assert "<details><summary><code>~ ↻</code> <code>configuration.fabrikam</code>" in out
    assert "Target `prod` · commit `3f2a9c1e7b4d` with uncommitted changes" in out


def test_held_back_and_warnings(plans: Plans) -> None:
    out = markdown.render(plans["held_deletes"]())
    assert "### Held back\n\n- `configuration.legacy` (delete): deletion protection is on" in out
    assert (
        "- `configuration.old` (delete): it is no longer in the desired state; deletes need --allow-delete; "
        "include it with `--allow-delete`\n"
    ) in out
    out = markdown.render(plans["update"]())
    assert "### Warnings\n\n- fabrikam: the scope shrinks;" in out


def test_user_text_is_escaped(plans: Plans) -> None:
    out = markdown.render(plans["hostile"]())
    assert "\x1b" not in out
    assert "\u202e" not in out
    # HTML in user text is inert: entities in text, literal only inside code blocks and spans.
    outside_code = re.sub(r"\n(`{3,})diff\n.*?\n\1\n", "\n", out, flags=re.DOTALL)
    assert "<script>" not in outside_code
    assert "<img" not in outside_code
    assert "<summary><code>~</code> <code>configuration.evil\\x1b[2J</code>" in out
    assert "&lt;img src=x onerror=alert(1)&gt; \\`code\\` \\[link\\](http://x) \\| \\# not a heading" in out
    # A warning that starts like a list item stays one item of the warnings list.
    assert "\n- \\- &lt;img" in out
    # The fence of a code block is longer than any run of backticks inside it.
    assert '\n````diff\n- mappings.user.info: Replace([a], "```", "`")\n' in out
    assert "\n````\n" in out
    assert "\\`tick\\`\\\\u202eevil" in out


def test_markdown_structure_survives_user_text(plans: Plans) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    out = markdown.render(plans["hostile"]())
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(out)
    fences = [t for t in tokens if t.type == "fence"]
    assert [f.info for f in fences] == ["diff"]
    assert '"<script>alert(1)</script> & | *x*"' in fences[0].content
    html = [t.content for t in tokens if t.type == "html_block"]
    assert all(h.startswith(("<details><summary>", "</details>")) for h in html)
    inline_html = [c.content for t in tokens if t.children for c in t.children if c.type == "html_inline"]
    assert inline_html == []
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == [
        "Reconciler plan for `prod <b>`",
        "Warnings",
        "Changes",
        "Not managed by reconciler (never changed)",
    ]


def _big_plan(n: int) -> Plan:
    changes = tuple(
        Change(
            f"config-{i:04d}",
            Action.UPDATE,
            target_id=f"sp-{i:04d}",
            fields=(
                FieldChange("settings.notificationEmail", f"old{i}@contoso.com", f"new{i}@contoso.com"),
                FieldChange("mappings.user.department", None, {"kind": "direct", "value": "department"}),
            ),
        )
        for i in range(n)
    )
    held = (Held("gone", Action.DELETE, "sp-gone", ("deletes need --allow-delete",), "--allow-delete"),)
    return Plan(target="prod", changes=changes, held=held, warnings=("one warning",))


def test_a_huge_plan_is_cut_to_the_limit() -> None:
    plan = _big_plan(2000)
    out = markdown.render(plan)
    assert len(out) <= 65536
    assert TABLE_HEAD + "| Create | 0 |\n| Update | 2000 |" in out
    shown = out.count("<details>")
    assert 0 < shown < 2000
    note = re.search(r"_… (\d+) configurations not shown; the full plan is in the JSON artifact\._\n\Z", out)
    assert note is not None
    assert int(note.group(1)) == 2000 - shown
    # Held-back changes and warnings come before the configurations, so they are kept.
    assert "### Held back" in out
    assert "### Warnings" in out


def test_the_limit_is_never_exceeded(plans: Plans) -> None:
    samples = [_big_plan(30), *(make() for make in plans.values())]
    for plan in samples:
        full = markdown.render(plan, limit=10**9)
        for limit in range(400, len(full) + 50, 37):
            out = markdown.render(plan, limit=limit)
            assert len(out) <= limit
            if limit >= len(full):
                assert out == full
            elif limit >= 700:
                assert "| Held back |" in out
                assert "not shown; the full plan is in the JSON artifact._\n" in out


def test_other_entries_are_counted_when_cut() -> None:
    plan = Plan(target="prod", warnings=tuple(f"warning number {i}" for i in range(100)))
    out = markdown.render(plan, limit=1200)
    assert len(out) <= 1200
    note = re.search(r"_… (\d+) other entries not shown", out)
    assert note is not None
    assert int(note.group(1)) == 100 - out.count("- warning number")
