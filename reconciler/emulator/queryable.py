"""Which query options Graph documents on which property, per type: the ``$filter`` operators (and
which of them need an advanced query), ``$search`` and ``$orderby``. Data only, from the properties
tables of the reference pages (servicePrincipal, application, group, the synchronization types and the
provisioning logs) and the advanced-query page; ``odata`` applies them.

I/O: none.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FILTERABLE", "ORDERABLE", "SEARCHABLE", "Filterable"]


@dataclass(frozen=True, slots=True)
class Filterable:
    """The $filter operators Graph documents on one property; ``advanced``: only as an advanced query."""

    operators: frozenset[str]
    advanced: frozenset[str] = frozenset()
    nulls: bool = True  # whether eq/ne null may be asked (as an advanced query)


def _ops(basic: str, advanced: str = "", *, nulls: bool = True) -> Filterable:
    return Filterable(frozenset(basic.split()), frozenset(advanced.split()), nulls)


def _group_ops(basic: str, advanced: str = "", *, nulls: bool = False) -> Filterable:
    """A group property's operators: null comparisons only where the reference page lists them."""
    return _ops(basic, advanced, nulls=nulls)


# From the properties tables of the servicePrincipal and application resources, and the advanced query
# tables (ne, not, endsWith and null comparisons need ConsistencyLevel: eventual and $count=true).
_DIRECTORY_OBJECT = {
    "id": _ops("eq in", "ne not"),
    "appId": _ops("eq in startswith", "ne not"),
    "displayName": _ops("eq in startswith ge le", "ne not endswith"),
    "applicationTemplateId": _ops("eq", "ne not"),
    "accountEnabled": _ops("eq", "ne not"),
    "servicePrincipalType": _ops("eq in startswith", "ne not"),
    "appOwnerOrganizationId": _ops("eq in", "ne not"),
    "preferredSingleSignOnMode": _ops("eq in", "ne not"),
    "publisherName": _ops("eq in startswith", "ne not"),
    "createdDateTime": _ops("eq ge le", "ne not"),
    "tags": _ops("any", "not"),
    "servicePrincipalNames": _ops("any", "not"),
    "alternativeNames": _ops("any", "not"),
    "identifierUris": _ops("any", "not"),
}
# From the properties table of the group resource page (v1.0; the beta page lists the same operators on
# these properties) and the advanced-queries page: ne, not, endsWith and null comparisons need
# ConsistencyLevel: eventual and $count=true, and so does every operator on description. A property the
# page gives no $filter (visibility, theme, ...) is refused.
_GROUP = {
    "id": _group_ops("eq in", "ne not"),
    "displayName": _group_ops("eq in startswith ge le", "ne not", nulls=True),
    "description": _group_ops("", "eq ne not ge le startswith"),
    "mail": _group_ops("eq in startswith ge le", "ne not endswith", nulls=True),
    "mailNickname": _group_ops("eq in startswith ge le", "ne not", nulls=True),
    "securityEnabled": _group_ops("eq in", "ne not"),
    "mailEnabled": _group_ops("eq", "ne not"),
    "onPremisesSyncEnabled": _group_ops("eq in", "ne not", nulls=True),
    "classification": _group_ops("eq startswith ge le", "ne not"),
    "isAssignableToRole": _group_ops("eq", "ne not"),
    "createdDateTime": _group_ops("eq ge le", "ne not in"),
    "expirationDateTime": _group_ops("eq ge le", "ne not in"),
    "renewedDateTime": _group_ops("eq ge le", "ne not in"),
    "onPremisesLastSyncDateTime": _group_ops("eq ge le", "ne not in"),
    "onPremisesSamAccountName": _group_ops("eq in startswith ge le", "ne not"),
    "preferredLanguage": _group_ops("eq in startswith ge le", "ne not", nulls=True),
    "membershipRuleProcessingState": _group_ops("eq in", "ne not"),
    "groupTypes": _group_ops("any", "not"),
    "proxyAddresses": _group_ops("any", "not endswith"),
}
FILTERABLE: dict[str, dict[str, Filterable]] = {
    "servicePrincipal": _DIRECTORY_OBJECT,
    "application": _DIRECTORY_OBJECT,
    "group": _GROUP,
    "synchronizationJob": {"id": _ops("eq ne in"), "templateId": _ops("eq ne in startswith")},
    "synchronizationTemplate": {"id": _ops("eq ne in"), "factoryTag": _ops("eq ne in startswith")},
    # The provisioning logs (provisioningObjectSummary's properties table, v1.0).
    "provisioningObjectSummary": {
        "activityDateTime": _ops("eq gt lt"),
        "changeId": _ops("eq contains"),
        "cycleId": _ops("eq contains"),
        "id": _ops("eq contains"),
        "jobId": _ops("eq contains"),
        "provisioningAction": _ops("eq contains"),
    },
}
SEARCHABLE = {
    "servicePrincipal": ("displayName", "description"),
    "application": ("displayName", "description"),
}
ORDERABLE = {
    "servicePrincipal": ("displayName",),
    "application": ("displayName",),
    "provisioningObjectSummary": ("activityDateTime",),
}
