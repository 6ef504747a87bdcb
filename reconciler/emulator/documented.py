"""The lists the service documents for a schema: mapping functions and scoping filter operators.

``functions()`` answers ``schema/functions`` from the project's own function table
(``reconciler.expressions.functions``), the same table the parser and evaluator use, so the list the
emulator serves is the list the tool checks expressions against. ``filter_operators()`` answers
``schema/filterOperators`` with the operators of the Entra scoping-filter reference. Pure data.
"""

from __future__ import annotations

import functools
from typing import Any

from reconciler.expressions.functions import FUNCTIONS, NUM

__all__ = ["filter_operators", "functions"]

# (name, arity, the attribute types it compares). Names as the scoping-filter reference and the
# service's own schemas spell them (see docs/graph.md); a unary operator takes no value.
_OPERATORS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("&", "Binary", ("Integer",)),
    ("!&", "Binary", ("Integer",)),
    ("ENDS_WITH", "Binary", ("String",)),
    ("EQUALS", "Binary", ("String", "Integer", "Reference", "Boolean", "DateTime")),
    ("Greater_Than", "Binary", ("Integer", "DateTime")),
    ("Greater_Than_OR_EQUALS", "Binary", ("Integer", "DateTime")),
    ("Includes", "Binary", ("String",)),
    ("IS FALSE", "Unary", ("Boolean",)),
    ("IS NOT NULL", "Unary", ("String", "Integer", "Reference", "Binary", "Boolean", "DateTime")),
    ("IS NULL", "Unary", ("String", "Integer", "Reference", "Binary", "Boolean", "DateTime")),
    ("IS TRUE", "Unary", ("Boolean",)),
    ("NOT EQUALS", "Binary", ("String", "Integer", "Reference", "Boolean", "DateTime")),
    ("NOT REGEX MATCH", "Binary", ("String",)),
    ("REGEX MATCH", "Binary", ("String",)),
)


@functools.cache
def filter_operators() -> tuple[dict[str, Any], ...]:
    """``filterOperatorSchema`` objects, one per scoping operator."""
    return tuple(
        {
            "name": name,
            "arity": arity,
            "multivaluedComparisonType": "Any",
            "supportedAttributeTypes": list(types),
        }
        for name, arity, types in _OPERATORS
    )


@functools.cache
def functions() -> tuple[dict[str, Any], ...]:
    """``attributeMappingFunctionSchema`` objects, one per function the parser knows, by name."""
    result = []
    for spec in sorted(FUNCTIONS.values(), key=lambda s: s.name):
        parameters = []
        for position, param in enumerate(spec.params):
            parameters.append(
                {
                    "allowMultipleOccurrences": param.repeat,
                    "name": param.key,
                    "required": position < spec.min_args,
                    "type": "Integer" if param.kind == NUM else "String",
                }
            )
        result.append({"name": spec.name, "parameters": parameters})
    return tuple(result)
