"""How many deletes a TooManyDeletes quarantine holds, read the same way from every provider (memory,
the local tenant, Graph over real HTTP to the emulator): distinct objects with a staged delete of the
job since the quarantine began, however often the logs repeat them; unknown, with the reason, when the
logs cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from support.providers import Harness

from reconciler.core.model import Scope, Settings
from reconciler.core.observed import HeldDeletes
from reconciler.errors import ProviderError
from reconciler.graph.provisioning_logs import count_held_deletes, staged_delete_entry, staged_delete_filter
from reconciler.providers.base import CountsHeldDeletes

SETTINGS = Settings(domain="contoso.com", notification_email="ops@contoso.com")


def _objects(*names: str) -> list[dict[str, str]]:
    return [{"id": f"CN={n},OU=Sales,DC=contoso,DC=com", "displayName": n} for n in names]


def test_every_provider_counts_the_objects_a_quarantine_holds(harness: Harness) -> None:
    provider = harness.provider
    assert isinstance(provider, CountsHeldDeletes) and harness.hold_deletes is not None
    id = provider.create("contoso", SETTINGS, Scope.all(), [])
    other = provider.create("fabrikam", Settings("fabrikam.com", "ops@fabrikam.com"), Scope.all(), [])
    harness.hold_deletes(other, _objects("x", "y"))  # another job's staged deletes do not count
    since = harness.hold_deletes(id, _objects("ann", "bob", "cy"))
    # The service may log a held object again in a later cycle: it is still one delete.
    harness.hold_deletes(id, _objects("ann", "bob"))
    (o,) = [c for c in provider.read_all() if c.id == id]
    held = provider.held_deletes(id, o.status.quarantine_since)
    assert held.count == 3 and held.unknown is None
    assert held.text() == f"3 deletes held since {o.status.quarantine_since}"
    # Entries from before the quarantine named are not counted against it.
    later = (datetime.fromisoformat(since.replace("Z", "+00:00")) + timedelta(days=1)).isoformat()
    assert provider.held_deletes(id, later).count == 0


def test_a_failed_read_of_the_logs_leaves_the_count_unknown_with_why() -> None:
    from reconciler.providers.memory import MemoryProvider

    provider = MemoryProvider("held")
    id = provider.create("contoso", SETTINGS, Scope.all(), [])
    provider.quarantine(id, "TooManyDeletes", "2026-12-06T10:00:00Z", staged=_objects("ann"))
    provider.fail("held_deletes", ProviderError("Forbidden", status=403))
    held = provider.held_deletes(id, "2026-12-06T10:00:00Z")
    assert held.count is None and held.unknown is not None and "AuditLog.Read.All" in held.unknown
    assert held.text().startswith("the number of held deletes is unknown: ")
    assert provider.held_deletes(id, "2026-12-06T10:00:00Z").count == 1


_SINCE = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
_entries = st.lists(
    st.tuples(
        st.sampled_from(["job", "other"]),
        st.sampled_from(["stagedDelete", "delete", "StagedDelete", "create"]),
        st.integers(min_value=-3, max_value=3),  # minutes from when the quarantine began
        st.sampled_from(["a", "A", "b", "c"]),
    ),
    max_size=30,
)


@given(_entries)
def test_the_count_is_the_distinct_objects_staged_for_deletion_since_the_quarantine(
    rows: list[tuple[str, str, int, str]],
) -> None:
    sp = {"id": "sp", "displayName": "contoso"}
    entries = []
    for job, action, minutes, obj in rows:
        at = (_SINCE + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = staged_delete_entry(job_id=job, sp=sp, source={"id": obj}, at=at, cycle_id=str(minutes))
        entries.append({**entry, "provisioningAction": action})
    expected = {
        obj.casefold()
        for job, action, minutes, obj in rows
        if job == "job" and action.casefold() == "stageddelete" and minutes >= 0
    }
    held = count_held_deletes(entries, "job", _SINCE.isoformat())
    assert held == HeldDeletes(_SINCE.isoformat(), len(expected))


def test_the_filter_asks_only_for_the_jobs_staged_deletes_from_before_the_quarantine() -> None:
    text = staged_delete_filter("Ad2Aad.x'y", "2026-12-06T10:00:00.5Z")
    assert text == (
        "jobId eq 'Ad2Aad.x''y' and provisioningAction eq 'stagedDelete' "
        "and activityDateTime gt 2026-12-06T09:59:59Z"
    )
    assert staged_delete_filter("j", None) == "jobId eq 'j' and provisioningAction eq 'stagedDelete'"
