"""Build ``reconciler/data/aad2ad-group-template-schema.json``: the Entra ID -> AD job schema we model.

No dump of a real ``AAD2ADGroupProvisioning`` schema is public (cloud-sync-directions.md 1.5: object
mapping names, rule id and directory names are UNCONFIRMED). This builds the inferred shape from the
default mappings the docs list (1.5 for groups, 2 for the preview user mappings), in the JSON form of the
AD2AAD schema, so that the local tenant and the emulator hand out a schema to read before writing.
Writes that one file; run ``python tools/build_group_template.py`` after changing the rows below.
"""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.core.model import Mapping, MappingKind
from reconciler.graph.mappings import model_to_attribute_mapping

OUT = Path(__file__).resolve().parent.parent / "reconciler" / "data" / "aad2ad-group-template-schema.json"

_E = MappingKind.EXPRESSION
_D = MappingKind.DIRECT
_C = MappingKind.CONSTANT
_CN = 'Append(Append(Left(Trim([displayName]), 51), "_"), Mid([objectId], 25, 12))'

GROUP_ROWS = (
    Mapping("group", "adminDescription", _E, 'Append("Group_", [objectId])'),
    Mapping("group", "cn", _E, _CN),
    Mapping("group", "description", _E, "Left(Trim([description]), 448)"),
    Mapping("group", "displayName", _D, "displayName"),
    Mapping("group", "isSecurityGroup", _C, "True"),
    Mapping("group", "member", _D, "members"),
    Mapping(
        "group", "msDS-ExternalDirectoryObjectId", _E, 'Append("Group_", [objectId])', matching_priority=1
    ),
    Mapping("group", "parentDistinguishedName", _C, "CN=Users,%DomainDN%"),
    Mapping("group", "UniversalScope", _C, "True"),
)
_TRIM = "IgnoreFlowIfNullOrEmpty(Trim([{0}]))"
USER_ROWS = (
    Mapping("user", "accountDisabled", _E, "Not([accountEnabled])"),
    Mapping("user", "adminDescription", _E, 'Append("User_", [objectId])'),
    Mapping("user", "cn", _E, _CN),
    Mapping("user", "displayName", _D, "displayName"),
    Mapping("user", "msDS-ExternalDirectoryObjectId", _E, 'Append("User_", [objectId])', matching_priority=1),
    Mapping("user", "sAMAccountName", _E, 'Left(Item(Split([userPrincipalName], "@"), 1), 15)'),
    Mapping("user", "department", _E, _TRIM.format("department")),
    Mapping("user", "givenName", _E, _TRIM.format("givenName")),
    Mapping("user", "sn", _E, _TRIM.format("surname")),
    Mapping("user", "parentDistinguishedName", _C, "CN=Users,%DomainDN%"),
)


def _object_mapping(
    name: str, source: str, target: str, rows: tuple[Mapping, ...], enabled: bool
) -> dict[str, object]:
    return {
        "enabled": enabled,
        "flowTypes": "Add, Update, Delete",
        "name": name,
        "sourceObjectName": source,
        "targetObjectName": target,
        "metadata": [],
        "scope": None,
        "attributeMappings": [model_to_attribute_mapping(m) for m in rows],
    }


def _directory(name: str, objects: dict[str, tuple[Mapping, ...]], source: bool) -> dict[str, object]:
    out = []
    for obj, rows in objects.items():
        names = sorted({m.value for m in rows if m.kind is _D} if source else {m.target for m in rows})
        out.append({"name": obj, "attributes": [{"name": n, "type": "String"} for n in names]})
    return {"name": name, "objects": out}


def build() -> dict[str, object]:
    return {
        "id": "AAD2ADGroupProvisioning",
        "version": "inferred",
        "synchronizationRules": [
            {
                "editable": True,
                "id": "AAD2ADGroupProvisioning",
                "name": "AAD2ADGroupProvisioning",
                "priority": 1,
                "sourceDirectoryName": "Azure Active Directory",
                "targetDirectoryName": "Active Directory",
                "metadata": [],
                "objectMappings": [
                    _object_mapping(
                        "Provision Microsoft Entra ID Groups", "Group", "group", GROUP_ROWS, True
                    ),
                    # Users to AD are in preview: the object mapping is there, off until asked for.
                    _object_mapping("Provision Microsoft Entra ID Users", "User", "user", USER_ROWS, False),
                ],
            }
        ],
        "directories": [
            _directory("Azure Active Directory", {"Group": GROUP_ROWS, "User": USER_ROWS}, True),
            _directory("Active Directory", {"group": GROUP_ROWS, "user": USER_ROWS}, False),
        ],
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
