"""Parsing: tree shape, canonical text, warnings, and every kind of invalid expression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.errors import ExpressionError
from reconciler.expressions import (
    Attribute,
    BinaryOp,
    Call,
    Identifier,
    Number,
    Parameter,
    String,
    evaluate,
    expression_warnings,
    from_service_tree,
    function_names,
    parse,
    referenced_attributes,
    to_service_tree,
    unparse,
)
from reconciler.expressions.parser import quote, unquote

DEFAULT_MAPPINGS = Path(__file__).with_name("default_mapping_expressions.json")


class TestTree:
    def test_shapes(self) -> None:
        tree = parse('IIF([employeeType]="Intern","t-" & [alias],[alias])')
        assert tree == Call(
            "IIF",
            (
                BinaryOp("=", Attribute("employeeType"), String("Intern")),
                BinaryOp("&", String("t-"), Attribute("alias")),
                Attribute("alias"),
            ),
        )

    def test_empty_slots_are_missing_nodes(self) -> None:
        tree = parse('Replace([mail], "@contoso.com", , ,"", ,)')
        assert isinstance(tree, Call)
        assert [type(a).__name__ for a in tree.args] == [
            "Attribute",
            "String",
            "Missing",
            "Missing",
            "String",
            "Missing",
            "Missing",
        ]

    def test_literals(self) -> None:
        tree = parse('InStr("repEated","e",3,vbBinaryCompare)')
        assert isinstance(tree, Call)
        assert tree.args[2] == Number("3") and isinstance(tree.args[2], Number)
        assert isinstance(tree.args[3], Identifier)
        assert parse("BitAnd(&HF, &HF7)") == Call("BitAnd", (Number("&HF"), Number("&HF7")))
        assert parse('DateAdd("d", -10, Now())').args[1] == Number("-10")  # type: ignore[attr-defined]
        assert parse('Append("@", %DomainFQDN%)').args[1] == Parameter("DomainFQDN")  # type: ignore[attr-defined]

    def test_escapes(self) -> None:
        assert parse('"Company name: \\"Contoso\\""') == String('Company name: "Contoso"')
        assert parse('"a\\\\b"') == String("a\\b")
        # Unknown escapes are kept as written (official defaults write "\,"), with a warning.
        assert parse('"\\,"') == String("\\,")
        assert [w.column for w in expression_warnings('Trim("a\\,b")')] == [8]

    def test_positions(self) -> None:
        text = 'Join(" ", [givenName], [sn])'
        tree = parse(text)
        assert isinstance(tree, Call)
        assert (tree.start, tree.end, tree.column) == (0, len(text), 1)
        assert [a.column for a in tree.args] == [6, 11, 24]
        assert tree.source == text

    def test_positions_do_not_take_part_in_equality(self) -> None:
        assert parse("Trim( [a] )") == parse("Trim([a])")
        assert hash(parse("Trim( [a] )")) == hash(parse("Trim([a])"))

    def test_whitespace_and_newlines(self) -> None:
        text = 'Switch([Active], , \n  "1", "True", \n  "0", "False")'
        assert parse(text) == parse('Switch([Active], , "1", "True", "0", "False")')

    def test_zero_arguments(self) -> None:
        assert parse("Guid()") == Call("Guid", ())
        assert parse("Now( )") == Call("Now", ())

    def test_operators_group_left_to_right(self) -> None:
        tree = parse('[a] & "x" = "y"')
        assert tree == BinaryOp("=", BinaryOp("&", Attribute("a"), String("x")), String("y"))

    def test_function_names_match_ignoring_case_with_a_warning(self) -> None:
        tree = parse('switch([a], "d", "k", "v")')
        assert isinstance(tree, Call) and tree.name == "Switch" and tree.written_name == "switch"
        assert [w.message for w in expression_warnings('Instr([a], ",")')] == [
            "function 'Instr' is spelled 'InStr' in the reference"
        ]
        assert expression_warnings('InStr([a], ",")') == ()

    def test_parse_is_cached(self) -> None:
        text = 'Join(".", [givenName], [sn], "cached")'
        assert parse(text) is parse(text)

    def test_referenced_attributes(self) -> None:
        text = 'Replace([telephoneNumber], , "(?<p>\\\\d+)", "p", , "mobile", )'
        assert referenced_attributes(text) == {"telephoneNumber", "mobile"}
        assert referenced_attributes(parse('Join(",", [a], Trim([b]))')) == {"a", "b"}

    def test_function_catalog(self) -> None:
        names = function_names(documented_only=True)
        assert len(names) == 48
        assert {"CRef", "Contains", "DefaultDomain"} <= function_names() - names


class TestUnparse:
    @pytest.mark.parametrize(
        ("text", "canonical"),
        [
            (
                'Replace([preferredLanguage], "-", , , "_", ,  )',
                'Replace([preferredLanguage], "-", , , "_", , )',
            ),
            ('IIF([a]="1","x",[b])', 'IIF([a] = "1", "x", [b])'),
            ("BitAnd(&HF,&HF7)", "BitAnd(&HF, &HF7)"),
            ('instr("a","b",1,vbTextCompare)', 'InStr("a", "b", 1, vbTextCompare)'),
            ('"say \\"hi\\" \\\\"', '"say \\"hi\\" \\\\"'),
            ('Append("@", %DomainFQDN%)', 'Append("@", %DomainFQDN%)'),
            ("Guid()", "Guid()"),
        ],
    )
    def test_canonical_text(self, text: str, canonical: str) -> None:
        assert unparse(parse(text)) == canonical
        assert parse(canonical) == parse(text)

    def test_default_mappings_round_trip(self) -> None:
        for text in json.loads(DEFAULT_MAPPINGS.read_text(encoding="utf-8")):
            tree = parse(text)
            assert parse(unparse(tree)) == tree, text


# (expression, message, column)
INVALID: list[tuple[str, str, int]] = [
    # unknown functions, with a suggestion when one is close
    ("Trm([mail])", "unknown function 'Trm'; did you mean 'Trim'?", 1),
    ('Join(",", ToLowr([a]))', "unknown function 'ToLowr'; did you mean 'ToLower'?", 11),
    ("Substring([a], 1, 2)", "unknown function 'Substring'; did you mean 'Mid'?", 1),
    ("Frobnicate([a])", "unknown function 'Frobnicate'", 1),
    # arity, naming the function and its documented arity
    ("Mid([a], 1)", "Mid takes 3 arguments: Mid(source, start, length); got 2", 1),
    ("Trim()", "Trim takes 1 argument: Trim(value); got 0", 1),
    ("Trim([a], )", "Trim takes 1 argument: Trim(value); got 2", 1),
    ("Guid(1)", "Guid takes no arguments: Guid(); got 1", 1),
    ('Join(",")', "Join takes at least 2 arguments: Join(separator, source1, ...); got 1", 1),
    ('InStr("a", "b", 1, vbTextCompare, 3)', "InStr takes 2 to 4 arguments", 1),
    (
        'Append("x", Switch([a], "d", "k"))',
        "Switch takes at least 4 arguments (an even number): Switch(source, defaultValue, "
        "key1, value1, ...); got 3",
        13,
    ),
    ('Switch([a], "d", "k", "v", "k2")', "Switch takes at least 4 arguments (an even number)", 1),
    # unbalanced brackets, parentheses and quotes
    ("Trim([mail]", "missing ')' to close 'Trim(' opened here", 5),
    ("Mid([a], 1, 2", "missing ')' to close 'Mid(' opened here", 4),
    ("Trim([mail]))", "unexpected ')' with no matching '('", 13),
    ("Trim([mail)", "unclosed '[': an attribute reference needs a closing ']'", 6),
    ("Trim(mail])", "unexpected bare word 'mail': write \"mail\" for text or [mail] for an attribute", 6),
    ("Trim([mail]])", "unexpected ']' with no matching '['", 12),
    ('Trim("abc)', "unterminated string: missing closing '\"'", 6),
    ("(Trim([a]))", "'(' must follow a function name; parentheses do not group", 1),
    # bad escapes
    ('Trim("abc\\")', 'unterminated string: this \\" is an escaped quote, not the end of the string', 10),
    ('"abc\\', "backslash at the end of the expression: the string is not closed", 5),
    # other mistakes
    ("", "empty expression", 1),
    ("Trim([])", "empty attribute name '[]'", 6),
    ("Trim([a]) [b]", "unexpected '[' after the end of the expression (missing ',' or operator?)", 11),
    ("Append([a] [b])", "expected ',' or ')' after argument 1 of Append, found '['", 12),
    ('IIF([a]="1" AND [b]="2", "x", "y")', "AND is not supported; nest IIF calls to combine conditions", 13),
    ('IIF([a]=="1","x","y")', "'==' is not an operator; compare with '='", 8),
    ('IIF([a] =, "x", "y")', "missing value after '='", 9),
    ('Join("-", [a] + [b])', "'+' is not an operator", 15),
    ('InStr("a", "b", 1, vbFoo)', "'vbFoo' is not a compareType value of InStr; use one of", 20),
    (
        'InStr("a","b",1,vbbinarycompare)',
        "'vbbinarycompare' is not a compareType value of InStr; did you mean 'vbBinaryCompare'?",
        17,
    ),
    ('ConvertFromBase64("eA==", UTF-8)', "'-' is not an operator", 30),
    ('Join("a", SelectUniqueValue([a],[b]))', "SelectUniqueValue must be the outermost function", 11),
    ("Left([a], 1.5)", "malformed number '1.5': only whole numbers are allowed", 11),
    ("Trim(True)", "bare word 'True': booleans are written as strings, \"True\"", 6),
    ("Trim('abc')", 'strings are written in double quotes: "text"', 6),
    ("Trim(Trim)", "'Trim' is a function; call it as Trim(...)", 6),
    ('Append("@", %Domain)', "unclosed '%': write a parameter as %Name%", 13),
    ('IIF([a] = "1",\n  Left([b], 2),\n  Mid([c], 1))', "Mid takes 3 arguments", 34),
]


@pytest.mark.parametrize(("text", "message", "column"), INVALID)
def test_invalid(text: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert type(info.value) is ExpressionError
    assert info.value.message.startswith(message)
    assert info.value.column == column
    assert info.value.expression == text


class TestStrict:
    def test_unknown_escape(self) -> None:
        with pytest.raises(ExpressionError, match=r"unknown escape '\\,'") as info:
            parse('Trim("a\\,b")', strict=True)
        assert info.value.column == 8

    def test_function_name_casing(self) -> None:
        with pytest.raises(ExpressionError, match="function 'instr' is spelled 'InStr'"):
            parse('instr("a", "b")', strict=True)

    def test_canonical_text_passes(self) -> None:
        assert parse('InStr("a\\\\,b", ",")', strict=True) == parse('InStr("a\\\\,b", ",")')


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]


def test_deep_nesting_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError):
        parse("Trim(" * 5000 + "[a]" + ")" * 5000)


def test_a_long_operator_chain_counts_as_nesting() -> None:
    # Each operator is a level of the tree: a chain of thousands overflowed evaluation and the service
    # tree (a RecursionError) and, with every level keeping its source text, needed quadratic memory.
    hundred = parse("&".join(["[a]"] * 101))
    assert evaluate(hundred, {"a": "x"}) == "x" * 101
    assert from_service_tree(to_service_tree(hundred)) == " & ".join(["[a]"] * 101)
    with pytest.raises(ExpressionError, match="nested too deeply") as info:
        parse("&".join(["[a]"] * 200_000))
    assert info.value.column == len("[a]&") * 100 + len("[a]") + 1
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("Trim(" * 60 + "&".join(["[a]"] * 60) + ")" * 60)
    assert parse("Trim(" * 50 + "&".join(["[a]"] * 50) + ")" * 50)


def test_a_service_tree_nested_too_deeply_is_an_expression_error() -> None:
    tree: dict[str, object] = {"name": "a", "type": "Attribute", "expression": None, "parameters": []}
    for _ in range(5000):
        tree = {"name": "Trim", "type": "Function", "parameters": [{"key": "source", "value": tree}]}
    with pytest.raises(ExpressionError, match="nested too deeply"):
        from_service_tree(tree)


class TestQuoting:
    """``quote`` and ``unquote``: the one reading of a string literal's text, the parser's."""

    @given(st.text())
    def test_unquote_reads_what_quote_writes_and_what_parse_reads(self, value: str) -> None:
        text = quote(value)
        assert unquote(text) == value
        assert parse(text) == String(value)

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ('"a\\"b"', 'a"b'),
            ('"a\\\\b"', "a\\b"),
            # an unknown escape keeps its backslash, as the parser keeps it (expressions.md 1.7)
            ('"a\\,b"', "a\\,b"),
            ('"OU=x\\2C y"', "OU=x\\2C y"),
            ('"\\\\,"', "\\,"),
        ],
    )
    def test_unquote_reads_as_the_parser(self, text: str, value: str) -> None:
        assert unquote(text) == value
        assert parse(text) == String(value)

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            # A lone backslash at the end is the text's own, never dropped: dropping it would change
            # what is written back. The parser refuses the same text as an unterminated string.
            ('"abc\\"', "abc\\"),
            ("abc\\", "abc\\"),
            ('"abc\\\\\\"', "abc\\\\"),
            ('"\\"', "\\"),
        ],
    )
    def test_a_trailing_backslash_is_kept(self, text: str, value: str) -> None:
        assert unquote(text) == value

    def test_unquote_takes_the_quotes_off_only_when_both_are_there(self) -> None:
        assert unquote('  "x"  ') == "x"
        assert unquote('"x') == '"x'
        assert unquote("x") == "x"
        assert unquote('"') == '"'
