"""Compilation of an expression tree into nested Python closures, and the registry of function builders.

Each function family (``text_functions``, ``value_functions``, ``flow_functions``) registers a builder
per function name in ``_BUILDERS``; ``_compile`` turns a node into a closure over the evaluation context.
Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.errors import ExpressionEvaluationError
from reconciler.expressions.functions import COMPARISON_OPERATORS
from reconciler.expressions.nodes import Attribute, BinaryOp, Call, Literal, Missing, Node, Number, Parameter
from reconciler.expressions.runtime import (
    _ABSENT,
    _BIG,
    _INT_MAX,
    _INT_MIN,
    _PARAMETER_KEYWORDS,
    Compiled,
    Value,
    _bounded,
    _Context,
    _Failure,
    _growing_input,
    _text,
)

# -- compilation ------------------------------------------------------------------------------------

Builder = Callable[[Call, list[Compiled | None]], Compiled]
_BUILDERS: dict[str, Builder] = {}


def _builder(*names: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        for name in names:
            _BUILDERS[name] = fn
        return fn

    return register


def _null(ctx: _Context) -> Value:
    return None


def _arg(args: list[Compiled | None], index: int) -> Compiled:
    if index < len(args):
        fn = args[index]
        if fn is not None:
            return fn
    return _null


def _filled(args: list[Compiled | None], index: int) -> bool:
    return index < len(args) and args[index] is not None


def _compile(node: Node) -> Compiled:
    if isinstance(node, Attribute):
        return _compile_attribute(node.name)
    if isinstance(node, Number):
        # A literal beyond 64 bits stays text, so that the function given it refuses it cleanly.
        try:
            number: int | str = node.value
        except ValueError:
            number = node.literal
        if type(number) is int and not _INT_MIN <= number <= _INT_MAX:
            number = node.literal
        return lambda ctx: number
    if isinstance(node, Literal):
        text = node.text
        return lambda ctx: text
    if isinstance(node, Parameter):
        return _compile_parameter(node)
    if isinstance(node, Missing):
        return _null
    if isinstance(node, BinaryOp):
        return _compile_operation(node)
    if isinstance(node, Call):
        args = [None if isinstance(a, Missing) else _compile(a) for a in node.args]
        builder = _BUILDERS.get(node.name)
        if builder is None:
            raise ExpressionEvaluationError(f"{node.name} cannot be evaluated", node.column)
        return builder(node, args)
    raise TypeError(f"not an expression node: {node!r}")


def _compile_attribute(name: str) -> Compiled:
    def attribute(ctx: _Context) -> Value:
        value = ctx.attrs.get(name, _ABSENT)
        if value is _ABSENT:
            return ctx.lookup_folded(name)
        return value

    return attribute


def _compile_parameter(node: Parameter) -> Compiled:
    name = node.name
    keyword = _PARAMETER_KEYWORDS.get(name) or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    column = node.column

    def parameter(ctx: _Context) -> Value:
        params = ctx.context.get("parameters")
        if isinstance(params, Mapping) and name in params:
            return params[name]
        value = ctx.context.get(keyword)
        if value is None:
            raise _Failure(f"no value was given for %{name}% ({keyword})", column)
        return value

    return parameter


def _compare(op: str, left: Value, right: Value, column: int) -> bool:
    a = _text(left, op, column)
    b = _text(right, op, column)
    if op == "=":
        return a == b
    if op == "<>":
        return a != b
    if a is None or b is None:
        return False
    try:
        x, y = int(a), int(b)
    except ValueError:
        return _order(op, a, b)
    return _order(op, x, y)


def _order(op: str, x: Any, y: Any) -> bool:
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


def _compile_operation(node: BinaryOp) -> Compiled:
    left, right, op, column = _compile(node.left), _compile(node.right), node.op, node.column
    if op == "&":

        def concatenate(ctx: _Context) -> Value:
            joined = (_text(left(ctx), "&", column) or "") + (_text(right(ctx), "&", column) or "")
            return joined if len(joined) <= _BIG else _bounded(ctx, joined, "&", column)

        return concatenate
    if op not in COMPARISON_OPERATORS:
        raise ExpressionEvaluationError(f"unknown operator '{op}'", column)
    return lambda ctx: _compare(op, left(ctx), right(ctx), column)


def _strict(impl: Callable[..., Value]) -> Builder:
    """A builder for a function that takes its arguments evaluated: ``impl(column, *values)``."""

    def build(node: Call, args: list[Compiled | None]) -> Compiled:
        fns = [a if a is not None else _null for a in args]
        column = node.column
        if len(fns) == 1:
            (a0,) = fns
            return lambda ctx: impl(column, a0(ctx))
        if len(fns) == 2:
            a0, a1 = fns
            return lambda ctx: impl(column, a0(ctx), a1(ctx))
        if len(fns) == 3:
            a0, a1, a2 = fns
            return lambda ctx: impl(column, a0(ctx), a1(ctx), a2(ctx))
        return lambda ctx: impl(column, *[f(ctx) for f in fns])

    return build


def _timed(impl: Callable[..., Value]) -> Builder:
    """Like ``_strict``, for a function whose cost or result grows with its input: ``impl(ctx, column,
    *values)`` bounds its own result (``_bounded``) and times work on large inputs (``_heavy_input``)."""

    def build(node: Call, args: list[Compiled | None]) -> Compiled:
        fns = [a if a is not None else _null for a in args]
        column = node.column
        if len(fns) == 1:
            (a0,) = fns
            return lambda ctx: impl(ctx, column, a0(ctx))
        if len(fns) == 2:
            a0, a1 = fns
            return lambda ctx: impl(ctx, column, a0(ctx), a1(ctx))
        if len(fns) == 3:
            a0, a1, a2 = fns
            return lambda ctx: impl(ctx, column, a0(ctx), a1(ctx), a2(ctx))
        return lambda ctx: impl(ctx, column, *[f(ctx) for f in fns])

    return build


def _per_value(transform: Callable[[str], str], fname: str, *, grows: bool = False) -> Builder:
    """A one-argument string function applied to every value of a multi-valued argument. One that
    ``grows`` its input (more characters out than in) has its result bounded."""

    def apply(column: int, value: Value) -> Value:
        if value is None:
            return None
        if type(value) is str:
            return transform(value)
        if type(value) is list:
            return [transform(v if type(v) is str else _text(v, fname, column) or "") for v in value]
        text = _text(value, fname, column)
        return None if text is None else transform(text)

    if not grows:
        return _strict(apply)

    def bounded(ctx: _Context, column: int, value: Value) -> Value:
        _growing_input(ctx, value, fname, column)
        return _bounded(ctx, apply(column, value), fname, column)

    return _timed(bounded)


def _register_strict(name: str) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    def register(impl: Callable[..., Value]) -> Callable[..., Value]:
        _BUILDERS[name] = _strict(impl)
        return impl

    return register


def _register_timed(name: str) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    def register(impl: Callable[..., Value]) -> Callable[..., Value]:
        _BUILDERS[name] = _timed(impl)
        return impl

    return register
