"""The CLI end to end on the default local target: exit codes, refusals, nothing applied on error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from reconciler.cli.main import cli
from reconciler.errors import ConflictError
from reconciler.providers.local import LocalProvider

Run = Callable[..., Any]


def tenant(project: Path) -> LocalProvider:
    return LocalProvider(str(project / ".reconciler" / "tenant.db"))


def test_plan_apply_then_no_changes(project: Path, run: Run) -> None:
    r = run("plan", "configs", "--detailed-exitcode")
    assert r.code == 2, r.err
    assert "+ configuration.contoso will be created" in r.out
    assert "~ mappings.user.Department: Trim([department]) -> [department]" in r.out
    r = run("plan", "configs", "--out", "plan.json")
    assert r.code == 0 and "reconciler apply plan.json" in r.out
    r = run("apply", "plan.json")
    assert r.code == 0, r.err
    assert "2 succeeded, 0 failed" in r.out
    r = run("plan", "configs", "--detailed-exitcode")
    assert r.code == 0 and "No changes" in r.out
    (o,) = tenant(project).read_all()
    assert o.name == "contoso" and o.managed and o.settings.enabled


def test_usage_errors_exit_64_so_that_2_always_means_changes(project: Path, run: Run) -> None:
    assert run("plan", "--no-such-flag").code == 64
    assert run("plan", "--format", "yaml").code == 64
    assert run("no-such-command").code == 64


def test_invalid_desired_state_reports_file_and_line_and_applies_nothing(project: Path, run: Run) -> None:
    (project / "configs" / "bad.yaml").write_text(
        "apiVersion: cloudsync/v1\nkind: Configuration\nmetadata: {name: bad}\n"
        "spec:\n  domain: x.com\n  colour: red\n"
    )
    r = run("apply", "configs", "--auto-approve")
    assert r.code == 1
    assert "configs/bad.yaml:6:" in r.err
    assert "Traceback" not in r.err + r.out
    assert tenant(project).read_all() == ()


def test_apply_without_terminal_refuses_and_applies_nothing(project: Path, run: Run) -> None:
    r = run("apply", "configs")
    assert r.code == 1
    assert "no terminal to ask for approval" in r.err
    assert tenant(project).read_all() == ()
    r = run("apply", "configs", "--auto-approve")
    assert r.code == 0, r.err
    assert len(tenant(project).read_all()) == 1


def test_saved_plan_is_refused_when_target_or_desired_files_changed(project: Path, run: Run) -> None:
    assert run("plan", "configs", "--out", "first.json").code == 0
    assert run("apply", "configs", "--auto-approve").code == 0
    r = run("apply", "first.json")
    assert r.code == 1 and "stale" in r.err and "appeared on the target" in r.err

    assert run("plan", "configs", "--out", "second.json").code == 0
    cfg = project / "configs" / "contoso.yaml"
    cfg.write_text(cfg.read_text().replace("ops@contoso.com", "identity@contoso.com"))
    r = run("apply", "second.json")
    assert r.code == 1 and "desired files changed" in r.err


def test_reformatting_the_desired_files_does_not_make_a_plan_stale(project: Path, run: Run) -> None:
    assert run("plan", "configs", "--out", "p.json").code == 0
    cfg = project / "configs" / "contoso.yaml"
    cfg.write_text(
        "# a comment\n"
        + cfg.read_text().replace(
            "{target: department, source: department}", "{source: department, target: department}"
        )
    )
    assert run("apply", "p.json").code == 0


def test_plan_file_edited_by_hand_is_refused(project: Path, run: Run) -> None:
    assert run("plan", "configs", "--out", "p.json").code == 0
    doc = json.loads((project / "p.json").read_text())
    doc["changes"][0]["spec"]["settings"]["notificationEmail"] = "attacker@evil.example"
    (project / "p.json").write_text(json.dumps(doc))
    r = run("apply", "p.json")
    assert r.code == 1 and "changed after it was made" in r.err
    assert tenant(project).read_all() == ()


def test_a_saved_plan_goes_to_its_own_target_and_a_contradicting_target_is_refused(
    project: Path, run: Run
) -> None:
    assert run("apply", "configs", "--auto-approve", "--target", "local:other.db").code == 0
    cfg = project / "configs" / "contoso.yaml"
    cfg.write_text(cfg.read_text().replace("ops@", "identity@"))
    assert run("plan", "configs", "--out", "p.json", "--target", "local:other.db").code == 0
    r = run("apply", "p.json", "--target", "local:.reconciler/tenant.db")
    assert r.code == 1 and "made for target local:" in r.err and "other.db" in r.err
    assert not (project / ".reconciler" / "tenant.db").exists()
    r = run("apply", "p.json")
    assert r.code == 0, r.err
    (o,) = LocalProvider(str(project / "other.db")).read_all()
    assert o.settings.notification_email == "identity@contoso.com"


def test_deletes_need_allow_delete(project: Path, run: Run) -> None:
    assert run("apply", "configs", "--auto-approve").code == 0
    (project / "configs" / "contoso.yaml").unlink()
    (project / "configs" / "empty.yaml").write_text("# nothing here\n")
    r = run("plan", "configs", "--detailed-exitcode")
    # A held-back delete is a difference the plan leaves in place: a drift job must not stay green.
    assert (
        r.code == 2
        and "--allow-delete" in r.out
        and "1 held back (not applied: the target still differs)" in r.out
    )
    r = run("apply", "configs", "--auto-approve")
    assert r.code == 0 and len(tenant(project).read_all()) == 1
    r = run("apply", "configs", "--auto-approve", "--allow-delete")
    assert r.code == 0 and tenant(project).read_all() == ()


def test_json_and_markdown_formats(project: Path, run: Run) -> None:
    r = run("plan", "configs", "--format", "json")
    doc = json.loads(r.out)
    assert doc["format_version"] == 1 and doc["summary"]["create"] == 1
    assert doc["changes"][0]["address"] == "configuration.contoso"
    r = run("plan", "configs", "--format", "markdown")
    assert r.out.startswith("#") and "<details>" in r.out


def test_status_history_restart(project: Path, run: Run) -> None:
    assert run("apply", "configs", "--auto-approve").code == 0
    r = run("status")
    assert r.code == 0 and "contoso" in r.out and "healthy" in r.out
    t = tenant(project)
    (o,) = t.read_all()
    job = t.store.list_jobs(o.id)[0]
    t.store.quarantine(o.id, job["id"], reason="TooManyDeletes")
    r = run("status")
    assert r.code == 2 and "TooManyDeletes" in r.out
    r = run("plan", "configs")
    assert "quarantine (TooManyDeletes)" in r.out
    r = run("restart", "contoso", "--approve-deletes")
    assert r.code == 0 and "ForceDeletes" in r.out
    r = run("history")
    assert r.code == 0
    lines = r.out.splitlines()
    assert "restart" in lines[0] and "apply" in lines[1]
    assert run("restart", "nope").code == 1


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(name: str, run: Run) -> None:
    command = cli.commands[name]
    assert isinstance(command, click.Command) and command.help, f"{name} has no help text"
    r = run(name, "--help")
    assert r.code == 0 and "Usage:" in r.out


@pytest.mark.parametrize(
    "content",
    [b"", b"  \n", b"null", b"[" * 100_000 + b"]" * 100_000],
    ids=["empty", "blank", "null", "deep"],
)
def test_a_plan_file_emptied_or_mangled_is_refused_not_read_as_a_desired_state(
    project: Path, run: Run, content: bytes
) -> None:
    # Read as a desired-state file, an emptied plan planned nothing and exited 0 as if applied.
    (project / "p.json").write_bytes(content)
    r = run("apply", "p.json")
    assert r.code == 1 and "error:" in r.err and "plan file" in r.err
    assert tenant(project).read_all() == ()


def test_without_a_terminal_a_failed_change_says_why(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> str:
        raise ConflictError("the service refused it for this reason")

    monkeypatch.setattr(LocalProvider, "create", refuse)
    r = run("apply", "configs", "--auto-approve")
    assert r.code == 1
    assert "✗ create contoso: the service refused it for this reason" in r.err


def test_an_approved_plan_the_target_moved_on_from_is_not_applied(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("apply", "configs", "--auto-approve").code == 0
    path = project / "configs" / "contoso.yaml"
    path.write_text(path.read_text().replace("department}", "department, default: none}"))

    def someone_else_pauses_it_while_the_user_reads(*_args: Any, **_kwargs: Any) -> bool:
        provider = tenant(project)
        (configuration,) = provider.read_all()
        provider.pause(configuration.id)
        provider.close()
        return True

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(click, "confirm", someone_else_pauses_it_while_the_user_reads)
    r = run("apply", "configs")
    assert r.code == 1
    assert "the target changed after the plan shown above was made, so nothing was applied" in r.err
    assert "contoso: changed on the target" in r.err and "saved plan" not in r.err
    (configuration,) = tenant(project).read_all()
    assert not any(m.default == "none" for m in configuration.mappings)


def test_plan_and_validate_leave_the_garbage_collector_as_they_found_it(project: Path, run: Run) -> None:
    # Both pause Python's cyclic collector while they run; a caller (a test, the reconcile loop) gets
    # it back as it was, whether the command succeeded, found changes or failed.
    import gc

    assert gc.isenabled()
    assert run("plan", "configs", "--detailed-exitcode").code == 2
    assert run("validate", "configs").code == 0
    (project / "configs" / "broken.yaml").write_text("kind: [unclosed\n")
    assert run("plan", "configs").code == 1 and run("validate", "configs").code == 1
    assert gc.isenabled()
    gc.disable()
    try:
        assert run("validate", "configs").code == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
