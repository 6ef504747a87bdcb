"""The SQLite tenant store: Graph-like operations, service shapes, transactions and concurrency."""

from __future__ import annotations

import json
import multiprocessing
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ConflictError, NotFoundError, ProviderError
from reconciler.graph.identity import PASSWORD_HASH_TEMPLATE, PROVISIONING_TEMPLATE, TEMPLATE_APP_ID
from reconciler.graph.reading import PROVISIONING_RULE_ID
from reconciler.graph.template import template_schema
from reconciler.tenant.store import FORMAT_VERSION, INTEGRATED_APP_TAG, TenantStore


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = TenantStore(tmp_path / "t" / "tenant.db")
    yield s
    s.close()


def _sp(store: TenantStore, name: str = "contoso.com") -> str:
    return str(store.instantiate(name)["servicePrincipal"]["id"])


def test_instantiate(store: TenantStore) -> None:
    made = store.instantiate("contoso.com")
    app, sp = made["application"], made["servicePrincipal"]
    assert app["appId"] == sp["appId"] and app["id"] != sp["id"]
    # As Microsoft's example of a Cloud Sync principal: its app id its only name, the service's own tag.
    assert sp["applicationTemplateId"] == TEMPLATE_APP_ID and sp["servicePrincipalNames"] == [sp["appId"]]
    assert sp["displayName"] == "contoso.com" and sp["tags"] == [INTEGRATED_APP_TAG]
    assert store.list_service_principals() == [sp]
    assert store.list_applications() == [app]
    assert store.get_service_principal(sp["id"]) == sp
    with pytest.raises(NotFoundError):
        store.instantiate("x", template_id="00000000-0000-0000-0000-000000000000")


def test_patch_and_delete_service_principal(store: TenantStore) -> None:
    made = store.instantiate("contoso.com")
    id = made["servicePrincipal"]["id"]
    store.patch_service_principal(id, {"tags": ["a", "b"]})
    assert store.get_service_principal(id)["tags"] == ["a", "b"]
    with pytest.raises(ProviderError) as bad:
        store.patch_service_principal(id, {"appId": "x"})
    assert bad.value.status == 400
    with pytest.raises(ProviderError):
        store.patch_service_principal(id, {"tags": "a"})
    store.create_job(id, PROVISIONING_TEMPLATE)
    store.put_secrets(id, [{"key": "Domain", "value": "{}"}])
    store.delete_service_principal(id)
    with pytest.raises(NotFoundError) as missing:
        store.get_service_principal(id)
    assert missing.value.status == 404
    with pytest.raises(NotFoundError):
        store.list_jobs(id)
    assert store.get_application(made["application"]["id"])  # the application stays
    with pytest.raises(NotFoundError):
        store.delete_service_principal(id)


def test_deleting_the_application_removes_its_service_principal(store: TenantStore) -> None:
    made = store.instantiate("contoso.com")
    keep = _sp(store, "other")
    store.create_job(made["servicePrincipal"]["id"], PROVISIONING_TEMPLATE)
    store.delete_application(made["application"]["id"])
    assert [sp["id"] for sp in store.list_service_principals()] == [keep]
    with pytest.raises(NotFoundError):
        store.delete_application(made["application"]["id"])


def test_create_job_as_the_service_does(store: TenantStore) -> None:
    sp = _sp(store)
    job = store.create_job(sp, PROVISIONING_TEMPLATE)
    assert re.fullmatch(r"AD2AADProvisioning\.[0-9a-f]{32}\.[0-9a-f-]{36}", job["id"])
    assert job["id"].endswith(store.tenant_id)
    assert job["templateId"] == PROVISIONING_TEMPLATE
    assert job["schedule"] == {"expiration": None, "interval": "PT40M", "state": "Disabled"}
    assert job["status"]["code"] == "Paused" and job["status"]["quarantine"] is None
    assert job["status"]["steadyStateFirstAchievedTime"] == "0001-01-01T00:00:00Z"
    assert store.get_job(sp, job["id"]) == job
    with pytest.raises(ConflictError) as twice:
        store.create_job(sp, PROVISIONING_TEMPLATE)
    assert twice.value.status == 409
    with pytest.raises(ProviderError) as bad:
        store.create_job(sp, "NoSuchTemplate")
    assert bad.value.status == 400
    phs = store.create_job(sp, PASSWORD_HASH_TEMPLATE)
    assert [j["id"] for j in store.list_jobs(sp)] == [job["id"], phs["id"]]
    store.delete_job(sp, phs["id"])
    assert [j["id"] for j in store.list_jobs(sp)] == [job["id"]]
    with pytest.raises(NotFoundError):
        store.get_job(sp, phs["id"])
    with pytest.raises(NotFoundError):
        store.create_job("nope", PROVISIONING_TEMPLATE)


def test_schema_get_put_reset(store: TenantStore) -> None:
    sp = _sp(store)
    job = store.create_job(sp, PROVISIONING_TEMPLATE)["id"]
    schema = store.get_schema(sp, job)
    template = template_schema()
    assert schema["synchronizationRules"] == template["synchronizationRules"]
    assert schema["synchronizationRules"][0]["id"] == PROVISIONING_RULE_ID
    assert store.template_schema() == template
    schema["synchronizationRules"][0]["groupFilter"] = {"includedGroups": ["CN=G"]}
    schema["x-kept"] = 1
    store.put_schema(sp, job, schema)
    got = store.get_schema(sp, job)
    assert got["synchronizationRules"][0]["groupFilter"] == {"includedGroups": ["CN=G"]}
    assert got["x-kept"] == 1
    assert got["version"] != schema["version"], "the service stamps a new version on every PUT"
    with pytest.raises(ProviderError):
        store.put_schema(sp, job, {"synchronizationRules": "x"})
    store.reset_schema(sp, job)
    assert store.get_schema(sp, job)["synchronizationRules"] == template["synchronizationRules"]
    phs = store.create_job(sp, PASSWORD_HASH_TEMPLATE)["id"]
    assert store.get_schema(sp, phs)["synchronizationRules"] == []


def test_schema_rules_as_json_text(store: TenantStore) -> None:
    sp = _sp(store)
    job = store.create_job(sp, PROVISIONING_TEMPLATE)["id"]
    text = store.get_schema_rules_json(sp, job)
    assert text is not None and json.loads(text) == store.get_schema_rules(sp, job)
    assert list(json.loads(text)) == ["id", "version", "synchronizationRules"]
    # Any other members, or another order: not cut out of the text (get_schema_rules reads those).
    schema = store.get_schema(sp, job)
    store.put_schema(sp, job, {**schema, "x-kept": [1]})
    assert store.get_schema_rules_json(sp, job) is None
    store.put_schema(sp, job, {"directories": schema["directories"], **schema})
    assert store.get_schema_rules_json(sp, job) is None
    with pytest.raises(NotFoundError):
        store.get_schema_rules_json(sp, "nope")


def test_secrets_put_replaces_every_key(store: TenantStore) -> None:
    sp = _sp(store)
    assert store.get_secrets(sp) == []
    store.put_secrets(sp, [{"key": "Domain", "value": "a"}, {"key": "SyncAll", "value": "b"}])
    store.put_secrets(sp, [{"key": "AppKey", "value": "c"}])
    assert store.get_secrets(sp) == [{"key": "AppKey", "value": "c"}]
    with pytest.raises(ProviderError) as bad:
        store.put_secrets(sp, [{"key": "NotASecret", "value": "x"}])
    assert bad.value.status == 400
    with pytest.raises(ProviderError):
        store.put_secrets(sp, [{"key": "Domain", "value": 1}])
    assert store.get_secrets(sp) == [{"key": "AppKey", "value": "c"}]
    with pytest.raises(NotFoundError):
        store.put_secrets("nope", [])


def test_start_pause_restart_and_quarantine(store: TenantStore) -> None:
    sp = _sp(store)
    job = store.create_job(sp, PROVISIONING_TEMPLATE)["id"]
    store.start_job(sp, job)
    got = store.get_job(sp, job)
    assert got["schedule"]["state"] == "Active" and got["status"]["code"] == "Active"
    store.quarantine(sp, job, reason="TooManyDeletes")
    got = store.get_job(sp, job)
    assert got["status"]["code"] == "Quarantine" and got["status"]["quarantine"]["reason"] == "TooManyDeletes"
    store.restart_job(sp, job, {"resetScope": "ForceDeletes"})
    assert store.get_job(sp, job)["status"]["code"] == "Quarantine"
    store.restart_job(sp, job, {"resetScope": "Watermark, QuarantineState"})
    got = store.get_job(sp, job)
    assert got["status"]["code"] == "Active" and got["status"]["quarantine"] is None
    with pytest.raises(ProviderError):
        store.restart_job(sp, job, {"resetScope": "Everything"})
    store.pause_job(sp, job)
    got = store.get_job(sp, job)
    assert got["schedule"]["state"] == "Paused" and got["status"]["code"] == "Paused"
    store.quarantine(sp, job)
    store.start_job(sp, job)
    assert store.get_job(sp, job)["status"]["quarantine"] is None
    store.set_status(sp, job, lastExecution={"state": "Succeeded"})
    assert store.get_job(sp, job)["status"]["lastExecution"] == {"state": "Succeeded"}
    actions = [(a["action"], a["body"]) for a in store.actions(sp)]
    assert actions == [
        ("start", None),
        ("restart", {"criteria": {"resetScope": "ForceDeletes"}}),
        ("restart", {"criteria": {"resetScope": "Watermark, QuarantineState"}}),
        ("pause", None),
        ("start", None),
    ]


def test_a_failed_transaction_leaves_nothing(store: TenantStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        _sp(store, "a")
        raise RuntimeError("boom")
    assert store.list_service_principals() == []

    with store.transaction():
        _sp(store, "kept")
        with pytest.raises(ConflictError), store.transaction():
            sp = _sp(store, "rolled back")
            store.create_job(sp, PROVISIONING_TEMPLATE)
            store.create_job(sp, PROVISIONING_TEMPLATE)
    assert [sp["displayName"] for sp in store.list_service_principals()] == ["kept"]


def test_no_write_inside_a_read_transaction(store: TenantStore) -> None:
    with store.transaction(write=False), pytest.raises(RuntimeError):
        _sp(store)


def test_persists_and_checks_its_format(tmp_path: Path) -> None:
    path = tmp_path / "tenant.db"
    first = TenantStore(path)
    sp = _sp(first)
    tenant = first.tenant_id
    first.close()
    again = TenantStore(path)
    assert again.get_service_principal(sp)["id"] == sp
    assert again.tenant_id == tenant and again.format_version == FORMAT_VERSION
    again.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(FORMAT_VERSION + 1),))
    conn.close()
    with pytest.raises(ProviderError, match="format"):
        TenantStore(path)


def test_wal_mode(store: TenantStore) -> None:
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_onprem_directory(store: TenantStore) -> None:
    store.put_onprem_object("CN=Adele,OU=Users,DC=c,DC=com", "user", {"mail": "adele@c.com"})
    store.put_onprem_object("CN=Pilot,OU=Groups,DC=c,DC=com", "group", {"cn": "Pilot"})
    got = store.get_onprem_object("cn=adele,ou=users,dc=c,dc=com")
    assert got == {
        "dn": "CN=Adele,OU=Users,DC=c,DC=com",
        "objectType": "user",
        "attributes": {"mail": "adele@c.com"},
    }
    store.put_onprem_object("CN=Adele,OU=Users,DC=c,DC=com", "user", {"mail": "new@c.com"})
    assert [o["attributes"] for o in store.list_onprem_objects("user")] == [{"mail": "new@c.com"}]
    assert len(store.list_onprem_objects()) == 2
    store.add_member("CN=Pilot,OU=Groups,DC=c,DC=com", "CN=Adele,OU=Users,DC=c,DC=com")
    store.add_member("CN=Pilot,OU=Groups,DC=c,DC=com", "CN=Adele,OU=Users,DC=c,DC=com")
    assert store.list_members("cn=pilot,ou=groups,dc=c,dc=com") == ["CN=Adele,OU=Users,DC=c,DC=com"]
    assert store.member_of("CN=Adele,OU=Users,DC=c,DC=com") == ["CN=Pilot,OU=Groups,DC=c,DC=com"]
    store.delete_onprem_object("CN=Adele,OU=Users,DC=c,DC=com")
    assert store.get_onprem_object("CN=Adele,OU=Users,DC=c,DC=com") is None
    assert store.list_members("CN=Pilot,OU=Groups,DC=c,DC=com") == []


# --------------------------------------------------------------------------------------------------
# concurrency: read-modify-write sequences in transactions never lose an update


def _append_tags(path: str, sp: str, worker: str, count: int) -> None:
    store = TenantStore(path)
    for i in range(count):
        with store.transaction():
            tags = store.get_service_principal(sp)["tags"]
            store.patch_service_principal(sp, {"tags": [*tags, f"{worker}-{i}"]})
    store.close()


def test_threads_share_one_store(store: TenantStore) -> None:
    sp = _sp(store)
    threads = [threading.Thread(target=_append_tags, args=(store.path, sp, f"t{n}", 15)) for n in range(4)]
    threads += [threading.Thread(target=lambda: [_sp(store, "x") for _ in range(10)])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.get_service_principal(sp)["tags"]) == 1 + 60
    assert len(store.list_service_principals()) == 11


def test_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "tenant.db")
    store = TenantStore(path)
    sp = _sp(store)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_tags, args=(path, sp, f"p{n}", 10)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(store.get_service_principal(sp)["tags"]) == 1 + 30
    store.close()
