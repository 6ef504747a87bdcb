"""Microsoft's documented examples, replayed against the emulator over HTTP.

``data/documented_examples.json`` holds the HTTP examples of the API reference pages (made by
``tools/extract_doc_examples.py``; each carries its page and docs commit). Every example is sent to a
fresh emulator holding one Cloud Sync configuration, with the documents' ids mapped to the ids the
emulator handed out, and the answer must match the documented one: the status, and every documented
property the version's metadata declares for the response type, at every level (values are the
example's own, so they are compared only where the example is about them), and every value of the
answer must be readable by Microsoft's own client for that version (msgraph-sdk, msgraph-beta-sdk).
Where a page contradicts itself, the reading chosen is in ``READINGS`` and in docs/graph.md.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.graph import TOKEN, StartEmulator, portal_configuration

from reconciler.emulator import Emulator
from reconciler.graph.identity import PASSWORD_HASH_TEMPLATE, TEMPLATE_APP_ID
from reconciler.graph.metadata import metadata

EXAMPLES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "documented_examples.json").read_text(encoding="utf-8")
)

# Where a page contradicts itself: (version, example name) -> (what the page says, the reading chosen).
READINGS: dict[tuple[str, str], tuple[str, Any]] = {
    ("v1.0", "create_synchronizationjob_from_synchronization"): (
        "the text says 201 Created, the example 200 OK",
        201,
    ),
    ("beta", "create_synchronizationjob_from_synchronization"): (
        "the text says 201 Created, the example 200 OK",
        201,
    ),
}


def declared_type(version: str, name: str | None) -> str | None:
    """The metadata's spelling of the type a page declares: one page writes
    ``microsoft.graph.serviceprincipal`` (beta list), in lower case."""
    if name is None:
        return None
    types = {t.removeprefix("graph.").casefold(): t.removeprefix("graph.") for t in metadata(version).types}
    return types.get(name.casefold(), name)


def example_id(example: Mapping[str, Any]) -> str:
    return f"{example['version']}:{example['name']}"


def relaxed_json(text: str) -> Any:
    """The JSON an invalid example body means: bare keys quoted, trailing commas dropped.

    The pages write some bodies as JavaScript object literals (``{ key: "UserName" }``) and leave a
    trailing comma in others; read that way they are the JSON the service takes.
    """
    quoted = re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:", r'\1"\2":', text)
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", quoted))


def documented_body(part: Mapping[str, Any]) -> Any:
    return relaxed_json(part["text"]) if part.get("invalid") else part.get("json")


@pytest.fixture
def tenant(start_emulator: StartEmulator) -> Iterator[tuple[Emulator, dict[str, str]]]:
    """An emulator with one configuration made as the portal makes it; the ids the examples need."""
    emulator = start_emulator(token=TOKEN)
    sp_id = portal_configuration(emulator.store, "contoso.com")
    (job,) = emulator.store.list_jobs(sp_id)
    directory = emulator.store.get_schema(sp_id, job["id"])["directories"][0]["id"]
    yield emulator, {"sp": sp_id, "job": job["id"], "directory": directory}


def concrete(path: str, ids: Mapping[str, str]) -> str:
    """The example's path with the document's placeholders replaced by the emulator's ids."""
    # The tenant holds one application template, the Cloud Sync one: every document's template is it.
    path = re.sub(r"/applicationTemplates/[^/]+", f"/applicationTemplates/{TEMPLATE_APP_ID}", path)
    # A principal the document names by a placeholder or by an id of its own is the configuration's.
    path = re.sub(r"/servicePrincipals/(\{[^}]*\}|[0-9a-fA-F-]{36})", f"/servicePrincipals/{ids['sp']}", path)
    path = re.sub(r"/jobs/\{[^}]*\}", f"/jobs/{ids['job']}", path)
    # The documents' job templates are a SaaS app's (Slack): read as the Cloud Sync template the
    # configuration has no job of, as for BoxOutDelta below.
    path = re.sub(
        r"/synchronization/templates/[^/{}]+$", f"/synchronization/templates/{PASSWORD_HASH_TEMPLATE}", path
    )
    return re.sub(r"/directories/\{[^}]*\}", f"/directories/{ids['directory']}", path)


def concrete_body(body: Any) -> Any:
    """The documents' job template (BoxOutDelta, a SaaS app's) is the Cloud Sync template the
    configuration has no job of yet (password hash sync)."""
    if isinstance(body, dict) and body.get("templateId") == "BoxOutDelta":
        return {**body, "templateId": PASSWORD_HASH_TEMPLATE}
    return body


def missing(documented: Any, ours: Any, type_name: str | None, version: str, where: str = "") -> list[str]:
    """Documented properties (declared by the metadata for ``type_name``) that our answer lacks."""
    if type_name is None or not isinstance(documented, Mapping):
        return []
    if not isinstance(ours, Mapping):
        return [f"{where or 'body'}: expected an object, got {type(ours).__name__}"]
    properties = metadata(version).properties(f"graph.{type_name}") or {}
    problems = []
    for key, value in documented.items():
        prop = properties.get(key)
        if key.startswith("@odata.") or prop is None or prop.get("navigation"):
            continue  # not a property of this version's type: the example's own, or a relationship
        if key not in ours:
            problems.append(f"{where}{key}: missing")
            continue
        inner = prop["type"].removeprefix("Collection(").removesuffix(")")
        inner_name = inner.removeprefix("graph.") if inner.startswith("graph.") else None
        mine = ours[key]
        if isinstance(value, list) and value and isinstance(mine, list) and mine:
            problems += missing(value[0], mine[0], inner_name, version, f"{where}{key}[0].")
        elif isinstance(value, Mapping) and mine is not None:
            problems += missing(value, mine, inner_name, version, f"{where}{key}.")
    return problems


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_the_documented_example_replays_as_documented(
    tenant: tuple[Emulator, dict[str, str]], example: dict[str, Any]
) -> None:
    emulator, ids = tenant
    version = example["version"]
    request, documented = example["request"], example["response"]
    headers = {"Authorization": f"Bearer {TOKEN}", **request["headers"]}
    body = concrete_body(documented_body(request))
    with httpx.Client(base_url=f"{emulator.url}/{version}", timeout=60) as client:
        answer = client.request(
            request["method"],
            concrete(request["path"], ids),
            headers=headers,
            content=None if body is None else json.dumps(body),
        )
    expected_status = READINGS.get((version, example["name"]), ("", documented["status"]))[1]
    assert answer.status_code == expected_status, (example["page"], answer.text[:500])
    expected = documented_body(documented)
    if expected is None:
        assert answer.content == b""
        return
    ours = answer.json()
    type_name = declared_type(version, documented["type"])
    if documented["collection"]:
        assert ours["value"], example["page"]
        assert missing(expected["value"][0], ours["value"][0], type_name, version) == []
    else:
        assert missing(expected, ours, type_name, version) == []
    check_values(example["name"], expected, ours)
    # Microsoft's own client reads every value of the answer.
    assert type_name is not None, "the page declares no type for its answer"
    assert sdk_losses(version, type_name, ours, documented["collection"]) == []


def sdk_losses(version: str, type_name: str, body: Any, collection: bool) -> list[str]:
    """What Microsoft's SDK for ``version`` (msgraph-sdk, msgraph-beta-sdk) cannot read in ``body``.

    The SDK's models read the answer and are written back: a value the SDK could not read (an enum
    member it does not know, a malformed date or duration) comes back missing, and is reported.
    """
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
    from kiota_serialization_json.json_serialization_writer_factory import JsonSerializationWriterFactory

    package = "msgraph" if version == "v1.0" else "msgraph_beta"
    snake = re.sub("([A-Z])", r"_\1", type_name).lower()
    module = importlib.import_module(f"{package}.generated.models.{snake}")
    model = getattr(module, type_name[0].upper() + type_name[1:])
    items = body["value"] if collection else [body]
    losses: list[str] = []
    for n, item in enumerate(items):
        node = JsonParseNodeFactory().get_root_parse_node("application/json", json.dumps(item).encode())
        writer = JsonSerializationWriterFactory().get_serialization_writer("application/json")
        writer.write_object_value(None, node.get_object_value(model))
        losses += _lost(item, json.loads(writer.get_serialized_content()), f"[{n}]")
    return losses


def _lost(ours: Any, read: Any, where: str) -> list[str]:
    if isinstance(ours, Mapping):
        if not isinstance(read, Mapping):
            return [where]
        return [
            lost
            for key, value in ours.items()
            if value not in (None, [], {}) and not key.startswith("@odata.")
            for lost in _lost(value, read.get(key), f"{where}.{key}")
        ]
    if isinstance(ours, list):
        if not isinstance(read, list) or len(read) != len(ours):
            return [where]
        return [
            lost
            for n, (a, b) in enumerate(zip(ours, read, strict=True))
            for lost in _lost(a, b, f"{where}[{n}]")
        ]
    # Flags as the service writes them, ", " between members ("AttributeNames, AttributeDataTypes",
    # "Add, Update, Delete" in the real schema sample), and the empty flags value "None" (the real sample's
    # second directory), are read as nothing by the SDK: not ours to fix.
    if read is None and isinstance(ours, str) and (", " in ours or ours == "None"):
        return []
    return [where] if read is None else []


def check_values(name: str, expected: Any, ours: Any) -> None:
    """What an example is about, beyond its shape."""
    if name == "synchronizationschema_parseexpression":
        # The project's own parser and evaluator give the documented parse and result.
        assert ours["parsingSucceeded"] and ours["evaluationSucceeded"]
        assert ours["evaluationResult"] == expected["evaluationResult"]
        tree, documented_tree = dict(ours["parsedExpression"]), dict(expected["parsedExpression"])
        tree.pop("expression"), documented_tree.pop("expression")
        assert tree == documented_tree
    elif name == "synchronizationschema_functions":
        functions = {f["name"]: f for f in ours["value"]}
        for documented in expected["value"]:
            mine = functions[documented["name"]]
            assert [p["name"] for p in mine["parameters"]] == [p["name"] for p in documented["parameters"]]
    elif name == "synchronizationschema_filteroperators":
        operators = {o["name"]: o for o in ours["value"]}
        for documented in expected["value"]:
            assert operators[documented["name"]]["arity"] == documented["arity"]
    elif name == "discover_directorydefinition":
        assert ours["discoveryDateTime"] and ours["objects"]


def test_every_version_has_examples_and_each_names_its_source() -> None:
    versions = {e["version"] for e in EXAMPLES}
    assert versions == {"v1.0", "beta"}
    for example in EXAMPLES:
        assert example["page"].startswith(f"api-reference/{example['version']}/api/")
        assert re.fullmatch(r"[0-9a-f]{40}", example["commit"])


def test_docs_state_the_counts_replayed() -> None:
    # docs/graph.md and the README say how many examples replay: they must be these.
    per_version = {v: sum(e["version"] == v for e in EXAMPLES) for v in ("v1.0", "beta")}
    pages = len({e["page"] for e in EXAMPLES})
    root = Path(__file__).resolve().parents[2]
    docs = " ".join((root / "docs" / "graph.md").read_text(encoding="utf-8").split())
    readme = " ".join((root / "README.md").read_text(encoding="utf-8").split())
    v1, beta = per_version["v1.0"], per_version["beta"]
    assert f"{v1} examples of v1.0 and {beta} of beta ({len(EXAMPLES)} from {pages} pages)" in docs
    assert f"({v1} of v1.0 and {beta} of beta, from {pages} API reference pages)" in readme
