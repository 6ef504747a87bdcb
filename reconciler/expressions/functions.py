"""The table of expression functions: names, parameters, arity and service parameter keys. Pure data.

Sources are the Cloud Sync reference ("CS") and the app-provisioning reference ("AP"); together they
document 48 functions. A few more names appear only in official examples or in the service's
``/schema/functions`` sample (CRef, Contains, DefaultDomain, AppRoleAssignments,
AssertiveAppRoleAssignmentsComplex); they parse too, and ``function_names(documented_only=True)``
leaves them out.

Service parameter keys: where the service's parseExpression output or ``/schema/functions`` shows the
key, that key is used (Append source/suffix, BitAnd left/right, Error message, FormatDateTime
source/inputFormat/outputFormat, IIF one/four/five with a comparison split into one/two/three, Item
source/index, Join separator/source..., Left source/length, Mid source/start/length, Replace
source/Find/RegularExpression/RegularExpressionGroupName/Replacement/ReplacementPropertyName/Template,
Split source/delimiter, Switch source/defaultValue/switchValue..., and ``source`` for DateFromNum, Not,
IsPresent, RemoveDuplicates, SingleAppRoleAssignment, StripSpaces, Trim). Where no key is known the
scheme is: the main input is ``source`` (as in every observed one-input function), every other
parameter is the documented parameter name in lower camel case, and a repeated parameter repeats its key.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMPARISON_OPERATORS",
    "ENUM_VALUES",
    "FUNCTIONS",
    "OPERATORS",
    "FunctionSpec",
    "Param",
    "function_names",
    "lookup_function",
]

# Parameter kinds: "str", "num" (a whole number; written unquoted in canonical text), "enum", "any".
STR, NUM, ENUM, ANY = "str", "num", "enum", "any"

ENUM_VALUES: dict[str, tuple[str, ...]] = {
    "compareType": ("vbBinaryCompare", "vbTextCompare"),
    "encoding": ("Unicode", "ASCII", "UTF8"),
}

COMPARISON_OPERATORS = ("=", "<>", "<", "<=", ">", ">=")
OPERATORS = (*COMPARISON_OPERATORS, "&")


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: documented name, service key, kind, and whether it repeats (source1...sourceN)."""

    name: str
    key: str
    kind: str = ANY
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One function. ``max_args`` None means no upper bound; ``even`` requires an even argument count."""

    name: str
    params: tuple[Param, ...]
    min_args: int
    max_args: int | None
    lists: frozenset[str]
    even: bool = False
    documented: bool = True

    def layout(self, nargs: int) -> tuple[Param, ...]:
        """The parameters in slot order for a call written with ``nargs`` slots."""
        if self.name == "FormatDateTime" and nargs == 4:
            return _FORMAT_DATETIME_AP
        return self.params

    def param_for_slot(self, index: int, nargs: int) -> Param:
        """The parameter an argument slot fills, given the number of slots written."""
        params = self.layout(nargs)
        if index < len(params) and not params[index].repeat:
            return params[index]
        return params[-1]

    def signature(self) -> str:
        if self.even:
            return f"{self.name}(source, defaultValue, key1, value1, ...)"
        names = []
        for p in self.params:
            names.append(f"{p.name}1, ..." if p.repeat else p.name)
        return f"{self.name}({', '.join(names)})"

    def arity_text(self) -> str:
        lo, hi = self.min_args, self.max_args
        if hi is None:
            count = f"at least {lo} argument{'s' if lo != 1 else ''}"
        elif lo == hi:
            count = f"{lo} argument{'s' if lo != 1 else ''}" if lo else "no arguments"
        else:
            count = f"{lo} to {hi} arguments"
        if self.even:
            count += " (an even number)"
        return count


def _p(name: str, key: str | None = None, kind: str = ANY, *, repeat: bool = False) -> Param:
    return Param(name, key if key is not None else name, kind, repeat)


_CS = frozenset({"CS"})
_AP = frozenset({"AP"})
_BOTH = frozenset({"CS", "AP"})
_NONE: frozenset[str] = frozenset()

# AP documents FormatDateTime(source, dateTimeStyles, inputFormat, outputFormat); CS documents three
# parameters, and the service's own function list and stored schemas use the three-parameter form. The
# table keeps the CS form; four written arguments switch to the AP layout.
_FORMAT_DATETIME_AP = (
    _p("source", kind=STR),
    _p("dateTimeStyles", kind=STR),
    _p("inputFormat", kind=STR),
    _p("outputFormat", kind=STR),
)

_SPECS: tuple[FunctionSpec, ...] = (
    FunctionSpec("Append", (_p("source", kind=STR), _p("suffix", kind=STR)), 2, 2, _BOTH),
    FunctionSpec("AppRoleAssignmentsComplex", (_p("appRoleAssignments", "source"),), 1, 1, _AP),
    FunctionSpec("BitAnd", (_p("value1", "left", NUM), _p("value2", "right", NUM)), 2, 2, _BOTH),
    FunctionSpec("CBool", (_p("expression", "source"),), 1, 1, _BOTH),
    FunctionSpec("CDate", (_p("expression", "source", STR),), 1, 1, _AP),
    FunctionSpec("Coalesce", (_p("source", repeat=True),), 1, None, _AP),
    FunctionSpec("ConvertFromBase64", (_p("source", kind=STR), _p("encoding", kind=ENUM)), 1, 2, _CS),
    FunctionSpec("ConvertToBase64", (_p("source", kind=STR),), 1, 1, _BOTH),
    FunctionSpec("ConvertToUTF8Hex", (_p("source", kind=STR),), 1, 1, _BOTH),
    FunctionSpec("Count", (_p("attribute", "source"),), 1, 1, _BOTH),
    FunctionSpec("CStr", (_p("value", "source"),), 1, 1, _BOTH),
    FunctionSpec(
        "DateAdd",
        (_p("interval", kind=STR), _p("value", kind=NUM), _p("dateTime")),
        3,
        3,
        _AP,
    ),
    FunctionSpec("DateDiff", (_p("interval", kind=STR), _p("date1"), _p("date2")), 3, 3, _AP),
    FunctionSpec("DateFromNum", (_p("value", "source", NUM),), 1, 1, _BOTH),
    FunctionSpec("DNComponent", (_p("dn", "source"), _p("componentNumber", kind=NUM)), 2, 2, _CS),
    FunctionSpec("Error", (_p("errorMessage", "message", STR),), 1, 1, _CS),
    FunctionSpec(
        "FormatDateTime",
        (_p("source", kind=STR), _p("inputFormat", kind=STR), _p("outputFormat", kind=STR)),
        3,
        4,
        _BOTH,
    ),
    FunctionSpec("Guid", (), 0, 0, _BOTH),
    FunctionSpec("IgnoreFlowIfNullOrEmpty", (_p("expression", "source"),), 1, 1, _AP),
    FunctionSpec(
        "IIF", (_p("condition", "one"), _p("valueIfTrue", "four"), _p("valueIfFalse", "five")), 3, 3, _BOTH
    ),
    FunctionSpec(
        "InStr",
        (
            _p("value1", "source", STR),
            _p("value2", "match", STR),
            _p("start", kind=NUM),
            _p("compareType", kind=ENUM),
        ),
        2,
        4,
        _BOTH,
    ),
    FunctionSpec("IsNull", (_p("expression", "source"),), 1, 1, _BOTH),
    FunctionSpec("IsNullOrEmpty", (_p("expression", "source"),), 1, 1, _BOTH),
    FunctionSpec("IsPresent", (_p("expression", "source"),), 1, 1, _BOTH),
    FunctionSpec("IsString", (_p("expression", "source"),), 1, 1, _BOTH),
    FunctionSpec("Item", (_p("attribute", "source"), _p("index", kind=NUM)), 2, 2, _BOTH),
    FunctionSpec("Join", (_p("separator", kind=STR), _p("source", repeat=True)), 2, None, _BOTH),
    FunctionSpec("Left", (_p("string", "source", STR), _p("numChars", "length", NUM)), 2, 2, _BOTH),
    FunctionSpec("Mid", (_p("source", kind=STR), _p("start", kind=NUM), _p("length", kind=NUM)), 3, 3, _BOTH),
    FunctionSpec("NormalizeDiacritics", (_p("source", kind=STR),), 1, 1, _BOTH),
    FunctionSpec("Not", (_p("source"),), 1, 1, _BOTH),
    FunctionSpec("Now", (), 0, 0, _AP),
    FunctionSpec("NumFromDate", (_p("value", "source", STR),), 1, 1, _AP),
    FunctionSpec("PCase", (_p("source", kind=STR), _p("wordSeparators", kind=STR)), 1, 2, _AP),
    FunctionSpec(
        "RandomString",
        (
            _p("length", kind=NUM),
            _p("minimumNumbers", kind=NUM),
            _p("minimumSpecialCharacters", kind=NUM),
            _p("minimumCapital", kind=NUM),
            _p("minimumLowerCase", kind=NUM),
            _p("charactersToAvoid", kind=STR),
        ),
        5,
        6,
        _AP,
    ),
    FunctionSpec("Redact", (_p("value", "source"),), 1, 1, _AP),
    FunctionSpec("RemoveDuplicates", (_p("attribute", "source"),), 1, 1, _BOTH),
    FunctionSpec(
        "Replace",
        (
            _p("source", kind=STR),
            _p("oldValue", "Find", STR),
            _p("regexPattern", "RegularExpression", STR),
            _p("regexGroupName", "RegularExpressionGroupName", STR),
            _p("replacementValue", "Replacement", STR),
            _p("replacementAttributeName", "ReplacementPropertyName"),
            _p("template", "Template", STR),
        ),
        1,
        7,
        _BOTH,
    ),
    FunctionSpec("SelectUniqueValue", (_p("uniqueValueRule", "source", repeat=True),), 2, None, _BOTH),
    FunctionSpec("SingleAppRoleAssignment", (_p("appRoleAssignments", "source"),), 1, 1, _BOTH),
    FunctionSpec("Split", (_p("source", kind=STR), _p("delimiter", kind=STR)), 2, 2, _BOTH),
    FunctionSpec("StringFromSid", (_p("objectSID", "source"),), 1, 1, _CS),
    FunctionSpec("StripSpaces", (_p("source", kind=STR),), 1, 1, _BOTH),
    FunctionSpec(
        "Switch",
        (_p("source"), _p("defaultValue"), _p("switchValue", repeat=True)),
        4,
        None,
        _BOTH,
        even=True,
    ),
    FunctionSpec("ToLower", (_p("source", kind=STR), _p("culture", kind=STR)), 1, 2, _BOTH),
    FunctionSpec("ToUpper", (_p("source", kind=STR), _p("culture", kind=STR)), 1, 2, _BOTH),
    FunctionSpec("Trim", (_p("value", "source"),), 1, 1, _CS),
    FunctionSpec(
        "Word",
        (_p("string", "source", STR), _p("wordNumber", kind=NUM), _p("delimiters", kind=STR)),
        3,
        3,
        _BOTH,
    ),
    # Named in official examples or the service's function list, but in neither reference.
    FunctionSpec("CRef", (_p("dn", "source", STR),), 1, 1, _NONE, documented=False),
    FunctionSpec(
        "Contains", (_p("attribute", "source"), _p("match", kind=STR)), 2, 2, _NONE, documented=False
    ),
    FunctionSpec("DefaultDomain", (), 0, 0, _NONE, documented=False),
    FunctionSpec("AppRoleAssignments", (_p("source"),), 1, 1, _NONE, documented=False),
    FunctionSpec(
        "AssertiveAppRoleAssignmentsComplex",
        (_p("appRoleAssignments", "source"),),
        1,
        1,
        _NONE,
        documented=False,
    ),
)

FUNCTIONS: dict[str, FunctionSpec] = {spec.name: spec for spec in _SPECS}
_BY_FOLDED: dict[str, FunctionSpec] = {spec.name.casefold(): spec for spec in _SPECS}


def lookup_function(name: str) -> FunctionSpec | None:
    """The function called ``name``, matched exactly first, then ignoring case."""
    spec = FUNCTIONS.get(name)
    if spec is None:
        spec = _BY_FOLDED.get(name.casefold())
    return spec


def function_names(documented_only: bool = False) -> frozenset[str]:
    """Canonical names of the functions the parser accepts (48 documented ones plus a few more)."""
    return frozenset(s.name for s in _SPECS if s.documented or not documented_only)
