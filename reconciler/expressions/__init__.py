"""Attribute-mapping expressions of Entra provisioning and Cloud Sync: parse, print, convert, evaluate.

Pure library code: no file, network or clock access except through the sources a caller injects
(``now``, ``rng``, ``guid``).
"""

from __future__ import annotations

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
    ExpressionWarning,
    expression_warnings,
    parse,
    referenced_attributes,
    unparse,
)
from reconciler.expressions.service import from_service_tree, to_service_tree

__all__ = [
    "FUNCTIONS",
    "Attribute",
    "BinaryOp",
    "Call",
    "ExpressionWarning",
    "FunctionSpec",
    "Identifier",
    "Literal",
    "Missing",
    "Node",
    "Number",
    "Param",
    "Parameter",
    "String",
    "expression_warnings",
    "from_service_tree",
    "function_names",
    "parse",
    "referenced_attributes",
    "to_service_tree",
    "unparse",
    "walk",
]
