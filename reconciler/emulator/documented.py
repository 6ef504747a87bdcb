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

# (name, arity, the attribute types it compares). The first eight, with their types, are the full list
# the beta filterOperators reference page gives; the others are used by the service's own schemas (the
# real Cloud Sync schema uses ENDS_WITH and !&) and named by the scoping-filter reference, with the
# attribute types read from what they compare (docs/graph.md).
_STRING_INTEGER = ("Integer", "String")
_ANY_TYPE = ("Integer", "String", "Binary", "Boolean")
_OPERATORS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("EQUALS", "Binary", _STRING_INTEGER),
    ("IS FALSE", "Unary", ("Boolean",)),
    ("IS NOT NULL", "Unary", _ANY_TYPE),
    ("IS NULL", "Unary", _ANY_TYPE),
    ("IS TRUE", "Unary", ("Boolean",)),
    ("NOT EQUALS", "Binary", _STRING_INTEGER),
    ("NOT REGEX MATCH", "Binary", _STRING_INTEGER),
    ("REGEX MATCH", "Binary", _STRING_INTEGER),
    ("&", "Binary", ("Integer",)),
    ("!&", "Binary", ("Integer",)),
    ("ENDS_WITH", "Binary", ("String",)),
    ("Greater_Than", "Binary", ("Integer",)),
    ("Greater_Than_OR_EQUALS", "Binary", ("Integer",)),
    ("Includes", "Binary", ("String",)),
)


@functools.cache
def filter_operators() -> tuple[dict[str, Any], ...]:
    """``filterOperatorSchema`` objects, one per scoping operator."""
    return tuple(
        {
            "name": name,
            "arity": arity,
            "multivaluedComparisonType": "All",
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
