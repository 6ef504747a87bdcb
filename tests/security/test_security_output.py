"""Forgeable output, through the CLI: no value can print a line of its own, move the cursor, talk to
the terminal (OSC, CSI) or read backwards; nothing is stripped (the escaped value is the value); long
values are cut with a marker; JSON stays JSON; Markdown never mentions anyone."""

from __future__ import annotations

import json
import re

from support.security import Sandbox, configuration

from reconciler.tenant.store import TenantStore

# Raw characters no output line may hold: C0 (but tab), ESC, DEL, C1, separators, bidi controls.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
HOSTILE = "x\x1b]0;pwned\x07\x1b[31mred\rfake.yaml:1:1: error: forged\n\u202eevil\u2028sep\x9b1m"


def _inert(text: str) -> None:
    assert not RAW.search(text), repr(text)
    # The forged line never starts a line of its own.
    assert not any(line.startswith("fake.yaml") for line in text.splitlines()), text


def test_diagnostics_show_hostile_values_escaped(box: Sandbox) -> None:
    value = json.dumps(HOSTILE)  # a YAML double-quoted scalar with the escapes
    box.write("configs/alpha.yaml", configuration("alpha").replace("alpha.example.com\n", f"{value}\n", 1))
    ran = box.run("validate", "configs")
    assert ran.code == 1, ran.text
    _inert(ran.text)
    assert "\\x1b]0;pwned\\x07" in ran.err and "\\u202e" in ran.err


def test_status_shows_a_live_error_escaped(box: Sandbox) -> None:
    assert box.run("apply", "configs", "--auto-approve").code == 0
    cid = box.configurations()["alpha"]["id"]
    store = TenantStore(box.db)
    try:
        job = store.list_jobs(cid)[0]["id"]
        store.quarantine(cid, job, reason=HOSTILE, message=HOSTILE)
    finally:
        store.close()
    for args in (
        ["status"],
        ["status", "--format", "json"],
        ["plan", "configs"],
        ["plan", "configs", "--format", "json"],
    ):
        ran = box.run(*args)
        assert ran.code in (0, 2), ran.text
        _inert(ran.text)
    ran = box.run("status", "--format", "json")
    status = json.loads(ran.out)[0]["status"]
    assert HOSTILE in status.values(), status  # the value itself, nothing stripped


def test_expr_and_preview_show_values_escaped(box: Sandbox) -> None:
    ran = box.run("expr", "[x]", "--attr", f"x={HOSTILE}")
    assert ran.code == 0, ran.text
    _inert(ran.text)
    assert "\\x1b]0;pwned\\x07\\x1b[31mred\\rfake.yaml" in ran.out
    ran = box.run("expr", "[x]", "--attr", f"x={HOSTILE}", "--format", "json")
    _inert(ran.text)
    assert json.loads(ran.out)["value"] == HOSTILE
    objects = box.write(
        "objects.yaml",
        "dn: CN=Adele,OU=Sales,DC=alpha,DC=example,DC=com\ntype: user\nattributes:\n"
        f"  department: {json.dumps(HOSTILE)}\n  sAMAccountName: adele\n",
    )
    box.write(
        "configs/alpha.yaml",
        configuration(
            "alpha",
            extra="  attributeMappings:\n    user:\n      - {target: department, source: department}\n",
        ),
    )
    ran = box.run("preview", "configs", "--config", "alpha", "--object", str(objects))
    assert ran.code == 0, ran.text
    _inert(ran.text)
    assert "\\x1b]0;pwned" in ran.out


def test_an_expression_error_points_at_the_escaped_text(box: Sandbox) -> None:
    ran = box.run("expr", 'Join("\x1b[2J", [a]')
    assert ran.code == 1
    _inert(ran.text)


def test_long_values_are_cut_with_a_marker(box: Sandbox) -> None:
    long = "y" * 9000
    box.write(
        "configs/alpha.yaml",
        configuration(
            "alpha", extra=f"  attributeMappings:\n    user:\n      - {{target: info, constant: {long}}}\n"
        ),
    )
    ran = box.run("plan", "configs")
    assert ran.code == 0, ran.text
    assert "more characters not shown" in ran.out and long not in ran.out


def test_markdown_never_mentions_anyone(box: Sandbox) -> None:
    base = box.git("rev-parse", "HEAD")
    box.write("configs/alpha.yaml", configuration("alpha", extra="  enabled: false\n"))
    box.commit("pause alpha, cc @contoso/identity-admins and @octocat")
    for args in (["diff", base, "HEAD", "configs", "--format", "markdown"],):
        ran = box.run(*args)
        assert ran.code == 0, ran.text
        assert "`@contoso/identity-admins`" in ran.out and "`@octocat`" in ran.out
        assert not re.search(r"(?<!`)@(contoso|octocat)", ran.out), ran.out
