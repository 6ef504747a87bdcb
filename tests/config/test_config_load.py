"""The loader's meaning checks, each at its FILE:LINE:COL, and the model it builds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.config import CONTOSO

from reconciler.config.load import LoadResult, load_files
from reconciler.config.mappings import check_expression
from reconciler.core.model import ApplyMode, MappingKind, Origin, Scope, ScopeKind, Settings
from reconciler.errors import LoadError

Problems = Callable[[dict[str, str | bytes]], list[str]]
Load = Callable[[dict[str, str | bytes]], LoadResult]


def edit(old: str, new: str, text: str = CONTOSO) -> str:
    assert old in text
    return text.replace(old, new)


def config(name: str, domain: str = "contoso.com", extra: str = "") -> str:
    return (
        f"apiVersion: cloudsync/v1\nkind: Configuration\nmetadata:\n  name: {name}\n"
        "  labels: {tier: standard}\n"
        f"spec:\n  domain: {domain}\n  notificationEmail: ops@{domain}\n{extra}"
    )


def scope_doc(configuration: str, body: str, name: str = "s") -> str:
    return (
        f"apiVersion: cloudsync/v1\nkind: Scope\nmetadata:\n  name: {name}\n"
        f"spec:\n  configuration: {configuration}\n{body}"
    )


def mapping_doc(target: str, mappings: str, obj: str = "user", name: str = "m") -> str:
    return (
        f"apiVersion: cloudsync/v1\nkind: AttributeMappings\nmetadata:\n  name: {name}\n"
        f"spec:\n{target}  object: {obj}\n  mappings:\n{mappings}"
    )


# -- names and references ------------------------------------------------------------------------


def test_duplicate_configuration_names_name_both_files(problems: Problems) -> None:
    assert problems({"a.yaml": config("contoso"), "b.yaml": config("contoso")}) == [
        "b.yaml:4:9: configuration 'contoso' is already defined at a.yaml:4:9"
    ]


def test_duplicate_scope_and_mapping_set_names(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": config("contoso"),
        "f.yaml": config("fabrikam", "fabrikam.com"),
        "s.yaml": scope_doc("contoso", "  groups: ['CN=Pilot,DC=contoso,DC=com']\n", name="pilot"),
        "t.yaml": scope_doc("fabrikam", "  groups: ['CN=Pilot,DC=fabrikam,DC=com']\n", name="pilot"),
        "m.yaml": mapping_doc("  configurations: [contoso]\n", "    - {target: a, source: mail}\n", name="x"),
        "n.yaml": mapping_doc(
            "  configurations: [fabrikam]\n", "    - {target: a, source: mail}\n", name="x"
        ),
    }
    assert problems(files) == [
        "n.yaml:4:9: AttributeMappings 'x' is already defined at m.yaml:4:9",
        "t.yaml:4:9: Scope 'pilot' is already defined at s.yaml:4:9",
    ]


def test_a_scope_for_a_configuration_that_does_not_exist(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": config("contoso"),
        "s.yaml": scope_doc("contosso", "  groups: ['CN=Pilot,DC=contoso,DC=com']\n"),
    }
    assert problems(files) == ["s.yaml:6:18: no configuration named 'contosso'; did you mean 'contoso'?"]


def test_mappings_for_configurations_that_do_not_exist(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": config("contoso"),
        "m.yaml": mapping_doc(
            "  configurations: [contoso, fabrikam, contoso]\n", "    - {target: a, source: mail}\n"
        ),
    }
    assert problems(files) == [
        "m.yaml:6:29: no configuration named 'fabrikam'",
        "m.yaml:6:39: configuration 'contoso' is listed twice",
    ]


def test_a_configuration_with_schema_errors_is_not_also_reported_as_missing(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": config("contoso", extra="  enabled: maybe\n"),
        "s.yaml": scope_doc("contoso", "  groups: ['CN=Pilot,DC=contoso,DC=com']\n"),
    }
    assert problems(files) == ["a.yaml:9:12: spec.enabled: expected true or false, got a string ('maybe')"]


# -- scope ---------------------------------------------------------------------------------------


def test_groups_and_organizational_units_together(problems: Problems) -> None:
    text = edit("  scope:\n", "  scope:\n    groups: ['CN=Pilot,DC=contoso,DC=com']\n")
    files: dict[str, str | bytes] = {
        "a.yaml": text,
        "s.yaml": scope_doc(
            "fabrikam",
            "  organizationalUnits: ['OU=a,DC=fabrikam,DC=com']\n  groups: ['CN=b,DC=fabrikam,DC=com']\n",
        ),
        "f.yaml": config("fabrikam", "fabrikam.com"),
    }
    assert problems(files) == [
        "a.yaml:11:5: spec.scope: give groups or organizationalUnits, not both",
        "s.yaml:8:3: spec: give groups or organizationalUnits, not both",
    ]


def test_a_scope_with_neither_groups_nor_organizational_units(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": config("contoso", extra="  scope: {}\n"),
        "s.yaml": scope_doc("fabrikam", ""),
        "f.yaml": config("fabrikam", "fabrikam.com"),
    }
    assert problems(files) == [
        "a.yaml:9:3: spec.scope: give groups or organizationalUnits (or leave scope out to take the "
        "whole domain)",
        "s.yaml:5:1: spec: give groups or organizationalUnits",
    ]


@pytest.mark.parametrize(
    ("dn", "message"),
    [
        (
            "OU=Sales, DC=contoso,DC=com",
            "'OU=Sales, DC=contoso,DC=com' is not a valid DN: unexpected space: RFC 4514 allows no spaces "
            "around ',' '+' or '=' (at character 10)",
        ),
        (
            "'OU=Sales;EMEA,DC=contoso,DC=com'",
            "'OU=Sales;EMEA,DC=contoso,DC=com' is not a valid DN: ';' must be escaped as '\\;' (at "
            "character 9)",
        ),
        (
            "Sales",
            "'Sales' is not a valid DN: expected '=' after 'Sales' (at character 6)",
        ),
        (
            "OU=Sales,DC=fabrikam,DC=com",
            "'OU=Sales,DC=fabrikam,DC=com' is outside the configuration's domain contoso.com "
            "(its domain is fabrikam.com)",
        ),
        (
            "OU=Sales,DC=emea,DC=contoso,DC=com",
            "'OU=Sales,DC=emea,DC=contoso,DC=com' is outside the configuration's domain contoso.com "
            "(its domain is emea.contoso.com)",
        ),
        (
            "OU=Sales,O=Contoso",
            "'OU=Sales,O=Contoso' is outside the configuration's domain contoso.com (it has no DC= parts)",
        ),
    ],
)
def test_dn_syntax_and_domain(problems: Problems, dn: str, message: str) -> None:
    text = edit("      - OU=Sales,DC=contoso,DC=com\n", f"      - OU=Ok,DC=contoso,DC=com\n      - {dn}\n")
    assert problems({"a.yaml": text}) == [f"a.yaml:12:9: {message}"]


def test_escaped_commas_and_non_ascii_dns_are_fine(load: Load) -> None:
    dns = [
        "OU=Zürich\\, Schweiz,DC=contoso,DC=com",
        "OU=R\\C3\\A9seau,DC=Contoso,DC=COM",
        "OU=a\\+b,DC=contoso,DC=com",
    ]
    body = "".join(f"      - {dn}\n" for dn in dns)
    result = load({"a.yaml": edit("      - OU=Sales,DC=contoso,DC=com\n", body)})
    assert result.state.configurations[0].scope == Scope(ScopeKind.ORGANIZATIONAL_UNITS, tuple(dns))


def test_dns_split_by_a_flow_list_are_explained(problems: Problems) -> None:
    text = edit(
        "    organizationalUnits:\n      - OU=Sales,DC=contoso,DC=com\n",
        "    organizationalUnits: [OU=Sales,DC=contoso,DC=com]\n",
    )
    assert problems({"a.yaml": text}) == [
        "a.yaml:10:26: spec.scope.organizationalUnits: inside [ ] a comma separates list items, so the DNs "
        "were split apart; put quotes around each DN or write one DN per '- ' line"
    ]


def test_dns_in_a_scope_file_are_checked_against_the_configuration_domain(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": config("contoso"),
        "s.yaml": scope_doc(
            "contoso", "  groups:\n    - CN=Pilot,DC=contoso,DC=com\n    - CN=Pilot,DC=fabrikam,DC=com\n"
        ),
    }
    assert problems(files) == [
        "s.yaml:9:7: 'CN=Pilot,DC=fabrikam,DC=com' is outside the configuration's domain contoso.com "
        "(its domain is fabrikam.com)"
    ]


def test_duplicate_dns_compare_without_case(problems: Problems) -> None:
    text = edit(
        "      - OU=Sales,DC=contoso,DC=com\n",
        "      - OU=Sales,DC=contoso,DC=com\n      - ou=SALES,dc=Contoso,dc=com\n",
    )
    assert problems({"a.yaml": text}) == [
        "a.yaml:12:9: 'ou=SALES,dc=Contoso,dc=com' is listed twice (first on line 11)"
    ]


def test_more_than_fifty_scope_entries(problems: Problems, load: Load) -> None:
    fifty = "".join(f"      - OU=o{i},DC=contoso,DC=com\n" for i in range(50))
    assert (
        len(load({"a.yaml": edit("      - OU=Sales,DC=contoso,DC=com\n", fifty)}).state.configurations) == 1
    )
    text = edit("      - OU=Sales,DC=contoso,DC=com\n", fifty + "      - OU=one-more,DC=contoso,DC=com\n")
    assert problems({"a.yaml": text}) == [
        "a.yaml:10:5: spec.scope.organizationalUnits: 51 entries; the service takes at most 50"
    ]


def test_two_sources_for_one_scope_name_both_files(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": CONTOSO,
        "s1.yaml": scope_doc("contoso", "  groups: ['CN=Pilot,DC=contoso,DC=com']\n"),
        "f.yaml": config("fabrikam", "fabrikam.com"),
        "t1.yaml": scope_doc("fabrikam", "  groups: ['CN=Pilot,DC=fabrikam,DC=com']\n", name="t1"),
        "t2.yaml": scope_doc("fabrikam", "  groups: ['CN=Other,DC=fabrikam,DC=com']\n", name="t2"),
    }
    assert problems(files) == [
        "s1.yaml:6:18: configuration 'contoso' already takes its scope from a.yaml:9:3; "
        "a scope comes from one place only",
        "t2.yaml:6:18: configuration 'fabrikam' already takes its scope from t1.yaml:5:1; "
        "a scope comes from one place only",
    ]


# -- mappings ------------------------------------------------------------------------------------


def with_mappings(lines: str) -> str:
    return edit(
        "      - {target: department, source: department}\n      - {target: extensionAttribute1, "
        "constant: FTE}\n",
        lines,
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{target: department}",
            "a.yaml:14:9: mapping of 'department' needs one of source, constant, expression or remove",
        ),
        (
            "{target: department, source: department, constant: Sales}",
            "a.yaml:14:50: mapping of 'department' has both source and constant; give only one",
        ),
        (
            "{target: department, remove: true, expression: '[a]'}",
            "a.yaml:14:44: mapping of 'department' has both remove and expression; give only one",
        ),
        (
            "{target: extensionAttribute1, constant: FTE, default: x}",
            "a.yaml:14:54: mapping of 'extensionAttribute1': default goes with source or expression, "
            "not with constant",
        ),
        (
            "{target: ExtensionAttribute3, remove: true, default: x}",
            "a.yaml:14:53: a removal of 'ExtensionAttribute3' takes no default",
        ),
        (
            "{target: ExtensionAttribute3, remove: true, apply: onCreate}",
            "a.yaml:14:53: a removal of 'ExtensionAttribute3' takes no apply",
        ),
        (
            "{target: CredentialData, source: PasswordHash}",
            "a.yaml:14:18: 'CredentialData' cannot be mapped: password hash sync sets it; use "
            "spec.passwordHashSync",
        ),
        ("{target: displayName, expression: '  '}", "a.yaml:14:43: expression is empty"),
        (
            "{target: ExtensionAtribute3, remove: true}",
            "a.yaml:14:18: 'ExtensionAtribute3' is not a template default mapping of user, so there is "
            "nothing to remove; did you mean 'ExtensionAttribute3'?",
        ),
        (
            "{target: favouriteColour, remove: true}",
            "a.yaml:14:18: 'favouriteColour' is not a template default mapping of user, so there is nothing "
            "to remove; a removal names a template default mapping",
        ),
    ],
)
def test_mapping_entry_rules(problems: Problems, entry: str, expected: str) -> None:
    assert problems({"a.yaml": with_mappings(f"      - {entry}\n")}) == [expected]


def test_the_same_target_twice_for_one_object(problems: Problems) -> None:
    text = with_mappings(
        "      - {target: department, source: department}\n"
        "      - {target: title, source: title}\n"
        "      - {target: Department, constant: Sales}\n"
    )
    assert problems({"a.yaml": text}) == [
        "a.yaml:16:18: target 'Department' is mapped twice for user (first on line 14)"
    ]


def test_the_same_target_for_different_objects_is_fine(load: Load) -> None:
    text = edit("    user:\n", "    group:\n      - {target: department, source: department}\n    user:\n")
    overrides = load({"a.yaml": text}).state.configurations[0].overrides
    assert [(o.object, o.target) for o in overrides] == [
        ("user", "department"),
        ("user", "extensionAttribute1"),
        ("group", "department"),
    ]


def test_two_sources_for_one_mapping_name_both_files(problems: Problems) -> None:
    shared = mapping_doc(
        "  selector:\n    matchLabels: {tier: standard}\n",
        "    - {target: title, source: title}\n    - {target: Department, source: department}\n",
    )
    other = mapping_doc("  configurations: [contoso]\n", "    - {target: title, constant: x}\n", name="other")
    assert problems({"a.yaml": CONTOSO, "m.yaml": shared, "n.yaml": other}) == [
        "m.yaml:11:7: user mapping of 'Department' for configuration 'contoso' is already set at a.yaml:14:9",
        "n.yaml:9:7: user mapping of 'title' for configuration 'contoso' is already set at m.yaml:10:7",
    ]


def test_attribute_mappings_need_configurations_or_selector(problems: Problems) -> None:
    both = mapping_doc(
        "  configurations: [contoso]\n  selector: {matchLabels: {tier: standard}}\n",
        "    - {target: a, source: mail}\n",
    )
    neither = mapping_doc("", "    - {target: a, source: mail}\n", name="n")
    assert problems({"a.yaml": CONTOSO, "m.yaml": both, "n.yaml": neither}) == [
        "m.yaml:5:1: spec: give configurations or selector, not both",
        "n.yaml:5:1: spec: give configurations (a list of names) or selector.matchLabels",
    ]


def test_a_selector_that_matches_nothing_is_a_warning(load: Load) -> None:
    shared = mapping_doc("  selector:\n    matchLabels: {tier: gold}\n", "    - {target: a, source: mail}\n")
    result = load({"a.yaml": CONTOSO, "m.yaml": shared})
    assert [str(w) for w in result.warnings] == ["m.yaml:6:3: warning: selector matches no configuration"]


def test_warnings_come_with_errors(problems: Problems) -> None:
    shared = mapping_doc("  selector:\n    matchLabels: {tier: gold}\n", "    - {target: a, source: mail}\n")
    assert problems({"a.yaml": config("x", "bad"), "m.yaml": shared}) == [
        "a.yaml:7:11: spec.domain: 'bad' is not a DNS domain name (like contoso.com)",
        "a.yaml:8:22: spec.notificationEmail: 'ops@bad' is not an e-mail address (like "
        "identity-ops@contoso.com)",
        "m.yaml:6:3: warning: selector matches no configuration",
    ]


# -- expressions ------------------------------------------------------------------------------------


def test_check_expression_without_the_grammar_only_wants_text() -> None:
    origin = Origin("a.yaml", 3, 20)
    assert [str(d) for d in check_expression(" ", origin)] == ["a.yaml:3:20: expression is empty"]


def test_expression_errors_point_into_the_yaml(problems: Problems) -> None:
    pytest.importorskip("reconciler.expressions")
    from reconciler.errors import ExpressionError
    from reconciler.expressions import parse

    bad = 'Join(" ", [givenName], [sn]'
    with pytest.raises(ExpressionError) as info:
        parse(bad)
    column, message = info.value.column, info.value.message
    text = with_mappings(
        f"      - target: a\n        expression: {bad}\n"
        f"      - {{target: b, expression: '{bad}'}}\n"
        f"      - target: c\n        expression: |\n          {bad}\n"
    )
    # The plain scalar starts at col 21 and the quoted one at col 33, but its text a column later;
    # for a block scalar only its start is known.
    assert problems({"a.yaml": text}) == [
        f"a.yaml:15:{21 + column - 1}: invalid expression: {message}",
        f"a.yaml:16:{33 + column}: invalid expression: {message}",
        f"a.yaml:18:21: invalid expression: {message} (column {column} of the expression)",
    ]


# -- the model -----------------------------------------------------------------------------------


def test_defaults(load: Load) -> None:
    minimal = (
        "apiVersion: cloudsync/v1\nkind: Configuration\nmetadata: {name: min}\n"
        "spec: {domain: contoso.com, notificationEmail: ops@contoso.com}\n"
    )
    (desired,) = load({"a.yaml": minimal}).state.configurations
    assert desired.settings == Settings(
        domain="contoso.com",
        notification_email="ops@contoso.com",
        enabled=True,
        password_hash_sync=True,
        accidental_deletes_enabled=True,
        accidental_deletes_threshold=500,
    )
    assert desired.scope == Scope.all()
    assert (desired.overrides, desired.labels, desired.deletion_protection, desired.restart_token) == (
        (),
        (),
        False,
        None,
    )
    assert desired.origin == Origin("a.yaml", 3, 18)
    assert desired.sources == ("a.yaml",)


def test_everything_written_reaches_the_model(load: Load) -> None:
    text = config(
        "contoso",
        extra=(
            "  enabled: false\n  passwordHashSync: false\n  accidentalDeletes: {enabled: false, "
            "threshold: 42}\n"
            "  deletionProtection: true\n  restartToken: 3\n"
            "  attributeMappings:\n    user:\n"
            "      - target: displayName\n        expression: 'Join(\" \", [givenName], [sn])'\n"
            "        default: Unknown\n        apply: onCreate\n"
            "      - {target: ExtensionAttribute3, remove: true}\n"
        ),
    )
    (desired,) = load({"a.yaml": text}).state.configurations
    s = desired.settings
    assert (
        s.enabled,
        s.password_hash_sync,
        s.accidental_deletes_enabled,
        s.accidental_deletes_threshold,
    ) == (
        False,
        False,
        False,
        42,
    )
    assert (desired.deletion_protection, desired.restart_token, desired.labels) == (
        True,
        "3",
        (("tier", "standard"),),
    )
    display, remove = desired.overrides
    assert (remove.target, remove.remove, remove.origin) == (
        "ExtensionAttribute3",
        True,
        Origin("a.yaml", 20, 9),
    )
    assert display.mapping is not None
    assert (display.mapping.kind, display.mapping.value, display.mapping.default, display.mapping.apply) == (
        MappingKind.EXPRESSION,
        'Join(" ", [givenName], [sn])',
        "Unknown",
        ApplyMode.ON_CREATE,
    )
    assert display.origin == Origin("a.yaml", 16, 9)


def test_shared_files_are_sources_and_order_is_by_name(load: Load) -> None:
    files: dict[str, str | bytes] = {
        "z.yaml": config("alpha") + "---\n" + config("beta", "beta.com"),
        "s.yaml": scope_doc("beta", "  groups: ['CN=G,DC=beta,DC=com']\n"),
        "m.yaml": mapping_doc(
            "  selector:\n    matchLabels: {tier: standard}\n", "    - {target: a, source: mail}\n"
        ),
    }
    result = load(files)
    assert [(c.name, c.sources) for c in result.state.configurations] == [
        ("alpha", ("m.yaml", "z.yaml")),
        ("beta", ("m.yaml", "s.yaml", "z.yaml")),
    ]
    assert result.state.paths == (".",)
    assert result.files == ("m.yaml", "s.yaml", "z.yaml")
    beta = result.state.by_name()["beta"]
    assert beta.origin == Origin("z.yaml", 13, 9)
    assert beta.scope == Scope(ScopeKind.GROUPS, ("CN=G,DC=beta,DC=com",))


def test_every_problem_of_every_file_in_one_run(problems: Problems) -> None:
    files: dict[str, str | bytes] = {
        "a.yaml": "a: [\n",
        "b.yaml": b"\xfe",
        "c.yaml": config("c", extra="  colour: red\n"),
        "d.yaml": with_mappings("      - {target: x}\n"),
    }
    assert problems(files) == [
        "a.yaml:2:1: YAML syntax error: did not find expected node content (while parsing a flow "
        "node that starts on line 2)",
        "b.yaml:1:1: file is not UTF-8 text (byte 0xfe)",
        "c.yaml:9:3: unknown field 'colour' in spec",
        "d.yaml:14:9: mapping of 'x' needs one of source, constant, expression or remove",
    ]


def test_load_error_lists_diagnostics_sorted() -> None:
    from reconciler.config.files import SourceFile

    with pytest.raises(LoadError) as info:
        load_files([SourceFile("b.yaml", b"- x\n"), SourceFile("a.yaml", b"- y\n")])
    assert [d.file for d in info.value.diagnostics] == ["a.yaml", "b.yaml"]


def test_unknown_source_attributes_and_spellings_warn_but_load(
    load: Callable[[dict[str, str]], LoadResult],
) -> None:
    text = with_mappings(
        "      - {target: a, source: departmnt}\n"
        "      - {target: b, expression: 'join(\" \", [givenName], [snn])'}\n"
        "      - {target: c, source: extensionAttribute7}\n"
    )
    result = load({"a.yaml": text})
    assert [str(w) for w in result.warnings] == [
        "a.yaml:14:29: warning: mapping of 'a': 'departmnt' is not a known user attribute of Active "
        "Directory; did you mean 'department'?",
        "a.yaml:15:33: warning: mapping of 'b': 'snn' is not a known user attribute of Active Directory; "
        "did you mean 'sn'?",
        "a.yaml:15:33: warning: mapping of 'b': function 'join' is spelled 'Join' in the reference",
    ]
    assert [o.target for o in result.state.configurations[0].overrides] == ["a", "b", "c"]


def test_a_repeated_mapping_entry_is_reported_everywhere_and_read_alike(
    load: Callable[[dict[str, str]], LoadResult], problems: Problems
) -> None:
    """Entries repeat across configurations; one read before does not hide a problem of the next."""
    entries = (
        "  attributeMappings:\n    user:\n"
        "      - {target: a, source: departmnt}\n      - {target: b, constant: X}\n"
    )
    result = load(
        {"a.yaml": config("contoso", extra=entries), "b.yaml": config("fabrikam", "fabrikam.com", entries)}
    )
    assert [f"{w.file}:{w.line}" for w in result.warnings] == ["a.yaml:11", "b.yaml:11"]
    a, b = (c.overrides for c in result.state.configurations)
    assert [o.mapping for o in a] == [o.mapping for o in b]
    assert [str(o.origin) for o in b] == ["b.yaml:11:9", "b.yaml:12:9"]
    bad = (
        "  attributeMappings:\n    user:\n"
        "      - {target: a, source: mail}\n      - {target: A, constant: X}\n"
    )
    assert problems(
        {"a.yaml": config("contoso", extra=bad), "b.yaml": config("fabrikam", "fabrikam.com", bad)}
    ) == [
        "a.yaml:12:18: target 'A' is mapped twice for user (first on line 11)",
        "b.yaml:12:18: target 'A' is mapped twice for user (first on line 11)",
    ]
