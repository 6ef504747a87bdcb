"""Counting cloud groups' direct members, and the tenant's users and groups, over real HTTP (the
emulator on 127.0.0.1): ``$count`` as an advanced query inside ``$batch``, groups the directory does
not hold, an identity without GroupMember.Read.All or User.Read.All, and answers that leave the count
out."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config import entra_to_ad
from support.graph import TOKEN, provider_for
from support.providers import add_cloud_groups

from reconciler.config.load import load_paths
from reconciler.core import group_limits
from reconciler.core.group_limits import GroupSize, TenantSize
from reconciler.core.model import DesiredState
from reconciler.core.plan import PlanOptions, Provenance
from reconciler.emulator import Emulator
from reconciler.engine.operations import make_plan, plan_and_apply
from reconciler.errors import NotFoundError, ProviderError
from reconciler.graph.groups import group_sizes_from, member_count, member_count_item

MISSING = "00000000-dead-4000-8000-000000000001"


def ids(n: int, mark: str = "2222") -> list[str]:
    return [f"{i:08x}-{mark}-4000-8000-000000000000" for i in range(n)]


def test_counts_go_out_in_batches_of_20_as_advanced_queries(emulator: Emulator) -> None:
    groups = ids(45)
    add_cloud_groups(emulator.store, {g: i for i, g in enumerate(groups)})
    provider = provider_for(emulator, TOKEN)
    sizes = provider.group_sizes([*groups, MISSING.upper()])
    assert [sizes.get(g) for g in groups] == [GroupSize(members=i) for i in range(45)]
    assert sizes.get(MISSING) == GroupSize(missing=True)
    batches = [r for r in emulator.recorded if not r.inner]
    inner = [r for r in emulator.recorded if r.inner]
    assert [(r.method, r.path) for r in batches] == [("POST", "/$batch")] * 3
    assert len(inner) == 46
    assert all(r.path.startswith("/groups/") and "%24count=true" in r.path for r in inner)
    # The emulator answers $count on directory objects only with ConsistencyLevel: eventual, as Graph
    # does: the counts above prove the header went along inside the batch.


def test_a_group_of_more_than_50000_members_is_counted_not_listed(emulator: Emulator) -> None:
    (big,) = ids(1, "3333")
    add_cloud_groups(emulator.store, {big: 50_001})
    provider = provider_for(emulator, TOKEN)
    assert provider.group_sizes([big]).get(big) == GroupSize(members=50_001)


def test_without_group_member_read_every_count_is_unknown_and_says_why(start_emulator: object) -> None:
    emulator = start_emulator(token=TOKEN, lacking=frozenset({"GroupMember.Read.All"}))  # type: ignore[operator]
    groups = ids(3, "4444")
    add_cloud_groups(emulator.store, dict.fromkeys(groups, 2))
    sizes = provider_for(emulator, TOKEN).group_sizes(groups)
    why = "the identity lacks GroupMember.Read.All to read group members (HTTP 403)"
    assert [sizes.get(g) for g in groups] == [GroupSize(unknown=why)] * 3


def test_an_answer_without_a_whole_count_is_unknown_never_zero() -> None:
    assert member_count({"@odata.count": 7, "value": []}) == 7
    for answer in ({"value": []}, {"@odata.count": "7"}, {"@odata.count": True}, {"@odata.count": -1}, None):
        assert member_count(answer) is None
    sizes = group_sizes_from(
        ["a", "b", "c", "d"],
        [None, NotFoundError("group b"), ProviderError("boom", status=500), 0],
    )
    assert sizes.get("A") == GroupSize(unknown="the service gave no member count")
    assert sizes.get("b") == GroupSize(missing=True)
    unknown = sizes.get("c")
    assert (
        unknown is not None
        and unknown.members is None
        and "could not read group members" in str(unknown.unknown)
    )
    assert sizes.get("d") == GroupSize(members=0)


def test_the_request_is_the_documented_advanced_query() -> None:
    item = member_count_item("0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b")
    assert item.method == "GET"
    assert item.url == "/groups/0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b/members?$count=true&$top=1&$select=id"
    assert item.headers == {"ConsistencyLevel": "eventual"}
    # An id is one path segment, whatever it holds.
    assert member_count_item("a/../b?x").url.startswith("/groups/a%2F..%2Fb%3Fx/members?")


def test_the_tenants_users_and_groups_are_counted_in_one_batch(emulator: Emulator) -> None:
    add_cloud_groups(emulator.store, dict.fromkeys(ids(4, "6666"), 0))
    for user in ids(3, "7777"):
        emulator.store.put_cloud_object(user, "User", {"displayName": "someone"})
    assert provider_for(emulator, TOKEN).tenant_size() == TenantSize(users=3, groups=4)
    assert [(r.path.split("?")[0], r.inner) for r in emulator.recorded] == [
        ("/$batch", False),
        ("/users", True),
        ("/groups", True),
    ]


def test_without_user_read_the_users_are_unknown_and_the_groups_counted(start_emulator: object) -> None:
    emulator = start_emulator(token=TOKEN, lacking=frozenset({"User.Read.All"}))  # type: ignore[operator]
    add_cloud_groups(emulator.store, dict.fromkeys(ids(2, "8888"), 0))
    assert provider_for(emulator, TOKEN).tenant_size() == TenantSize(
        users=None, groups=2, unknown="the identity lacks User.Read.All to count users (HTTP 403)"
    )


def test_a_plan_that_adds_no_group_sends_no_count(emulator: Emulator, tmp_path: Path) -> None:
    groups = ids(25, "bbbb")
    add_cloud_groups(emulator.store, dict.fromkeys(groups, 3))
    provider = provider_for(emulator, TOKEN)
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "groups.yaml").write_text(entra_to_ad(*groups))
    state = load_paths([str(folder)]).state
    first = make_plan(state, provider, PlanOptions(), Provenance())
    assert first.held == () and first.warnings == ()
    counted = [r for r in emulator.recorded if r.inner and r.path.startswith("/groups/")]
    assert len(counted) == 25  # every selected group once, in two $batch requests
    assert plan_and_apply(state, provider, PlanOptions(), Provenance()).result.ok
    emulator.recorded.clear()
    again = make_plan(state, provider, PlanOptions(), Provenance())
    assert again.changes == ()
    assert not [r for r in emulator.recorded if r.path.startswith(("/groups", "/users"))]


FILTERED = """\
    filters:
      - [{attribute: displayName, operator: REGEX_MATCH, value: "^sec-"}]
"""


def _filtered_state(folder: Path) -> DesiredState:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "groups.yaml").write_text(entra_to_ad("x").replace("    selectedGroups: [x]\n", FILTERED))
    return load_paths([str(folder)]).state


def test_a_tenant_too_large_for_all_groups_is_not_listed(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(group_limits, "MAX_TENANT_GROUPS", 2)
    add_cloud_groups(emulator.store, dict.fromkeys(ids(3, "dddd"), 1))
    result = make_plan(
        _filtered_state(tmp_path / "configs"), provider_for(emulator, TOKEN), PlanOptions(), Provenance()
    )
    (held,) = result.held
    assert "this tenant has 3 groups" in held.reasons[0]
    listed = [r for r in emulator.recorded if not r.inner and r.path.startswith("/groups")]
    assert listed == []


def test_without_group_member_read_the_filters_plan_says_what_was_not_checked(
    start_emulator: object, tmp_path: Path
) -> None:
    emulator = start_emulator(token=TOKEN, lacking=frozenset({"GroupMember.Read.All"}))  # type: ignore[operator]
    add_cloud_groups(emulator.store, dict.fromkeys(ids(2, "eeee"), 1))
    result = make_plan(
        _filtered_state(tmp_path / "configs"), provider_for(emulator, TOKEN), PlanOptions(), Provenance()
    )
    assert result.held == ()
    assert result.warnings == (
        "contoso-groups: the tenant size that scoping all groups is documented for was not checked: the "
        "identity lacks GroupMember.Read.All to count groups (HTTP 403)",
        "contoso-groups: the groups its filters select were not counted: the identity lacks "
        "GroupMember.Read.All to list groups (HTTP 403)",
    )
