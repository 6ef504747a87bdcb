"""Conversions between the model and the service's JSON shapes: round trips, and what must survive."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.core.model import (
    CREDENTIAL_DATA,
    ApplyMode,
    Mapping,
    MappingKind,
    MappingOverride,
    Scope,
    ScopeKind,
    Settings,
    effective_mappings,
)
from reconciler.core.observed import JobStatus
from reconciler.errors import ProviderError
from reconciler.graph.checks import (
    check_and_read_schema,
    check_and_read_schema_text,
    check_job,
    check_schema,
    check_secrets,
    check_service_principal,
)
from reconciler.graph.editing import edit_schema, set_password_hash_mappings, without_annotations
from reconciler.graph.identity import job_enabled, job_status, parse_tags, tags_for
from reconciler.graph.mappings import (
    attribute_mapping_to_model,
    model_to_attribute_mapping,
    password_hash_attribute_mapping,
)
from reconciler.graph.reading import (
    PROVISIONING_RULE_ID,
    find_provisioning_rule,
    read_schema,
    template_defaults,
)
from reconciler.graph.secrets import secrets_to_settings, settings_to_secrets
from reconciler.graph.template import template_schema

SETTINGS = Settings(domain="contoso.com", notification_email="ops@contoso.com", enabled=False)


# --------------------------------------------------------------------------------------------------
# attribute mappings

ROUND_TRIPS = [
    Mapping("user", "department", MappingKind.DIRECT, "department"),
    Mapping("user", "onPremisesObjectIdentifier", MappingKind.DIRECT, "objectGUID", matching_priority=1),
    Mapping("user", "companyName", MappingKind.CONSTANT, 'Contoso "Ltd" \\ Co'),
    Mapping("user", "usageLocation", MappingKind.CONSTANT, "FR", apply=ApplyMode.ON_CREATE),
    Mapping(
        "user", "jobTitle", MappingKind.EXPRESSION, 'Join(" ", Trim([title]), [department])', default="n/a"
    ),
    Mapping(
        "user",
        "AccountEnabled",
        MappingKind.EXPRESSION,
        'IIF(IsPresent([userAccountControl]), IIF(BitAnd([userAccountControl], 2)="0", "True", "False"), '
        "Not([accountDisabled]))",
    ),
]


@pytest.mark.parametrize("mapping", ROUND_TRIPS, ids=lambda m: m.target)
def test_attribute_mapping_round_trip(mapping: Mapping) -> None:
    data = model_to_attribute_mapping(mapping)
    assert set(data) == {
        "defaultValue",
        "exportMissingReferences",
        "flowBehavior",
        "flowType",
        "matchingPriority",
        "targetAttributeName",
        "source",
    }
    assert data["exportMissingReferences"] is False and data["flowBehavior"] == "FlowWhenChanged"
    assert attribute_mapping_to_model(mapping.object, json.loads(json.dumps(data))) == mapping


def test_service_shapes_of_each_kind() -> None:
    direct = model_to_attribute_mapping(ROUND_TRIPS[0])
    assert direct["source"] == {
        "expression": "[department]",
        "name": "department",
        "type": "Attribute",
        "parameters": [],
    }
    assert direct["flowType"] == "Always" and direct["defaultValue"] is None
    constant = model_to_attribute_mapping(ROUND_TRIPS[3])
    assert constant["source"] == {"expression": '"FR"', "name": "FR", "type": "Constant", "parameters": []}
    assert constant["flowType"] == "ObjectAddOnly"
    function = model_to_attribute_mapping(ROUND_TRIPS[4])
    assert function["source"]["type"] == "Function" and function["source"]["name"] == "Join"
    assert function["source"]["expression"] == ROUND_TRIPS[4].value
    assert function["source"]["parameters"], "a function source carries its parameter tree"
    assert function["defaultValue"] == "n/a"


def test_reading_prefers_the_expression_text_the_service_returns() -> None:
    data = model_to_attribute_mapping(ROUND_TRIPS[4])
    data["source"]["expression"] = "Trim([title])"  # the tree says Join, the text wins
    assert attribute_mapping_to_model("user", data).value == "Trim([title])"


def test_reading_a_function_without_its_text_uses_the_tree() -> None:
    data = model_to_attribute_mapping(
        Mapping("user", "givenName", MappingKind.EXPRESSION, "Trim([givenName])")
    )
    data["source"]["expression"] = None
    m = attribute_mapping_to_model("user", data)
    assert m.kind is MappingKind.EXPRESSION and m.value == "Trim([givenName])"


def test_reading_special_constants_and_sourceless_rows() -> None:
    special = {
        "targetAttributeName": "dnsDomainName",
        "source": {"expression": None, "name": "%DomainFQDN%", "type": "Constant", "parameters": []},
    }
    assert attribute_mapping_to_model("user", special) == Mapping(
        "user", "dnsDomainName", MappingKind.CONSTANT, "%DomainFQDN%"
    )
    sourceless = {"targetAttributeName": "x", "source": None, "defaultValue": "d", "flowType": "Always"}
    assert attribute_mapping_to_model("user", sourceless) == Mapping(
        "user", "x", MappingKind.CONSTANT, "", "d"
    )


# --------------------------------------------------------------------------------------------------
# secrets


def _value(secrets: list[dict[str, Any]], key: str) -> Any:
    (item,) = [s for s in secrets if s["key"] == key]
    return json.loads(item["value"])


def test_settings_to_secrets_from_nothing() -> None:
    secrets = settings_to_secrets(SETTINGS, [])
    assert [s["key"] for s in secrets] == ["Domain", "AppKey", "SyncNotificationSettings"]
    assert all(isinstance(s["value"], str) for s in secrets)
    assert _value(secrets, "Domain") == {"domain": "contoso.com"}
    assert _value(secrets, "AppKey") == {"appKeyScenario": "AD2AADPasswordHash"}
    assert _value(secrets, "SyncNotificationSettings") == {
        "Enabled": True,
        "Recipients": "ops@contoso.com",
        "DeleteThresholdEnabled": True,
        "DeleteThresholdValue": 500,
    }
    off = settings_to_secrets(Settings("c.com", "a@c.com", password_hash_sync=False), [])
    assert _value(off, "AppKey") == {"appKeyScenario": "AD2AADProvisioning"}


def test_settings_to_secrets_keeps_other_keys_and_fields() -> None:
    existing = [
        {"key": "SkipOutOfScopeDeletions", "value": "true"},
        {"key": "SyncNotificationSettings", "value": '{"Enabled":false,"Recipients":"old@x.com","Extra":1}'},
        {"key": "SyncAll", "value": "false"},
        {"key": "Domain", "value": '{"domain":"contoso.com"}'},
    ]
    before = copy.deepcopy(existing)
    secrets = settings_to_secrets(SETTINGS, existing)
    assert existing == before, "the input is not changed"
    assert [s["key"] for s in secrets] == [
        "SkipOutOfScopeDeletions",
        "SyncNotificationSettings",
        "SyncAll",
        "Domain",
        "AppKey",
    ]
    assert secrets[0] == existing[0] and secrets[2] == existing[2]
    assert secrets[3]["value"] == '{"domain":"contoso.com"}'  # unchanged text kept verbatim
    notify = _value(secrets, "SyncNotificationSettings")
    assert notify["Extra"] == 1 and notify["Recipients"] == "ops@contoso.com" and notify["Enabled"] is True


def test_secrets_round_trip() -> None:
    settings = Settings(
        "f.com",
        "a@f.com",
        password_hash_sync=False,
        accidental_deletes_enabled=False,
        accidental_deletes_threshold=9,
    )
    assert secrets_to_settings(settings_to_secrets(settings, []), enabled=True) == settings
    assert (
        secrets_to_settings(settings_to_secrets(SETTINGS, []), enabled=False, password_hash_job=True)
        == SETTINGS
    )


def test_app_key_is_a_tenant_flag_never_lowered_by_one_configuration() -> None:
    raised = settings_to_secrets(SETTINGS, [])
    assert {"key": "AppKey", "value": '{"appKeyScenario":"AD2AADPasswordHash"}'} in raised
    off = Settings("contoso.com", "ops@contoso.com", password_hash_sync=False)
    # Turning password hash sync off leaves the AppKey as it was ...
    assert [s for s in settings_to_secrets(off, raised) if s["key"] == "AppKey"] == [
        s for s in raised if s["key"] == "AppKey"
    ]
    # ... and a configuration made without it asks for the synchronization flag only.
    assert {"key": "AppKey", "value": '{"appKeyScenario":"AD2AADProvisioning"}'} in settings_to_secrets(
        off, []
    )
    # What a configuration says about password hash sync is its own job, never the AppKey.
    assert not secrets_to_settings(raised, enabled=True, password_hash_job=False).password_hash_sync


def test_secrets_to_settings_without_an_app_key_uses_the_jobs() -> None:
    secrets = [{"key": "Domain", "value": '{"domain":"c.com"}'}]
    assert secrets_to_settings(secrets, enabled=False, password_hash_job=True).password_hash_sync
    assert not secrets_to_settings(secrets, enabled=False, password_hash_job=False).password_hash_sync
    empty = secrets_to_settings([], enabled=False)
    assert empty.domain == "" and empty.accidental_deletes_threshold == 500


# --------------------------------------------------------------------------------------------------
# schema


def _rule(schema: dict[str, Any]) -> dict[str, Any]:
    rule = find_provisioning_rule(schema)
    assert rule is not None
    return rule


def _rows(schema: dict[str, Any], source_object: str) -> list[dict[str, Any]]:
    (om,) = [o for o in _rule(schema)["objectMappings"] if o["sourceObjectName"] == source_object]
    return list(om["attributeMappings"])


def _credential_rows(schema: dict[str, Any], source_object: str) -> int:
    return sum(1 for am in _rows(schema, source_object) if am["targetAttributeName"] == CREDENTIAL_DATA)


def test_template_reads_as_the_defaults() -> None:
    schema = template_schema()
    scope, mappings, counts, unmanaged = read_schema(schema)
    assert scope == Scope.all()
    assert mappings == template_defaults() and mappings
    assert unmanaged == (), "the template's default exclusions are not listed"
    # Only the object mappings the schema has are counted: the real template has a user one only.
    assert counts == {"user": 0}
    assert _rule(schema)["id"] == PROVISIONING_RULE_ID


def _edited(
    schema: dict[str, Any],
    scope: Scope | None,
    mappings: Any = (),
    removals: Any = (),
    phs: bool | None = None,
) -> dict[str, Any]:
    return edit_schema(schema, scope=scope, mappings=mappings, removals=removals, password_hash_sync=phs)


def test_edit_then_read_round_trip() -> None:
    schema = template_schema()
    scope = Scope(ScopeKind.ORGANIZATIONAL_UNITS, ("OU=A,DC=c,DC=com",))
    written = _edited(schema, scope, ROUND_TRIPS[2:], [("user", "title")], True)
    assert schema == template_schema(), "the input is not changed"
    read_scope, read_mappings, counts, _unmanaged = read_schema(written)
    assert read_scope == scope
    wanted = effective_mappings(
        template_defaults(),
        [MappingOverride(m.object, m.target, m) for m in ROUND_TRIPS[2:]]
        + [MappingOverride("user", "title", None)],
    )
    assert {m.folded_key: m for m in read_mappings} == wanted
    assert counts == {"user": 1}
    rule = _rule(written)
    # The documented form for a schema without the clause form; no groupFilter added for nothing.
    assert rule["containerFilter"] == {"includedContainers": ["OU=A,DC=c,DC=com"]}
    assert "groupFilter" not in rule
    groups = _edited(written, Scope(ScopeKind.GROUPS, ("CN=G,DC=c",)))
    assert _rule(groups)["containerFilter"] == {"includedContainers": []}
    assert read_schema(groups)[0] == Scope(ScopeKind.GROUPS, ("CN=G,DC=c",))


def test_edit_keeps_everything_it_does_not_name() -> None:
    schema = template_schema()
    schema["x-unknown"] = {"kept": True}
    schema["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#..."
    other_rule = {"id": "other", "name": "Other", "objectMappings": [{"sourceObjectName": "user", "x": 1}]}
    schema["synchronizationRules"].append(other_rule)
    rule = _rule(schema)
    rule["containerFilter"] = {"includedContainers": [], "x-extra": "kept"}
    user_rows = rule["objectMappings"][0]["attributeMappings"]
    user_rows[1]["x-unknown"] = "kept"
    user_rows[1]["flowType"] = "MultiValueAddOnly"  # a flow type the model cannot say
    untouched_target = user_rows[1]["targetAttributeName"]

    new = _edited(schema, Scope.all(), [Mapping("user", "department", MappingKind.CONSTANT, "x")], [], False)
    assert "@odata.context" not in new, "annotations describe an answer, never a request"
    assert new["x-unknown"] == {"kept": True}
    assert new["synchronizationRules"][1] == other_rule
    assert new["version"] == schema["version"] and new["directories"] == schema["directories"]
    new_rule = _rule(new)
    assert new_rule["metadata"] == rule["metadata"]
    assert new_rule["containerFilter"]["x-extra"] == "kept"
    assert new_rule["objectMappings"][0]["scope"] == rule["objectMappings"][0]["scope"]
    assert new_rule["objectMappings"][1:] == rule["objectMappings"][1:]
    (row,) = [r for r in _rows(new, "user") if r["targetAttributeName"] == untouched_target]
    assert row["x-unknown"] == "kept" and row["flowType"] == "MultiValueAddOnly"
    # Every row but the one named is the service's, in its place, as read.
    before, after = _rows(schema, "user"), _rows(new, "user")
    assert len(before) == len(after)
    assert [a for a, b in zip(after, before, strict=True) if a != b] == [
        next(r for r in after if r["targetAttributeName"] == "Department")
    ]
    assert new == _edited(
        new, Scope.all(), [Mapping("user", "department", MappingKind.CONSTANT, "x")], [], False
    )


def test_a_changed_row_keeps_its_unknown_fields_spelling_and_matching_priority() -> None:
    schema = template_schema()
    user_rows = _rule(schema)["objectMappings"][0]["attributeMappings"]
    (row,) = [r for r in user_rows if r["targetAttributeName"] == "onPremisesObjectIdentifier"]
    row["x-unknown"] = "kept"
    new = _edited(
        schema, None, [Mapping("user", "ONPREMISESOBJECTIDENTIFIER", MappingKind.DIRECT, "objectSid")]
    )
    (row,) = [
        r for r in _rows(new, "user") if r["targetAttributeName"].casefold() == "onpremisesobjectidentifier"
    ]
    assert row["x-unknown"] == "kept" and row["source"]["name"] == "objectSid"
    assert row["targetAttributeName"] == "onPremisesObjectIdentifier" and row["matchingPriority"] == 1


def test_credential_data_exactly_once_and_only_where_an_object_mapping_is() -> None:
    schema = template_schema()
    rule = _rule(schema)
    rule["objectMappings"][0]["attributeMappings"] += [password_hash_attribute_mapping()] * 2
    assert read_schema(schema)[2] == {"user": 2}

    on = set_password_hash_mappings(schema, True)
    assert _credential_rows(on, "user") == 1
    assert set_password_hash_mappings(on, True) == on
    off = set_password_hash_mappings(on, False)
    assert _credential_rows(off, "user") == 0
    assert set_password_hash_mappings(off, False) == off
    # No object mapping is made for it: the real schema has no inetOrgPerson one.
    assert [om["sourceObjectName"] for om in _rule(on)["objectMappings"]] == ["user", ""]
    (row,) = [r for r in _rows(on, "user") if r["targetAttributeName"] == CREDENTIAL_DATA]
    assert row == password_hash_attribute_mapping()
    # A row spelt another way is the same row.
    _rule(schema)["objectMappings"][0]["attributeMappings"] = [
        {**password_hash_attribute_mapping(), "targetAttributeName": "credentialdata"}
    ]
    assert read_schema(schema)[2] == {"user": 1}
    assert set_password_hash_mappings(schema, True) == without_annotations(schema)


def test_edit_refuses_what_the_schema_cannot_hold() -> None:
    with pytest.raises(ProviderError, match="no AD2AADProvisioning rule"):
        _edited({"synchronizationRules": []}, Scope.all())
    with pytest.raises(ProviderError, match="no object mapping for group"):
        _edited(template_schema(), Scope.all(), [Mapping("group", "x", MappingKind.DIRECT, "y")])
    with pytest.raises(ProviderError, match="no object mapping for contact"):
        _edited(template_schema(), Scope.all(), [], [("contact", "mail")])


def test_object_mappings_are_matched_by_source_object_name() -> None:
    schema = template_schema()
    om = _rule(schema)["objectMappings"][0]
    om["name"] = "Synchronize Active Directory users to Azure Active Directory"
    keys = {m.key for m in read_schema(schema)[1]}
    assert ("user", "UserPrincipalName") in keys


def test_rule_found_by_id_then_name_then_position() -> None:
    a, b = {"id": "a", "name": "AD2AADProvisioning"}, {"id": PROVISIONING_RULE_ID, "name": "x"}
    assert find_provisioning_rule({"synchronizationRules": [a, b]}) is b
    assert find_provisioning_rule({"synchronizationRules": [{"id": "c"}, a]}) is a
    assert find_provisioning_rule({"synchronizationRules": [{"id": "c"}]}) == {"id": "c"}
    assert find_provisioning_rule({}) is None


# --------------------------------------------------------------------------------------------------
# tags


def test_tags_round_trip_and_keep_foreign_tags() -> None:
    existing = ["WindowsAzureActiveDirectoryIntegratedApp", "reconciler:name=old", "reconciler:future", "x"]
    tags = tags_for(existing, name="prod", deletion_protection=True, restart_token="t:1")
    assert tags[:3] == ["WindowsAzureActiveDirectoryIntegratedApp", "reconciler:future", "x"]
    own = parse_tags(tags)
    assert (own.managed, own.name, own.deletion_protection, own.restart_token) == (True, "prod", True, "t:1")
    plain = parse_tags(tags_for(tags, name="prod"))
    assert (plain.managed, plain.deletion_protection, plain.restart_token) == (True, False, None)
    assert not parse_tags(["x"]).managed and parse_tags([]).name is None


# --------------------------------------------------------------------------------------------------
# jobs


def test_job_status() -> None:
    job = {
        "schedule": {"state": "Active"},
        "status": {
            "code": "Quarantine",
            "lastExecution": {"state": "Failed", "timeEnded": "2024-01-01T00:00:00Z", "error": None},
            "quarantine": {
                "reason": "TooManyDeletes",
                "seriesBegan": "2024-01-01T00:00:00Z",
                "error": {"code": "C", "message": "too many deletes"},
            },
        },
    }
    assert job_status(job) == JobStatus(
        code="Quarantine",
        quarantine_reason="TooManyDeletes",
        quarantine_since="2024-01-01T00:00:00Z",
        last_run_state="Failed",
        last_run_end="2024-01-01T00:00:00Z",
        last_error="too many deletes",
    )
    assert job_enabled(job)
    assert job_status({}) == JobStatus(code="NotRun")
    assert not job_enabled({"schedule": {"state": "Disabled"}})


# --------------------------------------------------------------------------------------------------
# checking what the service sent


def _user_mappings(schema: dict[str, Any]) -> list[dict[str, Any]]:
    rule = find_provisioning_rule(schema)
    assert rule is not None
    om = next(om for om in rule["objectMappings"] if om["sourceObjectName"] == "user")
    return list(om["attributeMappings"])


def test_the_template_and_the_store_shapes_pass_the_checks() -> None:
    assert check_schema(template_schema(), "the template") == template_schema()
    sp = {"id": "sp1", "appId": "a", "displayName": "x", "tags": ["t"], "servicePrincipalNames": []}
    assert check_service_principal(sp) == sp
    job = {"id": "j", "templateId": "AD2AADProvisioning", "schedule": {"state": "Paused"}, "status": {}}
    assert check_job(job, "sp1") == job
    assert check_secrets([{"key": "Domain", "value": None}], "sp1") == [{"key": "Domain", "value": None}]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s.update(synchronizationRules="x"), "synchronizationRules is a str"),
        (lambda s: _user_mappings(s)[0].update(targetAttributeName=5), "has no target attribute"),
        (lambda s: _user_mappings(s)[0].update(flowType="Sometimes"), "flowType 'Sometimes' is not one"),
        (lambda s: _user_mappings(s)[0]["source"].update(type="Quantum"), "type 'Quantum' is not one"),
        (lambda s: _user_mappings(s)[0].update(matchingPriority=True), "matchingPriority is a bool"),
        (
            lambda s: find_provisioning_rule(s).update(containerFilter={"includedContainers": [1]}),  # type: ignore[union-attr]
            "includedContainers is not a list of strings",
        ),
    ],
)
def test_a_schema_the_module_would_misread_is_refused(change: Any, problem: str) -> None:
    schema = copy.deepcopy(template_schema())
    change(schema)
    with pytest.raises(ProviderError, match=problem):
        check_schema(schema, "the schema")
    with pytest.raises(ProviderError, match=problem):
        check_and_read_schema(schema, "the schema")


def test_checking_and_reading_in_one_pass_reads_as_the_two_steps() -> None:
    written = _edited(template_schema(), Scope(ScopeKind.GROUPS, ("CN=G,DC=c",)), ROUND_TRIPS, (), True)
    # A function given as a tree only, and a second object mapping of a type (checked, not read).
    tree_only = copy.deepcopy(written)
    rule = find_provisioning_rule(tree_only)
    assert rule is not None
    user = next(om for om in rule["objectMappings"] if om["sourceObjectName"] == "user")
    function = next(am for am in user["attributeMappings"] if am["source"]["type"] == "Function")
    function["source"]["expression"] = None
    rule["objectMappings"].append(copy.deepcopy(user))
    for schema in (template_schema(), written, tree_only, {"synchronizationRules": []}):
        expected = read_schema(check_schema(schema, "the schema"))
        assert check_and_read_schema(schema, "the schema") == expected
        # From its JSON text, twice: the second time the lists of mappings come from a cache.
        text = json.dumps(schema).encode()
        assert check_and_read_schema_text(text, "the schema") == expected
        assert check_and_read_schema_text(text, "the schema") == expected
    rule["objectMappings"][-1]["attributeMappings"][0]["flowType"] = "Sometimes"
    with pytest.raises(ProviderError, match="flowType 'Sometimes' is not one"):
        check_and_read_schema(tree_only, "the schema")
    with pytest.raises(ProviderError, match="flowType 'Sometimes' is not one"):
        check_and_read_schema_text(json.dumps(tree_only).encode(), "the schema")


@pytest.mark.parametrize(
    ("check", "value", "problem"),
    [
        (check_service_principal, {"appId": "a"}, "has no id"),
        (check_service_principal, {"id": "x", "tags": "reconciler:managed"}, "tags is a str"),
        (check_service_principal, ["x"], "expected an object"),
        (lambda v: check_job(v, "sp"), {"templateId": "x"}, "has no id"),
        (lambda v: check_job(v, "sp"), {"id": "j", "schedule": {"state": "Hibernating"}}, "'Hibernating'"),
        (lambda v: check_job(v, "sp"), {"id": "j", "status": "Active"}, "status is a str"),
        (lambda v: check_secrets(v, "sp"), [{"value": "x"}], "a secret has no key"),
        (lambda v: check_secrets(v, "sp"), [{"key": "Domain", "value": {"domain": "x"}}], "value is a dict"),
    ],
)
def test_other_answers_the_module_would_misread_are_refused(check: Any, value: Any, problem: str) -> None:
    with pytest.raises(ProviderError, match=problem):
        check(value)


# --------------------------------------------------------------------------------------------------
# reading a schema from its JSON text reads as reading it parsed


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
    | st.sampled_from(["user", "group", "Always", "Function", "Attribute", "CredentialData"])
)
_JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "name", "type"]), inner)
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*path, i))
    return found


def _read_either(read: Any) -> Any:
    try:
        return read()
    except ProviderError:
        return "refused"


_WRITTEN = _edited(template_schema(), Scope(ScopeKind.GROUPS, ("CN=G,DC=c",)), ROUND_TRIPS, (), True)
_WRITTEN_PATHS = [p for p in _paths(_WRITTEN) if "directories" not in p]


@settings(max_examples=300, deadline=None)
@given(
    changes=st.lists(
        st.tuples(st.integers(min_value=0), st.sampled_from(["replace", "delete"]), _JSON_VALUES),
        min_size=1,
        max_size=3,
    )
)
# A scoping clause whose targetOperand is not an object (here `true`) once crashed the read.
@example(changes=[(46697, "replace", True)])
def test_a_schema_read_from_text_reads_as_the_parsed_schema(changes: list[tuple[int, str, Any]]) -> None:
    schema = copy.deepcopy(_WRITTEN)
    for index, how, value in changes:
        paths = [p for p in _paths(schema) if "directories" not in p]
        path = paths[index % len(paths)]
        if not path:
            schema = value
            continue
        parent = schema
        for step in path[:-1]:
            parent = parent[step]
        if how == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    text = json.dumps(schema).encode()
    expected = _read_either(lambda: check_and_read_schema(schema, "the schema"))
    # Twice: the second time from the list cache.
    assert _read_either(lambda: check_and_read_schema_text(text, "the schema")) == expected
    assert _read_either(lambda: check_and_read_schema_text(text, "the schema")) == expected


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"not json",
        b"[]",
        b"null",
        b'{"synchronizationRules": "x"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"synchronizationRules": [{"objectMappings": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
    ],
)
def test_schema_text_that_cannot_be_read_is_refused(text: bytes) -> None:
    with pytest.raises(ProviderError, match="cannot be read"):
        check_and_read_schema_text(text, "the schema")


@pytest.mark.parametrize(
    "text",
    [
        b'{"synchronizationRules": [{"name": "\xff"}]}',
        b'{"synchronizationRules": [{"objectMappings": [{"sourceObjectName": "\xff"}]}]}',
    ],
)
def test_schema_text_that_is_not_utf8_is_refused(text: bytes) -> None:
    with pytest.raises(ProviderError, match="not JSON"):
        check_and_read_schema_text(text, "the schema")


@pytest.mark.parametrize(
    "text",
    [
        # As deep as orjson reads (msgspec alone stops at the interpreter's recursion limit).
        b'{"x": ' + b"[" * 1000 + b"]" * 1000 + b', "synchronizationRules": []}',
        # Duplicate keys: the last one counts, as orjson reads them.
        b'{"synchronizationRules": 1, "synchronizationRules": []}',
        b'{"synchronizationRules": [{"objectMappings": 1, "objectMappings": null}]}',
    ],
    ids=["deep", "duplicate rules", "duplicate object mappings"],
)
def test_schema_text_the_fast_reading_leaves_alone_reads_as_parsed(text: bytes) -> None:
    parsed = orjson.loads(text)
    assert check_and_read_schema_text(text, "the schema") == check_and_read_schema(parsed, "the schema")


def test_sources_that_differ_in_name_only_read_as_themselves() -> None:
    # A source with parameters and an expression, of a type that reads its name: the name tells them apart.
    def mapping(name: str) -> dict[str, Any]:
        source = {"type": "Attribute", "name": name, "expression": "[x]", "parameters": [{"key": "k"}]}
        return {"targetAttributeName": "t", "source": source}

    schema = copy.deepcopy(template_schema())
    users = _user_mappings(schema)
    rule = find_provisioning_rule(schema)
    assert rule is not None
    om = next(om for om in rule["objectMappings"] if om["sourceObjectName"] == "user")
    om["attributeMappings"] = [*users[:1], mapping("first")]
    first = check_and_read_schema(schema, "the schema")[1]
    om["attributeMappings"] = [*users[:1], mapping("second")]
    second = check_and_read_schema_text(json.dumps(schema).encode(), "the schema")[1]
    assert [m.value for m in first if m.target == "t"] == ["first"]
    assert [m.value for m in second if m.target == "t"] == ["second"]


def test_a_function_tree_that_is_no_expression_is_refused_as_unreadable() -> None:
    schema = copy.deepcopy(template_schema())
    function = next(am for am in _user_mappings(schema) if am["source"]["type"] == "Function")
    function["source"] = {"type": "Function", "name": None, "expression": None, "parameters": [{"key": 1}]}
    rule = find_provisioning_rule(schema)
    assert rule is not None
    om = next(om for om in rule["objectMappings"] if om["sourceObjectName"] == "user")
    om["attributeMappings"] = [
        function if am["targetAttributeName"] == function["targetAttributeName"] else am
        for am in om["attributeMappings"]
    ]
    with pytest.raises(ProviderError, match="cannot be read"):
        check_and_read_schema(schema, "the schema")


def test_scoping_clauses_the_tool_does_not_manage_are_read_apart() -> None:
    dump = json.loads(
        (Path(__file__).resolve().parents[1] / "fixtures" / "real" / "ad2aad-schema-sample1.json").read_text()
    )
    # The real schema holds the OU clause and the template's default exclusions only: nothing to show.
    assert read_schema(dump)[3] == ()
    user = dump["synchronizationRules"][0]["objectMappings"][0]
    groups = user["scope"]["inputFilterGroups"]
    groups[0]["clauses"].append(
        {"operatorName": "EQUALS", "sourceOperandName": "department", "targetOperand": {"values": ["Sales"]}}
    )
    groups.append(
        {"name": "mine", "clauses": [{"operatorName": "IS TRUE", "sourceOperandName": "extensionAttribute1"}]}
    )
    expected = ('user: department EQUALS "Sales"', "user: extensionAttribute1 IS TRUE")
    assert read_schema(dump)[3] == expected
    assert check_and_read_schema(dump, "the schema")[3] == expected
    assert check_and_read_schema_text(json.dumps(dump).encode(), "the schema")[3] == expected


@pytest.mark.parametrize("other", ["text", 7, [1, 2], [{"sourceObjectName": 5}], None])
def test_a_second_rule_of_any_shape_reads_as_the_parsed_schema(other: Any) -> None:
    # The text is read in one pass when every rule's objectMappings is a list of objects, else in two:
    # either way as the parsed schema reads, whichever rule comes first.
    schema = copy.deepcopy(_WRITTEN)
    extra = {"id": "other", "name": "Other", "objectMappings": other}
    for rules in ([*schema["synchronizationRules"], extra], [extra, *schema["synchronizationRules"]]):
        schema["synchronizationRules"] = rules
        expected = check_and_read_schema(schema, "the schema")
        assert check_and_read_schema_text(json.dumps(schema).encode(), "the schema") == expected


def test_a_constant_given_by_its_text_only_reads_as_the_expression_parser_reads_it() -> None:
    # An unknown escape and a trailing backslash keep their backslashes, so writing the value back
    # (quoted again) says what the service held.
    for text, value in (('"a\\,b"', "a\\,b"), ('"a\\"b"', 'a"b'), ('"C:\\\\dir\\"', "C:\\dir\\")):
        am = {"targetAttributeName": "x", "source": {"type": "Constant", "expression": text, "name": None}}
        read = attribute_mapping_to_model("user", am)
        assert read.kind is MappingKind.CONSTANT and read.value == value
        assert attribute_mapping_to_model("user", model_to_attribute_mapping(read)) == read
