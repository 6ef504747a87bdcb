"""Hypothesis fuzzing of the YAML loader and of the plan-file reader: whatever the bytes, the answer is
a value or one of the tool's own errors, within a bounded time per example."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.security import configuration, resign

from reconciler.config.files import SourceFile
from reconciler.config.load import load_files
from reconciler.core.plan import Plan, PlanOptions
from reconciler.core.serialize import from_document, to_document
from reconciler.engine.operations import read_plan_file
from reconciler.errors import ReconcilerError

FUZZ = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

_YAML_PIECES = st.sampled_from(
    [
        "apiVersion: cloudsync/v1\n",
        "kind: Configuration\n",
        "metadata: {name: a}\n",
        "spec:\n",
        "  domain: a.example.com\n",
        "  scope: {groups: [x]}\n",
        "&a [*a, *a]\n",
        "!!python/object:os.system\n",
        "? [a]\n: b\n",
        "---\n",
        "\t\x1b[31m\n",
        "'\n",
        "- " * 50 + "\n",
        "{" * 200 + "\n",
    ]
)


@FUZZ
@given(st.one_of(st.binary(max_size=2000), st.lists(_YAML_PIECES, max_size=20).map("".join).map(str.encode)))
def test_any_bytes_load_to_a_state_or_a_load_error(data: bytes) -> None:
    with contextlib.suppress(ReconcilerError):
        load_files([SourceFile("fuzz.yaml", data)])


@FUZZ
@given(st.text(max_size=300))
def test_any_text_in_a_valid_configuration_loads_or_is_refused(value: str) -> None:
    text = configuration("alpha").replace("alpha.example.com\n", json.dumps(value) + "\n", 1)
    with contextlib.suppress(ReconcilerError):
        load_files([SourceFile("fuzz.yaml", text.encode("utf-8", "surrogatepass"))])


def _valid_document() -> dict[str, Any]:
    return to_document(Plan(target="local:x.db", desired_digest="d", options=PlanOptions()))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_as_a_plan_file_read_or_are_refused(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.json"
        path.write_bytes(data)
        with contextlib.suppress(ReconcilerError):
            read_plan_file(str(path))


@FUZZ
@given(st.sampled_from(sorted(_valid_document())), _JSON)
def test_any_value_in_a_resigned_plan_document_reads_or_is_refused(key: str, value: object) -> None:
    doc = _valid_document()
    doc[key] = value
    with contextlib.suppress(ReconcilerError):
        from_document(resign(doc))
