"""OData query options as Microsoft Graph reads them, for the emulator's collections and entities.

``options(query, version)`` turns a request's query string into the options Graph knows (names are
case-insensitive; in beta the ``$`` may be left out) or an error for an option Graph refuses.
``Collection`` applies ``$filter`` (the operators Graph supports on the property, as
``queryable.FILTERABLE`` lists them), ``$search``, ``$orderby``, ``$count``, ``$select``, ``$expand``
and ``$top``/``$skiptoken`` paging to a list of JSON objects, with the rules Graph has for directory
objects (advanced queries need ``ConsistencyLevel: eventual``). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.emulator.queryable import FILTERABLE, ORDERABLE, SEARCHABLE

__all__ = ["KNOWN", "Collection", "QueryError", "options", "select_names"]

JSON = dict[str, Any]

# Every system query option Graph reads; others starting with "$" are refused.
KNOWN = ("select", "filter", "count", "search", "top", "skip", "skiptoken", "expand", "orderby", "format")
MAX_TOP = 999
MAX_FILTER_LENGTH = 4096


class QueryError(Exception):
    """A query Graph would refuse: ``status``, ``code`` and the message of its error body."""

    def __init__(self, message: str, code: str = "BadRequest", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def options(query: Mapping[str, str], version: str) -> dict[str, str]:
    """The system query options of ``query`` by lower-case name without ``$``; QueryError when unknown.

    Graph reads option names case-insensitively; in beta the ``$`` prefix is optional. A name without
    ``$`` in v1.0 is a custom option, which Graph ignores.
    """
    found: dict[str, str] = {}
    for raw, value in query.items():
        name = raw.strip().lower()
        if name.startswith("$"):
            name = name[1:]
            if name not in KNOWN:
                raise QueryError(f"Query option '{raw[:40]}' is not supported.")
        elif version != "beta" or name not in KNOWN:
            continue
        if name in found:
            raise QueryError(
                f"Query option '${name}' was specified more than once, but it must be specified at most once."
            )
        found[name] = value
    return found


def _canonical(names: Iterable[str]) -> dict[str, str]:
    return {n.lower(): n for n in names}


def select_names(text: str, properties: Iterable[str], type_name: str) -> list[str]:
    """The property names a ``$select`` names, spelt as the metadata spells them; QueryError if unknown."""
    known = _canonical(properties)
    wanted: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        if name == "*":
            wanted.extend(known.values())
            continue
        canonical = known.get(name.lower())
        if canonical is None:
            raise QueryError(
                f"Parsing OData Select and Expand failed: Could not find a property named '{name[:60]}' "
                f"on type 'microsoft.graph.{type_name}'."
            )
        wanted.append(canonical)
    return wanted


# --------------------------------------------------------------------------------------------------
# $filter


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<date>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12})|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),:/])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
# The string functions of a $filter: (value, argument) -> whether the value passes.
_TEXT_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": str.__contains__,
}

Predicate = Callable[[JSON], bool]


class _Parser:
    """Recursive descent over the tokens of a $filter; builds a predicate while it checks the rules."""

    def __init__(self, text: str, type_name: str, advanced: bool) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise QueryError(f"Invalid filter clause: syntax error at position {pos}.")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.pos = 0
        self.type_name = type_name
        self.props = FILTERABLE.get(type_name, {})
        self.canonical = _canonical(self.props)
        self.advanced = advanced
        self.lambda_var: str | None = None
        self.lambda_prop: str | None = None

    # -- tokens --

    def peek(self, offset: int = 0) -> tuple[str, str]:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (value is not None and token[1].lower() != value):
            want = f"'{value}'" if value else "more"
            raise QueryError(f"Invalid filter clause: expected {want} at '{token[1][:30]}'.")
        self.pos += 1
        return token

    def word(self, value: str) -> bool:
        kind, text = self.peek()
        return kind == "word" and text.lower() == value

    # -- rules --

    def unsupported(self, prop: str) -> QueryError:
        return QueryError(
            f"Unsupported or invalid query filter clause specified for property '{prop[:60]}' of "
            f"resource '{self.type_name[0].upper() + self.type_name[1:]}'.",
            "Request_UnsupportedQuery",
        )

    def use(self, prop: str, operator: str) -> str:
        canonical = self.canonical.get(prop.lower())
        rules = self.props.get(canonical or "")
        if canonical is None or rules is None:
            raise self.unsupported(prop)
        if operator in rules.operators or (operator in rules.advanced and self.advanced):
            return canonical
        if operator in rules.advanced:
            raise QueryError(
                f"Operator '{operator}' on '{canonical}' is an advanced query: it needs the header "
                "ConsistencyLevel: eventual and $count=true.",
                "Request_UnsupportedQuery",
            )
        raise QueryError(
            f"Unsupported query: '{operator}' is not supported on '{canonical}'.", "Request_UnsupportedQuery"
        )

    # -- grammar --

    def parse(self) -> Predicate:
        if not self.tokens:
            raise QueryError("Invalid filter clause: the filter is empty.")
        predicate = self.disjunction()
        if self.peek()[0] != "end":
            raise QueryError(f"Invalid filter clause: unexpected '{self.peek()[1][:30]}'.")
        return predicate

    def disjunction(self) -> Predicate:
        return self._joined("or", self.conjunction, any)

    def conjunction(self) -> Predicate:
        return self._joined("and", self.unary, all)

    def _joined(
        self, word: str, operand: Callable[[], Predicate], combine: Callable[[Iterable[bool]], bool]
    ) -> Predicate:
        """``operand (word operand)*``: one operand as it is, more combined (``any`` or ``all``)."""
        parts = [operand()]
        while self.word(word):
            self.take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else (lambda item: combine(p(item) for p in parts))

    def unary(self) -> Predicate:
        if self.word("not"):
            self.take()
            if not self.advanced:
                raise QueryError(
                    "Operator 'not' is an advanced query: it needs the header ConsistencyLevel: eventual "
                    "and $count=true.",
                    "Request_UnsupportedQuery",
                )
            inner = self.unary()
            return lambda item: not inner(item)
        if self.peek()[1] == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        return self.comparison()

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "guid":
            return text.lower()
        if kind == "date":
            return _instant(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "word" and text.lower() == "null":
            return None
        raise QueryError(f"Invalid filter clause: '{text[:30]}' is not a value.")

    def comparison(self) -> Predicate:
        kind, name = self.take()
        if kind != "word":
            raise QueryError(f"Invalid filter clause: unexpected '{name[:30]}'.")
        lowered = name.lower()
        if lowered in _TEXT_FUNCTIONS and self.peek()[1] == "(":
            self.take("(")
            getter = self.operand(lowered)
            self.take(",")
            part = self.value()
            self.take(")")
            if not isinstance(part, str):
                raise QueryError(f"Invalid filter clause: {name} takes a string.")
            folded, test = part.casefold(), _TEXT_FUNCTIONS[lowered]
            return lambda item: any(test(str(v).casefold(), folded) for v in getter(item))
        if self.peek()[1] == "/":
            return self.lambda_clause(name)
        getter = self.resolve(name)
        kind, operator = self.take()
        operator = operator.lower()
        if operator == "in":
            self.use_operand(name, "in")
            self.take("(")
            values = [self.value()]
            while self.peek()[1] == ",":
                self.take()
                values.append(self.value())
            self.take(")")
            wanted = {_fold(v) for v in values}
            return lambda item: any(_fold(v) in wanted for v in getter(item))
        if operator not in _COMPARE:
            raise QueryError(f"Invalid filter clause: unknown operator '{operator[:20]}'.")
        self.use_operand(name, operator)
        expected = self.value()
        if expected is None and not self.advanced:
            raise QueryError(
                "Comparing with null is an advanced query: it needs the header ConsistencyLevel: eventual "
                "and $count=true.",
                "Request_UnsupportedQuery",
            )
        rules = self.props.get(self.canonical.get(name.lower(), ""))
        if expected is None and rules is not None and not rules.nulls:
            raise self.unsupported(name)
        return lambda item: any(_compare(v, operator, expected) for v in getter(item) or [None])

    def use_operand(self, name: str, operator: str) -> None:
        if self.lambda_var is not None and name.lower() == self.lambda_var:
            assert self.lambda_prop is not None
            self.use(self.lambda_prop, "any" if operator in ("eq", "startswith") else operator)
        else:
            self.use(name, operator)

    def operand(self, function: str) -> Callable[[JSON], list[Any]]:
        kind, name = self.take()
        if kind != "word":
            raise QueryError(f"Invalid filter clause: {function} takes a property first.")
        self.use_operand(name, function)
        return self.resolve(name)

    def resolve(self, name: str) -> Callable[[JSON], list[Any]]:
        """A function giving the values a name stands for: the lambda variable, or a property."""
        if self.lambda_var is not None and name.lower() == self.lambda_var:
            return lambda item: [item.get("")]
        canonical = self.canonical.get(name.lower(), name)
        return lambda item: [item.get(canonical)]

    def lambda_clause(self, name: str) -> Predicate:
        self.take("/")
        _kind, fn = self.take()
        if fn.lower() not in ("any", "all"):
            raise QueryError(f"Invalid filter clause: '{fn[:20]}' after '/' is not supported.")
        canonical = self.use(name, "any")
        self.take("(")
        var_kind, var = self.take()
        if var_kind != "word":
            raise QueryError("Invalid filter clause: a lambda needs a variable.")
        self.take(":")
        outer = (self.lambda_var, self.lambda_prop)
        self.lambda_var, self.lambda_prop = var.lower(), canonical
        body = self.disjunction()
        self.lambda_var, self.lambda_prop = outer
        self.take(")")
        every = fn.lower() == "all"

        def test(item: JSON) -> bool:
            values = item.get(canonical) or []
            results = (body({"": v}) for v in values)
            return all(results) if every else any(results)

        return test


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _instant(text: str) -> dt.datetime:
    """A DateTimeOffset literal (or property value) as an instant."""
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"Invalid filter clause: '{text[:40]}' is not a DateTimeOffset.") from None


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if isinstance(expected, dt.datetime):
        # A DateTimeOffset property is compared as an instant, not as text.
        try:
            actual = _instant(actual) if isinstance(actual, str) else None
        except QueryError:
            actual = None
    if operator in ("eq", "ne"):
        same = _fold(actual) == _fold(expected)
        return same if operator == "eq" else not same
    if actual is None or expected is None:
        return False
    a, b = _fold(actual), _fold(expected)
    try:
        return bool({"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[operator])
    except TypeError:
        return False


def parse_filter(text: str, type_name: str, *, advanced: bool = False) -> Predicate:
    """A predicate for a $filter on objects of ``type_name``; QueryError when Graph would refuse it."""
    if len(text) > MAX_FILTER_LENGTH:
        raise QueryError("The $filter is too long.")
    return _Parser(text, type_name, advanced).parse()


# --------------------------------------------------------------------------------------------------
# $search

_SEARCH_CLAUSE = re.compile(r'\s*"(?P<prop>[A-Za-z]+):(?P<term>[^"]*)"\s*')
_WORDS = re.compile(r"[^\W_]+")


def parse_search(text: str, type_name: str) -> Predicate:
    """``"property:words"`` clauses joined by AND or OR: each word must start a word of the property."""
    searchable = _canonical(SEARCHABLE.get(type_name, ()))
    if not searchable:
        raise QueryError(f"Search is not supported on '{type_name}'.", "Request_UnsupportedQuery")
    clauses: list[Predicate] = []
    joiners: list[str] = []
    pos = 0
    while True:
        m = _SEARCH_CLAUSE.match(text, pos)
        if m is None:
            raise QueryError(
                'Syntax error: $search takes "property:words" clauses joined by AND or OR.',
                "Request_UnsupportedQuery",
            )
        prop = searchable.get(m.group("prop").lower())
        if prop is None:
            raise QueryError(
                f"Unsupported or invalid search property '{m.group('prop')[:40]}'.",
                "Request_UnsupportedQuery",
            )
        clauses.append(_search_clause(prop, m.group("term")))
        pos = m.end()
        if pos >= len(text):
            break
        joiner = re.match(r"(AND|OR)\b", text[pos:])
        if joiner is None:
            raise QueryError(
                "Syntax error: clauses of $search are joined by AND or OR.", "Request_UnsupportedQuery"
            )
        joiners.append(joiner.group(1))
        pos += joiner.end()
    # AND binds tighter than OR.
    groups: list[list[Predicate]] = [[clauses[0]]]
    for word, clause in zip(joiners, clauses[1:], strict=True):
        if word == "OR":
            groups.append([clause])
        else:
            groups[-1].append(clause)
    return lambda item: any(all(c(item) for c in group) for group in groups)


def _search_clause(prop: str, term: str) -> Predicate:
    wanted = [w.casefold() for w in _WORDS.findall(term)]

    def test(item: JSON) -> bool:
        words = [w.casefold() for w in _WORDS.findall(str(item.get(prop) or ""))]
        return all(any(w.startswith(t) for w in words) for t in wanted)

    return test


# --------------------------------------------------------------------------------------------------
# a collection


@dataclass(slots=True)
class Collection:
    """One GET of a collection: the options, and what the answer needs (context, paging, count)."""

    type_name: str  # e.g. servicePrincipal
    properties: Mapping[str, Mapping[str, Any]]  # from the metadata, with navigation properties
    directory: bool  # directory objects: the advanced-query rules apply
    consistency_eventual: bool
    page_size: int
    max_page_size: int = MAX_TOP  # a longer page asked for is cut to this (Graph's limit per collection)

    def apply(
        self, items: list[JSON], opts: Mapping[str, str], url: str
    ) -> tuple[list[JSON], int | None, str | None, list[str] | None]:
        """(page, count or None, next link or None, selected names or None)."""
        count = _boolean(opts.get("count"), "$count") if "count" in opts else False
        if self.directory and count and not self.consistency_eventual:
            raise QueryError(
                "$count on directory objects needs the header ConsistencyLevel: eventual.",
                "Request_BadRequest",
            )
        if "skip" in opts:
            raise QueryError("'$skip' is not supported by the service.", "Request_BadRequest")
        if "format" in opts and opts["format"].strip().lower() not in ("json", "application/json"):
            raise QueryError("Only $format=json is supported.")
        advanced = self.consistency_eventual and count
        if "search" in opts:
            if self.directory and not self.consistency_eventual:
                raise QueryError(
                    "Request with $search query parameter only works through MSGraph with a special request "
                    "header: 'ConsistencyLevel: eventual'",
                    "Request_BadRequest",
                )
            predicate = parse_search(opts["search"], self.type_name)
            items = [item for item in items if predicate(item)]
        if "filter" in opts:
            predicate = parse_filter(opts["filter"], self.type_name, advanced=advanced or not self.directory)
            items = [item for item in items if predicate(item)]
        if "orderby" in opts:
            allowed = advanced or "filter" not in opts or not self.directory
            items = self._order(items, opts["orderby"], allowed)
        selected = (
            select_names(opts["select"], self.properties, self.type_name) if opts.get("select") else None
        )
        total = len(items)
        try:
            top = int(opts["top"]) if "top" in opts else self.page_size
            skip = int(opts.get("skiptoken") or 0)
        except ValueError:
            raise QueryError("Invalid value for $top or $skiptoken: an integer is expected.") from None
        if not 1 <= top <= MAX_TOP:
            raise QueryError(
                f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive."
            )
        if skip < 0:
            raise QueryError("Invalid $skiptoken.")
        top = min(top, self.max_page_size)
        page = items[skip : skip + top]
        next_link = None
        if skip + top < total:
            next_link = _with_skiptoken(url, skip + top)
        return page, (total if count else None), next_link, selected

    def _order(self, items: list[JSON], text: str, allowed: bool) -> list[JSON]:
        orderable = _canonical(ORDERABLE.get(self.type_name, ()))
        parts = text.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise QueryError("Invalid $orderby: one property, then asc or desc.")
        prop = orderable.get(parts[0].lower())
        if prop is None:
            raise QueryError(f"Sorting by '{parts[0][:40]}' is not supported.", "Request_UnsupportedQuery")
        if not allowed:
            raise QueryError(
                "$orderby with $filter is an advanced query: it needs the header ConsistencyLevel: eventual "
                "and $count=true.",
                "Request_UnsupportedQuery",
            )
        reverse = len(parts) == 2 and parts[1].lower() == "desc"
        return sorted(items, key=lambda item: str(item.get(prop) or "").casefold(), reverse=reverse)


def _boolean(text: str | None, name: str) -> bool:
    value = (text or "").strip().lower()
    if value not in ("true", "false"):
        raise QueryError(f"Invalid value for {name}: true or false is expected.")
    return value == "true"


def _with_skiptoken(url: str, skip: int) -> str:
    parts = urllib.parse.urlsplit(url)
    params = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k.lower().lstrip("$") != "skiptoken"
    ]
    params.append(("$skiptoken", str(skip)))
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="$,'()")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def project(item: JSON, selected: list[str] | None, hidden: Iterable[str] = ()) -> JSON:
    """``item`` with only the ``selected`` properties (and id), or without the ``hidden`` ones."""
    if selected is None:
        hide = set(hidden)
        return {k: v for k, v in item.items() if k not in hide}
    wanted = {*selected, "id"}
    return {k: v for k, v in item.items() if k in wanted or k.startswith("@odata.")}
