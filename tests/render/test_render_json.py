from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import reconciler
from reconciler.core.plan import Plan
from reconciler.core.serialize import from_document, to_document
from reconciler.render import RENDERERS, markdown, render, text
from reconciler.render import json as json_format

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "reconciler" / "data" / "schemas" / "plan.schema.json"
SCHEMA_COPY = ROOT / "schemas" / "plan.schema.json"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_golden(case: tuple[str, Plan], golden: Callable[[str, str], None]) -> None:
    name, plan = case
    golden(f"{name}.json", json_format.render(plan, tool_version="0.0.0"))


def test_is_the_plan_document(case: tuple[str, Plan]) -> None:
    _, plan = case
    out = json_format.render(plan)
    assert out.endswith("}\n")
    assert json.loads(out) == to_document(plan, tool_version=reconciler.__version__)


def test_validates_against_the_schema(case: tuple[str, Plan], validator: Draft202012Validator) -> None:
    _, plan = case
    doc = json.loads(json_format.render(plan))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []


def test_round_trips(case: tuple[str, Plan]) -> None:
    _, plan = case
    assert from_document(json.loads(json_format.render(plan))) == plan


def test_schema_rejects_what_the_document_never_holds(
    plans: dict[str, Callable[[], Plan]], validator: Draft202012Validator
) -> None:
    doc = json.loads(json_format.render(plans["update"]()))
    doc["changes"][0]["action"] = "recreate"
    doc["summary"]["update"] = -1
    doc["surprise"] = True
    messages = sorted(e.message for e in validator.iter_errors(doc))
    assert len(messages) == 3, messages


def test_schema_copies_are_identical() -> None:
    assert SCHEMA_COPY.read_bytes() == SCHEMA_PATH.read_bytes()


def _properties(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield f"{where}/properties/{key}", value
        for key, value in node.items():
            yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{where}/{i}")


def test_every_field_is_described() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    undocumented = []
    for where, prop in _properties(schema):
        target = prop
        if "$ref" in prop and "description" not in prop:
            target = defs[prop["$ref"].rsplit("/", 1)[-1]]
        if "description" not in target:
            undocumented.append(where)
    assert undocumented == []


def test_renderers_by_name(plans: dict[str, Callable[[], Plan]]) -> None:
    plan = plans["update"]()
    assert set(RENDERERS) == {"text", "markdown", "json"}
    assert render(plan, "json") == json_format.render(plan)
    assert render(plan, "markdown", limit=2000) == markdown.render(plan, limit=2000)
    assert render(plan, "text", color=False) == text.render(plan, color=False)
    with pytest.raises(ValueError, match="unknown plan format 'yaml'"):
        render(plan, "yaml")
