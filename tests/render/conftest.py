"""Hand-built plans for the renderer tests, and the golden-file check (``UPDATE_GOLDEN=1`` rewrites them).

The plans are built directly, not through the planner, so that these tests see only the renderers; their
field rows have the shapes the planner makes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core.changes import spec_essence
from reconciler.core.diff import FieldChange, flatten
from reconciler.core.model import ApplyMode, Mapping, MappingKind, Scope, ScopeKind, Settings
from reconciler.core.observed import JobStatus
from reconciler.core.plan import Action, Change, Held, Plan, PlanOptions, Provenance, Spec

GOLDEN = Path(__file__).parent / "golden"

PROVENANCE = Provenance(
    created_at="2026-03-02T10:15:00Z",
    commit="3f2a9c1e7b4d5a6f8e9c0b1a2d3e4f5a6b7c8d9e",
    dirty=False,
    paths=("configs",),
    user="ci",
)

CONTOSO = Settings(domain="contoso.com", notification_email="identity-team@contoso.com")
MAPPINGS = (
    Mapping("user", "department", MappingKind.DIRECT, "department"),
    Mapping("user", "employeeType", MappingKind.CONSTANT, "FTE", apply=ApplyMode.ON_CREATE),
    Mapping("user", "displayName", MappingKind.EXPRESSION, 'Join(" ", [givenName], [sn])', default="unknown"),
    Mapping("user", "onPremisesSamAccountName", MappingKind.DIRECT, "sAMAccountName", matching_priority=1),
)
SCOPE = Scope(ScopeKind.GROUPS, ("CN=Sync Users,OU=Groups,DC=contoso,DC=com",))


def _spec(settings: Settings, scope: Scope, mappings: tuple[Mapping, ...]) -> Spec:
    return Spec(settings=settings, scope=scope, mappings=mappings)


def create_plan() -> Plan:
    spec = _spec(CONTOSO, SCOPE, MAPPINGS)
    return Plan(
        target="prod",
        changes=(
            Change("contoso", Action.CREATE, fields=flatten(spec_essence(spec)), spec=spec),
            Change("contoso", Action.START),
        ),
        desired_digest="d" * 32,
        provenance=PROVENANCE,
    )


def update_plan() -> Plan:
    settings = Settings(
        domain="fabrikam.com",
        notification_email="b@fabrikam.com",
        accidental_deletes_threshold=100,
    )
    scope = Scope(ScopeKind.ORGANIZATIONAL_UNITS, ("OU=Staff,DC=fabrikam,DC=com",))
    spec = _spec(settings, scope, (MAPPINGS[0],))
    fields = (
        FieldChange(
            "mappings.user.ExtensionAttribute3",
            {"kind": "expression", "value": "Trim([extensionAttribute3])"},
            None,
        ),
        FieldChange("mappings.user.department", None, {"kind": "direct", "value": "department"}),
        FieldChange(
            "mappings.user.jobTitle",
            {"kind": "direct", "value": "title"},
            {"kind": "constant", "value": "Staff", "apply": "onCreate"},
        ),
        FieldChange(
            "scope",
            {"kind": "groups", "entries": ["CN=Sync,OU=Groups,DC=fabrikam,DC=com"]},
            {"kind": "organizationalUnits", "entries": ["OU=Staff,DC=fabrikam,DC=com"]},
        ),
        FieldChange("settings.accidentalDeletes.threshold", 500, 100),
        FieldChange("settings.notificationEmail", "a@fabrikam.com", "b@fabrikam.com"),
    )
    return Plan(
        target="prod",
        changes=(
            Change(
                "fabrikam",
                Action.UPDATE,
                target_id="sp-fabrikam",
                fields=fields,
                spec=spec,
                write_settings=True,
                write_schema=True,
            ),
            Change(
                "fabrikam",
                Action.RESTART,
                target_id="sp-fabrikam",
                reasons=(
                    "scope changed (the service picks up a new scope only on restart)",
                    "attribute mappings changed",
                ),
                reset_scope="Full",
            ),
        ),
        warnings=(
            "fabrikam: the scope shrinks; objects that leave scope are deleted in Entra ID, and more "
            "than 100 deletes stop the job (accidental-delete threshold) until someone approves them",
        ),
        fingerprints=(("sp-fabrikam", "f" * 32),),
        desired_digest="d" * 32,
        provenance=Provenance(created_at="2026-03-02T10:15:00Z", commit="3f2a9c1e7b4d", dirty=True),
    )


def pause_plan() -> Plan:
    return Plan(
        target="prod",
        changes=(Change("litware", Action.PAUSE, target_id="sp-litware"),),
        fingerprints=(("sp-litware", "1" * 32),),
    )


def held_deletes_plan() -> Plan:
    return Plan(
        target="prod",
        held=(
            Held(
                "legacy",
                Action.DELETE,
                "sp-legacy",
                (
                    "deletion protection is on for this configuration on the target; to delete it, first "
                    "apply a change that sets deletionProtection: false, then remove it",
                ),
            ),
            Held(
                "old",
                Action.DELETE,
                "sp-old",
                ("it is no longer in the desired state; deletes need --allow-delete",),
                override="--allow-delete",
            ),
        ),
        options=PlanOptions(allow_delete=False),
    )


def mass_delete_plan() -> Plan:
    reason = (
        "2 deletes in one plan is more than the limit of 1; "
        "deleting that many needs --allow-mass-delete as well"
    )
    return Plan(
        target="prod",
        held=tuple(
            Held(name, Action.DELETE, f"sp-{name}", (reason,), override="--allow-mass-delete")
            for name in ("north", "south")
        ),
        options=PlanOptions(allow_delete=True, max_deletes=1),
    )


def delete_plan() -> Plan:
    settings = Settings(domain="tailspin.com", notification_email="ops@tailspin.com", enabled=False)
    spec = _spec(settings, Scope.all(), (MAPPINGS[0],))
    return Plan(
        target="prod",
        changes=(
            Change(
                "tailspin",
                Action.DELETE,
                target_id="sp-tailspin",
                reasons=("no longer in the desired state",),
                fields=flatten(spec_essence(spec), removed=True),
            ),
        ),
        options=PlanOptions(allow_delete=True),
    )


def health_plan() -> Plan:
    return Plan(
        target="prod",
        warnings=(
            "woodgrove: the provisioning job is in quarantine (EncounteredQuarantineException) "
            "since 2026-03-01T08:00:00Z",
        ),
        unmanaged=("adatum.com (sp-adatum)",),
        statuses=(
            (
                "woodgrove",
                JobStatus(
                    code="Quarantine",
                    quarantine_reason="EncounteredQuarantineException",
                    quarantine_since="2026-03-01T08:00:00Z",
                    last_run_state="Failed",
                    last_run_end="2026-03-01T07:59:00Z",
                    last_error="The credentials of the agent are not valid.",
                ),
            ),
        ),
    )


def no_changes_plan() -> Plan:
    return Plan(target="prod", fingerprints=(("sp-contoso", "c" * 32),), provenance=PROVENANCE)


def unmanaged_scoping_plan() -> Plan:
    """No changes, one configuration made in the portal, and scoping clauses the tool does not manage
    (one of them hostile text)."""
    return Plan(
        target="prod",
        unmanaged=("mydomain.tld (sp-portal)",),
        unmanaged_scoping=(
            'contoso: user: department EQUALS "Sales"',
            "mydomain.tld (sp-portal): user: extensionAttribute1 IS TRUE",
            'mydomain.tld (sp-portal): user: info EQUALS "| `x` \x1b[2J <b>"',
        ),
        fingerprints=(("sp-contoso", "c" * 32), ("sp-portal", "d" * 32)),
        provenance=PROVENANCE,
    )


def hostile_plan() -> Plan:
    """User text that would break Markdown, HTML or a terminal if it were printed as it is."""
    return Plan(
        target="prod <b>",
        changes=(
            Change(
                "evil\x1b[2J",
                Action.UPDATE,
                target_id="sp-evil",
                fields=(
                    FieldChange(
                        "mappings.user.info",
                        {"kind": "expression", "value": 'Replace([a], "```", "`")'},
                        {"kind": "constant", "value": "<script>alert(1)</script> & | *x*"},
                    ),
                ),
            ),
        ),
        warnings=("- <img src=x onerror=alert(1)> `code` [link](http://x) | # not a heading\nsecond line",),
        unmanaged=("`tick`\u202eevil",),
    )


PLANS: dict[str, Callable[[], Plan]] = {
    "create": create_plan,
    "update": update_plan,
    "pause": pause_plan,
    "held_deletes": held_deletes_plan,
    "mass_delete": mass_delete_plan,
    "delete": delete_plan,
    "health": health_plan,
    "no_changes": no_changes_plan,
    "hostile": hostile_plan,
    "unmanaged_scoping": unmanaged_scoping_plan,
}


@pytest.fixture(params=sorted(PLANS))
def case(request: pytest.FixtureRequest) -> tuple[str, Plan]:
    name: str = request.param
    return name, PLANS[name]()


@pytest.fixture
def plans() -> dict[str, Callable[[], Plan]]:
    return PLANS


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    """Compare a rendering with its golden file, or rewrite the file when ``UPDATE_GOLDEN`` is set."""
    update = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")

    def check(filename: str, actual: str) -> None:
        path = GOLDEN / filename
        if update:
            path.parent.mkdir(exist_ok=True)
            path.write_text(actual, encoding="utf-8", newline="")
            return
        assert path.exists(), f"no golden file {filename}; run the tests with UPDATE_GOLDEN=1 to write it"
        with path.open(encoding="utf-8", newline="") as f:
            assert actual == f.read()

    return check
