"""What the synchronization service accepts and makes: its keys, flags and templates, and its new objects.

The pure half of the embedded tenant (no I/O): the job templates each application template offers, the
secret keys and restart flags the service accepts, the documents it makes (an application with its
service principal, a job created disabled and paused, a quarantine) and the errors it answers with.
``store.TenantStore`` keeps these documents in the tenant's SQLite file.
"""

from __future__ import annotations

import uuid
from typing import Any

from reconciler.errors import NotFoundError, ProviderError
from reconciler.graph.identity import (
    DEVICE_SYNC_TEMPLATE,
    EXCHANGE_WRITEBACK_TEMPLATE,
    GROUP_PROVISIONING_TEMPLATE,
    GROUP_TEMPLATE_APP_ID,
    PASSWORD_HASH_TEMPLATE,
    PROVISIONING_TEMPLATE,
    TEMPLATE_APP_ID,
)
from reconciler.graph.template import group_template_schema, template_schema
from reconciler.tenant.database import JSON, now

__all__ = [
    "INTEGRATED_APP_TAG",
    "JOB_TEMPLATES",
    "JOB_TEMPLATES_OF",
    "PATCHABLE_SP_FIELDS",
    "RESTART_FLAGS",
    "SECRET_KEYS",
    "bad_request",
    "new_application",
    "new_job",
    "not_found",
    "quarantine_status",
    "schema_version",
    "template_schema_of",
]

JOB_TEMPLATES: tuple[str, ...] = (
    PROVISIONING_TEMPLATE,
    PASSWORD_HASH_TEMPLATE,
    EXCHANGE_WRITEBACK_TEMPLATE,
    DEVICE_SYNC_TEMPLATE,
)
# The job templates each application template offers: AD -> Entra ID, and Entra ID -> AD (INFERRED).
JOB_TEMPLATES_OF: dict[str, tuple[str, ...]] = {
    TEMPLATE_APP_ID: JOB_TEMPLATES,
    GROUP_TEMPLATE_APP_ID: (GROUP_PROVISIONING_TEMPLATE,),
}
# Jobs whose real schema is not published: handed out with no rules of their own (we never edit them).
_RULELESS_TEMPLATES = frozenset((PASSWORD_HASH_TEMPLATE, EXCHANGE_WRITEBACK_TEMPLATE, DEVICE_SYNC_TEMPLATE))

# synchronizationSecret (Graph v1.0 CSDL): the service refuses any other key.
SECRET_KEYS: frozenset[str] = frozenset(
    (
        "None",
        "UserName",
        "Password",
        "SecretToken",
        "AppKey",
        "BaseAddress",
        "ClientIdentifier",
        "ClientSecret",
        "SingleSignOnType",
        "Sandbox",
        "Url",
        "Domain",
        "ConsumerKey",
        "ConsumerSecret",
        "TokenKey",
        "TokenExpiration",
        "Oauth2AccessToken",
        "Oauth2AccessTokenCreationTime",
        "Oauth2RefreshToken",
        "SyncAll",
        "InstanceName",
        "Oauth2ClientId",
        "Oauth2ClientSecret",
        "CompanyId",
        "UpdateKeyOnSoftDelete",
        "SynchronizationSchedule",
        "SystemOfRecord",
        "SandboxName",
        "EnforceDomain",
        "SyncNotificationSettings",
        "SkipOutOfScopeDeletions",
        "Oauth2AuthorizationCode",
        "Oauth2RedirectUri",
        "ApplicationTemplateIdentifier",
        "Oauth2TokenExchangeUri",
        "Oauth2AuthorizationUri",
        "AuthenticationType",
        "Server",
        "PerformInboundEntitlementGrants",
        "HardDeletesEnabled",
        "SyncAgentCompatibilityKey",
        "SyncAgentADContainer",
        "ValidateDomain",
        "TestReferences",
        "ConnectionString",
    )
)

# synchronizationJobRestartScope flags.
RESTART_FLAGS: frozenset[str] = frozenset(
    ("None", "ConnectorDataStore", "Escrows", "Watermark", "QuarantineState", "Full", "ForceDeletes")
)
# What ``PATCH /servicePrincipals/{id}`` may change here.
PATCHABLE_SP_FIELDS = frozenset(("tags", "displayName", "notes", "accountEnabled"))

# The tag the service puts on the principal of an application made from a template or in the portal.
INTEGRATED_APP_TAG = "WindowsAzureActiveDirectoryIntegratedApp"

_NEVER = "0001-01-01T00:00:00Z"


def bad_request(message: str, code: str = "BadRequest") -> ProviderError:
    return ProviderError(message, code=code, status=400)


def not_found(what: str) -> NotFoundError:
    return NotFoundError(f"{what} not found", code="Request_ResourceNotFound", status=404)


def schema_version() -> str:
    """The ``version`` the service stamps on a job schema it writes."""
    return f"Date:{now()}, ActivityId:{uuid.uuid4()}"


def template_schema_of(template_id: str) -> JSON:
    """``GET …/synchronization/templates/{templateId}/schema``."""
    if template_id == PROVISIONING_TEMPLATE:
        return template_schema()
    if template_id == GROUP_PROVISIONING_TEMPLATE:
        return group_template_schema()
    if template_id in _RULELESS_TEMPLATES:
        # The password-hash job has no mappings of its own; the real schemas of it and of the add-on
        # jobs are not published.
        return {
            "id": template_id,
            "version": None,
            "synchronizationRules": [],
            "directories": [],
        }
    raise not_found(f"synchronization template {template_id}")


def new_application(display_name: str, template_id: str | None) -> tuple[JSON, JSON]:
    """An application made from template ``template_id`` (None: as the portal may leave it) and its
    service principal, as ``POST /applicationTemplates/{id}/instantiate`` returns them."""
    app_id = str(uuid.uuid4())
    application: JSON = {
        "id": str(uuid.uuid4()),
        "appId": app_id,
        "applicationTemplateId": template_id,
        "displayName": display_name,
        "createdDateTime": now(),
        "notes": None,
        "tags": [],
    }
    service_principal: JSON = {
        "id": str(uuid.uuid4()),
        "accountEnabled": True,
        "appId": app_id,
        "appDisplayName": display_name,
        "applicationTemplateId": template_id,
        "displayName": display_name,
        "notes": None,
        # As Microsoft's example of a Cloud Sync principal shows them: its own app id as its only
        # name, and the tag the service puts on every integrated application.
        "servicePrincipalNames": [app_id],
        "servicePrincipalType": "Application",
        "tags": [INTEGRATED_APP_TAG],
    }
    return application, service_principal


def new_job(job_id: str, template_id: str) -> JSON:
    """A synchronization job as ``POST …/synchronization/jobs`` makes it: disabled and paused."""
    return {
        "id": job_id,
        "templateId": template_id,
        "schedule": {"expiration": None, "interval": "PT40M", "state": "Disabled"},
        "status": {
            "code": "Paused",
            "countSuccessiveCompleteFailures": 0,
            "escrowsPruned": False,
            "lastExecution": None,
            "lastSuccessfulExecution": None,
            "lastSuccessfulExecutionWithExports": None,
            "progress": [],
            "quarantine": None,
            "steadyStateFirstAchievedTime": _NEVER,
            "steadyStateLastAchievedTime": _NEVER,
            "synchronizedEntryCountByType": [],
            "troubleshootingUrl": None,
        },
        "synchronizationJobSettings": [],
    }


def quarantine_status(reason: str, message: str, code: str) -> dict[str, Any]:
    """The status fields of a job the service has put in quarantine after repeated failures."""
    began = now()
    error = {"code": code, "message": message, "tenantActionable": True}
    return {
        "code": "Quarantine",
        "quarantine": {
            "currentBegan": began,
            "error": error,
            "nextAttempt": began,
            "reason": reason,
            "seriesBegan": began,
            "seriesCount": 1,
        },
    }
