"""The JSON Schemas of the three document kinds, and checking documents against them.

The schemas are package data (``reconciler/data/schemas``, copied to ``schemas/`` for editors): one file,
``cloudsync.schema.json``, holds every definition under ``$defs``; the per-kind files refer into it.

A valid document, the common case, costs one call of a validator compiled by fastjsonschema. Only a
document it rejects is checked again by jsonschema's Draft202012Validator, which finds every problem;
each problem becomes a Diagnostic at the key or value it is about, in words rather than schema terms.

Reads the schema files from the installed package once; no other I/O.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any

import fastjsonschema

from reconciler.config.yamlio import Document
from reconciler.errors import Diagnostic

__all__ = ["KINDS", "check", "did_you_mean", "dotted", "kind_schema", "schema_text"]

KINDS: tuple[str, ...] = ("Configuration", "Scope", "AttributeMappings")
ROOT_SCHEMA = "cloudsync.schema.json"

Path = tuple[str | int, ...]


def schema_text(name: str) -> str:
    """The text of one shipped schema file (``cloudsync.schema.json``, ``scope.schema.json``, ...)."""
    return resources.files("reconciler").joinpath("data", "schemas", name).read_text(encoding="utf-8")


@functools.cache
def _root() -> dict[str, Any]:
    root: dict[str, Any] = json.loads(schema_text(ROOT_SCHEMA))
    return root


def kind_schema(kind: str) -> dict[str, Any]:
    """A self-contained schema for one kind: the shared ``$defs`` and a reference to the kind's entry."""
    root = _root()
    return {"$schema": root["$schema"], "$defs": root["$defs"], "$ref": f"#/$defs/{kind}"}


def _compile(schema: dict[str, Any]) -> Callable[[object], object]:
    # use_default=False: fastjsonschema would otherwise write schema defaults into the values it checks.
    validate: Callable[[object], object] = fastjsonschema.compile(
        schema, use_default=False, use_formats=False
    )
    return validate


# A repository repeats the same mapping entries in configuration after configuration (a mapping set
# copied, the same extension attributes everywhere), and they are most of what there is to check. So a
# document is checked in two parts: everything but its mapping entries, against the kind's schema with
# ``mapping`` accepting anything; then each entry against ``mapping``, once per distinct entry. Both
# schemas only nest ``mapping`` under plain properties and items, so the two parts together accept
# exactly what the whole schema accepts.
_MAPPING_DEF = "mapping"
_MAX_VALID_ENTRIES = 100_000
_valid_entries: set[tuple[tuple[str, str], ...]] = set()


_MAPPING_REF = {"$ref": f"#/$defs/{_MAPPING_DEF}"}


def _without_entries(schema: Any) -> Any:
    """``schema`` with every list of mapping entries taking any items: the generated validator would
    otherwise call a function per entry only to accept it."""
    if isinstance(schema, dict):
        return {k: _without_entries(v) for k, v in schema.items() if not (k == "items" and v == _MAPPING_REF)}
    if isinstance(schema, list):
        return [_without_entries(v) for v in schema]
    return schema


@functools.cache
def _fast(kind: str) -> Callable[[object], object]:
    """The kind's validator, its mapping entries left out (``_fast_entry`` checks those)."""
    schema = kind_schema(kind)
    schema["$defs"] = {**_without_entries(schema["$defs"]), _MAPPING_DEF: {}}
    return _compile(schema)


@functools.cache
def _fast_entry() -> Callable[[object], object]:
    root = _root()
    return _compile({"$schema": root["$schema"], "$defs": root["$defs"], "$ref": f"#/$defs/{_MAPPING_DEF}"})


def _mapping_entries(kind: str, value: Any) -> list[Any]:
    """The values ``mapping`` applies to in a document ``_fast(kind)`` accepted."""
    spec = value.get("spec") if isinstance(value, dict) else None
    if not isinstance(spec, dict):
        return []
    if kind == "AttributeMappings":
        entries = spec.get("mappings")
        return entries if isinstance(entries, list) else []
    if kind == "Configuration":
        lists = spec.get("attributeMappings")
        if isinstance(lists, dict):
            return [e for entries in lists.values() if isinstance(entries, list) for e in entries]
    return []


def _check_fast(kind: str, value: object) -> None:
    """Raises ``JsonSchemaException`` unless ``value`` is valid, as the kind's whole schema would."""
    _fast(kind)(value)
    check_entry = _fast_entry()
    for entry in _mapping_entries(kind, value):
        if type(entry) is not dict:
            check_entry(entry)
            continue
        key = tuple(entry.items())
        try:
            if key in _valid_entries:
                continue
        except TypeError:  # a list or mapping as a value: not an entry remembered
            pass
        check_entry(entry)
        # Only entries of text values are remembered, so that an equal key means an equal entry (a
        # bool would compare equal to an integer).
        if len(_valid_entries) < _MAX_VALID_ENTRIES and all(type(v) is str for _, v in key):
            _valid_entries.add(key)


@functools.cache
def _full(kind: str) -> Any:
    # Imported here: loading jsonschema costs more than validating a whole valid repository.
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    return Draft202012Validator(kind_schema(kind))


def check(doc: Document, kind: str) -> list[Diagnostic]:
    """Every schema problem of one document of a known kind; empty when it is valid."""
    try:
        _check_fast(kind, doc.value)
        return []
    except fastjsonschema.JsonSchemaException:
        pass
    errors = list(_full(kind).iter_errors(doc.value))
    # A misspelt required field is one mistake: "unknown field 'domian'; did you mean 'domain'?" says it
    # all, without "missing required field 'domain'" beside it.
    suggested = {
        (tuple(error.absolute_path), close)
        for error in errors
        if error.validator == "additionalProperties" and isinstance(error.instance, dict)
        for name in error.instance
        if (close := _closest(name, error.schema.get("properties", {}))) is not None
    }
    problems: list[Diagnostic] = []
    for error in errors:
        problems.extend(_describe(error, doc, suggested))
    return problems


def dotted(path: Sequence[str | int]) -> str:
    """``("spec", "scope", "groups", 2)`` -> ``spec.scope.groups[2]``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _closest(word: str, choices: Iterable[str]) -> str | None:
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return close[0]
    folded = {c.casefold(): c for c in options}
    return folded.get(word.casefold())


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest choice, or nothing when none is close."""
    close = _closest(word, choices)
    return f"; did you mean '{close}'?" if close is not None else ""


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def _what(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ('{value}')" if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _describe(error: Any, doc: Document, suggested: set[tuple[Path, str]]) -> list[Diagnostic]:
    path: Path = tuple(error.absolute_path)
    where = dotted(path)
    prefix = f"{where}: " if where else ""
    instance: Any = error.instance
    validator = error.validator
    value: Any = error.validator_value
    schema: Any = error.schema

    def at(spot: Path, message: str, *, key: bool = False) -> Diagnostic:
        loc = doc.root.find(spot, key=key)
        return Diagnostic(doc.file, loc.line, loc.col, message)

    if validator == "additionalProperties" and isinstance(instance, dict):
        known = schema.get("properties", {})
        inside = f" in {where}" if where else ""
        return [
            at((*path, name), f"unknown field '{name}'{inside}{did_you_mean(name, known)}", key=True)
            for name in instance
            if name not in known
        ]
    if validator == "required" and isinstance(instance, dict):
        inside = f" in {where}" if where else ""
        return [
            at(path, f"missing required field '{name}'{inside}", key=True)
            for name in value
            if name not in instance and (path, name) not in suggested
        ]
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        reason = schema.get("patternErrorMessage") if validator == "pattern" else error.message
        return [at((*path, instance), f"{prefix}key '{instance}' {reason}", key=True)]
    if validator == "type":
        types = [value] if isinstance(value, str) else list(value)
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        message = f"{prefix}expected {wanted}, got {_what(instance)}"
        if "string" in types and isinstance(instance, bool | int | float):
            message += "; quote it to keep it as text"
        return [at(path, message)]
    if validator == "enum":
        shown = ", ".join(str(v) for v in value)
        hint = did_you_mean(instance, (str(v) for v in value)) if isinstance(instance, str) else ""
        return [at(path, f"{prefix}'{instance}' is not one of: {shown}{hint}")]
    if validator == "const":
        if value is True:
            return [at(path, f"{prefix}can only be true; leave it out otherwise")]
        return [at(path, f"{prefix}must be '{value}', not '{instance}'")]
    if validator == "pattern":
        reason = schema.get("patternErrorMessage", f"does not match {value}")
        return [at(path, f"{prefix}'{instance}' {reason}")]
    if validator == "minimum":
        return [at(path, f"{prefix}must be at least {value} (got {instance})")]
    if validator == "maximum":
        return [at(path, f"{prefix}must be at most {value} (got {instance})")]
    if validator == "minItems":
        return [at(path, f"{prefix}needs at least {value} {'entry' if value == 1 else 'entries'}")]
    if validator == "minLength" and value == 1:
        return [at(path, f"{prefix}must not be empty")]
    if validator == "maxLength":
        return [at(path, f"{prefix}is longer than {value} characters")]
    if validator == "minProperties":
        return [at(path, f"{prefix}must not be empty")]
    return [at(path, f"{prefix}{error.message}")]
