"""Test support: what a run plants on the tenant behind reconciler's back, and the check that the
tenant holds exactly the desired state with the planted objects untouched (``check_tenant``).

I/O: the tenant's SQLite file (read straight from its tables; ``plant`` writes through the store).
"""

from __future__ import annotations

import collections
import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.core.model import CREDENTIAL_DATA, OBJECT_TYPES, PHS_OBJECTS, Settings
from reconciler.graph.identity import PASSWORD_HASH_TEMPLATE, PROVISIONING_TEMPLATE, parse_tags
from reconciler.graph.reading import find_provisioning_rule, template_defaults
from reconciler.graph.secrets import (
    DOMAIN,
    MANAGED_SECRET_KEYS,
    SYNC_NOTIFICATION_SETTINGS,
    settings_to_secrets,
)
from reconciler.tenant.store import TenantStore
from reconciler.testing.desired_states import MAPPINGS, REMOVABLE, ConfigSpec

__all__ = [
    "PLANTED_EXTRA",
    "Findings",
    "Planted",
    "check_tenant",
    "plant",
    "plant_extra_secret",
    "unmanaged_rows",
]

UNMANAGED_DOMAIN = "portal.fabrikam.com"
UNMANAGED_EXTRA = {"key": "SkipOutOfScopeDeletions", "value": "true"}
PLANTED_EXTRA = {"key": "SyncAll", "value": "false"}


@dataclass(frozen=True, slots=True)
class Planted:
    """What a run put on the tenant behind reconciler's back, to check it is left alone."""

    unmanaged_id: str
    unmanaged_rows: bytes
    extra_secret_sp: str | None = None


@dataclass(slots=True)
class Findings:
    lost: list[str] = field(default_factory=list)  # something desired or planted is missing
    duplicates: list[str] = field(default_factory=list)  # more than one of something
    mismatched: list[str] = field(default_factory=list)  # present, but not as desired
    touched: list[str] = field(default_factory=list)  # something unmanaged changed
    # An enabled job whose mappings or scope were written after it last started or restarted: the
    # service is not running them yet, and no plan shows it.
    restarts_lost: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicates or self.mismatched or self.touched or self.restarts_lost)

    def all(self) -> list[str]:
        return [
            *(f"lost: {x}" for x in self.lost),
            *(f"duplicate: {x}" for x in self.duplicates),
            *(f"mismatch: {x}" for x in self.mismatched),
            *(f"touched: {x}" for x in self.touched),
            *(f"restart lost: {x}" for x in self.restarts_lost),
        ]


@contextlib.contextmanager
def _database(db: Path) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(db, timeout=30)
    try:
        yield con
    finally:
        con.close()


def unmanaged_rows(db: Path, sp_id: str) -> bytes:
    """Every stored row of one configuration (principal, application, jobs, schemas, secrets, job
    actions), as bytes: equal bytes mean nothing of it was written."""
    with _database(db) as con:
        sp_rows = con.execute("SELECT app_id, data FROM service_principals WHERE id = ?", (sp_id,)).fetchall()
        app_id = sp_rows[0][0] if sp_rows else ""
        parts = {
            "sp": sp_rows,
            "app": con.execute("SELECT data FROM applications WHERE app_id = ?", (app_id,)).fetchall(),
            "jobs": con.execute(
                "SELECT id, data, schema FROM jobs WHERE sp_id = ? ORDER BY seq", (sp_id,)
            ).fetchall(),
            "secrets": con.execute("SELECT data FROM secrets WHERE sp_id = ?", (sp_id,)).fetchall(),
            "actions": con.execute(
                "SELECT action, body FROM job_actions WHERE sp_id = ? ORDER BY seq", (sp_id,)
            ).fetchall(),
        }
    return json.dumps(parts, sort_keys=True).encode()


def plant(db: Path) -> Planted:
    """A configuration made in the portal (no reconciler tags), with a secret key we never manage."""
    store = TenantStore(db)
    try:
        sp = store.instantiate(UNMANAGED_DOMAIN)["servicePrincipal"]
        store.create_job(sp["id"], PROVISIONING_TEMPLATE)
        settings = Settings(UNMANAGED_DOMAIN, f"admin@{UNMANAGED_DOMAIN}", password_hash_sync=False)
        store.put_secrets(sp["id"], [*settings_to_secrets(settings, []), UNMANAGED_EXTRA])
    finally:
        store.close()
    return Planted(sp["id"], unmanaged_rows(db, sp["id"]))


def plant_extra_secret(db: Path, planted: Planted, name: str) -> Planted:
    """A secret key someone added in the portal to managed configuration ``name``."""
    store = TenantStore(db)
    try:
        (sp,) = [s for s in store.list_service_principals() if parse_tags(s.get("tags") or []).name == name]
        store.put_secrets(sp["id"], [*store.get_secrets(sp["id"]), PLANTED_EXTRA])
    finally:
        store.close()
    return Planted(planted.unmanaged_id, planted.unmanaged_rows, sp["id"])


def _secret_value(secrets: list[dict[str, Any]], key: str) -> dict[str, Any]:
    for item in secrets:
        if item.get("key") == key:
            value = json.loads(item.get("value") or "null")
            return value if isinstance(value, dict) else {}
    return {}


def _schema_written(schema: dict[str, Any]) -> str:
    """When the store stamped the schema (its ``version``: ``Date:...Z, ActivityId:...``)."""
    version = str(schema.get("version") or "")
    return version[len("Date:") :].split(",")[0] if version.startswith("Date:") else ""


def _check_schema(spec: ConfigSpec, schema: dict[str, Any], found: Findings) -> None:
    where = spec.name
    rule = find_provisioning_rule(schema)
    if rule is None:
        found.lost.append(f"{where}: the provisioning rule")
        return
    containers = (rule.get("containerFilter") or {}).get("includedContainers") or []
    groups = (rule.get("groupFilter") or {}).get("includedGroups") or []
    want = {"organizationalUnits": (list(spec.scope), []), "groups": ([], list(spec.scope))}
    if (sorted(containers), sorted(groups)) != tuple(sorted(x) for x in want.get(spec.scope_kind, ([], []))):
        found.mismatched.append(f"{where}: scope {containers or groups} instead of {list(spec.scope)}")
    defaults: dict[str, set[str]] = collections.defaultdict(set)
    for m in template_defaults():
        defaults[m.object].add(m.target.casefold())
    seen_objects: set[str] = set()
    for om in rule.get("objectMappings") or []:
        obj = om.get("sourceObjectName")
        if obj not in OBJECT_TYPES:
            continue
        if obj in seen_objects:
            found.duplicates.append(f"{where}: a second {obj} object mapping")
            continue
        seen_objects.add(obj)
        # The service matches target names case-insensitively: so does this count.
        targets = [str(am.get("targetAttributeName")).casefold() for am in om.get("attributeMappings") or []]
        counts = collections.Counter(targets)
        credential = CREDENTIAL_DATA.casefold()
        for target, n in counts.items():
            if n > 1 and target != credential:
                found.duplicates.append(f"{where}: {n} {obj} mappings of {target}")
        want_phs = 1 if spec.password_hash_sync and obj in PHS_OBJECTS else 0
        if counts[credential] > want_phs:
            found.duplicates.append(f"{where}: {counts[credential]} {obj} CredentialData mappings")
        elif counts[credential] < want_phs:
            found.lost.append(f"{where}: the {obj} CredentialData mapping")
        wanted = set(defaults[obj])
        if obj == "user":
            # A row the desired state stops speaking about is the service's from then on, as it is:
            # only rows no desired state of the run names must be the template's.
            removed = {t.casefold() for t in spec.removed}
            spoken = {t.casefold() for t in REMOVABLE} | {t.casefold() for t, _ in MAPPINGS}
            wanted = (wanted - spoken) | {t.casefold() for t in spec.mappings}
            for target in sorted(removed):
                if target in counts:
                    found.mismatched.append(f"{where}: removed mapping {target} is still there")
        for target in sorted(wanted - set(counts)):
            found.lost.append(f"{where}: the {obj} mapping of {target}")
    for obj in sorted(set(defaults) - seen_objects):
        found.lost.append(f"{where}: the {obj} object mapping")


@dataclass(frozen=True, slots=True)
class _Tables:
    """The store's tables as a check reads them."""

    sps: list[tuple[str, str, dict[str, Any]]]  # (id, appId, data)
    apps: collections.Counter[str]  # appId -> applications
    jobs: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]]  # sp -> (template, data, schema)
    secrets: dict[str, list[dict[str, Any]]]  # sp -> secrets
    kicked: dict[str, str]  # job -> when it was last started or restarted (the store's job actions)


def _read_tables(db: Path) -> _Tables:
    with _database(db) as con:
        sps = [
            (r[0], r[1], json.loads(r[2]))
            for r in con.execute("SELECT id, app_id, data FROM service_principals")
        ]
        apps = collections.Counter(r[0] for r in con.execute("SELECT app_id FROM applications"))
        jobs: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = collections.defaultdict(list)
        for sp_id, template, data, schema in con.execute(
            "SELECT sp_id, template_id, data, schema FROM jobs ORDER BY seq"
        ):
            jobs[sp_id].append((template, json.loads(data), json.loads(schema)))
        secrets = {r[0]: json.loads(r[1]) for r in con.execute("SELECT sp_id, data FROM secrets")}
        kicked: dict[str, str] = {}
        for job_id, at in con.execute(
            "SELECT job_id, at FROM job_actions WHERE action IN ('start', 'restart') ORDER BY seq"
        ):
            kicked[job_id] = at
    return _Tables(sps, apps, jobs, secrets, kicked)


def check_tenant(db: Path, expected: Sequence[ConfigSpec], planted: Planted) -> Findings:
    """Whether the tenant holds exactly ``expected`` and the planted objects untouched.

    Counted straight from the store's tables: service principals and applications per domain and per
    managed name, jobs per principal and template, mappings per object and target (CredentialData
    included), secret keys (the managed ones and the planted one), and the planted configuration's
    rows byte for byte.
    """
    found = Findings()
    tables = _read_tables(db)
    by_name = _check_principals(db, tables, planted, found)
    by_domain = collections.Counter(data.get("displayName") for _, _, data in tables.sps)
    names = {spec.name for spec in expected}
    for name in sorted(set(by_name) - names):
        found.mismatched.append(f"{name}: still on the target")
    for spec in expected:
        ids = by_name.get(spec.name, [])
        if len(ids) != 1:
            (found.lost if not ids else found.duplicates).append(f"{spec.name}: {len(ids)} configurations")
            continue
        if by_domain[spec.domain] > 1:
            found.duplicates.append(
                f"{spec.name}: {by_domain[spec.domain]} service principals for {spec.domain}"
            )
        (sp_id,) = ids
        if _check_jobs(spec, tables.jobs[sp_id], tables.kicked, found):
            _check_secrets(spec, sp_id, tables.secrets.get(sp_id, []), planted, found)
    return found


def _check_principals(db: Path, tables: _Tables, planted: Planted, found: Findings) -> dict[str, list[str]]:
    """Each application with its one principal, no principal no configuration owns, the planted one
    untouched; returns the managed principals' ids by configuration name."""
    sp_apps = collections.Counter(app_id for _, app_id, _ in tables.sps)
    for app_id, n in tables.apps.items():
        if sp_apps[app_id] == 0:
            found.duplicates.append(f"an application ({app_id}) without its service principal")
        elif n > 1:
            found.duplicates.append(f"{n} applications with appId {app_id}")
    for app_id in sp_apps:
        if tables.apps[app_id] == 0:
            found.lost.append(f"the application of a service principal ({app_id})")
    by_name: dict[str, list[str]] = collections.defaultdict(list)
    for sp_id, _, data in tables.sps:
        tags = parse_tags(data.get("tags") or [])
        if tags.managed:
            by_name[tags.name or ""].append(sp_id)
        elif sp_id != planted.unmanaged_id:
            found.duplicates.append(f"a service principal {data.get('displayName')!r} no configuration owns")
    if planted.unmanaged_id not in {sp_id for sp_id, _, _ in tables.sps}:
        found.lost.append("the unmanaged configuration")
    elif unmanaged_rows(db, planted.unmanaged_id) != planted.unmanaged_rows:
        found.touched.append("the unmanaged configuration changed")
    return by_name


def _check_jobs(
    spec: ConfigSpec,
    jobs: list[tuple[str, dict[str, Any], dict[str, Any]]],
    kicked: dict[str, str],
    found: Findings,
) -> bool:
    """One job per template, the password hash job as ``spec`` says, the provisioning job's schedule
    and schema; False when there is no provisioning job (nothing more of the configuration is checked)."""
    templates = collections.Counter(t for t, _, _ in jobs)
    for template, n in templates.items():
        if n > 1:
            found.duplicates.append(f"{spec.name}: {n} {template} jobs")
    provisioning = [(data, schema) for t, data, schema in jobs if t == PROVISIONING_TEMPLATE]
    if not provisioning:
        found.lost.append(f"{spec.name}: the provisioning job")
        return False
    job, schema = provisioning[0]
    if (templates[PASSWORD_HASH_TEMPLATE] > 0) != spec.password_hash_sync:
        found.mismatched.append(
            f"{spec.name}: password hash job {'missing' if spec.password_hash_sync else 'left'}"
        )
    state = (job.get("schedule") or {}).get("state")
    if state == "Active" and _schema_written(schema) > kicked.get(job["id"], ""):
        # The service takes up new mappings and scope when the job starts or restarts.
        found.restarts_lost.append(f"{spec.name}: mappings written after the job last (re)started")
    if (state == "Active") != spec.enabled:
        found.mismatched.append(f"{spec.name}: schedule {state} but enabled is {spec.enabled}")
    _check_schema(spec, schema, found)
    return True


def _check_secrets(
    spec: ConfigSpec, sp_id: str, items: list[dict[str, Any]], planted: Planted, found: Findings
) -> None:
    """Each managed key once, with the domain and e-mail of ``spec``; the key planted outside kept."""
    keys = collections.Counter(item.get("key") for item in items)
    for key, n in keys.items():
        if n > 1:
            found.duplicates.append(f"{spec.name}: secret {key} {n} times")
    for key in MANAGED_SECRET_KEYS:
        if keys[key] == 0:
            found.lost.append(f"{spec.name}: secret {key}")
    if _secret_value(items, DOMAIN).get("domain") != spec.domain:
        found.mismatched.append(f"{spec.name}: Domain secret")
    if _secret_value(items, SYNC_NOTIFICATION_SETTINGS).get("Recipients") != spec.email:
        found.mismatched.append(f"{spec.name}: notification e-mail")
    if sp_id == planted.extra_secret_sp and PLANTED_EXTRA not in items:
        found.lost.append(f"{spec.name}: the secret key {PLANTED_EXTRA['key']} set outside reconciler")
