"""Attribute-mapping expressions of Entra provisioning and Cloud Sync: parse, print, convert, evaluate.

Pure library code: no file, network or clock access except through the sources a caller injects
(``now``, ``rng``, ``guid``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.expressions.catalog import KNOWN_ATTRIBUTES, known_attribute
from reconciler.expressions.functions import FUNCTIONS, FunctionSpec, Param, function_names
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
    walk,
)
from reconciler.expressions.parser import (
    MAX_LENGTH,
    ExpressionWarning,
    expression_warnings,
    parse,
    referenced_attributes,
    unparse,
)
from reconciler.expressions.service import from_service_tree, to_service_tree

if TYPE_CHECKING:
    from reconciler.expressions.evaluator import (
        DOES_NOT_FLOW,
        MAX_TEXT,
        TIME_LIMIT,
        AttributeValue,
        Budget,
        DoesNotFlow,
        Result,
        compile_expression,
        evaluate,
    )

# The evaluator (and the regular-expression engine it brings) is imported when first used: loading
# and planning only parse expressions, and the import is a good part of a command's start-up.
_EVALUATOR_NAMES = frozenset(
    (
        "DOES_NOT_FLOW",
        "MAX_TEXT",
        "TIME_LIMIT",
        "AttributeValue",
        "Budget",
        "DoesNotFlow",
        "Result",
        "compile_expression",
        "evaluate",
    )
)


def __getattr__(name: str) -> Any:
    if name in _EVALUATOR_NAMES:
        from reconciler.expressions import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DOES_NOT_FLOW",
    "FUNCTIONS",
    "KNOWN_ATTRIBUTES",
    "MAX_LENGTH",
    "MAX_TEXT",
    "TIME_LIMIT",
    "Attribute",
    "AttributeValue",
    "BinaryOp",
    "Budget",
    "Call",
    "DoesNotFlow",
    "ExpressionWarning",
    "FunctionSpec",
    "Identifier",
    "Literal",
    "Missing",
    "Node",
    "Number",
    "Param",
    "Parameter",
    "Result",
    "String",
    "compile_expression",
    "evaluate",
    "expression_warnings",
    "from_service_tree",
    "function_names",
    "known_attribute",
    "parse",
    "referenced_attributes",
    "to_service_tree",
    "unparse",
    "walk",
]
