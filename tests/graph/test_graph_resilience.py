"""The Graph provider under throttling, server errors and dropped connections, and with bad credentials.

Every apply here goes through the real engine (plan_and_apply) over HTTP to the emulator.
"""

from __future__ import annotations

import collections
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from support.graph import (
    TOKEN,
    SleepRecorder,
    StartEmulator,
    desired,
    provider_for,
    renamed_email,
    state,
)

from reconciler.cli.main import main
from reconciler.core.model import CREDENTIAL_DATA, DesiredState
from reconciler.core.plan import PlanOptions, Provenance
from reconciler.emulator import Emulator
from reconciler.engine.operations import make_plan, plan_and_apply
from reconciler.errors import AuthenticationError
from reconciler.graph.identity import PROVISIONING_TEMPLATE, find_job, parse_tags
from reconciler.graph.provider import GraphProvider
from reconciler.graph.reading import find_provisioning_rule
from reconciler.graph.tokens import NoToken, StaticToken
from reconciler.tenant.store import TenantStore

NAMES = ("alpha", "beta", "gamma", "delta", "epsilon")


def apply(provider: GraphProvider, desired_state: DesiredState, parallelism: int = 4) -> Any:
    return plan_and_apply(desired_state, provider, PlanOptions(), Provenance(), parallelism=parallelism)


def assert_converged(provider: GraphProvider, desired_state: DesiredState) -> None:
    plan = make_plan(desired_state, provider, PlanOptions(), Provenance())
    assert not plan.changes, [(c.name, c.action.value) for c in plan.changes]


def assert_no_duplicates(store: TenantStore, names: tuple[str, ...]) -> None:
    """One service principal and one application per name; each job once; CredentialData at most once."""
    sps = store.list_service_principals()
    managed = collections.Counter(parse_tags(sp.get("tags") or []).name for sp in sps)
    assert {n: managed[n] for n in names} == dict.fromkeys(names, 1)
    assert len(sps) == len(names) and len(store.list_applications()) == len(names)
    for sp in sps:
        jobs = store.list_jobs(sp["id"])
        templates = [j["templateId"] for j in jobs]
        assert len(templates) == len(set(templates)), templates
        job = find_job(jobs, PROVISIONING_TEMPLATE)
        assert job is not None
        rule = find_provisioning_rule(store.get_schema(sp["id"], job["id"]))
        assert rule is not None
        for om in rule["objectMappings"]:
            targets = [am["targetAttributeName"] for am in om["attributeMappings"]]
            assert len(targets) == len(set(targets)), (om["sourceObjectName"], targets)
            assert targets.count(CREDENTIAL_DATA) <= 1


# --------------------------------------------------------------------------------------------------
# throttling


def test_a_throttling_storm_every_request_throttled_once(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(throttle_once=True, retry_after=2)
    sleep = SleepRecorder()
    provider = provider_for(emulator, sleep=sleep)
    wanted = state(*(desired(n) for n in NAMES))
    run = apply(provider, wanted)
    assert run.result.ok, [o.error for o in run.result.outcomes if o.error]
    # Every request (and every request inside a $batch) was refused once, and every wait was the
    # full Retry-After the service asked for.
    assert emulator.stats["throttled"] >= emulator.stats["requests"] // 2
    assert sleep.waits and min(sleep.waits) >= 2
    assert_converged(provider, wanted)
    assert_no_duplicates(emulator.store, NAMES)
    provider.close()


def test_the_retry_after_is_really_waited(start_emulator: StartEmulator) -> None:
    import time

    emulator = start_emulator(throttle_once=True, retry_after=1)
    provider = provider_for(emulator, sleep=time.sleep)
    began = time.perf_counter()
    assert provider.read_all() == ()
    assert time.perf_counter() - began >= 1.0
    provider.close()


# --------------------------------------------------------------------------------------------------
# 5xx and dropped connections


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_faults_mid_apply_then_a_clean_run_converges(
    start_emulator: StartEmulator, tmp_path: Path, seed: int
) -> None:
    db = tmp_path / "tenant.db"
    wanted = state(*(desired(n, password_hash_sync=i % 2 == 0) for i, n in enumerate(NAMES)))
    faulty = start_emulator(db, fault_rate=0.25, seed=seed)
    provider = provider_for(faulty)
    first = apply(provider, wanted)
    provider.close()
    assert faulty.stats["faults"] > 0
    # Some creates may have failed part-way; a second pass, still with faults, then a clean one.
    provider = provider_for(faulty)
    apply(provider, wanted)
    provider.close()
    faulty.stop()

    clean = start_emulator(db)
    provider = provider_for(clean)
    last = apply(provider, wanted)
    assert last.result.ok, [o.error for o in last.result.outcomes if o.error]
    assert_converged(provider, wanted)
    assert_no_duplicates(clean.store, NAMES)
    assert first.run_id != last.run_id
    provider.close()


class Targeted:
    """Stands in for the emulator's fault plan: a chosen failure on the first request matching a pattern.

    The emulator's fault key is ``METHOD PATH?QUERY BODY-SHA256``."""

    def __init__(self, needle: str, when: str, status: int = 500, times: int = 1) -> None:
        self.needle, self.when, self.status, self.left = needle, when, status, times
        self.hits = 0
        self.lock = threading.Lock()

    def throttled(self, key: str, inner: bool = False) -> bool:
        return False

    def fault(self, key: str, inner: bool = False) -> tuple[str, int, str] | None:
        with self.lock:
            if inner or self.left == 0 or not re.search(self.needle, key):
                return None
            self.left -= 1
            self.hits += 1
        return self.when, self.status, "generalException"


def _apply_once_through(emulator: Emulator, faults: Targeted, **provider_options: Any) -> None:
    """Apply one configuration with ``faults`` hitting one request: it lands once, and only once."""
    emulator.faults = faults  # type: ignore[assignment]
    provider = provider_for(emulator, **provider_options)
    wanted = state(desired("alpha"))
    run = apply(provider, wanted)
    assert faults.hits == 1
    assert run.result.ok, [o.error for o in run.result.outcomes if o.error]
    assert_converged(provider, wanted)
    assert_no_duplicates(emulator.store, ("alpha",))
    provider.close()


@pytest.mark.parametrize(
    ("needle", "when"),
    [
        ("^POST .*/instantiate", "drop-after"),  # the principal was made, the answer lost
        ("^POST .*/instantiate", "error-after"),
        ("^POST .*/instantiate", "error-before"),
        ("^POST .*/synchronization/jobs ", "drop-after"),  # the job was made, the answer lost
        ("^POST .*/synchronization/jobs ", "error-after"),
        ("^PUT .*/schema ", "drop-after"),
        ("^PUT .*/secrets ", "drop-before"),
        ("^PATCH /v1.0/servicePrincipals/", "drop-after"),
        ("^POST .*/start ", "error-after"),
    ],
)
def test_a_lost_answer_never_makes_a_second_object(
    start_emulator: StartEmulator, needle: str, when: str
) -> None:
    _apply_once_through(start_emulator(), Targeted(needle, when))


@pytest.mark.parametrize(
    "needle",
    [
        "^POST .*/instantiate",
        "^POST .*/synchronization/jobs ",
        "^PUT .*/schema ",
        "^PATCH /v1.0/servicePrincipals/",
    ],
)
def test_an_answer_that_times_out_never_makes_a_second_object(
    start_emulator: StartEmulator, needle: str
) -> None:
    _apply_once_through(start_emulator(stall_seconds=1.0), Targeted(needle, "stall-after"), timeout=0.3)


@pytest.mark.parametrize("on", [True, False], ids=["turned-on", "turned-off"])
def test_password_hash_sync_stopped_part_way_is_finished_by_the_next_apply(
    start_emulator: StartEmulator, on: bool
) -> None:
    # The AppKey secret says whether password hash sync is on; written before the job was made (or
    # removed), a run stopped in between left a target that read as done: no job with it on, or a job
    # still syncing password hashes with it off.
    emulator = start_emulator()
    provider = provider_for(emulator)
    assert apply(provider, state(desired("alpha", password_hash_sync=not on))).result.ok
    needle = "^POST .*/synchronization/jobs " if on else "^DELETE .*/jobs/AD2AADPasswordHash"
    emulator.faults = Targeted(needle, "error-before", status=400)  # type: ignore[assignment]
    wanted = state(desired("alpha", password_hash_sync=on))
    assert not apply(provider, wanted).result.ok
    emulator.faults = Targeted("^nothing matches this", "error-before")  # type: ignore[assignment]
    left = make_plan(wanted, provider, PlanOptions(), Provenance())
    assert [c.action.value for c in left.changes] == ["update", "restart"]
    assert apply(provider, wanted).result.ok
    assert_converged(provider, wanted)
    (sp,) = emulator.store.list_service_principals()
    templates = [j["templateId"] for j in emulator.store.list_jobs(sp["id"])]
    assert ("AD2AADPasswordHash" in templates) is on
    provider.close()


def test_a_create_killed_between_instantiate_and_tagging_is_finished_not_repeated(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator()
    # What the killed run left: the instantiated principal, with no tags and no jobs yet.
    orphan = emulator.store.instantiate("alpha.contoso.com")["servicePrincipal"]["id"]
    provider = provider_for(emulator)
    wanted = state(desired("alpha"))
    assert apply(provider, wanted).result.ok
    assert [o.id for o in provider.read_all()] == [orphan]
    assert_no_duplicates(emulator.store, ("alpha",))
    provider.close()


def test_an_untagged_principal_with_jobs_is_not_taken_over(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    store = emulator.store
    # Someone else's configuration half made in the portal: a job already, no secrets yet.
    other = store.instantiate("alpha.contoso.com")["servicePrincipal"]["id"]
    store.create_job(other, PROVISIONING_TEMPLATE)
    before = (store.get_service_principal(other), store.list_jobs(other))
    provider = provider_for(emulator)
    assert apply(provider, state(desired("alpha"))).result.ok
    (ours,) = [o for o in provider.read_all() if o.managed]
    assert ours.id != other and (store.get_service_principal(other), store.list_jobs(other)) == before
    provider.close()


def test_an_interrupted_delete_is_finished_by_the_next_one(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    provider = provider_for(emulator)
    assert apply(provider, state(desired("alpha"), desired("beta"))).result.ok
    (alpha,) = [o for o in provider.read_all() if o.name == "alpha"]
    # The application delete keeps failing: the jobs are gone, the principal is still ours.
    emulator.faults = Targeted("^DELETE /v1.0/applications", "error-before", status=500, times=100)  # type: ignore[assignment]
    with pytest.raises(Exception):  # noqa: B017 - whichever error the last attempt gave
        provider.delete(alpha.id)
    left = [o for o in provider.read_all() if o.id == alpha.id]
    assert len(left) == 1 and left[0].managed and left[0].name == "alpha" and not left[0].complete
    emulator.faults = Targeted("^nothing matches this", "error-before")  # type: ignore[assignment]
    run = plan_and_apply(state(desired("beta")), provider, PlanOptions(allow_delete=True), Provenance())
    assert run.result.ok, [o.error for o in run.result.outcomes if o.error]
    assert [o.name for o in provider.read_all()] == ["beta"]
    assert len(emulator.store.list_applications()) == 1
    provider.close()


# --------------------------------------------------------------------------------------------------
# what we do not manage survives


def test_secrets_and_schema_parts_we_do_not_manage_survive_an_apply(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    store = emulator.store
    provider = provider_for(emulator)
    a = desired("alpha")
    assert apply(provider, state(a)).result.ok
    (sp,) = store.list_service_principals()
    id = sp["id"]
    job = find_job(store.list_jobs(id), PROVISIONING_TEMPLATE)
    assert job is not None

    # Someone edits the configuration outside reconciler.
    store.put_secrets(
        id,
        [
            {"key": "SkipOutOfScopeDeletions", "value": "true"},
            *store.get_secrets(id),
            {"key": "SyncAll", "value": "false"},
        ],
    )
    notify = next(s for s in store.get_secrets(id) if s["key"] == "SyncNotificationSettings")
    schema = store.get_schema(id, job["id"])
    rule = find_provisioning_rule(schema)
    assert rule is not None
    rule["metadata"] = [*(rule.get("metadata") or []), {"key": "CustomerNote", "value": "keep me"}]
    user = next(om for om in rule["objectMappings"] if om["sourceObjectName"] == "user")
    user["metadata"] = [*(user.get("metadata") or []), {"key": "Disposition", "value": "Custom"}]
    clauses = user["scope"]["inputFilterGroups"][0]["clauses"]
    clauses.append(
        {
            "operatorName": "ENDS_WITH",
            "sourceOperandName": "distinguishedName",
            "targetOperand": {"values": ["OU=Cloud,DC=alpha,DC=com"]},
        }
    )
    extra_rule = {
        "id": "extra-rule",
        "name": "Extra",
        "priority": 2,
        "editable": True,
        "metadata": [],
        "objectMappings": [],
        "sourceDirectoryName": "A",
        "targetDirectoryName": "B",
        "containerFilter": None,
        "groupFilter": None,
    }
    schema["synchronizationRules"].append(extra_rule)
    store.put_schema(id, job["id"], schema)
    before = store.get_schema(id, job["id"])

    # A settings change and a mapping change.
    changed = renamed_email(desired("alpha", overrides=()), "alerts@alpha.contoso.com")
    run = apply(provider, state(changed))
    assert run.result.ok, [o.error for o in run.result.outcomes if o.error]
    assert_converged(provider, state(changed))

    secrets = store.get_secrets(id)
    assert secrets[0] == {"key": "SkipOutOfScopeDeletions", "value": "true"}
    assert secrets[-1] == {"key": "SyncAll", "value": "false"}
    new_notify = next(s for s in secrets if s["key"] == "SyncNotificationSettings")
    assert new_notify != notify and "alerts@alpha.contoso.com" in new_notify["value"]
    after = store.get_schema(id, job["id"])
    assert after["synchronizationRules"][1] == extra_rule
    assert after["directories"] == before["directories"]
    rule_after = find_provisioning_rule(after)
    assert rule_after is not None
    assert {"key": "CustomerNote", "value": "keep me"} in rule_after["metadata"]
    user_after = next(om for om in rule_after["objectMappings"] if om["sourceObjectName"] == "user")
    assert {"key": "Disposition", "value": "Custom"} in user_after["metadata"]
    assert user_after["scope"] == user["scope"]
    targets = [am["targetAttributeName"] for am in user_after["attributeMappings"]]
    assert "department" not in targets and targets.count(CREDENTIAL_DATA) == 1
    provider.close()


# --------------------------------------------------------------------------------------------------
# credentials


def test_missing_token(emulator: Emulator) -> None:
    provider = provider_for(emulator, tokens=NoToken())
    with pytest.raises(AuthenticationError) as err:
        provider.read_all()
    text = str(err.value)
    assert err.value.code == "InvalidAuthenticationToken" and err.value.status == 401
    assert "RECONCILER_GRAPH_TOKEN" in text and "empty" in text and err.value.request_id
    provider.close()


def test_expired_token(start_emulator: StartEmulator) -> None:
    stale = "stale-token-0b7d4c1e9a"
    emulator = start_emulator(token=TOKEN, expired_tokens=frozenset({stale}))
    provider = provider_for(emulator, tokens=StaticToken(stale))
    with pytest.raises(AuthenticationError) as err:
        provider.read_all()
    text = str(err.value)
    assert "expired" in text and "RECONCILER_GRAPH_TOKEN" in text and stale not in text
    assert emulator.stats["requests"] == 1  # a static token is not retried
    provider.close()


@pytest.mark.parametrize("token", [None, "wrong-token-5e2a91"])
def test_the_cli_exits_1_with_a_clear_message(
    emulator: Emulator,
    token: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    if token:
        monkeypatch.setenv("RECONCILER_GRAPH_TOKEN", token)
    (tmp_path / "c.yaml").write_text(
        "apiVersion: cloudsync/v1\nkind: Configuration\nmetadata: {name: alpha}\n"
        "spec: {domain: alpha.contoso.com, notificationEmail: ops@alpha.contoso.com}\n"
    )
    for args in (["status", "--target", emulator.target], ["plan", "--target", emulator.target, "c.yaml"]):
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 1, (out, err)
        assert "error:" in err and "refused the credentials" in err and "RECONCILER_GRAPH_TOKEN" in err
        assert "Traceback" not in err
        if token:
            assert token not in out + err


def test_the_cli_works_with_the_token(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECONCILER_GRAPH_TOKEN", TOKEN)
    assert main(["status", "--target", emulator.target]) == 0
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
