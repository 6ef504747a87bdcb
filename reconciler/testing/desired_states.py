"""Test support: the seeded desired states of fault and crash runs, and writing them as YAML files.

A scenario is three configurations applied first, then two of them changed (scope, mappings, removals,
settings), the third deleted and one or two new: every kind of change a run must carry through.

I/O: ``write_desired`` replaces the YAML files of the folder it is given.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MAPPINGS", "REMOVABLE", "ConfigSpec", "Scenario", "make_scenario", "write_desired"]


NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")

# User mappings a configuration may set: (target, the YAML flow map of the row).
MAPPINGS: tuple[tuple[str, str], ...] = (
    ("department", "{target: department, source: department}"),
    ("extensionAttribute1", "{target: extensionAttribute1, constant: FTE}"),
    ("jobTitle", """{target: jobTitle, expression: 'Join(" ", Trim([title]), "(staff)")'}"""),
    (
        "displayName",
        """{target: displayName, expression: 'Join(" ", [givenName], [sn])', default: Unknown, """
        "apply: onCreate}",
    ),
    ("countryCode", "{target: countryCode, constant: NL}"),
)
# Template defaults a configuration may remove.
REMOVABLE = ("ExtensionAttribute3", "extensionAttribute4", "Initials")


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    """One configuration of a desired state, and what the tenant must hold for it."""

    name: str
    enabled: bool
    password_hash_sync: bool
    email: str
    scope_kind: str  # organizationalUnits | groups | all
    scope: tuple[str, ...]
    mappings: tuple[str, ...]  # targets of MAPPINGS rows set on users
    removed: tuple[str, ...]  # template default user targets removed

    @property
    def domain(self) -> str:
        return f"{self.name}.contoso.com"

    def yaml(self) -> str:
        lines = [
            "apiVersion: cloudsync/v1",
            "kind: Configuration",
            "metadata:",
            f"  name: {self.name}",
            "spec:",
            f"  domain: {self.domain}",
            f"  enabled: {str(self.enabled).lower()}",
            f"  passwordHashSync: {str(self.password_hash_sync).lower()}",
            f"  notificationEmail: {self.email}",
        ]
        if self.scope_kind != "all":
            lines += ["  scope:", f"    {self.scope_kind}:", *(f"      - {dn}" for dn in self.scope)]
        rows = [row for target, row in MAPPINGS if target in self.mappings]
        rows += [f"{{target: {t}, remove: true}}" for t in self.removed]
        if rows:
            lines += ["  attributeMappings:", "    user:", *(f"      - {row}" for row in rows)]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A desired state applied first, then the one the run is about; ``keeper`` is in both."""

    before: tuple[ConfigSpec, ...]
    after: tuple[ConfigSpec, ...]

    @property
    def keeper(self) -> str:
        return self.after[0].name


def _scope(rng: random.Random, name: str) -> tuple[str, tuple[str, ...]]:
    dc = f"DC={name},DC=contoso,DC=com"
    kind = rng.choice(("organizationalUnits", "groups", "all"))
    if kind == "organizationalUnits":
        return kind, tuple(
            rng.sample([f"OU=Sales,{dc}", f"OU=Staff,{dc}", f"OU=Lab,{dc}"], rng.randint(1, 2))
        )
    if kind == "groups":
        groups = [f"CN=Pilot,OU=Groups,{dc}", f"CN=Helpdesk,OU=Groups,{dc}"]
        return kind, tuple(rng.sample(groups, rng.randint(1, 2)))
    return kind, ()


def _spec(rng: random.Random, name: str) -> ConfigSpec:
    kind, scope = _scope(rng, name)
    return ConfigSpec(
        name=name,
        enabled=rng.random() < 0.8,
        password_hash_sync=rng.random() < 0.5,
        email=f"ops{rng.randint(1, 9)}@{name}.contoso.com",
        scope_kind=kind,
        scope=scope,
        mappings=tuple(t for t, _ in rng.sample(MAPPINGS, rng.randint(0, 3))),
        removed=tuple(rng.sample(REMOVABLE, rng.randint(0, 1))),
    )


def _changed(rng: random.Random, spec: ConfigSpec) -> ConfigSpec:
    """``spec`` with one to three things changed (never its name or domain)."""
    fresh = _spec(rng, spec.name)
    fields = ["enabled", "password_hash_sync", "email", "scope", "mappings", "removed"]
    chosen = set(rng.sample(fields, rng.randint(1, 3)))
    changes: dict[str, Any] = {}
    for name in chosen:
        if name == "scope":
            changes["scope_kind"], changes["scope"] = fresh.scope_kind, fresh.scope
        elif name in ("enabled", "password_hash_sync"):
            changes[name] = not getattr(spec, name)
        else:
            changes[name] = getattr(fresh, name)
    return ConfigSpec(**{**{f: getattr(spec, f) for f in spec.__slots__}, **changes})


def make_scenario(seed: int) -> Scenario:
    """Three configurations first; then two of them changed, the third deleted and one or two new."""
    rng = random.Random(seed)
    names = rng.sample(NAMES, 5)
    before = tuple(_spec(rng, n) for n in names[:3])
    after = (
        _changed(rng, before[0]),
        _changed(rng, before[1]),
        *(_spec(rng, n) for n in names[3 : 3 + rng.randint(1, 2)]),
    )
    return Scenario(before, after)


def write_desired(folder: Path, specs: Iterable[ConfigSpec]) -> None:
    """Replace the YAML files in ``folder`` with one file per configuration."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for spec in specs:
        (folder / f"{spec.name}.yaml").write_text(spec.yaml(), encoding="utf-8")
