"""The four places where Microsoft's documented examples and this evaluator disagreed, each with the
documented example as its vector and the reading chosen (docs/expressions.md gives the reasons).

1. DateFromNum: the value is the documented instant; as text it renders like every other DateTime.
2. Mid with two arguments (the Cloud Sync Item example): refused with advice; the three-argument
   form gives the documented result.
3. Replace with regexPattern, regexGroupName and replacementAttributeName: app-provisioning
   Example 5's output.
4. FormatDateTime input formats .NET would refuse: refused, by ``validate`` when written as text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config.load import load_paths
from reconciler.errors import ExpressionError, ExpressionEvaluationError, LoadError
from reconciler.expressions import evaluate, parse

# -- 1. DateFromNum ---------------------------------------------------------------------------------

# CS: "Returns a DateTime representing 2012-01-01 23:00:00"; AP: "January 1, 2012 at 11:00PM".
AD_TICKS = "129699324000000000"


@pytest.mark.parametrize("expression", [f"DateFromNum({AD_TICKS})", "DateFromNum([lastLogonTimestamp])"])
def test_date_from_num_renders_like_every_datetime(expression: str) -> None:
    attributes = {"lastLogonTimestamp": AD_TICKS}
    assert evaluate(expression, attributes) == "1/1/2012 11:00:00 PM"
    # The same instant, rendered the way CDate's documented examples render theirs.
    assert evaluate('CDate("2012-01-01T23:00:00Z")', {}) == evaluate(expression, attributes)


def test_date_from_num_is_the_documented_instant_in_the_cloud_sync_form() -> None:
    text = f'FormatDateTime(DateFromNum({AD_TICKS}), , "yyyy-MM-dd HH:mm:ss")'
    assert evaluate(text, {}) == "2012-01-01 23:00:00"


def test_date_from_num_in_the_services_own_pwdlastset_mapping() -> None:
    # From a real AD2AAD job schema: a DateTime needs no inputFormat.
    text = 'IIF(IsPresent([pwdLastSet]), FormatDateTime(DateFromNum([pwdLastSet]), , "yyyyMMddHHmmss.0Z"), )'
    assert evaluate(text, {"pwdLastSet": AD_TICKS}) == "20120101230000.0Z"
    assert evaluate(text, {"pwdLastSet": "0"}) == "16010101000000.0Z"  # "must change password"


def test_date_from_num_outside_the_range_of_dates_is_an_error() -> None:
    # 0x7FFFFFFFFFFFFFFF is AD's "never" for accountExpires; .NET's FromFileTime refuses it too.
    with pytest.raises(ExpressionEvaluationError, match="outside the range of dates"):
        evaluate("DateFromNum([accountExpires])", {"accountExpires": "9223372036854775807"})


# -- 2. Mid with two arguments ----------------------------------------------------------------------

CS_ITEM_EXAMPLE = 'Mid(Item([proxyAddresses],Contains([proxyAddresses], "SMTP:")),6)'
PROXIES = {"proxyAddresses": ["smtp:alias@contoso.com", "SMTP:john@contoso.com"]}


def test_the_cloud_sync_item_example_is_refused_with_advice() -> None:
    with pytest.raises(ExpressionError) as info:
        parse(CS_ITEM_EXAMPLE)
    assert info.value.column == 1
    assert info.value.message.startswith("Mid takes 3 arguments: Mid(source, start, length); got 2")
    assert "Mid(source, 6, 1024)" in info.value.message


def test_the_three_argument_form_returns_the_documented_primary_address() -> None:
    # "Returns the primary email address": a length past the end takes the rest of the text.
    text = 'Mid(Item([proxyAddresses],Contains([proxyAddresses], "SMTP:")),6,1024)'
    assert evaluate(text, PROXIES) == "john@contoso.com"


# -- 3. Replace with a named group and a replacement attribute -------------------------------------

EXAMPLE_5 = (
    'Replace([telephoneNumber], , "\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})", "phoneNumber" , , '
    "[mobile], )"
)


def test_app_provisioning_example_5() -> None:
    # source "" (empty string), [mobile] = "+91 8887779999" -> 8887779999
    assert evaluate(EXAMPLE_5, {"telephoneNumber": "", "mobile": "+91 8887779999"}) == "8887779999"


def test_a_source_with_a_value_is_returned_as_it_is() -> None:
    assert evaluate(EXAMPLE_5, {"telephoneNumber": "+91 1112223333", "mobile": "+91 8887779999"}) == (
        "+91 1112223333"
    )


def test_an_absent_source_also_takes_the_group_and_no_match_gives_nothing() -> None:
    assert evaluate(EXAMPLE_5, {"mobile": "+91 8887779999"}) == "8887779999"
    assert evaluate(EXAMPLE_5, {"mobile": "no digits"}) is None
    assert evaluate(EXAMPLE_5, {}) is None


def test_the_replacement_attribute_may_be_named_in_quotes() -> None:
    text = EXAMPLE_5.replace("[mobile]", '"mobile"')
    assert evaluate(text, {"telephoneNumber": "", "mobile": "+91 8887779999"}) == "8887779999"


# -- 4. FormatDateTime input formats ----------------------------------------------------------------

DOCUMENTED_FORMATS = [
    # CS (three arguments) and AP (four, dateTimeStyles second)
    ('FormatDateTime([x], "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")', "20150123105347.1Z", "2015-01-23"),
    ('FormatDateTime([x], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")', "20150123105347.1Z", "2015-01-23"),
    # AP NumFromDate: Workday and SuccessFactors
    ('FormatDateTime([x], ,"yyyy-MM-ddzzz", "yyyy-MM-dd")', "2020-12-31-08:00", "2020-12-31"),
    ('FormatDateTime([x], ,"M/d/yyyy hh:mm:ss tt","yyyy-MM-dd")', "8/25/2021 05:41:18 PM", "2021-08-25"),
]


@pytest.mark.parametrize(("expression", "value", "expected"), DOCUMENTED_FORMATS)
def test_documented_formats(expression: str, value: str, expected: str) -> None:
    assert evaluate(expression, {"x": value}) == expected


INVALID_LITERAL_FORMATS = [
    # one character that is not a .NET standard format (.NET: FormatException)
    ('FormatDateTime([x], "Q", "yyyy-MM-dd")', "inputFormat: 'Q' is not a .NET standard date format"),
    ('FormatDateTime([x], , "h", "yyyy")', "inputFormat: 'h' is not a .NET standard date format"),
    ('FormatDateTime([x], "yyyy", "Q")', "outputFormat: 'Q' is not a .NET standard date format"),
    # nothing to read a date from (.NET would take today's date)
    ('FormatDateTime([x], "\'on call\'", "yyyy")', "has no date or time field to read"),
    # an unclosed quote, and no output format at all
    ('FormatDateTime([x], "yyyy \'x", "yyyy")', "unclosed quote"),
    ('FormatDateTime([x], "yyyy", "")', "FormatDateTime: outputFormat is empty"),
]


@pytest.mark.parametrize(("expression", "message"), INVALID_LITERAL_FORMATS)
def test_an_invalid_literal_format_is_refused_when_parsing(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        parse(expression)
    assert type(info.value) is ExpressionError


def test_validate_refuses_an_invalid_format_at_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "apiVersion: cloudsync/v1\n"
        "kind: Configuration\n"
        "metadata: {name: contoso}\n"
        "spec:\n"
        "  domain: contoso.com\n"
        "  notificationEmail: ops@contoso.com\n"
        "  attributeMappings:\n"
        "    user:\n"
        "      - target: department\n"
        '        expression: \'FormatDateTime([whenCreated], "Q", "yyyy")\'\n'
    )
    with pytest.raises(LoadError) as info:
        load_paths([str(tmp_path)])
    (problem,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert problem.line == 10
    assert "'Q' is not a .NET standard date format" in problem.message


def test_text_without_an_input_format_is_refused_when_evaluated() -> None:
    # Only a DateTime needs no inputFormat; the service's own mapping gives it one from DateFromNum.
    with pytest.raises(ExpressionEvaluationError, match="inputFormat is empty"):
        evaluate('FormatDateTime([x], , "yyyy-MM-dd")', {"x": "2015-01-23"})


def test_a_computed_invalid_format_is_refused_when_evaluated() -> None:
    with pytest.raises(ExpressionEvaluationError, match=r"'Q' is not a \.NET standard date format"):
        evaluate('FormatDateTime([x], [fmt], "yyyy")', {"x": "2015", "fmt": "Q"})


def test_standard_formats_read_and_write_as_dotnet_does() -> None:
    assert evaluate('FormatDateTime([x], "d", "o")', {"x": "01/23/2015"}) == "2015-01-23T00:00:00.0000000Z"
    assert evaluate('FormatDateTime([x], "s", "D")', {"x": "2015-01-23T10:53:47"}) == (
        "Friday, 23 January 2015"
    )
    # A field written twice must agree with itself, as .NET's ParseExact checks.
    assert evaluate('FormatDateTime([x], "yyyy-MM-dd (yyyy)", "d")', {"x": "2015-01-23 (2015)"}) == (
        "01/23/2015"
    )
    with pytest.raises(ExpressionEvaluationError, match="two different values"):
        evaluate('FormatDateTime([x], "yyyy-MM-dd (yyyy)", "d")', {"x": "2015-01-23 (2016)"})
