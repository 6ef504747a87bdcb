"""A modest catalog of known source attribute names, for warnings about unknown attributes. Pure data.

Built from the default mappings and scoping filters the references show (the Cloud Sync AD->Entra ID
user schema, the Entra ID->AD group and user mappings, and the AD attributes those name). It is not a
schema: an attribute missing here may still exist, so callers should warn, never fail.

``KNOWN_ATTRIBUTES`` maps an object type to the *case-folded* names (LDAP names are case-insensitive),
so test with ``name.casefold() in KNOWN_ATTRIBUTES["user"]``; ``known_attribute`` gives the spelling
used in the references, which helps to point out a casing difference. Object types: ``user``,
``inetorgperson``, ``group`` and ``contact`` (AD sources), and ``entra_user`` and ``entra_group``
(Entra ID sources of the Entra ID->AD direction).
"""

from __future__ import annotations

__all__ = ["KNOWN_ATTRIBUTES", "known_attribute"]

_AD_COMMON = (
    "adminDescription cn co company countryCode c department description displayName distinguishedName "
    "info isCriticalSystemObject mail mailNickname managedBy objectGUID objectSid proxyAddresses "
    "sAMAccountName targetAddress legacyExchangeDN msExchRecipientTypeDetails whenCreated whenChanged "
    "mS-DS-ConsistencyGuid msDS-ExternalDirectoryObjectId"
)
_EXTENSION_ATTRIBUTES = " ".join(f"extensionAttribute{i}" for i in range(1, 16))
_EXCHANGE_CUSTOM = " ".join(f"msExchExtensionCustomAttribute{i}" for i in range(1, 6))

_AD_USER = (
    "accountDisabled accountExpires altRecipient assistant authOrig dLMemRejectPerms dLMemSubmitPerms "
    "employeeID employeeNumber employeeType facsimileTelephoneNumber givenName homePhone initials ipPhone "
    "l lastLogonTimestamp manager middleName mobile msDS-HABSeniorityIndex msDS-PhoneticDisplayName "
    "msDS-preferredDataLocation msExchArchiveGUID msExchArchiveName msExchAssistantName msExchAuditAdmin "
    "msExchAuditDelegate msExchRequireAuthToSendTo msExchResourceCapacity msExchResourceDisplay "
    "msExchResourceMetaData msExchResourceSearchProperties msExchRetentionComment msExchRetentionURL "
    "msExchSafeRecipientsHash msExchSafeSendersHash msExchBlockedSendersHash msExchSenderHintTranslations "
    "msExchTeamMailboxExpiration msExchTeamMailboxOwners msExchTeamMailboxSharePointLinkedBy "
    "msExchTeamMailboxSharePointUrl msExchUsageLocation msExchUserHoldPolicies "
    "msExchUCVoiceMailSettings msRTCSIP-ApplicationOptions msRTCSIP-DeploymentLocator msRTCSIP-Line "
    "msRTCSIP-OptionFlags msRTCSIP-OwnerUrn msRTCSIP-PrimaryUserAddress msRTCSIP-UserEnabled "
    "otherFacsimileTelephoneNumber otherHomePhone otherIpPhone otherMobile otherPager otherTelephone "
    "pager PasswordChangeDate PasswordHash physicalDeliveryOfficeName postalCode postOfficeBox "
    "preferredLanguage publicDelegates pwdLastSet sn st streetAddress telephoneAssistant "
    "telephoneNumber thumbnailPhoto title url userAccountControl userCertificate userPrincipalName "
    "userSMIMECertificate wWWHomePage"
)
_AD_GROUP = "groupType member"
_AD_CONTACT = (
    "givenName sn initials title telephoneNumber mobile facsimileTelephoneNumber l st postalCode "
    "streetAddress physicalDeliveryOfficeName manager"
)
_ENTRA_USER = (
    "accountEnabled city cloudAnchor cloudLegacyExchangeDN cloudMSExchArchiveStatus "
    "cloudMSExchBlockedSendersHash cloudMSExchSafeRecipientsHash cloudMSExchSafeSendersHash "
    "cloudMSExchUCVoiceMailSettings cloudMSExchUserHoldPolicies companyName country department "
    "displayName employeeId givenName mail mailNickname manager mobile objectId "
    "onPremisesDistinguishedName onPremisesSamAccountName onPremisesUserPrincipalName postalCode "
    "preferredLanguage proxyAddresses state streetAddress surname telephoneNumber jobTitle "
    "userPrincipalName usageLocation"
)
_ENTRA_GROUP = "description displayName mail mailNickname members objectId proxyAddresses securityEnabled"


def _names(*groups: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for group in groups for name in group.split()))


_SPELLINGS: dict[str, tuple[str, ...]] = {
    "user": _names(_AD_COMMON, _EXTENSION_ATTRIBUTES, _EXCHANGE_CUSTOM, _AD_USER),
    "inetorgperson": _names(_AD_COMMON, _EXTENSION_ATTRIBUTES, _EXCHANGE_CUSTOM, _AD_USER),
    "group": _names(_AD_COMMON, _EXTENSION_ATTRIBUTES, _AD_GROUP),
    "contact": _names(_AD_COMMON, _EXTENSION_ATTRIBUTES, _AD_CONTACT),
    "entra_user": _names(_ENTRA_USER, _EXTENSION_ATTRIBUTES),
    "entra_group": _names(_ENTRA_GROUP),
}

KNOWN_ATTRIBUTES: dict[str, frozenset[str]] = {
    kind: frozenset(name.casefold() for name in names) for kind, names in _SPELLINGS.items()
}

_BY_FOLDED: dict[str, dict[str, str]] = {
    kind: {name.casefold(): name for name in names} for kind, names in _SPELLINGS.items()
}


def known_attribute(object_type: str, name: str) -> str | None:
    """The catalog's spelling of ``name`` for ``object_type`` (both matched ignoring case), or None."""
    return _BY_FOLDED.get(object_type.casefold(), {}).get(name.casefold())
