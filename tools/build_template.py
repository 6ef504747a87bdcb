"""Build ``reconciler/data/ad2aad-template-schema.json``, the embedded AD2AADProvisioning template schema.

Reads a real job schema (``GET .../jobs/{id}/schema`` of a configuration made in the portal, kept in
``tests/fixtures/real/ad2aad-schema-sample1.json``; the same file as
``../shared/reference/real/ad2aad-schema-sample1.json``) and writes what a new job's schema is taken to
be. Run from the repository root:

    python tools/build_template.py            # write the file
    python tools/build_template.py --check    # exit 1 when the committed file is out of date

The template is the service's own data with only what belongs to that one configuration taken out:
- ``@odata.*`` annotations (``@odata.context``, ``directories@odata.context``) and the beta-only
  ``provisioningTaskIdentifier``: the embedded tenant and the emulator serve v1.0 shapes;
- the job's id and version, replaced by the template id and a fixed version (the output is the same on
  every run);
- the configuration's organizational-unit scope: the ``ENDS_WITH distinguishedName`` clause of the
  ``...UX-OrganizationalGroup-Scope`` input-filter group (also inside the ``defaultSourceObjectMappings``
  metadata text), so a new configuration starts with every object in scope.

Everything else stays as the service wrote it: the PascalCase target names, the one ``user`` object
mapping plus ``SyncCredentialsChangeItem`` (no inetOrgPerson, group or contact mapping: none is in the
data), the default exclusion clauses and the directory definitions. No ``containerFilter`` or
``groupFilter`` is added: the data has none.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

REFERENCE = ROOT / "tests" / "fixtures" / "real" / "ad2aad-schema-sample1.json"
OUTPUT = ROOT / "reconciler" / "data" / "ad2aad-template-schema.json"

TEMPLATE_ID = "AD2AADProvisioning"
# Fixed, so that the output is the same on every run.
VERSION = "Date:2024-01-01T00:00:00Z, ActivityId:00000000-0000-0000-0000-000000000000"
OU_SCOPE_GROUP_SUFFIX = "UX-OrganizationalGroup-Scope"

JSON = dict[str, Any]


def _without_annotations(value: Any) -> Any:
    """``value`` without ``@odata.*`` keys (``directories@odata.context``, ...) at any depth."""
    if isinstance(value, dict):
        return {k: _without_annotations(v) for k, v in value.items() if "@odata." not in k}
    if isinstance(value, list):
        return [_without_annotations(v) for v in value]
    return value


def _is_ou_clause(clause: JSON, casing: str = "lower") -> bool:
    operator, operand = ("operatorName", "sourceOperandName")
    if casing == "upper":
        operator, operand = ("OperatorName", "SourceOperandName")
    return (
        clause.get(operator) == "ENDS_WITH" and str(clause.get(operand, "")).casefold() == "distinguishedname"
    )


def _drop_ou_clauses(groups: list[JSON] | None, casing: str = "lower") -> None:
    name_key, clauses_key = ("Name", "Clauses") if casing == "upper" else ("name", "clauses")
    for group in groups or []:
        if str(group.get(name_key) or "").endswith(OU_SCOPE_GROUP_SUFFIX):
            group[clauses_key] = [c for c in group.get(clauses_key) or [] if not _is_ou_clause(c, casing)]


def _drop_ou_scope(rule: JSON) -> None:
    for om in rule.get("objectMappings") or []:
        _drop_ou_clauses((om.get("scope") or {}).get("inputFilterGroups"))
    for item in rule.get("metadata") or []:
        if item.get("key") != "defaultSourceObjectMappings":
            continue
        defaults = json.loads(item["value"])
        for om in defaults:
            _drop_ou_clauses((om.get("Scope") or {}).get("InputFilterGroups"), "upper")
        # The service writes this text without spaces; so does this.
        item["value"] = json.dumps(defaults, separators=(",", ":"), ensure_ascii=False)


def build(real: JSON) -> JSON:
    schema: JSON = _without_annotations(real)
    schema.pop("provisioningTaskIdentifier", None)
    schema["id"] = TEMPLATE_ID
    schema["version"] = VERSION
    for rule in schema.get("synchronizationRules") or []:
        _drop_ou_scope(rule)
    return {
        "id": schema.pop("id"),
        "version": schema.pop("version"),
        "synchronizationRules": schema.pop("synchronizationRules"),
        "directories": schema.pop("directories"),
        **schema,
    }


def render(reference_path: Path = REFERENCE) -> str:
    real = json.loads(reference_path.read_text(encoding="utf-8"))
    return json.dumps(build(real), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed file instead of writing"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date; run tools/build_template.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
