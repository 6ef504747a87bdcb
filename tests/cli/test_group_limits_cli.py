"""``plan`` and ``apply`` with an Entra ID -> AD configuration whose selected group is over the documented
50,000-member limit, through the real CLI on the local tenant and over HTTP to the emulator: the change
is held back with the reason, ``--detailed-exitcode`` says 2, and apply makes only the rest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.config import entra_to_ad
from support.providers import add_cloud_groups

from reconciler.tenant.store import TenantStore

Run = Callable[..., Any]
SMALL = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"
LARGE = "5d2c9e41-7a3b-4f8e-b6c1-0e9f8a7b6c5d"
ABSENT = "9f8e7d6c-5b4a-4392-8171-605f4e3d2c1b"


def test_a_group_over_the_limit_is_held_back_and_the_rest_applied(
    project: Path, run: Run, target: str
) -> None:
    store = TenantStore(project / ".reconciler" / "tenant.db")
    add_cloud_groups(store, {SMALL: 3, LARGE: 50_001})
    (project / "configs" / "groups.yaml").write_text(entra_to_ad(SMALL, LARGE, ABSENT))

    r = run("plan", "configs", "--detailed-exitcode", "--target", target)
    assert r.code == 2
    lines = [line.strip() for line in r.out.splitlines()]
    assert "+ configuration.contoso-groups: create held back" in lines
    assert (
        f"selected group {LARGE} has 50,001 direct members; Entra ID -> AD provisioning does not support "
        "groups of more than 50,000 members: remove it from spec.scope.selectedGroups"
    ) in lines
    assert any(
        line.startswith(f"! contoso-groups: selected group {ABSENT} is not in the tenant's") for line in lines
    )
    assert "+ configuration.contoso will be created" in lines

    assert run("apply", "configs", "--auto-approve", "--target", target).code == 0
    names = {sp["displayName"] for sp in store.list_service_principals()}
    assert names == {"contoso.com"}  # the held configuration was not made
    store.close()


def test_a_saved_plan_whose_group_grew_past_the_limit_is_refused(
    project: Path, run: Run, target: str
) -> None:
    store = TenantStore(project / ".reconciler" / "tenant.db")
    add_cloud_groups(store, {SMALL: 3, LARGE: 10})
    (project / "configs" / "contoso.yaml").unlink()
    (project / "configs" / "groups.yaml").write_text(entra_to_ad(SMALL, LARGE))
    assert run("plan", "configs", "--out", "plan.json", "--target", target).code == 0
    add_cloud_groups(store, {LARGE: 50_001})  # grows between the review and the apply
    r = run("apply", "plan.json", "--target", target)
    assert r.code != 0
    assert (
        "the saved plan's change 1 (create configuration.contoso-groups) is held back when planned again "
        f"now: selected group {LARGE} has 50,001 direct members;"
    ) in r.err
    assert store.list_service_principals() == []
    store.close()
