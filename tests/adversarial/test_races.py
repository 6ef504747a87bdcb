"""Several applies and a reconcile pass started together against one target serialize; none fails
without a clear message, and the end state is the desired state. A saved plan applied after another
apply changed the target is refused, every time."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.providers.local import LocalProvider
from reconciler.state import canonical_target
from reconciler.testing.commands import child_env
from reconciler.testing.desired_states import ConfigSpec, make_scenario, write_desired
from reconciler.testing.gitrepos import git_env, make_repo
from reconciler.testing.hostile import run_main, tenant_digest
from reconciler.testing.scenarios import state_store
from reconciler.testing.tenant_checks import check_tenant, plant

APPLIES = 4


def _intervals(folder: Path, target: str) -> list[tuple[str, str, str]]:
    """(start, end, run) of every finished run in the journal."""
    starts: dict[str, str] = {}
    found = []
    for entry in state_store(folder, target).entries(canonical_target(target)):
        if entry["event"] == "run-start":
            starts[entry["run"]] = entry["time"]
        elif entry["event"] == "run-end":
            found.append((starts[entry["run"]], entry["time"], entry["run"]))
    return sorted(found)


@contextlib.contextmanager
def _target(kind: str, db: Path, token: str) -> Iterator[str]:
    if kind == "local":
        yield f"local:{db}"
        return
    with Emulator(db, EmulatorConfig(token=token)) as emulator:
        yield emulator.target


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "graph"])
def test_applies_and_a_reconcile_pass_started_together_serialize(
    tmp_path: Path, kind: str, secret_token: str, traces: Any
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    genv = git_env(home)
    repo = make_repo(tmp_path / "repo", genv)
    specs: tuple[ConfigSpec, ...] = make_scenario(5).after
    write_desired(repo.path / "configs", specs)
    repo.commit("desired state")
    db = tmp_path / "tenant.db"
    planted = plant(db)
    env = {**child_env(tmp_path, secret_token), **{k: v for k, v in genv.items() if k.startswith("GIT_")}}
    env["HOME"] = str(home)
    with _target(kind, db, secret_token) as target:
        apply = ["apply", str(repo.path / "configs"), "--auto-approve", "--lock-timeout", "60"]
        reconcile = ["reconcile", "configs", "--repo", str(repo.path), "--once", "--lock-timeout", "60"]
        commands = [[*apply, "--target", target]] * APPLIES + [[*reconcile, "--target", target]]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "reconciler", *args],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in commands
        ]
        results = [(p.args, *p.communicate(timeout=180), p.returncode) for p in procs]
        for args, out, err, code in results:
            traces.add(" ".join(args[3:5]), out, err)
            assert "Traceback" not in out + err
            # Every one waits its turn: none may fail, and a lock that was not got is named clearly.
            assert code == 0 or (code == 1 and "is locked by" in err), (args, code, err)
        assert sum(code == 0 for *_, code in results) >= APPLIES
        final = run_main(["plan", str(repo.path / "configs"), "--detailed-exitcode", "--target", target], env)
        traces.add("plan", final.out, final.err)
        assert final.code == 0, final.out + final.err
        runs = _intervals(tmp_path, target)
    findings = check_tenant(db, specs, planted)
    assert findings.all() == []
    # Serialized: no run started before the one before it had ended.
    assert runs
    for (_, end, first), (start, _, second) in itertools.pairwise(runs):
        assert dt.datetime.fromisoformat(end) <= dt.datetime.fromisoformat(start), (first, second)


def test_a_saved_plan_is_refused_after_another_apply_changed_the_target(tmp_path: Path) -> None:
    db = tmp_path / "tenant.db"
    env = {"RECONCILER_STATE_DIR": str(tmp_path / "state"), "RECONCILER_TARGET": f"local:{db}"}
    configs = tmp_path / "configs"
    LocalProvider(str(db)).close()  # a plan only reads: the tenant must exist
    for seed in range(1, 6):
        scenario = make_scenario(seed)
        write_desired(configs, scenario.before)
        saved = run_main(["plan", str(configs), "--allow-delete", "--out", str(tmp_path / "p.json")], env)
        assert saved.code == 0, saved.err
        # Someone else applies another desired state after the plan was saved...
        write_desired(configs, scenario.after)
        other = run_main(["apply", str(configs), "--auto-approve", "--allow-delete"], env)
        assert other.code == 0, other.err
        before = tenant_digest(db)
        # ...and the saved plan is refused (with the desired files put back as they were for it).
        write_desired(configs, scenario.before)
        stale = run_main(["apply", str(tmp_path / "p.json")], env)
        assert stale.code == 1 and "stale" in stale.err and "Traceback" not in stale.err, stale.err
        assert tenant_digest(db) == before
