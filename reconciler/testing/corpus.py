"""Synthetic desired-state corpora for the benchmarks: N configuration files with M mappings each.

Writes YAML files into a folder the caller gives (a temporary one); nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["GIT_ENV", "configuration_yaml", "write_corpus"]

# For benchmarks that commit a corpus: a fixed identity, and no user or system git configuration.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Benchmark",
    "GIT_AUTHOR_EMAIL": "benchmark@example.com",
    "GIT_COMMITTER_NAME": "Benchmark",
    "GIT_COMMITTER_EMAIL": "benchmark@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}

# Real Active Directory attribute names, so that the corpus validates without warnings.
_SOURCES = (
    "department",
    "company",
    "title",
    "mail",
    "mobile",
    "employeeID",
    "physicalDeliveryOfficeName",
    "telephoneNumber",
    "streetAddress",
    "postalCode",
    "l",
    "st",
    "co",
    "description",
    "info",
)

_EXPRESSIONS = (
    'Join(" ", [givenName], [sn])',
    "Trim([department])",
    'IIF(IsPresent([employeeID]), [employeeID], "none")',
    'Replace([mail], "@contoso.com", , , "@fabrikam.com", , )',
    "Left(Trim([description]), 448)",
)


def configuration_yaml(index: int, mappings: int = 60) -> str:
    """One Configuration document with ``mappings`` user mappings of every kind."""
    name = f"cfg-{index:05d}"
    domain = f"d{index:05d}.example.com"
    dc = ",".join(f"DC={part}" for part in domain.split("."))
    lines = [
        "apiVersion: cloudsync/v1",
        "kind: Configuration",
        "metadata:",
        f"  name: {name}",
        "  labels: {tier: standard}",
        "spec:",
        f"  domain: {domain}",
        "  enabled: true",
        f"  passwordHashSync: {'true' if index % 2 else 'false'}",
        f"  notificationEmail: identity-ops@{domain}",
        "  accidentalDeletes: {enabled: true, threshold: 500}",
        "  scope:",
        "    organizationalUnits:",
        f'      - "OU=Sales,{dc}"',
        f'      - "OU=Pilot {index},{dc}"',
        "  attributeMappings:",
        "    user:",
    ]
    for m in range(mappings):
        kind = m % 3
        if kind == 0:
            lines.append(f"      - {{target: extensionAttribute{m}, source: {_SOURCES[m % len(_SOURCES)]}}}")
        elif kind == 1:
            lines.append(f"      - {{target: extensionAttribute{m}, constant: C{m}}}")
        else:
            expr = _EXPRESSIONS[m % len(_EXPRESSIONS)].replace('"', '\\"')
            lines.append(f'      - {{target: extensionAttribute{m}, expression: "{expr}", default: none}}')
    return "\n".join(lines) + "\n"


def write_corpus(folder: Path, count: int, mappings: int = 60) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"cfg-{i:05d}.yaml"
        path.write_text(configuration_yaml(i, mappings), encoding="utf-8")
        paths.append(path)
    return paths
