"""Property tests: the parser fails only with ExpressionError, and printing and service conversion
round-trip every valid tree."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ExpressionError
from reconciler.expressions import (
    DOES_NOT_FLOW,
    FUNCTIONS,
    Attribute,
    BinaryOp,
    Call,
    Identifier,
    Literal,
    Missing,
    Node,
    Number,
    Parameter,
    String,
    evaluate,
    from_service_tree,
    parse,
    to_service_tree,
    unparse,
)
from reconciler.expressions.functions import ENUM, ENUM_VALUES, OPERATORS

# Text made mostly of the characters that matter to the grammar, so the parser sees near-misses.
GRAMMAR_TEXT = st.lists(
    st.sampled_from(
        [*'()[]",\\%&=<>-+ \n\tabcHx0123456789', "Trim(", "IIF(", "Join(", "[a]", "vbTextCompare"]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), GRAMMAR_TEXT))
def test_parse_raises_only_expression_error(text: str) -> None:
    try:
        tree = parse(text)
    except ExpressionError as exc:
        assert 1 <= exc.column <= len(text) + 1
        assert exc.message
    else:
        assert isinstance(tree, Node)


def _leaf() -> st.SearchStrategy[Node]:
    name = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,12}", fullmatch=True)
    number = st.one_of(
        st.integers(min_value=-(10**12), max_value=10**18).map(str),
        st.from_regex(r"&H[0-9A-F]{1,8}", fullmatch=True),
    )
    return st.one_of(
        name.map(Attribute),
        st.text(max_size=20).map(String),
        number.map(Number),
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}(\.[A-Za-z][A-Za-z0-9_]{0,5})?", fullmatch=True).map(
            Parameter
        ),
    )


_DATE_FORMATS = ["yyyy-MM-dd", "yyyyMMddHHmmss.fZ", "M/d/yyyy hh:mm:ss tt", "o", "dd MMM yyyy"]


def _date_format_slots(name: str, nargs: int) -> tuple[int, ...]:
    if name != "FormatDateTime":
        return ()
    return (2, 3) if nargs == 4 else (1, 2)


# SelectUniqueValue must be outermost, so it only appears at the root (see ``trees``).
_NESTABLE = sorted(name for name in FUNCTIONS if name != "SelectUniqueValue")


@st.composite
def _call(draw: st.DrawFn, child: st.SearchStrategy[Node], names: list[str]) -> Node:
    spec = FUNCTIONS[draw(st.sampled_from(names))]
    high = spec.max_args if spec.max_args is not None else spec.min_args + 3
    nargs = draw(st.integers(min_value=spec.min_args, max_value=high))
    if spec.even and nargs % 2:
        nargs += 1
    args: list[Node] = []
    formats = _date_format_slots(spec.name, nargs)
    for index in range(nargs):
        param = spec.param_for_slot(index, nargs)
        if index in formats:
            # Literal formats are checked when parsing; a computed one only when evaluating.
            computed = child.filter(lambda n: not isinstance(n, Literal))
            args.append(draw(st.one_of(st.sampled_from(_DATE_FORMATS).map(String), computed)))
        elif param.kind == ENUM and draw(st.booleans()):
            args.append(Identifier(draw(st.sampled_from(ENUM_VALUES[param.name]))))
        elif nargs > 1 and draw(st.integers(0, 4)) == 0:
            # A single empty slot cannot be written: "F()" has no slots at all.
            args.append(Missing())
        else:
            args.append(draw(child))
    return Call(spec.name, tuple(args))


@st.composite
def _operation(draw: st.DrawFn, child: st.SearchStrategy[Node]) -> Node:
    # Operators group left to right, so only the left operand may itself be an operation.
    left = draw(child)
    right = draw(child.filter(lambda n: not isinstance(n, BinaryOp)))
    return BinaryOp(draw(st.sampled_from(OPERATORS)), left, right)


NESTED = st.recursive(
    _leaf(),
    lambda child: st.one_of(_call(child, _NESTABLE), _operation(child)),
    max_leaves=25,
)
TREES = st.one_of(NESTED, _call(NESTED, ["SelectUniqueValue"]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_unparse_round_trips(tree: Node) -> None:
    text = unparse(tree)
    assert parse(text) == tree
    assert unparse(parse(text)) == text


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_service_tree_round_trips(tree: Node) -> None:
    text = unparse(tree)
    assert parse(from_service_tree(to_service_tree(text))) == parse(text)
    assert parse(from_service_tree(to_service_tree(tree))) == tree


_VALUES = st.one_of(
    st.none(),
    st.text(max_size=10),
    st.sampled_from(["1", "0", "True", "2012-03-16-07:00", "&HF", "-5", "129699324000000000"]),
    st.lists(st.text(max_size=5), max_size=3),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    TREES,
    st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,12}", fullmatch=True), _VALUES, max_size=5),
)
def test_evaluate_raises_only_expression_errors(
    tree: Node, attributes: dict[str, str | list[str] | None]
) -> None:
    try:
        result = evaluate(
            tree,
            attributes,
            now=lambda: datetime(2021, 1, 1, tzinfo=UTC),
            rng=random.Random(0),
            exists=lambda value: False,
        )
    except ExpressionError:
        return
    assert result is None or result is DOES_NOT_FLOW or isinstance(result, str | list | bool | int)
