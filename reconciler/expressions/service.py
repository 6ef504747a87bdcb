"""Conversion between expressions and the service's ``attributeMappingSource`` trees. Pure; no I/O.

Shape (Graph ``attributeMappingSource``)::

    {"expression": str | None, "name": str, "type": "Attribute" | "Constant" | "Function",
     "parameters": [{"key": str, "value": <attributeMappingSource>}, ...]}

What the service is known to do, and this module does too:

* ``[mail]`` is ``{"expression": "[mail]", "name": "mail", "type": "Attribute"}``.
* Every literal, numbers included, is a Constant whose ``name`` is its text and whose ``expression`` is
  that text quoted: ``8`` becomes ``{"expression": "\\"8\\"", "name": "8", "type": "Constant"}``.
* ``%DomainFQDN%`` is a Constant named ``%DomainFQDN%`` with a null ``expression``.
* A Function's ``expression`` is its text as written; ``parameters`` carry function-specific keys (see
  ``functions.py``) and leave out empty argument slots.
* A comparison in IIF's condition is split into the IIF's own ``one`` (left), ``two`` (the operator as a
  Constant) and ``three`` (right) parameters, beside ``four`` and ``five``.

What is not known, and the scheme chosen here:

* An operation anywhere else (``CBool([a] = [b])``, ``"t-" & [alias]``) is a Function named by its operator
  with the same ``one``/``two``/``three`` parameters.
* An empty slot is kept, as ``{"expression": "", "name": "", "type": "Constant"}``, only where dropping it
  would move later arguments: between two repeated parameters (Switch key/value pairs) and in the
  second slot of the four-argument FormatDateTime.
* Reading back, a Constant in a number parameter that holds a whole number is written unquoted, and one in
  an enum parameter that holds an enum value is written bare; all of these compare equal either way.
  A Function whose parameter keys are not recognised is read from its ``expression`` text instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.errors import ExpressionError
from reconciler.expressions.functions import (
    ENUM,
    ENUM_VALUES,
    NUM,
    OPERATORS,
    FunctionSpec,
    Param,
    lookup_function,
)
from reconciler.expressions.nodes import (
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
)
from reconciler.expressions.parser import as_tree, parse, quote, unparse

__all__ = ["from_service_tree", "to_service_tree"]

_INTEGER = re.compile(r"-?[0-9]+|&[Hh][0-9A-Fa-f]+")
_PARAMETER_NAME = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)%")

ServiceTree = dict[str, Any]


def _leaf(expression: str | None, name: str, kind: str) -> ServiceTree:
    return {"expression": expression, "name": name, "type": kind, "parameters": []}


def _empty_slot() -> ServiceTree:
    return _leaf("", "", "Constant")


def _param(key: str, value: ServiceTree) -> dict[str, Any]:
    return {"key": key, "value": value}


def _operation_params(node: BinaryOp) -> list[dict[str, Any]]:
    return [
        _param("one", _to(node.left)),
        _param("two", _leaf(quote(node.op), node.op, "Constant")),
        _param("three", _to(node.right)),
    ]


def _to(node: Node) -> ServiceTree:
    if isinstance(node, Attribute):
        return _leaf(f"[{node.name}]", node.name, "Attribute")
    if isinstance(node, Literal):
        return _leaf(quote(node.text), node.text, "Constant")
    if isinstance(node, Parameter):
        return _leaf(None, f"%{node.name}%", "Constant")
    if isinstance(node, BinaryOp):
        return {
            "expression": node.source or unparse(node),
            "name": node.op,
            "type": "Function",
            "parameters": _operation_params(node),
        }
    if isinstance(node, Call):
        return _call(node)
    raise ExpressionError("an empty argument slot cannot stand on its own", node.column)


def _call(node: Call) -> ServiceTree:
    spec = lookup_function(node.name)
    if spec is None:
        raise ExpressionError(f"unknown function '{node.name}'", node.column)
    args = node.args
    nargs = len(args)
    last_filled = max((i for i, a in enumerate(args) if not isinstance(a, Missing)), default=-1)
    params: list[dict[str, Any]] = []
    for index, arg in enumerate(args):
        param = spec.param_for_slot(index, nargs)
        if isinstance(arg, Missing):
            keep = (param.repeat and index < last_filled) or (
                spec.name == "FormatDateTime" and nargs == 4 and index == 1
            )
            if keep:
                params.append(_param(param.key, _empty_slot()))
            continue
        if spec.name == "IIF" and index == 0 and isinstance(arg, BinaryOp):
            params.extend(_operation_params(arg))
            continue
        params.append(_param(param.key, _to(arg)))
    return {
        "expression": node.source or unparse(node),
        "name": spec.name,
        "type": "Function",
        "parameters": params,
    }


def to_service_tree(expression: str | Node) -> ServiceTree:
    """The ``attributeMappingSource`` JSON the service stores for ``expression``."""
    return _to(as_tree(expression))


# -- reading ----------------------------------------------------------------------------------------


class _Unreadable(Exception):
    """The parameters cannot be placed; fall back to the node's expression text."""


def _bad(message: str, tree: Mapping[str, Any]) -> ExpressionError:
    expression = tree.get("expression")
    return ExpressionError(message, 1, expression if isinstance(expression, str) else None)


def _literal(value: str, param: Param | None) -> Node:
    if param is not None:
        if param.kind == NUM and _INTEGER.fullmatch(value):
            return Number(value)
        if param.kind == ENUM and value in ENUM_VALUES.get(param.name, ()):
            return Identifier(value)
    return String(value)


def _from(tree: object, param: Param | None) -> Node:
    if not isinstance(tree, Mapping):
        raise ExpressionError(f"expected an attributeMappingSource object, got {type(tree).__name__}", 1)
    kind = tree.get("type") or "Attribute"
    name = tree.get("name")
    expression = tree.get("expression")
    if kind == "Attribute":
        if isinstance(name, str) and name:
            return Attribute(name)
        if isinstance(expression, str):
            return parse(expression)
        raise _bad("an Attribute source needs a name", tree)
    if kind == "Constant":
        if expression == "" and not name:
            return Missing()
        if isinstance(name, str):
            m = _PARAMETER_NAME.fullmatch(name)
            if m is not None and (expression is None or expression == name):
                return Parameter(m.group(1))
            return _literal(name, param)
        if isinstance(expression, str):
            parsed = parse(expression)
            if isinstance(parsed, Literal | Parameter):
                return parsed
        raise _bad("a Constant source needs a name", tree)
    if kind == "Function":
        if not isinstance(name, str) or not name:
            raise _bad("a Function source needs a name", tree)
        try:
            return _function(tree, name)
        except _Unreadable:
            if isinstance(expression, str) and expression.strip():
                return parse(expression)
            raise _bad(f"cannot read the parameters of {name}", tree) from None
    raise _bad(f"unknown attributeMappingSource type {kind!r}", tree)


def _parameters(tree: Mapping[str, Any]) -> list[tuple[str, object]]:
    raw = tree.get("parameters") or []
    if not isinstance(raw, list):
        raise _Unreadable
    out: list[tuple[str, object]] = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
            raise _Unreadable
        out.append((item["key"], item.get("value")))
    return out


def _function(tree: Mapping[str, Any], name: str) -> Node:
    params = _parameters(tree)
    if name in OPERATORS:
        by_key = dict(params)
        if set(by_key) != {"one", "two", "three"} or len(params) != 3:
            raise _Unreadable
        return BinaryOp(name, _from(by_key["one"], None), _from(by_key["three"], None))
    spec = lookup_function(name)
    if spec is None:
        raise _bad(f"unknown function '{name}'", tree)
    if spec.name == "IIF":
        return _iif(spec, params)
    # Only the four-argument FormatDateTime has a dateTimeStyles parameter.
    four_slots = spec.name == "FormatDateTime" and any(k == "dateTimeStyles" for k, _ in params)
    layout = spec.layout(4 if four_slots else -1)
    slots: dict[int, Node] = {}
    fixed = {p.key: i for i, p in enumerate(layout) if not p.repeat}
    repeat_index = next((i for i, p in enumerate(layout) if p.repeat), None)
    next_repeat = repeat_index
    for key, value in params:
        if key in fixed and fixed[key] not in slots:
            index = fixed[key]
        elif next_repeat is not None and key == layout[repeat_index or 0].key:
            index = next_repeat
            next_repeat += 1
        else:
            raise _Unreadable
        slots[index] = _from(value, layout[min(index, len(layout) - 1)])
    return _build_call(spec, slots, four_slots=four_slots)


def _iif(spec: FunctionSpec, params: list[tuple[str, object]]) -> Node:
    by_key: dict[str, object] = {}
    for key, value in params:
        if key not in ("one", "two", "three", "four", "five") or key in by_key:
            raise _Unreadable
        by_key[key] = value
    slots: dict[int, Node] = {}
    if "two" in by_key:
        op_tree = by_key["two"]
        op = op_tree.get("name") if isinstance(op_tree, Mapping) else None
        if op not in OPERATORS or "one" not in by_key or "three" not in by_key:
            raise _Unreadable
        slots[0] = BinaryOp(str(op), _from(by_key["one"], None), _from(by_key["three"], None))
    elif "one" in by_key:
        if "three" in by_key:
            raise _Unreadable
        slots[0] = _from(by_key["one"], None)
    if "four" in by_key:
        slots[1] = _from(by_key["four"], None)
    if "five" in by_key:
        slots[2] = _from(by_key["five"], None)
    return _build_call(spec, slots, four_slots=False)


def _build_call(spec: FunctionSpec, slots: dict[int, Node], *, four_slots: bool) -> Call:
    count = max(slots, default=-1) + 1
    count = max(count, spec.min_args, 4 if four_slots else 0)
    if spec.even and count % 2:
        count += 1
    if count == 1 and 0 not in slots and (spec.max_args is None or spec.max_args >= 2):
        # "F()" has no slots at all, so a lone empty slot is written "F(,)".
        count = 2
    args = tuple(slots.get(i, Missing()) for i in range(count))
    return Call(spec.name, args)


def from_service_tree(tree: Mapping[str, Any]) -> str:
    """Expression text for a service ``attributeMappingSource``; raises ExpressionError if invalid."""
    try:
        node = _from(tree, None)
    except RecursionError:
        # A tree from the service nested beyond what the parser accepts from text.
        raise ExpressionError("expression is nested too deeply") from None
    if isinstance(node, Missing):
        raise _bad("an empty slot is not an expression", tree)
    text = unparse(node)
    parse(text)
    return text
