"""Sample desired-state texts and types shared by the loader tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

MakeDir = Callable[[dict[str, str | bytes]], Path]

# A valid configuration to start from; tests change one thing in it.
CONTOSO = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: contoso
  labels: {tier: standard}
spec:
  domain: contoso.com
  notificationEmail: identity-ops@contoso.com
  scope:
    organizationalUnits:
      - OU=Sales,DC=contoso,DC=com
  attributeMappings:
    user:
      - {target: department, source: department}
      - {target: extensionAttribute1, constant: FTE}
"""


def entra_to_ad(*groups: str, name: str = "contoso-groups") -> str:
    """An Entra ID -> AD configuration for contoso.com that selects ``groups`` (object ids)."""
    return f"""\
apiVersion: cloudsync/v1
kind: Configuration
metadata:
  name: {name}
spec:
  direction: entraToAd
  domain: contoso.com
  notificationEmail: identity-ops@contoso.com
  scope:
    selectedGroups: [{", ".join(groups)}]
"""
