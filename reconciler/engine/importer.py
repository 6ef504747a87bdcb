"""``reconciler import``: write the desired-state YAML for every configuration a target holds.

Each configuration becomes one Configuration document holding only what differs from the defaults (the
template's mappings, the format's default settings), so that the files are short and a plan made right
after the import shows no changes. A configuration the tool does not manage yet gets a name from its
domain; with ``adopt`` it is then marked managed under that name, under the target's apply lock and in
the journal, so the next plan takes it over instead of proposing a second one.

Target names are matched as the service matches them, case-insensitively, and written as the service
spells them. A matching priority has no place in the format; the plan keeps the service's. What breaks
one of the format's rules (no notification e-mail, a scope DN outside the domain) is found by checking
the files as the loader checks them before they are written: then import stops with those errors and
writes nothing, so that whatever it writes always plans to no changes.

I/O: reads the target; writes the YAML files (each one atomically) and, with ``adopt``, the target.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reconciler.config.files import SourceFile
from reconciler.config.load import load_files
from reconciler.config.yamlio import dump_yaml
from reconciler.core.model import (
    DEFAULT_DELETE_THRESHOLD,
    EXTENSION_REF,
    OBJECT_TYPES,
    ApplyMode,
    Direction,
    DirectoryExtension,
    ExtensionsSeen,
    Mapping,
    MappingKind,
    ScopeKind,
)
from reconciler.core.observed import Observed
from reconciler.core.onprem import AD_OBJECTS
from reconciler.engine.journal import ChangeOutcome, Event, Journal, RunResult
from reconciler.engine.lock import target_lock
from reconciler.errors import LoadError, ReconcilerError
from reconciler.graph.extensions import short_name
from reconciler.graph.onprem import ad_directory, attribute_names
from reconciler.graph.reading import template_defaults_for
from reconciler.graph.template import template_schema
from reconciler.providers.base import LooksUpDomains, Provider, ReadsExtensions, ReadsOnPremisesAttributes

__all__ = ["ImportResult", "Imported", "configuration_document", "import_target", "name_for"]

API_VERSION = "cloudsync/v1"
_NAME_OK = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_VALUE_KEY = {
    MappingKind.DIRECT: "source",
    MappingKind.CONSTANT: "constant",
    MappingKind.EXPRESSION: "expression",
}


@dataclass(frozen=True, slots=True)
class Imported:
    name: str
    id: str
    file: str
    adopted: bool  # marked managed by this import
    was_managed: bool


@dataclass(frozen=True, slots=True)
class ImportResult:
    configurations: tuple[Imported, ...]
    warnings: tuple[str, ...]
    run_id: str | None = None  # the journal run of the adoption, when there was one


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")
    return slug[:63].rstrip("-") or "configuration"


def name_for(o: Observed, taken: set[str]) -> str:
    """The configuration's managed name, or one made from its domain that no other configuration has."""
    if o.name and _NAME_OK.match(o.name):
        return o.name
    domain = o.settings.domain
    for candidate in (_slug(domain.split(".")[0]), _slug(domain)):
        if candidate not in taken:
            return candidate
    base = _slug(domain)[:59].rstrip("-")
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _mapping_entry(m: Mapping) -> dict[str, Any]:
    entry: dict[str, Any] = {"target": m.target, _VALUE_KEY[m.kind]: m.value}
    if m.default is not None:
        entry["default"] = m.default
    if m.apply is not ApplyMode.ALWAYS:
        entry["apply"] = m.apply.value
    return entry


def _mapping_overrides(o: Observed, defaults: Sequence[Mapping]) -> dict[str, list[dict[str, Any]]]:
    """Per object type: entries that set a mapping the defaults lack or differ in, or remove a default.

    Rows are matched as the service matches them, case-insensitively by (object, target); a row is
    written with the service's spelling of its target, so that what is written plans to no change.
    A row that differs from the default only in its matching priority is not written: the format has
    no word for it, and the plan keeps the service's.
    """
    have: dict[tuple[str, str], Mapping] = {}
    for m in o.mappings:
        have.setdefault(m.folded_key, m)
    base: dict[tuple[str, str], Mapping] = {}
    for m in defaults:
        base.setdefault(m.folded_key, m)
    out: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(set(have) | set(base), key=lambda k: (OBJECT_TYPES.index(k[0]), k[1])):
        mine, default = have.get(key), base.get(key)
        if mine is None:
            assert default is not None
            out.setdefault(key[0], []).append({"target": default.target, "remove": True})
            continue
        if default is not None and replace(mine, target=default.target, matching_priority=0) == replace(
            default, matching_priority=0
        ):
            continue
        out.setdefault(key[0], []).append(_mapping_entry(mine))
    return out


# The Entra ID object an ``ext:`` target of each object mapping writes (the loader's rule).
_EXTENSION_OBJECT = {"user": "User", "inetOrgPerson": "User", "group": "Group"}


def _declared(
    entries: dict[str, list[dict[str, Any]]], extensions: ExtensionsSeen | None
) -> list[DirectoryExtension]:
    """``entries`` with the attributes of the Cloud Sync extensions application written ``ext:NAME``
    (changed in place), and the extension properties they name, to declare. A target the property
    does not target stays as the service spells it (the loader would refuse it as ``ext:``), and so
    does an attribute of any other application, or of a property the application no longer has."""
    if extensions is None:
        return []
    declared: dict[str, DirectoryExtension] = {}

    def symbolic(text: str, obj: str | None) -> str:
        name = short_name(text, extensions.app_id)
        found = extensions.find(name) if name is not None else None
        if found is None or (obj is not None and _EXTENSION_OBJECT.get(obj) not in found.target_objects):
            return text
        declared.setdefault(found.name.casefold(), found)
        return EXTENSION_REF + found.name

    for obj, rows in entries.items():
        for entry in rows:
            if not entry.get("remove"):
                entry["target"] = symbolic(entry["target"], obj)
            if "source" in entry:
                entry["source"] = symbolic(entry["source"], None)
    return sorted(declared.values(), key=lambda e: e.name.casefold())


def _declaration(e: DirectoryExtension) -> dict[str, Any]:
    """One ``spec.directoryExtensions`` entry, without the values the format defaults to."""
    entry: dict[str, Any] = {"name": e.name}
    if e.data_type != "String":
        entry["dataType"] = e.data_type
    if tuple(e.target_objects) != ("User",):
        entry["targetObjects"] = list(e.target_objects)
    if e.multi_valued:
        entry["isMultiValued"] = True
    return entry


def _onprem_declarations(
    entries: dict[str, list[dict[str, Any]]], ad_attributes: dict[str, frozenset[str]]
) -> list[dict[str, Any]]:
    """``spec.onPremisesAttributes`` for the AD attributes ``entries`` read that the job schema defines
    (``ad_attributes``) but the template's AD directory does not: so that the files, applied to a job
    made from the template, take those definitions from a discover too."""
    template = attribute_names(ad_directory(template_schema()))
    found: dict[str, tuple[str, list[str]]] = {}
    for obj, rows in entries.items():
        for entry in rows:
            names: list[str] = []
            if "source" in entry:
                names = [entry["source"]]
            elif "expression" in entry:
                from reconciler.expressions import parse, referenced_attributes

                names = list(referenced_attributes(parse(entry["expression"])))
            for name in names:
                folded = name.casefold()
                if folded in template.get(obj.casefold(), ()) or folded not in ad_attributes.get(
                    obj.casefold(), ()
                ):
                    continue
                objects = found.setdefault(folded, (name, []))[1]
                if obj not in objects:
                    objects.append(obj)
    out = []
    for name, objects in sorted(found.values(), key=lambda v: v[0].casefold()):
        ordered = sorted(objects, key=AD_OBJECTS.index)
        out.append({"name": name} if ordered == ["user"] else {"name": name, "objects": ordered})
    return out


def configuration_document(
    o: Observed,
    name: str,
    defaults: Sequence[Mapping],
    warnings: list[str] | None = None,
    *,
    extensions: ExtensionsSeen | None = None,
    ad_attributes: dict[str, frozenset[str]] | None = None,
) -> dict[str, Any]:
    """The smallest Configuration document that describes ``o`` exactly (as far as the format can).

    ``extensions``: the tenant's Cloud Sync extensions application; the mappings of its attributes are
    written as declarations (``spec.directoryExtensions`` and ``ext:NAME``). ``ad_attributes``: what
    the job schema's AD directory defines; the AD attributes mappings read beyond the template's are
    declared (``spec.onPremisesAttributes``)."""
    s = o.settings
    to_ad = s.direction is Direction.ENTRA_TO_AD
    spec: dict[str, Any] = {"direction": s.direction.value} if to_ad else {}
    spec["domain"] = s.domain
    if s.notification_email:
        # Without one, the document lacks the required field: loading it says so, and import stops.
        spec["notificationEmail"] = s.notification_email
    if not s.enabled:
        spec["enabled"] = False
    if not s.password_hash_sync and not to_ad:
        spec["passwordHashSync"] = False
    if s.preview_users:
        spec["preview"] = {"users": True}
    # The add-on jobs on the same principal.
    if s.exchange_hybrid_writeback:
        spec["exchangeHybridWriteback"] = True
    if s.device_sync:
        spec["deviceSync"] = True
    deletes: dict[str, Any] = {}
    if not s.accidental_deletes_enabled:
        deletes["enabled"] = False
    if s.accidental_deletes_threshold != DEFAULT_DELETE_THRESHOLD:
        deletes["threshold"] = s.accidental_deletes_threshold
    if deletes:
        spec["accidentalDeletes"] = deletes
    if o.deletion_protection:
        spec["deletionProtection"] = True
    if o.restart_token is not None:
        spec["restartToken"] = o.restart_token
    if o.scope.kind is not ScopeKind.ALL:
        spec["scope"] = {o.scope.kind.value: list(o.scope.entries)}
    elif o.scope.filters:
        spec["scope"] = {"filters": o.scope.filters_as_list()}
    if to_ad:
        # The rows of the Entra ID -> AD job's template; users' only while that preview is on (their
        # object mapping is read only then).
        defaults = [
            m for m in template_defaults_for(Direction.ENTRA_TO_AD) if s.preview_users or m.object != "user"
        ]
    mappings = _mapping_overrides(o, defaults)
    declared = _declared(mappings, extensions)
    if declared:
        spec["directoryExtensions"] = [_declaration(e) for e in declared]
    onprem = _onprem_declarations(mappings, ad_attributes) if ad_attributes and not to_ad else []
    if onprem:
        spec["onPremisesAttributes"] = onprem
    if mappings:
        spec["attributeMappings"] = mappings
    return {"apiVersion": API_VERSION, "kind": "Configuration", "metadata": {"name": name}, "spec": spec}


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return None


def _adopt(provider: Provider, pending: Iterable[tuple[Observed, str]], lock_timeout: float) -> str:
    journal = Journal(provider.target)
    with target_lock(provider.target, timeout=lock_timeout, command="reconciler import --adopt") as info:
        journal.write(
            Event.RUN_START,
            kind="import",
            target=provider.target,
            user=_user(),
            commit=None,
            recovered_lock=info.recovered_from,
        )
        result = RunResult.OK
        try:
            for o, name in pending:
                journal.write(Event.CHANGE_START, name=name, action="adopt", id=o.id)
                try:
                    provider.adopt(o.id, name)
                except Exception as exc:
                    journal.write(
                        Event.CHANGE_END,
                        name=name,
                        action="adopt",
                        outcome=ChangeOutcome.FAILED,
                        error=str(exc),
                    )
                    result = RunResult.FAILED
                    raise
                journal.write(Event.CHANGE_END, name=name, action="adopt", outcome=ChangeOutcome.OK)
        finally:
            journal.write(Event.RUN_END, result=result)
    return journal.run_id


def import_target(
    provider: Provider,
    out: str | Path,
    *,
    adopt: bool = False,
    overwrite: bool = False,
    names: Sequence[str] = (),
    lock_timeout: float = 0.0,
) -> ImportResult:
    """Write ``<out>/<name>.yaml`` for each configuration on the target (or those named); adopt if asked.

    Existing files are not replaced unless ``overwrite``; nothing is written when one would be.
    """
    if isinstance(provider, LooksUpDomains):
        # A configuration made in the portal may be found only by its domain (its principal's name):
        # the names given may be domains; without names, every candidate is looked at.
        provider.look_up_domains(names or None)
    everything = provider.read_all()
    # Managed configurations first, so that their names are taken before any is made up.
    observed = sorted(everything, key=lambda x: (not x.managed, x.name or "", x.settings.domain, x.id))
    if names:
        observed = [o for o in observed if o.name in names or o.id in names or o.settings.domain in names]
        missing = set(names) - {k for o in observed for k in (o.name, o.id, o.settings.domain)}
        if missing:
            raise ReconcilerError(f"not on {provider.target}: {', '.join(sorted(missing))}")
    defaults = provider.template_defaults()
    extensions = provider.read_extensions() if isinstance(provider, ReadsExtensions) else None
    folder = Path(out)
    taken = {o.name for o in everything if o.managed and o.name}
    warnings: list[str] = []
    planned: list[tuple[Observed, str, Path, str]] = []
    for o in observed:
        if not o.complete:
            warnings.append(f"{o.display}: its create was interrupted; apply its configuration to finish it")
            continue
        name = o.name if o.managed and o.name else name_for(o, taken)
        taken.add(name)
        ad_attributes = (
            provider.ad_attributes(o.id)
            if isinstance(provider, ReadsOnPremisesAttributes)
            and o.settings.direction is Direction.AD_TO_ENTRA
            else None
        )
        document = configuration_document(
            o, name, defaults, warnings, extensions=extensions, ad_attributes=ad_attributes
        )
        text = dump_yaml(document)
        planned.append((o, name, folder / f"{name}.yaml", text))
    # What the target holds may break a rule of the format (no notification e-mail, a scope DN outside
    # the domain): then the files would not plan to "no changes", so nothing is written.
    try:
        load_files([SourceFile(str(path), text.encode()) for _, _, path, text in planned])
    except LoadError as exc:
        raise ReconcilerError(
            "the format cannot express what the target holds, so nothing was imported:\n"
            + "\n".join(f"  {d}" for d in exc.diagnostics)
        ) from exc
    existing = [str(p) for _, _, p, _ in planned if p.exists()]
    if existing and not overwrite:
        raise ReconcilerError(
            "these files exist already (pass --overwrite to replace them): " + ", ".join(existing)
        )
    folder.mkdir(parents=True, exist_ok=True)
    for _, _, path, text in planned:
        _write(path, text)
    pending = [(o, name) for o, name, _, _ in planned if adopt and not o.managed]
    run_id = _adopt(provider, pending, lock_timeout) if pending else None
    return ImportResult(
        tuple(
            Imported(name, o.id, str(path), adopt and not o.managed, o.managed)
            for o, name, path, _ in planned
        ),
        tuple(warnings),
        run_id,
    )
