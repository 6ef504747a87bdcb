"""A saved plan is proved, not trusted: edits to its changes are refused by ``apply`` through the CLI,
even with the checksum recomputed, and the guards hold inside the engine whatever a plan says."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.security import Sandbox, configuration, edit_plan

from reconciler.core.model import Scope, ScopeKind, Settings
from reconciler.core.plan import Action, Change, Plan, PlanOptions
from reconciler.engine.apply import apply_plan
from reconciler.engine.journal import ChangeOutcome, Journal
from reconciler.providers.local import LocalProvider
from reconciler.state import open_store


@pytest.fixture
def applied(sandbox: Sandbox) -> Sandbox:
    """alpha (deletion protection on) and beta applied; then beta's e-mail changed and a plan saved."""
    sandbox.write("configs/alpha.yaml", configuration("alpha", extra="  deletionProtection: true\n"))
    sandbox.write("configs/beta.yaml", configuration("beta"))
    sandbox.commit("two configurations")
    ran = sandbox.run("apply", "configs", "--auto-approve")
    assert ran.code == 0, ran.text
    text = configuration("beta").replace("ops@beta.example.com", "team@beta.example.com")
    sandbox.write("configs/beta.yaml", text)
    sandbox.commit("beta: new e-mail")
    ran = sandbox.run("plan", "configs", "--out", "plan.json")
    assert ran.code == 0, ran.text
    return sandbox


def _delete_alpha(box: Sandbox) -> Callable[[dict[str, Any]], None]:
    alpha = box.configurations()["alpha"]["id"]

    def edit(doc: dict[str, Any]) -> None:
        doc["options"].update(allow_delete=True, max_deletes=5)
        delete = copy.deepcopy(doc["changes"][0])
        delete.update(address="configuration.alpha", name="alpha", action="delete", target_id=alpha)
        delete.update(spec=None, before={}, after={}, write_settings=False, write_schema=False)
        doc["changes"].append(delete)

    return edit


def _create_ghost(doc: dict[str, Any]) -> None:
    ghost = copy.deepcopy(doc["changes"][0])
    ghost.update(address="configuration.ghost", name="ghost", action="create", target_id=None)
    ghost["spec"]["settings"]["domain"] = "ghost.example.com"
    doc["changes"].insert(0, ghost)


def _force_deletes(doc: dict[str, Any]) -> None:
    restart = {k: v for k, v in doc["changes"][0].items()}
    restart.update(action="restart", reset_scope="ForceDeletes", spec=None, before={}, after={})
    doc["changes"].append(restart)


def _hidden_password_hash_change(doc: dict[str, Any]) -> None:
    # The rendered before/after stay as reviewed; only the values apply would write change.
    doc["changes"][0]["spec"]["settings"]["passwordHashSync"] = False
    doc["changes"][0]["spec"]["scope"] = {"kind": "all", "entries": []}


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "a configuration in no file is created": _create_ghost,
    "a ForceDeletes restart": _force_deletes,
    "a scope and password hash change the rendering does not show": _hidden_password_hash_change,
}


def _refused_unchanged(box: Sandbox, before: dict[str, dict[str, Any]], says: str) -> None:
    ran = box.run("apply", "plan.json")
    assert ran.code == 1, ran.text
    assert says in ran.err, ran.err
    assert "Traceback" not in ran.text
    assert box.configurations() == before
    # The reviewed plan, made again, still applies: nothing was half done.
    assert box.run("plan", "configs", "--out", "plan.json").code == 0
    assert box.run("apply", "plan.json").code == 0


@pytest.mark.parametrize("name", sorted(EDITS))
def test_an_edited_plan_with_its_checksum_redone_is_refused(applied: Sandbox, name: str) -> None:
    before = applied.configurations()
    edit_plan(applied.repo / "plan.json", EDITS[name])
    _refused_unchanged(applied, before, "does not match what the desired state it pins")


def test_an_edited_plan_cannot_delete_a_protected_configuration(applied: Sandbox) -> None:
    before = applied.configurations()
    edit_plan(applied.repo / "plan.json", _delete_alpha(applied))
    _refused_unchanged(applied, before, "change 2 is delete configuration.alpha in the plan file")
    assert applied.configurations()["alpha"]["protected"]


@pytest.mark.parametrize(
    "edit",
    [
        lambda doc: doc.update(paths=[]),
        lambda doc: doc.update(desired_digest=""),
    ],
    ids=["no paths", "no digest"],
)
def test_a_plan_that_pins_no_desired_state_is_refused(
    applied: Sandbox, edit: Callable[[dict[str, Any]], None]
) -> None:
    before = applied.configurations()
    edit_plan(applied.repo / "plan.json", edit)
    _refused_unchanged(applied, before, "does not pin the desired state")


def test_a_plan_pointed_at_a_commit_outside_the_checked_out_history_is_refused(applied: Sandbox) -> None:
    applied.git("checkout", "-q", "-b", "unreviewed")
    applied.write("configs/ghost.yaml", configuration("ghost"))
    sha = applied.commit("not merged anywhere")
    applied.git("checkout", "-q", "main")
    assert applied.run("plan", "configs", "--ref", sha, "--out", "plan.json").code == 0
    before = applied.configurations()
    ran = applied.run("apply", "plan.json")
    assert ran.code == 1 and "not part of the checked-out history" in ran.err, ran.text
    assert applied.configurations() == before


def test_a_plan_of_a_merged_commit_applies(applied: Sandbox) -> None:
    assert applied.run("plan", "configs", "--ref", "HEAD", "--out", "plan.json").code == 0
    ran = applied.run("apply", "plan.json")
    assert ran.code == 0, ran.text


# --------------------------------------------------------------------------------------------------
# the guards inside the engine, whatever the plan holds


@pytest.fixture
def tenant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalProvider:
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    return LocalProvider(str(tmp_path / "tenant.db"))


def _make(provider: LocalProvider, name: str, *, protected: bool) -> str:
    settings = Settings(domain=f"{name}.example.com", notification_email=f"ops@{name}.example.com")
    scope = Scope(ScopeKind.ORGANIZATIONAL_UNITS, (f"OU=Sales,DC={name},DC=example,DC=com",))
    return provider.create(name, settings, scope, (), deletion_protection=protected)


def _run(provider: LocalProvider, plan: Plan) -> list[tuple[str, str | None]]:
    result = apply_plan(plan, provider, journal=Journal(provider.target))
    return [(o.status, o.error) for o in result.outcomes]


def test_the_engine_never_deletes_what_the_target_protects(tenant: LocalProvider) -> None:
    cid = _make(tenant, "alpha", protected=True)
    plan = Plan(
        target=tenant.target,
        changes=(Change("alpha", Action.DELETE, cid),),
        options=PlanOptions(allow_delete=True),
    )
    [(status, error)] = _run(tenant, plan)
    assert status == ChangeOutcome.FAILED and "deletion protection" in (error or "")
    assert [o.id for o in tenant.read_all()] == [cid]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (PlanOptions(allow_delete=False), "--allow-delete"),
        (PlanOptions(allow_delete=True, max_deletes=1), "--allow-mass-delete"),
    ],
)
def test_the_engine_needs_the_plans_delete_permission_and_count(
    tenant: LocalProvider, options: PlanOptions, says: str
) -> None:
    ids = [_make(tenant, n, protected=False) for n in ("alpha", "beta")]
    changes = tuple(Change(n, Action.DELETE, i) for n, i in zip(("alpha", "beta"), ids, strict=True))
    outcomes = _run(tenant, Plan(target=tenant.target, changes=changes, options=options))
    assert {s for s, _ in outcomes} == {ChangeOutcome.FAILED}
    assert all(says in (e or "") for _, e in outcomes)
    assert len(tenant.read_all()) == 2


def test_the_engine_restarts_with_forced_deletes_only_through_its_own_command(
    tenant: LocalProvider, tmp_path: Path
) -> None:
    cid = _make(tenant, "alpha", protected=False)
    plan = Plan(
        target=tenant.target, changes=(Change("alpha", Action.RESTART, cid, reset_scope="ForceDeletes"),)
    )
    [(status, error)] = _run(tenant, plan)
    assert status == ChangeOutcome.FAILED and "--approve-deletes" in (error or "")
    *_, last = open_store(tenant.target).entries(tenant.target)
    assert last["event"] == "change-end" and last["outcome"] == "failed"
