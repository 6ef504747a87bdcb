"""Exchange hybrid writeback and device sync through the real CLI on the local tenant: plan, apply,
status with every job, the Exchange precondition held back, and import -> validate -> empty plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.graph.identity import DEVICE_SYNC_TEMPLATE, EXCHANGE_WRITEBACK_TEMPLATE, job_enabled
from reconciler.providers.local import LocalProvider

ADD_ONS = "  exchangeHybridWriteback: true\n  deviceSync: true\n"

Run = Callable[..., Any]


def tenant(project: Path) -> LocalProvider:
    return LocalProvider(project / ".reconciler" / "tenant.db")


def write(project: Path, extra: str = "") -> None:
    """The project's contoso.yaml as the fixture wrote it, with ``extra`` lines in its spec."""
    path = project / "configs" / "contoso.yaml"
    original = project / "contoso.original"
    if not original.exists():
        original.write_text(path.read_text())
    text = original.read_text().replace(
        "  notificationEmail: ops@contoso.com\n", "  notificationEmail: ops@contoso.com\n" + extra
    )
    path.write_text(text)


def test_add_on_jobs_apply_show_in_status_and_import_round_trip(project: Path, run: Run) -> None:
    write(project, ADD_ONS)
    r = run("plan", "configs")
    assert "+ settings.exchangeHybridWriteback: true" in r.out and "+ settings.deviceSync: true" in r.out
    assert "exchangeHybridWriteback needs the Exchange schema in AD; it could not be checked" in r.out
    assert run("apply", "configs", "--auto-approve").code == 0
    t = tenant(project)
    (o,) = t.read_all()
    jobs = {j["templateId"]: job_enabled(j) for j in t.store.list_jobs(o.id)}
    assert jobs[EXCHANGE_WRITEBACK_TEMPLATE] and jobs[DEVICE_SYNC_TEMPLATE]
    assert run("plan", "configs", "--detailed-exitcode").code == 0

    r = run("status")
    assert r.code == 0
    assert EXCHANGE_WRITEBACK_TEMPLATE in r.out and DEVICE_SYNC_TEMPLATE in r.out

    assert run("import", "--out", "imported").code == 0
    text = (project / "imported" / "contoso.yaml").read_text()
    assert "exchangeHybridWriteback: true" in text and "deviceSync: true" in text
    assert run("validate", "imported").code == 0
    assert run("plan", "imported", "--detailed-exitcode").code == 0

    # Off again: the job is removed, the configuration keeps running; nothing restarts.
    write(project, "  deviceSync: true\n")
    r = run("plan", "configs")
    assert "- settings.exchangeHybridWriteback: true" in r.out and "0 to restart" in r.out
    assert run("apply", "configs", "--auto-approve").code == 0
    assert {j["templateId"] for j in t.store.list_jobs(o.id)} >= {DEVICE_SYNC_TEMPLATE}
    assert EXCHANGE_WRITEBACK_TEMPLATE not in {j["templateId"] for j in t.store.list_jobs(o.id)}


def test_writeback_is_held_when_the_ad_schema_has_no_exchange_attributes(project: Path, run: Run) -> None:
    write(project)
    assert run("apply", "configs", "--auto-approve").code == 0
    t = tenant(project)
    t.store.set_ad_schema(exchange=False)
    write(project, "  exchangeHybridWriteback: true\n")
    r = run("plan", "configs", "--detailed-exitcode")
    assert r.code == 2
    assert "the AD schema of contoso.com has no Exchange attributes" in r.out
    assert run("apply", "configs", "--auto-approve").code == 0
    (o,) = t.read_all()
    assert EXCHANGE_WRITEBACK_TEMPLATE not in {j["templateId"] for j in t.store.list_jobs(o.id)}
    # Once the schema is extended (and the agent restarted), the same desired state goes through.
    t.store.set_ad_schema(exchange=True)
    assert run("apply", "configs", "--auto-approve").code == 0
    assert EXCHANGE_WRITEBACK_TEMPLATE in {j["templateId"] for j in t.store.list_jobs(o.id)}
    assert run("plan", "configs", "--detailed-exitcode").code == 0
