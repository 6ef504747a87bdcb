"""The command line as a CI job meets it: exit codes, saved plans that travel, quiet and readable output.

Every test runs ``reconciler`` as a real process (no terminal, empty stdin) in a temporary project with
its own state folder, and asserts what the process printed and how it exited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.providers.local import LocalProvider


@dataclass
class Ran:
    code: int
    out: str
    err: str


Cli = Callable[..., Ran]


def configuration(name: str, *, extra: str = "", mappings: str = "") -> str:
    return (
        "apiVersion: cloudsync/v1\nkind: Configuration\n"
        f"metadata:\n  name: {name}\n"
        f"spec:\n  domain: {name}.example.com\n  notificationEmail: ops@{name}.example.com\n{extra}"
        + (f"  attributeMappings:\n    user:\n{mappings}" if mappings else "")
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "alpha.yaml").write_text(configuration("alpha"))
    return tmp_path


@pytest.fixture
def cli(project: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_STATE_DIR=str(project / "state"), NO_COLOR="1")

    def run(*args: str, extra_env: dict[str, str] | None = None) -> Ran:
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=project,
            env={**env, **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


def tenant(path: Path) -> LocalProvider:
    return LocalProvider(str(path))


def test_a_saved_plan_is_applied_to_the_target_it_records(project: Path, cli: Cli) -> None:
    target = f"local:{project / 'lab.db'}"
    assert cli("apply", "configs", "--auto-approve", "--target", target).code == 0
    (project / "configs" / "beta.yaml").write_text(configuration("beta"))
    r = cli("plan", "configs", "--target", target, "--out", "plan.json")
    assert r.code == 0 and "reconciler apply plan.json\n" in r.out
    r = cli("apply", "plan.json", "--target", "local:elsewhere.db")
    assert r.code == 1 and "made for target" in r.err and "leave out --target" in r.err
    assert not (project / "elsewhere.db").exists()
    r = cli("apply", "plan.json")
    assert r.code == 0, r.err
    assert {o.name for o in tenant(project / "lab.db").read_all()} == {"alpha", "beta"}
    assert not (project / "state" / "tenant.db").exists()
    assert cli("plan", "configs", "--target", target, "--detailed-exitcode").code == 0


def test_show_renders_a_saved_plan_without_any_target(project: Path, cli: Cli) -> None:
    assert cli("plan", "configs", "--out", "plan.json").code == 0
    (project / "moved").mkdir()
    os.replace(project / "plan.json", project / "moved" / "plan.json")
    r = cli("show", "moved/plan.json")
    assert r.code == 0 and "+ configuration.alpha will be created" in r.out
    r = cli("show", "moved/plan.json", "--format", "markdown")
    assert r.code == 0 and r.out.startswith("## Reconciler plan")
    r = cli("show", "moved/plan.json", "--format", "json")
    assert json.loads(r.out)["kind"] == "reconciler-plan"
    # Nothing was read or made: no tenant, no state folder.
    assert not (project / "state").exists()
    doc = json.loads((project / "moved" / "plan.json").read_text())
    doc["target"] = "local:/tmp/else.db"
    (project / "moved" / "plan.json").write_text(json.dumps(doc))
    r = cli("show", "moved/plan.json")
    assert r.code == 1 and "changed after it was made" in r.err


def test_held_back_changes_are_changes_for_detailed_exitcode(project: Path, cli: Cli) -> None:
    assert cli("apply", "configs", "--auto-approve").code == 0
    (project / "configs" / "alpha.yaml").write_text("# alpha is gone\n")
    r = cli("plan", "configs", "--detailed-exitcode")
    assert r.code == 2
    assert "1 held back (not applied: the target still differs)" in r.out.splitlines()[-1]


def test_allow_delete_of_a_protected_configuration_fails_and_names_the_flag(project: Path, cli: Cli) -> None:
    (project / "configs" / "alpha.yaml").write_text(
        configuration("alpha", extra="  deletionProtection: true\n")
    )
    assert cli("apply", "configs", "--auto-approve").code == 0
    (project / "configs" / "alpha.yaml").write_text("# alpha is gone\n")
    r = cli("plan", "configs", "--allow-delete", "--out", "p.json")
    assert r.code == 1
    assert "--allow-delete cannot delete alpha: deletion protection is on" in r.err
    assert not (project / "p.json").exists()
    r = cli("apply", "configs", "--allow-delete", "--auto-approve")
    assert r.code == 1 and "--allow-delete cannot delete alpha" in r.err
    assert [o.name for o in tenant(project / "state" / "tenant.db").read_all()] == ["alpha"]


def test_read_only_commands_never_create_a_tenant(project: Path, cli: Cli) -> None:
    missing = project / "nowhere" / "x.db"
    for command in (("plan", "configs"), ("status",)):
        r = cli(*command, "--target", f"local:{missing}")
        assert r.code == 1, command
        assert f"there is no local tenant at {missing}" in r.err and r.err.count("\n") == 1
    assert not (project / "nowhere").exists()
    # The default tenant before the first apply: a first plan, and still no file.
    r = cli("plan", "configs")
    assert r.code == 0 and "1 to create" in r.out
    assert not (project / "state").exists()


def test_messages_say_what_the_command_did_not_do(project: Path, cli: Cli) -> None:
    (project / "configs" / "alpha.yaml").write_text(configuration("alpha").replace("domain:", "domian:"))
    r = cli("validate", "configs")
    assert r.code == 1 and r.err.splitlines()[-1] == "error: 1 problem(s) found."
    assert "applied" not in r.err
    r = cli("plan", "configs")
    assert r.code == 1 and r.err.splitlines()[-1].endswith("; no plan was made.")
    r = cli("apply", "configs", "--auto-approve")
    assert r.code == 1 and r.err.splitlines()[-1].endswith("; nothing was applied.")


def test_quiet_prints_only_the_summary(project: Path, cli: Cli) -> None:
    r = cli("plan", "configs", "--quiet")
    assert r.code == 0 and r.out.splitlines() == [
        "Plan: 1 to create, 0 to update, 1 to start, 0 to restart, 0 to delete, 0 held back."
    ]
    r = cli("apply", "configs", "--auto-approve", "--quiet")
    assert r.code == 0 and r.err == ""
    lines = r.out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Plan: 1 to create")
    assert lines[1].startswith("Apply complete: 2 succeeded, 0 failed, 0 skipped.")


def test_without_a_terminal_an_apply_prints_progress_lines(project: Path, cli: Cli) -> None:
    for name in ("beta", "gamma"):
        (project / "configs" / f"{name}.yaml").write_text(configuration(name))
    r = cli("apply", "configs", "--auto-approve", extra_env={"RECONCILER_PROGRESS_INTERVAL": "0"})
    assert r.code == 0, r.err
    progress = [line for line in r.err.splitlines() if line.startswith("apply: ")]
    assert [line.split(" changes done")[0] for line in progress] == [f"apply: {n}/6" for n in range(1, 7)]
    assert progress[-1].endswith("s elapsed")
    # The default interval: a short apply prints its final line only.
    (project / "configs" / "beta.yaml").write_text(configuration("beta").replace("ops@", "it@"))
    r = cli("apply", "configs", "--auto-approve")
    (line,) = [line for line in r.err.splitlines() if line.startswith("apply: ")]
    assert line.startswith("apply: 1/1 changes done, ")


def test_apply_status_and_history_speak_json(project: Path, cli: Cli) -> None:
    r = cli("apply", "configs", "--auto-approve", "--format", "json")
    assert r.code == 0, r.err
    run = json.loads(r.out)
    assert run["result"] == "ok" and run["counts"] == {"ok": 2, "failed": 0, "skipped": 0}
    assert {(o["name"], o["action"], o["status"]) for o in run["outcomes"]} == {
        ("alpha", "create", "ok"),
        ("alpha", "start", "ok"),
    }
    (status,) = json.loads(cli("status", "--format", "json").out)
    assert status["name"] == "alpha" and status["managed"]
    (entry,) = json.loads(cli("history", "--format", "json").out)
    assert entry["run"] == run["runId"]
    r = cli("apply", "configs", "--auto-approve", "--format", "json")
    assert r.code == 0 and json.loads(r.out)["applied"] is False


def test_one_warning_line_per_cause_unless_verbose(project: Path, cli: Cli) -> None:
    odd = "      - {target: department, source: noSuchAttribute}\n"
    for name in ("alpha", "beta", "gamma"):
        (project / "configs" / f"{name}.yaml").write_text(configuration(name, mappings=odd))
    r = cli("validate", "configs")
    assert r.code == 0
    (warning,) = [line for line in r.err.splitlines() if "warning:" in line]
    assert warning.startswith("configs/alpha.yaml:") and warning.endswith(
        "(and 2 more like it; --verbose lists all)"
    )
    r = cli("validate", "configs", "--verbose")
    assert len([line for line in r.err.splitlines() if "warning:" in line]) == 3


def test_a_removal_of_a_mapping_that_is_not_there_is_an_error(project: Path, cli: Cli) -> None:
    typo = "      - {target: ExtensionAtribute3, remove: true}\n"
    (project / "configs" / "alpha.yaml").write_text(configuration("alpha", mappings=typo))
    r = cli("validate", "configs")
    assert r.code == 1
    assert "configs/alpha.yaml:10:18: 'ExtensionAtribute3' is not a template default mapping of user" in r.err
    assert "did you mean 'ExtensionAttribute3'?" in r.err


def test_a_plan_of_changed_files_says_it_is_partial_everywhere(project: Path, cli: Cli) -> None:
    git_env = {
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "PATH": os.environ["PATH"],
    }
    (project / "configs" / "beta.yaml").write_text(configuration("beta"))
    for args in (["init", "-q"], ["add", "configs"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=project, env=git_env, check=True)
    (project / "configs" / "beta.yaml").write_text(configuration("beta").replace("ops@", "it@"))
    note = "Partial plan (--changed-since): it covers only the 1 configuration whose files changed: beta."
    r = cli("plan", "configs", "--changed-since", "HEAD")
    assert r.code == 0 and note in r.out and "alpha" not in r.out
    r = cli("plan", "configs", "--changed-since", "HEAD", "--format", "markdown")
    assert note.replace("--", "\\-\\-") in r.out or note in r.out
    doc = json.loads(cli("plan", "configs", "--changed-since", "HEAD", "--format", "json").out)
    assert doc["partial"] is True and doc["options"]["only"] == ["beta"]
    # The summary stands alone: --quiet prints nothing else, and Markdown puts it first.
    summary = "0 held back. Partial plan (--changed-since): it covers only 1 configuration."
    r = cli("plan", "configs", "--changed-since", "HEAD", "--quiet")
    assert r.code == 0 and r.out.endswith(summary + "\n") and len(r.out.splitlines()) == 1
    assert cli("plan", "configs", "--changed-since", "HEAD", "--out", "partial.json").code == 0
    for fmt in ("text", "markdown"):
        assert summary in cli("show", "partial.json", "--format", fmt).out
    assert cli("apply", "partial.json").code == 0
    r = cli("plan", "configs", "--changed-since", "HEAD", "--quiet")
    assert r.out == "No changes in the 1 configuration this partial plan covers (--changed-since).\n"


def test_a_reconcile_pass_that_cannot_fetch_says_why_in_one_line(project: Path, cli: Cli) -> None:
    (project / "not-a-repository").mkdir()
    r = cli("reconcile", "configs", "--repo", str(project / "not-a-repository"), "--branch", "main", "--once")
    assert r.code == 1
    (line,) = r.err.splitlines()
    assert line.startswith("error: ") and "not-a-repository" in line and "Traceback" not in line


def _narrowed_to_environment_credential(env: dict[str, str]) -> bool:
    """Whether azure-identity honours AZURE_TOKEN_CREDENTIALS=EnvironmentCredential (newer releases):
    then its chain is that one credential, which fails without a request when nothing is set."""
    from azure.identity import DefaultAzureCredential

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        chain = DefaultAzureCredential(exclude_interactive_browser_credential=True).credentials
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return [type(c).__name__ for c in chain] == ["EnvironmentCredential"]


def test_a_missing_graph_sign_in_is_one_line(project: Path, cli: Cli) -> None:
    sign_in = ("AZURE_", "IDENTITY_", "MSI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(sign_in)}
    env["AZURE_TOKEN_CREDENTIALS"] = "EnvironmentCredential"
    if not _narrowed_to_environment_credential(env):
        pytest.skip("this azure-identity release would try managed identity, a request off this machine")
    # Whatever sign-in the machine running the tests has is blanked out for the process.
    blank = {k: "" for k in os.environ if k.startswith(sign_in)}
    r = cli("plan", "configs", "--target", "graph", extra_env={**blank, **env})
    assert r.code == 1
    # Not azure-identity's list of every credential it tried: one line, what is missing, where to read.
    (line,) = r.err.splitlines()
    assert line.startswith("error: no Microsoft Graph credentials: set RECONCILER_GRAPH_TOKEN, or AZURE_")
    assert line.endswith("(sign-in: docs/graph.md, 'Pointing at a tenant')") and len(line) < 300
