"""The bearer token never reaches output or files; YAML never builds objects; paths stay inside.

``secret_token`` searches, after each test, every output the test recorded and every file under its
folder (plan files, the journal, lock holders, status files, crash logs, the git cache).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.testing.commands import Result, child_env, cli, find_secret
from reconciler.testing.desired_states import make_scenario, write_desired
from reconciler.testing.gitrepos import git_env, make_repo
from reconciler.testing.hostile import graph_case, make_project
from reconciler.testing.scenarios import runs_of
from reconciler.testing.tenant_checks import plant


def _run(folder: Path, traces: Any, *args: str, env: dict[str, str]) -> Result:
    result = cli(folder, *args, env=env)
    traces.add(args[0], result.out, result.err)
    assert "Traceback" not in result.out + result.err
    return result


@pytest.mark.slow
def test_every_command_against_a_target_that_needs_the_token(
    tmp_path: Path, secret_token: str, traces: Any
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    genv = git_env(home)
    repo = make_repo(tmp_path / "repo", genv)
    scenario = make_scenario(2)
    write_desired(repo.path / "configs", scenario.before)
    repo.commit("first")
    db = tmp_path / "tenant.db"
    plant(db)
    env = {**child_env(tmp_path, secret_token), **{k: v for k, v in genv.items() if k.startswith("GIT_")}}
    env["HOME"] = str(home)
    configs = str(repo.path / "configs")
    # Answers hit by faults carry the request in their error texts; none may carry the token.
    config = EmulatorConfig(token=secret_token, fault_rate=0.05, seed=3, retry_after=0)
    with Emulator(db, config) as emulator:
        t = ("--target", emulator.target)
        assert _run(tmp_path, traces, "apply", configs, "--auto-approve", *t, env=env).code in (0, 1)
        assert _run(tmp_path, traces, "apply", configs, "--auto-approve", *t, env=env).code in (0, 1)
        plan = str(tmp_path / "plan.json")
        for fmt in ("text", "markdown", "json"):
            _run(tmp_path, traces, "plan", configs, "--format", fmt, *t, env=env)
        _run(tmp_path, traces, "plan", configs, "--out", plan, *t, env=env)
        _run(tmp_path, traces, "apply", plan, *t, env=env)
        _run(tmp_path, traces, "status", *t, env=env)
        _run(tmp_path, traces, "status", "--format", "json", *t, env=env)
        _run(tmp_path, traces, "restart", scenario.before[0].name, *t, env=env)
        write_desired(repo.path / "configs", scenario.after)
        repo.commit("second")
        status = str(tmp_path / "reconcile-status.json")
        reconcile = ("reconcile", "configs", "--repo", str(repo.path), "--once", "--status-file", status)
        _run(tmp_path, traces, *reconcile, "--allow-delete", *t, env=env)
        _run(tmp_path, traces, *reconcile, *t, env=env)
        _run(tmp_path, traces, "history", *t, env=env)
        _run(tmp_path, traces, "history", "--format", "json", *t, env=env)
        _run(tmp_path, traces, "import", "--help", env=env)
        # Refused credentials: the message says which variable, never what it held.
        wrong = {**env, "RECONCILER_GRAPH_TOKEN": secret_token[::-1]}
        refused = cli(tmp_path, "plan", configs, *t, env=wrong)
        traces.add("refused", refused.out, refused.err)
        assert refused.code == 1 and "RECONCILER_GRAPH_TOKEN" in refused.err
        assert secret_token[::-1] not in refused.out + refused.err
        assert runs_of(tmp_path, t[1]) and Path(status).exists()


def test_an_error_that_quotes_the_token_does_not_print_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    outcomes = graph_case(project, "an error that quotes the bearer token", tmp_path / "case")
    for o in outcomes:
        assert o.problem is None and o.ran.code == 1 and "***" in o.ran.err
    assert find_secret(project.token, {o.name: o.ran.out + o.ran.err for o in outcomes}, [tmp_path]) == []


def test_reconcile_paths_cannot_leave_the_repository(tmp_path: Path) -> None:
    env = child_env(tmp_path)
    for path in ("../outside", "configs/../../outside", "/etc/../../x/.."):
        result = cli(tmp_path, "reconcile", path, "--repo", str(tmp_path), "--once", env=env)
        assert result.code == 64 and "inside the repository" in result.err, result.describe()


def test_no_config_file_outside_the_given_folder_is_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_desired(outside, make_scenario(1).before[:1])
    configs = tmp_path / "configs"
    write_desired(configs, make_scenario(2).before[:1])
    os.symlink(outside / f"{make_scenario(1).before[0].name}.yaml", configs / "linked.yaml")
    os.symlink(outside, configs / "linked-folder")
    env = child_env(tmp_path)
    result = cli(tmp_path, "validate", "configs", env=env)
    assert result.code == 1
    assert result.err.count("symbolic link leads outside the given paths") == 2, result.err
