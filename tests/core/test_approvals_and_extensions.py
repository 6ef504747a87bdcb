"""The pure parts of approving held deletes and of directory extensions: how a quarantine is named by
time, which quarantine a plan approves, and how ``ext:`` names are spelled on the service."""

from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.model import (
    DirectoryExtension,
    ExtensionsSeen,
    Mapping,
    MappingKind,
    extension_attribute,
    resolve_extensions,
)
from reconciler.core.observed import JobStatus, quarantine_instant
from reconciler.graph.extensions import short_name

aware = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(-dt.timedelta(hours=8))]
    ),
)


@given(aware)
def test_a_quarantine_time_names_one_instant_however_it_is_written(when: dt.datetime) -> None:
    utc = when.astimezone(dt.UTC)
    forms = [when.isoformat(), utc.isoformat().replace("+00:00", "Z"), utc.isoformat()]
    assert len({quarantine_instant(f) for f in forms}) == 1
    later = (utc + dt.timedelta(seconds=1)).isoformat()
    status = JobStatus(code="Quarantine", quarantine_reason="TooManyDeletes", quarantine_since=forms[1])
    assert status.holds_deletes(forms[0]) and not status.holds_deletes(later)


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1)), st.text(max_size=30))
def test_a_time_without_its_zone_names_no_quarantine(naive: dt.datetime, text: str) -> None:
    assert quarantine_instant(naive.isoformat()) is None
    when = quarantine_instant(text)
    assert when is None or when.utcoffset() == dt.timedelta(0)
    status = JobStatus(
        code="Quarantine", quarantine_reason="TooManyDeletes", quarantine_since=naive.isoformat()
    )
    assert not status.holds_deletes(naive.isoformat())


def test_only_a_delete_quarantine_holds_deletes() -> None:
    since = "2026-12-06T09:12:00.1234567Z"
    assert JobStatus("Quarantine", "TooManyDeletes", since).holds_deletes("2026-12-06T10:12:00.123456+01:00")
    assert not JobStatus("Quarantine", "EncounteredQuarantineException", since).holds_deletes(since)
    assert not JobStatus("Active", None, None).holds_deletes(since)


@given(st.uuids(), st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,79}", fullmatch=True))
def test_an_extension_name_is_spelled_as_the_service_names_it_and_read_back(
    app: uuid.UUID, name: str
) -> None:
    app_id = str(app)
    full = extension_attribute(app_id, name)
    assert full == f"extension_{app.hex}_{name}" and short_name(full, app_id) == name
    assert short_name(full, str(uuid.uuid4())) is None
    rows = (
        Mapping("user", f"ext:{name}", MappingKind.DIRECT, "department"),
        Mapping("user", "department", MappingKind.DIRECT, f"ext:{name}"),
        Mapping("user", "jobTitle", MappingKind.CONSTANT, f"ext:{name}"),
    )
    resolved = resolve_extensions(rows, app_id)
    assert [m.target for m in resolved] == [full, "department", "jobTitle"]
    assert [m.value for m in resolved] == ["department", full, f"ext:{name}"]  # a constant is text
    assert resolve_extensions(rows, None) == rows


def test_a_property_is_the_same_property_without_regard_to_case_or_order() -> None:
    declared = DirectoryExtension("GroupDN", "String", ("Group", "User"))
    seen = ExtensionsSeen("a", (DirectoryExtension("groupdn", "string", ("User", "Group")),))
    found = seen.find("GROUPDN")
    assert found is not None and declared.same_property(found)
    assert not declared.same_property(DirectoryExtension("GroupDN", "String", ("Group",), multi_valued=True))
