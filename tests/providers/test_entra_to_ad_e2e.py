"""Entra ID -> AD group provisioning end to end, as a team runs it: YAML in a folder -> plan -> apply ->
plan again, on the local tenant and over real HTTP to the emulator. Create, a change of the selected
groups (shown and written entry by entry), restart reasons, settings, the delete guards, and the
import round trip (import -> load -> empty plan)."""

from __future__ import annotations

import json
from pathlib import Path

from support.providers import Harness, add_cloud_groups

from reconciler.config.load import load_paths
from reconciler.core.model import DesiredState
from reconciler.core.plan import Action, Plan, PlanOptions, Provenance
from reconciler.engine.importer import import_target
from reconciler.engine.operations import make_plan, plan_and_apply
from reconciler.graph.identity import GROUP_PROVISIONING_TEMPLATE, GROUP_TEMPLATE_APP_ID
from reconciler.render.text import render

A, B, C = (
    "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b",
    "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d",
    "9f8e7d6c-5b4a-4392-8171-605f4e3d2c1b",
)
CONFIG = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: contoso-groups
spec:
  direction: entraToAd
  domain: contoso.com
  notificationEmail: identity-ops@contoso.com
  accidentalDeletes: {{enabled: true, threshold: {threshold}}}
{extra}  scope:
    selectedGroups:
{groups}
  targetContainer: OU=Cloud Groups,DC=contoso,DC=com
  attributeMappings:
    group:
      - target: sAMAccountName
        expression: 'Join("_", Left([displayName], 40), "Cloud")'
"""


def write(folder: Path, groups: tuple[str, ...], *, threshold: int = 100, extra: str = "") -> DesiredState:
    folder.mkdir(parents=True, exist_ok=True)
    text = CONFIG.format(threshold=threshold, extra=extra, groups="\n".join(f"      - {g}" for g in groups))
    (folder / "contoso-groups.yaml").write_text(text)
    return load_paths([str(folder)]).state


def plan(h: Harness, state: DesiredState, **options: object) -> Plan:
    return make_plan(state, h.provider, PlanOptions(**options), Provenance())  # type: ignore[arg-type]


def apply(h: Harness, state: DesiredState, **options: object) -> Plan:
    run = plan_and_apply(state, h.provider, PlanOptions(**options), Provenance())  # type: ignore[arg-type]
    assert run.result.ok, run.result
    return run.plan


def assigned(h: Harness, id: str) -> set[str]:
    assert h.store is not None
    return {a["principalId"] for a in h.store.list_app_role_assignments(id)}


def test_create_change_restart_and_delete_guards(tenant: Harness, tmp_path: Path) -> None:
    store = tenant.store
    assert store is not None
    add_cloud_groups(store, dict.fromkeys((A, B, C), 2))  # the selected groups are in the directory
    folder = tmp_path / "configs"
    state = write(folder, (A, B))
    first = plan(tenant, state)
    assert [(c.action, c.name) for c in first.changes] == [
        (Action.CREATE, "contoso-groups"),
        (Action.START, "contoso-groups"),
    ]
    assert first.held == ()
    fields = {f.path: f.after for c in first.changes for f in c.fields}
    assert fields["settings.direction"] == "entraToAd"
    assert fields["scope"] == {"kind": "selectedGroups", "entries": sorted((A, B))}
    apply(tenant, state)
    (sp,) = store.list_service_principals()
    assert sp["applicationTemplateId"] == GROUP_TEMPLATE_APP_ID
    (job,) = store.list_jobs(sp["id"])
    assert job["templateId"] == GROUP_PROVISIONING_TEMPLATE and job["schedule"]["state"] == "Active"
    assert assigned(tenant, sp["id"]) == {A, B}
    assert plan(tenant, state).changes == ()

    # The selected groups change: one update of the scope, shown entry by entry, and a restart.
    state = write(folder, (B, C))
    second = plan(tenant, state)
    assert [c.action for c in second.changes] == [Action.UPDATE, Action.RESTART]
    (restart,) = [c for c in second.changes if c.action is Action.RESTART]
    assert restart.reasons[0].startswith("scope changed")
    shown = render(second, color=False)
    lines = [line.strip() for line in shown.splitlines()]
    assert any(line.startswith("-") and A in line for line in lines), shown
    assert any(line.startswith("+") and C in line for line in lines), shown
    assert not any(B in line for line in lines), shown  # kept: not shown
    apply(tenant, state)
    assert assigned(tenant, sp["id"]) == {B, C}
    assert plan(tenant, state).changes == ()

    # A restart asked for through git; a settings change (the delete threshold) is no restart.
    state = write(folder, (B, C), threshold=50, extra='  restartToken: "2026-12-06"\n')
    third = plan(tenant, state)
    assert [c.action for c in third.changes] == [Action.UPDATE, Action.RESTART]
    (restart,) = [c for c in third.changes if c.action is Action.RESTART]
    assert restart.reasons == ("restartToken changed to '2026-12-06'",)
    apply(tenant, state)
    notify = {s["key"]: s["value"] for s in store.get_secrets(sp["id"])}["SyncNotificationSettings"]
    assert json.loads(notify)["DeleteThresholdValue"] == 50
    assert plan(tenant, state).changes == ()

    # Deletes are guarded as for the other direction: protection on the target, then --allow-delete.
    state = write(
        folder, (B, C), threshold=50, extra='  restartToken: "2026-12-06"\n  deletionProtection: true\n'
    )
    apply(tenant, state)
    (folder / "contoso-groups.yaml").unlink()
    empty = load_paths([str(folder)]).state
    (held,) = plan(tenant, empty, allow_delete=True).held
    assert held.action is Action.DELETE and "deletion protection" in held.reasons[0]
    apply(tenant, write(folder, (B, C), threshold=50, extra='  restartToken: "2026-12-06"\n'))
    (folder / "contoso-groups.yaml").unlink()
    (held,) = plan(tenant, empty).held
    assert held.action is Action.DELETE and held.override == "--allow-delete"
    deleted = apply(tenant, empty, allow_delete=True)
    assert [c.action for c in deleted.changes] == [Action.DELETE]
    assert store.list_service_principals() == []


def test_import_round_trip_plans_no_change(tenant: Harness, tmp_path: Path) -> None:
    for name, scope in (
        ("contoso-groups", f"    selectedGroups: [{A}, {B}]\n"),
        (
            "fabrikam-groups",
            "    filters:\n"
            "      - - {attribute: department, operator: EQUALS, value: Finance}\n"
            "      - - {attribute: extension_1_WritebackEnabled, operator: IS_TRUE}\n"
            "        - {attribute: displayName, operator: REGEX_MATCH, value: '^FIN-'}\n",
        ),
    ):
        domain = name.split("-")[0] + ".com"
        (tmp_path / "configs").mkdir(exist_ok=True)
        (tmp_path / "configs" / f"{name}.yaml").write_text(
            "apiVersion: cloudsync/v1\nkind: Configuration\n"
            f"metadata: {{name: {name}}}\n"
            f"spec:\n  direction: entraToAd\n  domain: {domain}\n  notificationEmail: ops@{domain}\n"
            "  enabled: false\n  preview: {users: true}\n"
            f"  scope:\n{scope}"
            f"  targetContainer: OU=Groups,DC={domain.split('.')[0]},DC=com\n"
            "  attributeMappings:\n    user:\n      - {target: department, source: department}\n"
        )
    state = load_paths([str(tmp_path / "configs")]).state
    apply(tenant, state)
    assert plan(tenant, state).changes == ()
    result = import_target(tenant.provider, tmp_path / "imported")
    assert sorted(c.name for c in result.configurations) == ["contoso-groups", "fabrikam-groups"]
    imported = load_paths([str(tmp_path / "imported")]).state
    again = plan(tenant, imported)
    assert again.changes == () and again.held == ()
    assert {d.name: d.scope.normalized() for d in imported.configurations} == {
        d.name: d.scope.normalized() for d in state.configurations
    }
