"""Build ``reconciler/data/ad2aad-template-schema.json``, the embedded AD2AADProvisioning template schema.

Reads ``../shared/reference/default-mappings.json`` (relative to the repository root) and writes the
template in the service's ``synchronizationSchema`` shape. Run from the repository root:

    python tools/build_template.py            # write the file
    python tools/build_template.py --check    # exit 1 when the committed file is out of date

The full template is not published; only a few user rows are. What is assumed here, and why:
- user: the AD->EntraID user rows of default-mappings.json, CredentialData excepted (password hash sync
  adds it). AccountEnabled is included although only a support-wiki dump shows it. Rows whose source the
  docs do not name (preferredDataLocation, EmployeeNumber, UserType) map from the same-named attribute.
  givenName is documented as an Expression without its text; Trim([givenName]) follows the documented
  ExtensionAttribute3 pattern. The matching row onPremisesObjectIdentifier <- [objectGUID] (priority 1)
  comes from the 2020 schema dumps.
- inetOrgPerson: the same rows as user (the docs treat both alike for password hash sync).
- group and contact: no defaults are published; a small set of plain rows is assumed (names, mail,
  proxy addresses, the source anchor and the matching row).
- scoping filters: user and inetOrgPerson get the default user exclusions of graph-sync-api.md section 8;
  group and contact have none (not published).
- directories: a modest attribute list per object, enough to cover every attribute the rows use.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.expressions import to_service_tree  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference" / "default-mappings.json"
OUTPUT = ROOT / "reconciler" / "data" / "ad2aad-template-schema.json"

RULE_ID = "6c409270-f78a-4bc6-af23-7cf3ab6482fe"
# Fixed, so that the output is the same on every run.
VERSION = "Date:2024-01-01T00:00:00Z, ActivityId:00000000-0000-0000-0000-000000000000"
_NS = uuid.UUID("1a4721b3-e57f-4451-ae87-ef078703ec94")

JSON = dict[str, Any]

# Template rows whose source attribute the docs leave out map from the attribute of the same name.
SAME_NAME_SOURCES = ("preferredDataLocation", "EmployeeNumber", "UserType")
ASSUMED_EXPRESSIONS = {"givenName": "Trim([givenName])"}


def source_attribute(name: str) -> JSON:
    return {"expression": f"[{name}]", "name": name, "type": "Attribute", "parameters": []}


def source_function(text: str) -> JSON:
    tree = dict(to_service_tree(text))
    tree["expression"] = text
    return tree


def row(target: str, source: JSON, matching_priority: int = 0) -> JSON:
    return {
        "defaultValue": None,
        "exportMissingReferences": False,
        "flowBehavior": "FlowWhenChanged",
        "flowType": "Always",
        "matchingPriority": matching_priority,
        "targetAttributeName": target,
        "source": source,
    }


def matching_row() -> JSON:
    return row("onPremisesObjectIdentifier", source_attribute("objectGUID"), 1)


def user_rows(reference: JSON) -> list[JSON]:
    rows: list[JSON] = [matching_row()]
    for m in reference["mappings"]:
        if m["object"] != "user" or m["direction"] != "AD->EntraID":
            continue
        target = m["target"]
        if target == "CredentialData":
            continue  # added only with password hash sync
        if m["type"] == "Direct":
            rows.append(row(target, source_attribute(m.get("source") or target)))
        elif m["type"] == "Expression":
            text = m.get("expression") or ASSUMED_EXPRESSIONS[target]
            rows.append(row(target, source_function(text)))
        else:
            raise SystemExit(f"unexpected mapping type {m['type']!r} for {target}")
    return rows


def group_rows() -> list[JSON]:
    # Assumed: not published.
    return [
        matching_row(),
        row("displayName", source_attribute("displayName")),
        row("commonName", source_attribute("cn")),
        row("description", source_attribute("description")),
        row("mail", source_attribute("mail")),
        row("mailNickname", source_attribute("sAMAccountName")),
        row("proxyAddresses", source_attribute("proxyAddresses")),
        row("sourceAnchorBinary", source_attribute("objectGUID")),
        row("onPremisesDistinguishedName", source_attribute("distinguishedName")),
    ]


def contact_rows() -> list[JSON]:
    # Assumed: not published.
    return [
        matching_row(),
        row("displayName", source_attribute("displayName")),
        row("commonName", source_attribute("cn")),
        row("givenName", source_attribute("givenName")),
        row("surname", source_attribute("sn")),
        row("mail", source_attribute("mail")),
        row("proxyAddresses", source_attribute("proxyAddresses")),
        row("sourceAnchorBinary", source_attribute("objectGUID")),
    ]


def clause(operator: str, attribute: str, *values: str) -> JSON:
    return {
        "operatorName": operator,
        "sourceOperandName": attribute,
        "targetOperand": {"values": list(values)},
    }


def user_scope() -> JSON:
    return {
        "categoryFilterGroups": [],
        "groups": [],
        "inputFilterGroups": [
            {
                "name": "DefaultUserExclusions.0",
                "clauses": [
                    clause("IS FALSE", "isCriticalSystemObject"),
                    clause("NOT REGEX MATCH", "adminDescription", "^User_"),
                    clause("IS NOT NULL", "sAMAccountName"),
                    clause("NOT EQUALS", "sAMAccountName", "SUPPORT_388945a0"),
                    clause("NOT REGEX MATCH", "sAMAccountName", "^AAD_"),
                    clause("NOT REGEX MATCH", "sAMAccountName", "^MSOL_"),
                    clause("NOT REGEX MATCH", "sAMAccountName", "^CAS_([^{]*){"),
                    clause("NOT REGEX MATCH", "mailNickname", "^SystemMailbox{"),
                    clause("NOT REGEX MATCH", "mailNickname", "^CAS_([^{]*){"),
                    clause("!&", "msExchRecipientTypeDetails", "566259712"),
                    clause("NOT REGEX MATCH", "distinguishedName", r"^CN\s*=\s*([^\,]*)\0ACNF"),
                ],
            }
        ],
    }


def object_mapping(name: str, source: str, target: str, rows: list[JSON], scope: JSON | None) -> JSON:
    return {
        "attributeMappings": rows,
        "enabled": True,
        "flowTypes": "Add, Update, Delete",
        "metadata": [{"key": "OriginalJoiningProperty", "value": "onPremisesObjectIdentifier"}],
        "name": name,
        "scope": scope,
        "sourceObjectName": source,
        "targetObjectName": target,
    }


def attribute(name: str, kind: str = "String", *, multivalued: bool = False, anchor: bool = False) -> JSON:
    return {
        "anchor": anchor,
        "apiExpressions": [],
        "caseExact": False,
        "defaultValue": None,
        "flowNullValues": False,
        "metadata": [],
        "multivalued": multivalued,
        "mutability": "ReadWrite",
        "name": name,
        "referencedObjects": [],
        "required": False,
        "type": kind,
    }


BINARY = {"objectGUID", "objectSid", "mS-DS-ConsistencyGuid", "sourceAnchorBinary", "thumbnailPhoto"}
MULTI = {"proxyAddresses", "proxyAddress", "ProxyAddress", "member", "userCertificate"}
INTEGER = {"userAccountControl", "msExchRecipientTypeDetails", "pwdLastSet"}
BOOLEAN = {"isCriticalSystemObject", "accountDisabled", "AccountEnabled"}


def attributes(names: list[str], anchor: str | None = None) -> list[JSON]:
    result = []
    for name in sorted(set(names), key=str.casefold):
        kind = (
            "Binary"
            if name in BINARY
            else "Integer"
            if name in INTEGER
            else "Boolean"
            if name in BOOLEAN
            else "String"
        )
        result.append(attribute(name, kind, multivalued=name in MULTI, anchor=name == anchor))
    return result


def sources_of(rows: list[JSON]) -> list[str]:
    names: list[str] = []

    def walk(source: JSON | None) -> None:
        if not source:
            return
        if source.get("type") == "Attribute":
            names.append(source["name"])
        for p in source.get("parameters") or []:
            walk(p.get("value"))

    for r in rows:
        walk(r.get("source"))
    return names


def directory(name: str, objects: list[JSON]) -> JSON:
    return {
        "id": str(uuid.uuid5(_NS, name)),
        "discoverabilities": "AttributeNames, AttributeDataTypes",
        "discoveryDateTime": None,
        "name": name,
        "objects": objects,
        "readOnly": False,
        "version": VERSION,
    }


def object_definition(name: str, attrs: list[JSON]) -> JSON:
    return {"attributes": attrs, "metadata": [], "name": name, "supportedApis": []}


SCOPE_ATTRIBUTES = [
    "isCriticalSystemObject",
    "adminDescription",
    "sAMAccountName",
    "mailNickname",
    "msExchRecipientTypeDetails",
    "distinguishedName",
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "cn",
]


def build(reference: JSON) -> JSON:
    users = user_rows(reference)
    groups = group_rows()
    contacts = contact_rows()
    mappings = [
        object_mapping("Provision Active Directory users", "user", "User", users, user_scope()),
        object_mapping(
            "Provision Active Directory inetOrgPersons", "inetOrgPerson", "User", users, user_scope()
        ),
        object_mapping("Provision Active Directory groups", "group", "Group", groups, None),
        object_mapping("Provision Active Directory contacts", "contact", "Contact", contacts, None),
    ]
    user_source = [*sources_of(users), *SCOPE_ATTRIBUTES, "PasswordHash", "memberOf"]
    group_source = [*sources_of(groups), *SCOPE_ATTRIBUTES, "member"]
    contact_source = [*sources_of(contacts), *SCOPE_ATTRIBUTES]
    user_target = [r["targetAttributeName"] for r in users] + ["CredentialData"]
    ad = directory(
        "Active Directory",
        [
            object_definition("user", attributes(user_source, "objectGUID")),
            object_definition("inetOrgPerson", attributes(user_source, "objectGUID")),
            object_definition("group", attributes(group_source, "objectGUID")),
            object_definition("contact", attributes(contact_source, "objectGUID")),
        ],
    )
    aad = directory(
        "Azure Active Directory",
        [
            object_definition("User", attributes(user_target, "onPremisesObjectIdentifier")),
            object_definition(
                "Group", attributes([r["targetAttributeName"] for r in groups], "onPremisesObjectIdentifier")
            ),
            object_definition(
                "Contact",
                attributes([r["targetAttributeName"] for r in contacts], "onPremisesObjectIdentifier"),
            ),
        ],
    )
    rule = {
        "containerFilter": {"includedContainers": []},
        "editable": True,
        "groupFilter": {"includedGroups": []},
        "id": RULE_ID,
        "metadata": [{"key": "supportsProvisionOnDemand", "value": "true"}],
        "name": "AD2AADProvisioning",
        "objectMappings": mappings,
        "priority": 1,
        "sourceDirectoryName": "Active Directory",
        "targetDirectoryName": "Azure Active Directory",
    }
    return {
        "id": "AD2AADProvisioning",
        "version": VERSION,
        "synchronizationRules": [rule],
        "directories": [ad, aad],
    }


def render(reference_path: Path = REFERENCE) -> str:
    reference = json.loads(reference_path.read_text(encoding="utf-8"))
    return json.dumps(build(reference), indent=1, ensure_ascii=False) + "\n"


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
