"""The Entra ID -> AD direction and the AD -> Entra ID add-on jobs in the desired-state format: what
loads, into which model values, and every bad input as one error at its FILE:LINE:COL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.config.load import LoadResult
from reconciler.config.resolve import MAX_ENTRA_TO_AD_CONFIGURATIONS
from reconciler.core.model import Direction, FilterClause, MappingKind, ScopeKind

Problems = Callable[[dict[str, str | bytes]], list[str]]
Load = Callable[[dict[str, str | bytes]], LoadResult]

G1 = "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b"
G2 = "1c8f2b63-4d7f-5e80-ab2c-3d4e5f6a7b8c"


def to_ad(name: str = "groups", domain: str = "contoso.com", extra: str = "") -> str:
    return (
        f"apiVersion: cloudsync/v1\nkind: Configuration\nmetadata:\n  name: {name}\n"
        f"spec:\n  direction: entraToAd\n  domain: {domain}\n  notificationEmail: ops@{domain}\n{extra}"
    )


def to_entra(name: str = "contoso", domain: str = "contoso.com", extra: str = "") -> str:
    return (
        f"apiVersion: cloudsync/v1\nkind: Configuration\nmetadata:\n  name: {name}\n"
        f"spec:\n  domain: {domain}\n  notificationEmail: ops@{domain}\n{extra}"
    )


SELECTED = f"  scope:\n    selectedGroups:\n      - {G1}\n      - {G2}\n"


def test_entra_to_ad_loads_scope_container_and_mappings(load: Load) -> None:
    extra = (
        SELECTED
        + "  targetContainer: OU=Cloud Groups,DC=contoso,DC=com\n"
        + "  attributeMappings:\n    group:\n"
        + '      - {target: sAMAccountName, expression: \'Join("_", [displayName], "Cloud")\'}\n'
    )
    result = load({"g.yaml": to_ad(extra=extra)})
    (d,) = result.state.configurations
    assert d.settings.direction is Direction.ENTRA_TO_AD
    assert d.settings.password_hash_sync is False
    assert d.scope.kind is ScopeKind.SELECTED_GROUPS and d.scope.entries == (G1, G2)
    by_target = {o.target: o.mapping for o in d.overrides}
    container = by_target["parentDistinguishedName"]
    assert container is not None and container.kind is MappingKind.CONSTANT
    assert container.value == "OU=Cloud Groups,DC=contoso,DC=com"
    assert by_target["sAMAccountName"] is not None


def test_filters_and_switch_container(load: Load) -> None:
    extra = (
        "  scope:\n    filters:\n"
        "      - - {attribute: extension_abc_WritebackEnabled, operator: IS_TRUE}\n"
        "        - {attribute: displayName, operator: REGEX_MATCH, value: '^(Sales|HR)'}\n"
        "      - - {attribute: department, operator: EQUALS, value: Finance}\n"
        "  targetContainer:\n    switch: department\n"
        "    cases: {Sales: 'OU=Sales,DC=contoso,DC=com', HR: 'OU=HR,DC=contoso,DC=com'}\n"
        "    default: CN=Users,DC=contoso,DC=com\n"
    )
    (d,) = load({"g.yaml": to_ad(extra=extra)}).state.configurations
    assert d.scope.kind is ScopeKind.ALL
    assert d.scope.filters == (
        (
            FilterClause("extension_abc_WritebackEnabled", "IS_TRUE"),
            FilterClause("displayName", "REGEX_MATCH", "^(Sales|HR)"),
        ),
        (FilterClause("department", "EQUALS", "Finance"),),
    )
    (container,) = [o.mapping for o in d.overrides if o.target == "parentDistinguishedName"]
    assert container is not None and container.kind is MappingKind.EXPRESSION
    assert container.value == (
        'Switch([department], "CN=Users,DC=contoso,DC=com", "Sales", "OU=Sales,DC=contoso,DC=com", '
        '"HR", "OU=HR,DC=contoso,DC=com")'
    )


def test_all_groups_without_filter_is_a_warning(load: Load) -> None:
    result = load({"g.yaml": to_ad()})
    assert [d.message for d in result.warnings if "attribute filter" in d.message]


def test_add_on_jobs_load(load: Load) -> None:
    (d,) = load(
        {"c.yaml": to_entra(extra="  exchangeHybridWriteback: true\n  deviceSync: true\n")}
    ).state.configurations
    assert d.settings.exchange_hybrid_writeback and d.settings.device_sync
    assert d.settings.as_dict()["exchangeHybridWriteback"] is True
    # Off is the default, and an AD -> Entra ID configuration without them reads as it always has.
    (plain,) = load({"c.yaml": to_entra()}).state.configurations
    assert "exchangeHybridWriteback" not in plain.settings.as_dict()
    assert "direction" not in plain.settings.as_dict()


def test_both_directions_for_one_domain_are_two_configurations(load: Load) -> None:
    result = load({"a.yaml": to_entra(), "b.yaml": to_ad(extra=SELECTED)})
    assert [c.name for c in result.state.configurations] == ["contoso", "groups"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"g.yaml": to_ad(extra="  passwordHashSync: true\n")},
            [
                "g.yaml:9:3: spec.passwordHashSync applies to direction adToEntra only; this configuration's "
                "direction is entraToAd"
            ],
        ),
        (
            {"g.yaml": to_ad(extra="  exchangeHybridWriteback: true\n")},
            [
                "g.yaml:9:3: spec.exchangeHybridWriteback applies to direction adToEntra only; this "
                "configuration's direction is entraToAd"
            ],
        ),
        (
            {"c.yaml": to_entra(extra="  targetContainer: OU=X,DC=contoso,DC=com\n")},
            [
                "c.yaml:8:3: spec.targetContainer applies to direction entraToAd only; this configuration's "
                "direction is adToEntra"
            ],
        ),
        (
            {"c.yaml": to_entra(extra=f"  scope:\n    selectedGroups: [{G1}]\n")},
            [
                "c.yaml:9:5: spec.scope.selectedGroups does not apply to direction adToEntra; its scope is "
                "groups "
                "or organizationalUnits (DNs)"
            ],
        ),
        (
            {"g.yaml": to_ad(extra="  scope:\n    organizationalUnits: ['OU=A,DC=contoso,DC=com']\n")},
            [
                "g.yaml:10:5: spec.scope.organizationalUnits does not apply to direction entraToAd; its "
                "scope is "
                "selectedGroups (Entra group object ids) or filters"
            ],
        ),
        (
            {"g.yaml": to_ad(extra="  scope:\n    selectedGroups: [not-a-guid]\n")},
            [
                "g.yaml:10:22: spec.scope.selectedGroups[0]: 'not-a-guid' is not an Entra object id (a "
                "GUID like "
                "0b7e1a52-3c6e-4d7f-9a1b-2c3d4e5f6a7b)"
            ],
        ),
        (
            {"g.yaml": to_ad(extra=f"  scope:\n    selectedGroups:\n      - {G1}\n      - {G1.upper()}\n")},
            [f"g.yaml:12:9: group '{G1.upper()}' is listed twice (first on line 11)"],
        ),
        (
            {"g.yaml": to_ad(extra="  scope:\n    filters:\n      - - {attribute: a, operator: EQUALS}\n")},
            ["g.yaml:11:11: operator EQUALS needs a value"],
        ),
        (
            {
                "g.yaml": to_ad(
                    extra="  scope:\n    filters:\n      - - {attribute: a, operator: IS_TRUE, value: x}\n"
                )
            },
            ["g.yaml:11:45: operator IS_TRUE takes no value"],
        ),
        (
            {
                "g.yaml": to_ad(
                    extra="  scope:\n    filters:\n"
                    "      - - {attribute: a, operator: REGEX_MATCH, value: '('}\n"
                )
            },
            [
                "g.yaml:11:56: value is not a regular expression: missing ), unterminated subpattern at "
                "position 0"
            ],
        ),
        (
            {"g.yaml": to_ad(extra=SELECTED + "  targetContainer: OU=Groups,DC=fabrikam,DC=com\n")},
            [
                "g.yaml:13:20: 'OU=Groups,DC=fabrikam,DC=com' is outside the configuration's domain "
                "contoso.com "
                "(its domain is fabrikam.com)"
            ],
        ),
        (
            {
                "g.yaml": to_ad(
                    extra=SELECTED + "  attributeMappings:\n    group:\n      - {target: member, source: x}\n"
                )
            },
            [
                "g.yaml:15:18: the group mapping of 'member' is the service's own for Entra ID -> AD (it "
                "matches "
                "objects or carries membership); the docs say it must not be changed"
            ],
        ),
        (
            {
                "g.yaml": to_ad(
                    extra=SELECTED + "  attributeMappings:\n    group:\n"
                    "      - {target: MSDS-ExternalDirectoryObjectId, remove: true}\n"
                )
            },
            [
                "g.yaml:15:18: the group mapping of 'MSDS-ExternalDirectoryObjectId' is the service's own "
                "for Entra "
                "ID -> AD (it matches objects or carries membership); the docs say it must not be changed"
            ],
        ),
        (
            {
                "g.yaml": to_ad(
                    extra=SELECTED
                    + "  attributeMappings:\n    user:\n      - {target: sn, source: surname}\n"
                )
            },
            [
                "g.yaml:14:5: spec.attributeMappings.user: provisioning users to AD is a preview feature; "
                "set "
                "spec.preview.users: true to use it"
            ],
        ),
        (
            {
                "g.yaml": to_ad(
                    extra=SELECTED
                    + "  attributeMappings:\n    contact:\n      - {target: sn, source: surname}\n"
                )
            },
            [
                "g.yaml:14:5: spec.attributeMappings.contact: an entraToAd configuration provisions groups "
                "(and "
                "users, in preview)"
            ],
        ),
        (
            {
                "g.yaml": to_ad(
                    extra=SELECTED + "  targetContainer: OU=G,DC=contoso,DC=com\n  attributeMappings:\n"
                    "    group:\n      - {target: parentDistinguishedName, constant: "
                    "'OU=H,DC=contoso,DC=com'}\n"
                )
            },
            [
                "g.yaml:13:3: targetContainer and the group mapping of 'parentDistinguishedName' at "
                "g.yaml:16:9 both "
                "set the target container; give one"
            ],
        ),
        (
            {"a.yaml": to_ad("one", extra=SELECTED), "b.yaml": to_ad("two", "CONTOSO.com", extra=SELECTED)},
            [
                "b.yaml:4:9: configuration 'two' is for domain CONTOSO.com (direction entraToAd), as "
                "configuration "
                "'one' at a.yaml:4:9 is already; a domain has one configuration per direction (to rename a "
                "configuration, change its name in its file)"
            ],
        ),
        (
            {
                "s.yaml": to_ad(extra=SELECTED)
                + "---\napiVersion: cloudsync/v1\nkind: AttributeMappings\nmetadata:\n  name: m\nspec:\n"
                "  configurations: [groups]\n  object: group\n  mappings:\n    - {target: x, source: mail}\n"
            },
            [
                "s.yaml:19:20: configuration 'groups' provisions Entra ID -> AD; AttributeMappings "
                "documents hold "
                "AD -> Entra ID mappings, so give its mappings in its own spec.attributeMappings"
            ],
        ),
    ],
)
def test_bad_input_is_one_error_at_its_place(
    problems: Problems, files: dict[str, str | bytes], expected: list[str]
) -> None:
    assert problems(files) == expected


def test_at_most_twenty_entra_to_ad_configurations(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        f"g{i:02}.yaml": to_ad(f"g{i:02}", f"d{i:02}.contoso.com", SELECTED)
        for i in range(MAX_ENTRA_TO_AD_CONFIGURATIONS + 1)
    }
    assert problems(files) == [
        "g20.yaml:4:9: configuration 'g20' is Entra ID -> AD configuration number 21; a tenant has at most 20"
    ]


def test_too_many_selected_groups(problems: Problems) -> None:
    ids = "".join(f"      - 00000000-0000-0000-0000-{i:012x}\n" for i in range(10_001))
    assert problems({"g.yaml": to_ad(extra=f"  scope:\n    selectedGroups:\n{ids}")}) == [
        "g.yaml:10:5: spec.scope.selectedGroups: 10001 groups; the service documents at most 10,000 selected "
        "groups per configuration"
    ]


def test_the_direction_examples_load_without_warnings() -> None:
    from pathlib import Path

    from reconciler.config.load import load_paths

    folder = Path(__file__).resolve().parents[2] / "examples" / "directions"
    result = load_paths([str(folder)])
    assert result.warnings == ()
    by_name = result.state.by_name()
    assert by_name["fabrikam-groups"].scope.filters and by_name["fabrikam-groups"].settings.preview_users
