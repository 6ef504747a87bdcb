"""The attribute-definition steps of the write algorithm (graph/onprem.py) on a real tenant file, under
both readings of the open point: a discover that writes what it found into the job schema, and one
that does not (the tenant's). Either way the schema ends with the service's definition once, and no
definition is made up."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.model import Scope, Settings
from reconciler.core.onprem import OnPremisesAttribute
from reconciler.errors import ConflictError
from reconciler.graph.onprem import ad_directory, with_definitions_from
from reconciler.providers.local import LocalProvider, _TenantResources
from reconciler.tenant.objects import schema_extension

BADGE = OnPremisesAttribute("contosoBadgeId", ("user",))


class _PersistingDiscover(_TenantResources):
    """A service whose discover also writes the directory it found into the job schema."""

    def discover(self, id: str, job_id: str, directory_id: str) -> dict[str, Any]:
        found = super().discover(id, job_id, directory_id)
        schema = self.store.get_schema(id, job_id)
        schema["directories"] = [found if d["id"] == found["id"] else d for d in schema["directories"]]
        self.store.put_schema(id, job_id, schema)
        return found


def _provider(tmp_path: Path, *, persisting: bool) -> tuple[LocalProvider, str]:
    provider = LocalProvider(tmp_path / "tenant.db")
    if persisting:
        provider.resources = _PersistingDiscover(provider.store)
    provider.store.set_schema_extensions([schema_extension("contosoBadgeId", ["user"])])
    id = provider.create("contoso", Settings("contoso.com", "ops@contoso.com"), Scope.all(), [])
    return provider, id


def _user_attributes(provider: LocalProvider, id: str) -> list[dict[str, Any]]:
    job = next(j for j in provider.store.list_jobs(id) if j["templateId"] == "AD2AADProvisioning")
    ad = ad_directory(provider.store.get_schema(id, job["id"]))
    assert ad is not None
    return next(o for o in ad["objects"] if o["name"] == "user")["attributes"]


@pytest.mark.parametrize("persisting", [False, True], ids=["copied", "discover-persists"])
def test_the_definition_is_the_services_once_whichever_way_discover_behaves(
    tmp_path: Path, persisting: bool
) -> None:
    provider, id = _provider(tmp_path, persisting=persisting)
    assert provider.onprem_attributes_seen(id, [BADGE]).is_discovered("user", "contosoBadgeId")
    provider.edit_schema(id, Scope.all(), [], onprem_attributes=[BADGE])
    badges = [a for a in _user_attributes(provider, id) if a["name"] == "contosoBadgeId"]
    assert badges == [
        {
            "anchor": False,
            "caseExact": False,
            "defaultValue": None,
            "multivalued": False,
            "mutability": "ReadWrite",
            "name": "contosoBadgeId",
            "required": False,
            "type": "String",
            "apiExpressions": [],
            "metadata": [],
            "referencedObjects": [],
        }
    ]
    seen = provider.onprem_attributes_seen(id, [BADGE])
    assert seen.is_defined("user", "CONTOSOBADGEID")  # AD names compare without case
    provider.edit_schema(id, Scope.all(), [], onprem_attributes=[BADGE])
    assert len([a for a in _user_attributes(provider, id) if a["name"] == "contosoBadgeId"]) == 1


def test_an_undiscovered_attribute_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    provider, id = _provider(tmp_path, persisting=False)
    before = _user_attributes(provider, id)
    floor = OnPremisesAttribute("contosoFloor", ("user",))
    with pytest.raises(ConflictError, match="restart the provisioning agent"):
        provider.edit_schema(id, Scope.all(), [], onprem_attributes=[BADGE, floor])
    assert _user_attributes(provider, id) == before
    group = OnPremisesAttribute("contosoBadgeId", ("group",))
    with pytest.raises(ConflictError, match="has no group object"):
        provider.edit_schema(id, Scope.all(), [], onprem_attributes=[group])
    assert _user_attributes(provider, id) == before


REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "ad2aad-schema-sample1.json"


def test_a_definition_goes_into_the_real_schemas_ad_user_and_nothing_else_changes() -> None:
    """On a real portal-made job schema: the AD directory is found by the rule's source name, the
    discovered definition is appended to its `user` object as the service gave it (annotations
    dropped), and every other part of the schema stays as it was."""
    real = json.loads(REAL.read_text(encoding="utf-8"))
    before = copy.deepcopy(real)
    ad = ad_directory(real)
    assert ad is not None and ad["name"] == "Active Directory"
    definition = {
        "name": "contosoBadgeId",
        "type": "String",
        "multivalued": False,
        "anchor": False,
        "caseExact": False,
        "mutability": "ReadWrite",
        "required": False,
        "apiExpressions": [],
        "metadata": [],
        "referencedObjects": [],
    }
    found = {
        "name": "Active Directory",
        "objects": [
            {
                "name": "User",
                "attributes": [
                    {**definition, "@odata.type": "#microsoft.graph.attributeDefinition"},
                ],
            }
        ],
    }
    with_definitions_from(real, found, [("user", "contosoBadgeId"), ("user", "notDiscovered")])
    user = next(o for o in ad_directory(real)["objects"] if o["name"] == "user")  # type: ignore[index]
    old_user = next(o for o in ad_directory(before)["objects"] if o["name"] == "user")  # type: ignore[index]
    assert user["attributes"][:-1] == old_user["attributes"]
    assert user["attributes"][-1] == definition  # the service's own definition; none made up
    user["attributes"].pop()
    assert real == before
