"""Test support: seeded fault and crash runs of the real command line, and the checks on what they leave.

- A fault run applies a changing desired state (creates, updates, a pause or start, restarts and a
  delete) through the Graph emulator while it throttles, fails, drops and stalls a share of the
  requests (20% by default; or it fails the first sending of every request). Then a fault-free apply
  must succeed, the next plan must be empty, and the tenant must hold exactly the desired state
  (``check_tenant``).
- A crash run kills ``reconciler apply`` with SIGKILL (through ``reconciler.testing.killswitch``) after
  a chosen provider write, after a chosen HTTP write, or after a random delay, once or twice, on a local
  or an emulated target. The next apply must say it recovered the lock, ``reconciler history`` must show
  the interrupted runs, and the tenant must converge.

Every run plants a configuration made outside reconciler (as the portal would) and an extra secret
key on a managed one, and checks both survive byte for byte; every run's output and files are
searched for its bearer token. ``tests/adversarial`` calls these functions with a few seeds;
``benchmarks/reliability.py`` with many, and prints the figures.

I/O: the folders it is given; emulators listen on 127.0.0.1; the command line runs as child processes
(killed by this module in crash runs).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.core.model import CREDENTIAL_DATA, OBJECT_TYPES, PHS_OBJECTS, Settings
from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.engine.journal import RunRecord, read_runs
from reconciler.engine.lock import APPLY_LOCK
from reconciler.graph.identity import PASSWORD_HASH_TEMPLATE, PROVISIONING_TEMPLATE, parse_tags
from reconciler.graph.reading import find_provisioning_rule, template_defaults
from reconciler.graph.secrets import (
    DOMAIN,
    MANAGED_SECRET_KEYS,
    SYNC_NOTIFICATION_SETTINGS,
    settings_to_secrets,
)
from reconciler.state import StateStore, canonical_target, default_sqlite_path
from reconciler.state.sqlite import SqliteStore
from reconciler.tenant.store import TenantStore
from reconciler.testing.killswitch import KILL_ENV

__all__ = [
    "ConfigSpec",
    "Findings",
    "Planted",
    "Result",
    "RunReport",
    "Scenario",
    "check_tenant",
    "child_env",
    "cli",
    "command",
    "crash_run",
    "fault_run",
    "find_secret",
    "make_scenario",
    "plant",
    "runs_of",
    "state_store",
    "token_for",
    "write_desired",
]

# How long the client waits for an answer in fault runs, and how long a stalled answer is held.
CLIENT_TIMEOUT = 1.0
STALL_SECONDS = 1.5
# No command may take longer than this; one that does is reported as a hang.
COMMAND_TIMEOUT = 240.0

UNMANAGED_DOMAIN = "portal.fabrikam.com"
UNMANAGED_EXTRA = {"key": "SkipOutOfScopeDeletions", "value": "true"}
PLANTED_EXTRA = {"key": "SyncAll", "value": "false"}


# --------------------------------------------------------------------------------------------------
# desired states


NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")

# User mappings a configuration may set: (target, the YAML flow map of the row).
MAPPINGS: tuple[tuple[str, str], ...] = (
    ("department", "{target: department, source: department}"),
    ("extensionAttribute1", "{target: extensionAttribute1, constant: FTE}"),
    ("jobTitle", """{target: jobTitle, expression: 'Join(" ", Trim([title]), "(staff)")'}"""),
    (
        "displayName",
        """{target: displayName, expression: 'Join(" ", [givenName], [sn])', default: Unknown, """
        "apply: onCreate}",
    ),
    ("countryCode", "{target: countryCode, constant: NL}"),
)
# Template defaults a configuration may remove.
REMOVABLE = ("ExtensionAttribute3", "extensionAttribute4", "Initials")


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    """One configuration of a desired state, and what the tenant must hold for it."""

    name: str
    enabled: bool
    password_hash_sync: bool
    email: str
    scope_kind: str  # organizationalUnits | groups | all
    scope: tuple[str, ...]
    mappings: tuple[str, ...]  # targets of MAPPINGS rows set on users
    removed: tuple[str, ...]  # template default user targets removed

    @property
    def domain(self) -> str:
        return f"{self.name}.contoso.com"

    def yaml(self) -> str:
        lines = [
            "apiVersion: cloudsync/v1",
            "kind: Configuration",
            "metadata:",
            f"  name: {self.name}",
            "spec:",
            f"  domain: {self.domain}",
            f"  enabled: {str(self.enabled).lower()}",
            f"  passwordHashSync: {str(self.password_hash_sync).lower()}",
            f"  notificationEmail: {self.email}",
        ]
        if self.scope_kind != "all":
            lines += ["  scope:", f"    {self.scope_kind}:", *(f"      - {dn}" for dn in self.scope)]
        rows = [row for target, row in MAPPINGS if target in self.mappings]
        rows += [f"{{target: {t}, remove: true}}" for t in self.removed]
        if rows:
            lines += ["  attributeMappings:", "    user:", *(f"      - {row}" for row in rows)]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A desired state applied first, then the one the run is about; ``keeper`` is in both."""

    before: tuple[ConfigSpec, ...]
    after: tuple[ConfigSpec, ...]

    @property
    def keeper(self) -> str:
        return self.after[0].name


def _scope(rng: random.Random, name: str) -> tuple[str, tuple[str, ...]]:
    dc = f"DC={name},DC=contoso,DC=com"
    kind = rng.choice(("organizationalUnits", "groups", "all"))
    if kind == "organizationalUnits":
        return kind, tuple(
            rng.sample([f"OU=Sales,{dc}", f"OU=Staff,{dc}", f"OU=Lab,{dc}"], rng.randint(1, 2))
        )
    if kind == "groups":
        groups = [f"CN=Pilot,OU=Groups,{dc}", f"CN=Helpdesk,OU=Groups,{dc}"]
        return kind, tuple(rng.sample(groups, rng.randint(1, 2)))
    return kind, ()


def _spec(rng: random.Random, name: str) -> ConfigSpec:
    kind, scope = _scope(rng, name)
    return ConfigSpec(
        name=name,
        enabled=rng.random() < 0.8,
        password_hash_sync=rng.random() < 0.5,
        email=f"ops{rng.randint(1, 9)}@{name}.contoso.com",
        scope_kind=kind,
        scope=scope,
        mappings=tuple(t for t, _ in rng.sample(MAPPINGS, rng.randint(0, 3))),
        removed=tuple(rng.sample(REMOVABLE, rng.randint(0, 1))),
    )


def _changed(rng: random.Random, spec: ConfigSpec) -> ConfigSpec:
    """``spec`` with one to three things changed (never its name or domain)."""
    fresh = _spec(rng, spec.name)
    fields = ["enabled", "password_hash_sync", "email", "scope", "mappings", "removed"]
    chosen = set(rng.sample(fields, rng.randint(1, 3)))
    changes: dict[str, Any] = {}
    for name in chosen:
        if name == "scope":
            changes["scope_kind"], changes["scope"] = fresh.scope_kind, fresh.scope
        elif name in ("enabled", "password_hash_sync"):
            changes[name] = not getattr(spec, name)
        else:
            changes[name] = getattr(fresh, name)
    return ConfigSpec(**{**{f: getattr(spec, f) for f in spec.__slots__}, **changes})


def make_scenario(seed: int) -> Scenario:
    """Three configurations first; then two of them changed, the third deleted and one or two new."""
    rng = random.Random(seed)
    names = rng.sample(NAMES, 5)
    before = tuple(_spec(rng, n) for n in names[:3])
    after = (
        _changed(rng, before[0]),
        _changed(rng, before[1]),
        *(_spec(rng, n) for n in names[3 : 3 + rng.randint(1, 2)]),
    )
    return Scenario(before, after)


def write_desired(folder: Path, specs: Iterable[ConfigSpec]) -> None:
    """Replace the YAML files in ``folder`` with one file per configuration."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for spec in specs:
        (folder / f"{spec.name}.yaml").write_text(spec.yaml(), encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# what the tenant holds, read from its SQLite file


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


def check_tenant(db: Path, expected: Sequence[ConfigSpec], planted: Planted) -> Findings:
    """Whether the tenant holds exactly ``expected`` and the planted objects untouched.

    Counted straight from the store's tables: service principals and applications per domain and per
    managed name, jobs per principal and template, mappings per object and target (CredentialData
    included), secret keys (the managed ones and the planted one), and the planted configuration's
    rows byte for byte.
    """
    found = Findings()
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
        # When each job was last started or restarted (the store's log of job actions).
        kicked: dict[str, str] = {}
        for job_id, at in con.execute(
            "SELECT job_id, at FROM job_actions WHERE action IN ('start', 'restart') ORDER BY seq"
        ):
            kicked[job_id] = at

    sp_apps = collections.Counter(app_id for _, app_id, _ in sps)
    for app_id, n in apps.items():
        if sp_apps[app_id] == 0:
            found.duplicates.append(f"an application ({app_id}) without its service principal")
        elif n > 1:
            found.duplicates.append(f"{n} applications with appId {app_id}")
    for app_id in sp_apps:
        if apps[app_id] == 0:
            found.lost.append(f"the application of a service principal ({app_id})")
    by_domain = collections.Counter(data.get("displayName") for _, _, data in sps)
    by_name: dict[str, list[str]] = collections.defaultdict(list)
    for sp_id, _, data in sps:
        tags = parse_tags(data.get("tags") or [])
        if tags.managed:
            by_name[tags.name or ""].append(sp_id)
        elif sp_id != planted.unmanaged_id:
            found.duplicates.append(f"a service principal {data.get('displayName')!r} no configuration owns")
    if planted.unmanaged_id not in {sp_id for sp_id, _, _ in sps}:
        found.lost.append("the unmanaged configuration")
    elif unmanaged_rows(db, planted.unmanaged_id) != planted.unmanaged_rows:
        found.touched.append("the unmanaged configuration changed")

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
        templates = collections.Counter(t for t, _, _ in jobs[sp_id])
        for template, n in templates.items():
            if n > 1:
                found.duplicates.append(f"{spec.name}: {n} {template} jobs")
        provisioning = [(data, schema) for t, data, schema in jobs[sp_id] if t == PROVISIONING_TEMPLATE]
        if not provisioning:
            found.lost.append(f"{spec.name}: the provisioning job")
            continue
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
        items = secrets.get(sp_id, [])
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
    return found


# --------------------------------------------------------------------------------------------------
# secrets in output and files


def token_for(seed: int, kind: str) -> str:
    """A bearer token no other text would contain by chance."""
    return f"tkn-{kind}-{seed}-{random.Random(f'{kind}{seed}').getrandbits(64):016x}-never-print"


def find_secret(secret: str, texts: Mapping[str, str], folders: Iterable[Path] = ()) -> list[str]:
    """Where ``secret`` occurs: the names of ``texts`` holding it, and files under ``folders``."""
    found = [name for name, text in texts.items() if secret in text]
    needle = secret.encode()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(str(path))
    return found


# --------------------------------------------------------------------------------------------------
# the command line


@dataclass(frozen=True, slots=True)
class Result:
    args: tuple[str, ...]
    code: int  # -9: killed by SIGKILL; -1: still running after COMMAND_TIMEOUT (a hang)
    out: str
    err: str

    @property
    def hung(self) -> bool:
        return self.code == -1

    def describe(self) -> str:
        tail = (self.err or self.out).strip().splitlines()[-3:]
        return f"`reconciler {' '.join(self.args)}` exited {self.code}: {' | '.join(tail)}"


def child_env(folder: Path, token: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a command run in ``folder``: its own state folder, nothing inherited from
    reconciler's variables, and ``token`` as the Graph bearer token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_STATE_DIR=str(folder / "state"), NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    if token:
        env["RECONCILER_GRAPH_TOKEN"] = token
    env.update(extra)
    return env


def command(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``reconciler ARGS`` as a child process runs it; through the kill switch when ``env`` sets it."""
    module = "reconciler.testing.killswitch" if env.get(KILL_ENV) else "reconciler"
    return [sys.executable, "-m", module, *args]


def cli(folder: Path, *args: str, env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT) -> Result:
    """Run ``reconciler ARGS`` in ``folder`` as a child process."""
    try:
        done = subprocess.run(
            command(args, env), cwd=folder, env=dict(env), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        return Result(tuple(args), -1, _text(exc.stdout), _text(exc.stderr))
    return Result(tuple(args), done.returncode, done.stdout, done.stderr)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""


def killed_cli(folder: Path, *args: str, env: Mapping[str, str], after: float | None) -> Result:
    """Run ``reconciler ARGS`` and, with ``after``, SIGKILL it that many seconds after it started."""
    proc = subprocess.Popen(
        command(args, env),
        cwd=folder,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=after if after is not None else COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        if after is None:
            return Result(tuple(args), -1, out, err)
    return Result(tuple(args), proc.returncode, out, err)


# --------------------------------------------------------------------------------------------------
# runs


@dataclass(slots=True)
class RunReport:
    kind: str  # fault | crash
    seed: int
    target: str = ""
    mode: str = ""
    requests: int = 0
    faults: int = 0  # throttled, failed, dropped and timed-out requests
    fault_kinds: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    crash_kinds: list[str] = field(default_factory=list)  # after a write | in a write | at a moment
    converged: bool = False
    findings: Findings = field(default_factory=Findings)
    leaks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what went wrong besides the tenant
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, result: Result) -> Result:
        n = len(self.outputs) // 2
        self.outputs[f"{n}: stdout of {' '.join(result.args)}"] = result.out
        self.outputs[f"{n}: stderr of {' '.join(result.args)}"] = result.err
        if result.hung:
            self.problems.append("hung: " + result.describe())
        elif "Traceback" in result.out + result.err:
            self.problems.append("traceback: " + result.describe())
        elif result.code not in (0, 1, 2, -signal.SIGKILL):
            self.problems.append(result.describe())
        return result

    def expect(self, result: Result, code: int, what: str) -> Result:
        self.record(result)
        if result.code != code and not result.hung:
            self.problems.append(f"{what}: {result.describe()}")
        return result

    def summary(self) -> str:
        status = "converged" if self.converged else "NOT CONVERGED"
        line = (
            f"{self.kind} seed {self.seed} ({self.target}{', ' + self.mode if self.mode else ''}): {status}"
        )
        details = self.problems + self.findings.all() + [f"token found in {x}" for x in self.leaks]
        return line + "".join(f"\n    {d}" for d in details)


def _finish(
    report: RunReport, folder: Path, db: Path, expected: Sequence[ConfigSpec], planted: Planted, token: str
) -> RunReport:
    report.findings = check_tenant(db, expected, planted)
    report.leaks = find_secret(token, report.outputs, [folder])
    report.converged = not report.problems and report.findings.clean
    return report


def _first_apply(
    folder: Path, seed: int, kind: str, scenario: Scenario, report: RunReport
) -> tuple[str, Path, Path, dict[str, str], Planted]:
    """A run's start: a tenant with unmanaged objects planted, ``scenario.before`` applied to it on the
    local target, and a secret key we do not manage added. (token, db, configs, env, planted)."""
    token = token_for(seed, kind)
    db, configs = folder / "tenant.db", folder / "configs"
    env = child_env(folder, token)
    planted = plant(db)
    write_desired(configs, scenario.before)
    report.expect(
        cli(folder, "apply", "configs", "--auto-approve", "--target", f"local:{db}", env=env),
        0,
        "the first apply",
    )
    return token, db, configs, env, plant_extra_secret(db, planted, scenario.keeper)


def fault_run(seed: int, folder: Path, *, share: float = 0.2, every_request_once: bool = False) -> RunReport:
    """One fault run in ``folder`` (see the module docstring). ``share`` of the requests is hit:
    40% of that throttled, 50% failed or dropped, 10% timed out."""
    began = time.monotonic()
    scenario = make_scenario(seed)
    report = RunReport(
        "fault", seed, target="graph", mode="every request once" if every_request_once else f"{share:.0%}"
    )
    token, db, configs, env, planted = _first_apply(folder, seed, "fault", scenario, report)

    faulty = EmulatorConfig(
        token=token,
        seed=seed,
        throttle_rate=share * 0.4,
        fault_rate=share * 0.5,
        timeout_rate=share * 0.1,
        stall_seconds=STALL_SECONDS,
        fault_once=every_request_once,
        retry_after=0,
    )
    write_desired(configs, scenario.after)
    with Emulator(db, faulty) as emulator:
        faulty_env = child_env(folder, token, RECONCILER_GRAPH_TIMEOUT=str(CLIENT_TIMEOUT))
        report.record(
            cli(
                folder,
                "apply",
                "configs",
                "--auto-approve",
                "--allow-delete",
                "--target",
                emulator.target,
                env=faulty_env,
            )
        )
        report.requests = emulator.stats["requests"]
        stats = emulator.stats
        report.fault_kinds = {
            "429": stats["throttled"],
            "5xx or dropped": stats["faults"],
            "timed out": stats["timeouts"],
        }
        report.faults = sum(report.fault_kinds.values())
    with Emulator(db, EmulatorConfig(token=token)) as emulator:
        target = ("--target", emulator.target)
        report.expect(
            cli(folder, "apply", "configs", "--auto-approve", "--allow-delete", *target, env=env),
            0,
            "the fault-free apply",
        )
        report.expect(
            cli(folder, "plan", "configs", "--detailed-exitcode", "--allow-delete", *target, env=env),
            0,
            "the plan after it",
        )
    report.seconds = time.monotonic() - began
    return _finish(report, folder, db, scenario.after, planted, token)


def state_store(folder: Path, target: str) -> StateStore:
    """The state store the commands run in ``folder`` use for ``target`` (the default SQLite one)."""
    key = canonical_target(target)
    return SqliteStore(default_sqlite_path(key, folder / "state"))


def runs_of(folder: Path, target: str) -> list[RunRecord]:
    """Every run the journal of ``target`` holds, as the commands run in ``folder`` recorded it."""
    return read_runs(target, state_store(folder, target))


def _holder_left(folder: Path, target: str) -> bool:
    return state_store(folder, target).lock_holder(canonical_target(target), APPLY_LOCK) is not None


def _interrupted(folder: Path, target: str) -> int:
    return sum(1 for r in runs_of(folder, target) if r.result == "interrupted")


def _planned_changes(
    report: RunReport, folder: Path, target: str, env: Mapping[str, str]
) -> tuple[int, float]:
    """How many changes the next apply will make, and how long planning them took (start-up included)."""
    began = time.monotonic()
    result = report.expect(
        cli(folder, "plan", "configs", "--allow-delete", "--format", "json", "--target", target, env=env),
        0,
        "the plan before a crash",
    )
    took = time.monotonic() - began
    try:
        return len(json.loads(result.out)["changes"]), took
    except (ValueError, KeyError, TypeError):
        report.problems.append("the plan before a crash is not JSON")
        return 0, took


def _crash_once(
    report: RunReport,
    rng: random.Random,
    folder: Path,
    target: str,
    env: Mapping[str, str],
    modes: Sequence[str],
) -> None:
    changes, planning = _planned_changes(report, folder, target, env)
    if changes == 0:
        return
    mode = rng.choice(modes)
    args = ("apply", "configs", "--auto-approve", "--allow-delete", "--target", target)
    began_runs = len(runs_of(folder, target))
    if mode == "timer":
        # The apply plans as long as the plan did, then writes: a moment from start-up to the writes.
        after = rng.uniform(0.5, 1.5) * planning
        result = killed_cli(folder, *args, env=env, after=after)
        label = f"timer {after:.2f}s" + ("" if result.code == -signal.SIGKILL else " (it finished first)")
    else:
        limit = rng.randint(1, changes) if mode == "write" else rng.randint(1, 3 * changes)
        setting = str(limit) if mode == "write" else f"http:{limit}"
        result = killed_cli(folder, *args, env={**env, KILL_ENV: setting}, after=None)
        label = f"{KILL_ENV}={setting}"
    report.record(result)
    report.mode = ", ".join(filter(None, (report.mode, label)))
    if result.code != -signal.SIGKILL:
        return
    report.crashes += 1
    report.crash_kinds.append(
        {"write": "after a write", "http": "inside a write", "timer": "at a random moment"}[mode]
    )
    if mode != "timer":
        # Killed after a write: the run had journaled its start, and not its end.
        runs = runs_of(folder, target)
        if len(runs) <= began_runs or runs[-1].result != "interrupted":
            report.problems.append(f"the journal does not show the run killed by {label} as interrupted")


def crash_run(
    seed: int,
    folder: Path,
    *,
    graph: bool | None = None,
    modes: Sequence[str] | None = None,
    kills: int | None = None,
) -> RunReport:
    """One crash run in ``folder`` (see the module docstring). Unless given: the target is the
    emulator for odd seeds and the local tenant for even ones; the kill is after a provider write, an
    HTTP write (Graph only) or a random delay; one kill, or two (the second in the recovering run)."""
    began = time.monotonic()
    rng = random.Random(seed * 7919)
    scenario = make_scenario(seed)
    graph = seed % 2 == 1 if graph is None else graph
    modes = modes or (("write", "http", "timer") if graph else ("write", "timer"))
    report = RunReport("crash", seed, target="graph" if graph else "local")
    token, db, configs, env, planted = _first_apply(folder, seed, "crash", scenario, report)
    write_desired(configs, scenario.after)
    with contextlib.ExitStack() as stack:
        target = f"local:{db}"
        if graph:
            target = stack.enter_context(Emulator(db, EmulatorConfig(token=token))).target
        for _ in range(kills or (1 if rng.random() < 0.7 else 2)):
            _crash_once(report, rng, folder, target, env, modes)
        holder = _holder_left(folder, target)
        interrupted = _interrupted(folder, target)
        recovery = report.expect(
            cli(folder, "apply", "configs", "--auto-approve", "--allow-delete", "--target", target, env=env),
            0,
            "the apply after the crash",
        )
        if holder and "it was recovered" not in recovery.err:
            report.problems.append("the apply after the crash did not say it recovered the lock")
        if _holder_left(folder, target):
            report.problems.append("a lock holder is left after the recovering apply")
        history = report.expect(
            cli(folder, "history", "--format", "json", "-n", "100", "--target", target, env=env), 0, "history"
        )
        try:
            shown = sum(1 for r in json.loads(history.out) if r.get("result") == "interrupted")
        except ValueError:
            shown = -1
        if shown != interrupted:
            report.problems.append(
                f"history shows {shown} interrupted run(s), the journal holds {interrupted}"
            )
        report.expect(
            cli(
                folder,
                "plan",
                "configs",
                "--detailed-exitcode",
                "--allow-delete",
                "--target",
                target,
                env=env,
            ),
            0,
            "the plan after recovery",
        )
    report.seconds = time.monotonic() - began
    return _finish(report, folder, db, scenario.after, planted, token)
