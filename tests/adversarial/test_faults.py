"""Apply through the Graph emulator while it throttles, fails, drops and stalls requests; then a
fault-free apply converges to exactly the desired state (``reconciler.testing.scenarios.fault_run``).

The checker that decides "exactly" is tested first: each kind of damage it must see is made by hand.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.model import CREDENTIAL_DATA
from reconciler.graph.identity import PROVISIONING_TEMPLATE, parse_tags
from reconciler.tenant.store import TenantStore
from reconciler.testing.commands import child_env, cli
from reconciler.testing.desired_states import ConfigSpec, make_scenario, write_desired
from reconciler.testing.scenarios import fault_run
from reconciler.testing.tenant_checks import PLANTED_EXTRA, Planted, check_tenant, plant, plant_extra_secret


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[ConfigSpec, ...], Planted]:
    """A tenant holding a scenario's desired state, with the planted objects."""
    folder = tmp_path_factory.mktemp("converged")
    db = folder / "tenant.db"
    specs = make_scenario(3).after
    planted = plant(db)
    write_desired(folder / "configs", specs)
    env = child_env(folder)
    result = cli(folder, "apply", "configs", "--auto-approve", "--target", f"local:{db}", env=env)
    assert result.code == 0, result.describe()
    return db, specs, plant_extra_secret(db, planted, specs[0].name)


def _copy(source: Path, folder: Path) -> Path:
    target = folder / "copy.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def _sp_of(store: TenantStore, name: str) -> dict[str, Any]:
    (sp,) = [s for s in store.list_service_principals() if parse_tags(s.get("tags") or []).name == name]
    return sp


Rows = list[dict[str, Any]]


def _edit_user_mappings(store: TenantStore, name: str, change: Callable[[Rows], None]) -> None:
    sp = _sp_of(store, name)
    job = next(j for j in store.list_jobs(sp["id"]) if j["templateId"] == PROVISIONING_TEMPLATE)
    schema = store.get_schema(sp["id"], job["id"])
    for rule in schema["synchronizationRules"]:
        for om in rule["objectMappings"]:
            if om["sourceObjectName"] == "user":
                rows = list(om["attributeMappings"])
                change(rows)
                om["attributeMappings"] = rows
    store.put_schema(sp["id"], job["id"], schema)


def _duplicate_domain(store: TenantStore, specs: tuple[ConfigSpec, ...]) -> None:
    store.instantiate(specs[1].domain)  # what a create that ran twice leaves


def _duplicate_job(store: TenantStore, specs: tuple[ConfigSpec, ...]) -> None:
    sp = _sp_of(store, specs[0].name)
    with sqlite3.connect(store.path) as con:  # the store itself refuses a second job of a template
        (data, schema) = con.execute(
            "SELECT data, schema FROM jobs WHERE sp_id = ? AND template_id = ?",
            (sp["id"], PROVISIONING_TEMPLATE),
        ).fetchone()
        con.execute(
            "INSERT INTO jobs (sp_id, id, template_id, data, schema) VALUES (?, ?, ?, ?, ?)",
            (sp["id"], "second", PROVISIONING_TEMPLATE, data, schema),
        )


def _second_credential_data(store: TenantStore, specs: tuple[ConfigSpec, ...]) -> None:
    def add(rows: list[dict[str, Any]]) -> None:
        rows.append({**rows[0], "targetAttributeName": CREDENTIAL_DATA})
        rows.append({**rows[0], "targetAttributeName": CREDENTIAL_DATA})

    _edit_user_mappings(store, specs[0].name, add)


def _drop_a_mapping(store: TenantStore, specs: tuple[ConfigSpec, ...]) -> None:
    _edit_user_mappings(store, specs[1].name, lambda rows: rows.pop(0))


def _drop_planted_secret(store: TenantStore, specs: tuple[ConfigSpec, ...]) -> None:
    sp = _sp_of(store, specs[0].name)
    store.put_secrets(sp["id"], [s for s in store.get_secrets(sp["id"]) if s != PLANTED_EXTRA])


def _touch_unmanaged(store: TenantStore, specs: tuple[ConfigSpec, ...]) -> None:
    (sp,) = [s for s in store.list_service_principals() if not parse_tags(s.get("tags") or []).managed]
    job = store.list_jobs(sp["id"])[0]
    store.restart_job(sp["id"], job["id"], {"resetScope": "Full"})


def _delete_one(store: TenantStore, specs: tuple[ConfigSpec, ...]) -> None:
    sp = _sp_of(store, specs[-1].name)
    (app,) = [a for a in store.list_applications() if a["appId"] == sp["appId"]]
    store.delete_application(app["id"])


def _change_email(store: TenantStore, specs: tuple[ConfigSpec, ...]) -> None:
    sp = _sp_of(store, specs[0].name)
    secrets = [
        {**s, "value": json.dumps({**json.loads(s["value"]), "Recipients": "x@evil.example"})}
        if s["key"] == "SyncNotificationSettings"
        else s
        for s in store.get_secrets(sp["id"])
    ]
    store.put_secrets(sp["id"], secrets)


@pytest.mark.parametrize(
    ("damage", "kind", "says"),
    [
        (_duplicate_domain, "duplicates", "no configuration owns"),
        (_duplicate_job, "duplicates", "AD2AADProvisioning jobs"),
        (_second_credential_data, "duplicates", "CredentialData"),
        (_drop_a_mapping, "lost", "user mapping of"),
        (_drop_planted_secret, "lost", PLANTED_EXTRA["key"]),
        (_touch_unmanaged, "touched", "unmanaged"),
        (_delete_one, "lost", "0 configurations"),
        (_change_email, "mismatched", "notification e-mail"),
    ],
)
def test_the_checker_sees_every_kind_of_damage(
    converged: tuple[Path, tuple[ConfigSpec, ...], Planted],
    tmp_path: Path,
    damage: Callable[[TenantStore, tuple[ConfigSpec, ...]], None],
    kind: str,
    says: str,
) -> None:
    db, specs, planted = converged
    assert check_tenant(db, specs, planted).all() == []
    copy = _copy(db, tmp_path)
    store = TenantStore(copy)
    damage(store, specs)
    store.close()
    findings = check_tenant(copy, specs, planted)
    assert any(says in line for line in getattr(findings, kind)), findings.all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_after_faults_a_fault_free_apply_converges_exactly(tmp_path: Path, seed: int) -> None:
    report = fault_run(seed, tmp_path)
    assert report.faults > 0
    assert report.converged, report.summary()
    assert report.leaks == []


@pytest.mark.slow
def test_every_request_failing_once_still_converges(tmp_path: Path) -> None:
    report = fault_run(10, tmp_path, every_request_once=True)
    # Every request fails once and goes again (inside a $batch too): about every other one sent failed
    # (a little less when a slow machine adds timeouts of its own).
    assert report.faults * 5 >= report.requests * 2
    assert report.converged, report.summary()
    assert report.leaks == []
