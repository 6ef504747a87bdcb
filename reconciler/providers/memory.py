"""The memory provider: an in-process fake target for tests, with the local provider's behaviour.

No I/O. Configurations are kept as domain values; ids are GUID-shaped and increase with creation order.
Besides the ``Provider`` methods it offers what tests need to set a scene: unmanaged and half-created
configurations, job health, CredentialData drift, injected failures, and a log of every call.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.core.model import CREDENTIAL_DATA, PHS_OBJECTS, Mapping, Scope, Settings, edit_mappings
from reconciler.core.observed import HeldDeletes, JobStatus, Observed
from reconciler.errors import ConflictError, NotFoundError, ProviderError
from reconciler.graph.provisioning_logs import count_held_deletes, staged_delete_entry, unknown_held_deletes
from reconciler.providers.base import RESET_FULL

__all__ = ["MemoryProvider"]

_QUARANTINE_LIFTING = frozenset(("QuarantineState", "Full"))


@dataclass(slots=True)
class _Record:
    id: str
    name: str | None
    managed: bool
    settings: Settings  # ``enabled`` is the jobs' running state
    scope: Scope
    mappings: tuple[Mapping, ...]
    status: JobStatus
    deletion_protection: bool = False
    restart_token: str | None = None
    complete: bool = True
    credential_data_count: dict[str, int] = field(default_factory=dict)
    restart_pending: bool = False
    # The provisioning logs' staged deletes of the job (``quarantine(..., staged=...)``).
    staged: list[dict[str, Any]] = field(default_factory=list)

    def observed(self) -> Observed:
        return Observed(
            id=self.id,
            name=self.name,
            managed=self.managed,
            settings=self.settings,
            scope=self.scope,
            mappings=self.mappings,
            status=self.status,
            deletion_protection=self.deletion_protection,
            restart_token=self.restart_token,
            credential_data_count=dict(self.credential_data_count),
            complete=self.complete,
            restart_pending=self.restart_pending,
        )


def _credential_counts(password_hash_sync: bool, rows: Iterable[Mapping]) -> dict[str, int]:
    objects = {m.object for m in rows}
    return {o: 1 if password_hash_sync else 0 for o in PHS_OBJECTS if o in objects}


def _edited(
    rows: Iterable[Mapping], mappings: Iterable[Mapping], removals: Iterable[tuple[str, str]]
) -> tuple[Mapping, ...]:
    """The rows as a target keeps them after an edit: the same rule as a job schema's (``edit_mappings``)."""
    mappings = [m for m in mappings if m.target != CREDENTIAL_DATA]
    removals = list(removals)
    have = {m.object for m in rows}
    missing = sorted(({m.object for m in mappings} | {o for o, _ in removals}) - have)
    if missing:
        raise ProviderError(f"the job schema has no object mapping for {', '.join(missing)}")
    return edit_mappings(rows, mappings, removals)


class MemoryProvider:
    """``Provider`` held in memory. ``calls`` logs every call as ``(method, args)``."""

    def __init__(self, name: str = "default", defaults: Sequence[Mapping] | None = None) -> None:
        self.name = name
        self.target = f"memory:{name}"
        self._defaults = tuple(defaults) if defaults is not None else None
        self._records: dict[str, _Record] = {}
        self._counter = 0
        self._lock = threading.RLock()
        self._failures: dict[str, list[BaseException]] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.restarts: list[tuple[str, str]] = []

    # ----------------------------------------------------------------------------------------------
    # plumbing

    def _enter(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def _new_id(self) -> str:
        self._counter += 1
        return f"00000000-0000-4000-8000-{self._counter:012d}"

    def _get(self, id: str) -> _Record:
        record = self._records.get(id)
        if record is None:
            raise NotFoundError(f"configuration {id} not found", status=404)
        return record

    def _managed(self, id: str) -> _Record:
        record = self._get(id)
        if not record.managed:
            raise ConflictError(f"configuration {id} is not managed by reconciler; adopt it first")
        return record

    # ----------------------------------------------------------------------------------------------
    # Provider

    def read_all(self) -> tuple[Observed, ...]:
        with self._lock:
            self._enter("read_all")
            return tuple(r.observed() for r in sorted(self._records.values(), key=lambda r: r.id))

    def read_named(self, names: frozenset[str]) -> tuple[Observed, ...]:
        return tuple(o for o in self.read_all() if not o.managed or o.name in names)

    def template_defaults(self) -> tuple[Mapping, ...]:
        with self._lock:
            self._enter("template_defaults")
            return self._template_defaults()

    def _template_defaults(self) -> tuple[Mapping, ...]:
        if self._defaults is None:
            from reconciler.graph.reading import template_defaults

            self._defaults = template_defaults()
        return self._defaults

    def create(
        self,
        name: str,
        settings: Settings,
        scope: Scope,
        mappings: Sequence[Mapping],
        *,
        removals: Sequence[tuple[str, str]] = (),
        deletion_protection: bool = False,
        restart_token: str | None = None,
    ) -> str:
        with self._lock:
            self._enter("create", name)
            ours = [r for r in self._records.values() if r.managed and r.name == name]
            if len(ours) > 1:
                raise ConflictError(f"more than one configuration is managed as {name!r}")
            if ours and ours[0].complete:
                return ours[0].id
            effective = _edited(self._template_defaults(), mappings, removals)
            id = ours[0].id if ours else self._new_id()
            self._records[id] = _Record(
                id=id,
                name=name,
                managed=True,
                settings=replace(settings, enabled=False),  # created paused
                scope=scope,
                mappings=effective,
                status=JobStatus(code="Paused"),
                deletion_protection=deletion_protection,
                restart_token=restart_token,
                complete=True,
                credential_data_count=_credential_counts(settings.password_hash_sync, effective),
            )
            return id

    def update_settings(
        self,
        id: str,
        settings: Settings,
        *,
        deletion_protection: bool,
        restart_token: str | None,
    ) -> None:
        with self._lock:
            self._enter("update_settings", id)
            record = self._managed(id)
            record.settings = replace(settings, enabled=record.settings.enabled)
            record.credential_data_count = _credential_counts(settings.password_hash_sync, record.mappings)
            record.deletion_protection = deletion_protection
            record.restart_token = restart_token

    def edit_schema(
        self, id: str, scope: Scope, mappings: Sequence[Mapping], removals: Sequence[tuple[str, str]] = ()
    ) -> None:
        with self._lock:
            self._enter("edit_schema", id)
            record = self._managed(id)
            if not record.complete:
                raise ConflictError(f"configuration {id} has no provisioning job; its create did not finish")
            record.mappings = _edited(record.mappings, mappings, removals)
            record.scope = scope

    def start(self, id: str) -> None:
        with self._lock:
            self._enter("start", id)
            record = self._managed(id)
            if not record.complete:
                raise ConflictError(f"configuration {id} has no provisioning job; its create did not finish")
            record.settings = replace(record.settings, enabled=True)
            record.status = replace(
                record.status, code="Active", quarantine_reason=None, quarantine_since=None
            )

    def pause(self, id: str) -> None:
        with self._lock:
            self._enter("pause", id)
            record = self._managed(id)
            record.settings = replace(record.settings, enabled=False)
            record.status = replace(record.status, code="Paused")

    def restart(self, id: str, reset_scope: str = RESET_FULL) -> None:
        with self._lock:
            self._enter("restart", id, reset_scope)
            record = self._managed(id)
            if not record.complete:
                raise ConflictError(f"configuration {id} has no provisioning job; its create did not finish")
            self.restarts.append((id, reset_scope))
            record.restart_pending = False
            flags = {f.strip() for f in reset_scope.split(",") if f.strip()}
            if not flags or flags & _QUARANTINE_LIFTING:
                code = record.status.code
                if code == "Quarantine":
                    code = "Active" if record.settings.enabled else "Paused"
                record.status = replace(
                    record.status, code=code, quarantine_reason=None, quarantine_since=None
                )

    def set_restart_pending(self, id: str, pending: bool) -> None:
        with self._lock:
            self._enter("set_restart_pending", id, pending)
            self._managed(id).restart_pending = pending

    def delete(self, id: str) -> None:
        with self._lock:
            self._enter("delete", id)
            record = self._records.get(id)
            if record is None:
                return
            if not record.managed:
                raise ConflictError(f"configuration {id} is not managed by reconciler; adopt it first")
            del self._records[id]

    def adopt(self, id: str, name: str) -> None:
        with self._lock:
            self._enter("adopt", id, name)
            record = self._get(id)
            if record.managed:
                if record.name == name:
                    return
                raise ConflictError(f"configuration {id} is already managed as {record.name!r}")
            for other in self._records.values():
                if other.id != id and other.managed and other.name == name:
                    raise ConflictError(f"configuration {other.id} is already managed as {name!r}")
            record.managed = True
            record.name = name
            record.deletion_protection = False
            record.restart_token = None

    def rename(self, id: str, old: str, new: str) -> None:
        with self._lock:
            self._enter("rename", id, old, new)
            record = self._get(id)
            if not record.managed or record.name not in (old, new):
                raise ConflictError(f"configuration {id} is not the managed configuration {old!r}")
            for other in self._records.values():
                if other.id != id and other.managed and other.name == new:
                    raise ConflictError(f"configuration {other.id} is already managed as {new!r}")
            record.name = new

    def provision_on_demand(self, id: str, subject: str, object_type: str = "user") -> dict[str, Any]:
        with self._lock:
            self._enter("provision_on_demand", id, subject, object_type)
            raise ProviderError("provisioning on demand is not supported yet by the memory target")

    def close(self) -> None:
        self._enter("close")

    # ----------------------------------------------------------------------------------------------
    # test helpers

    def add_unmanaged(
        self,
        settings: Settings | str,
        scope: Scope | None = None,
        mappings: Sequence[Mapping] | None = None,
        *,
        status: JobStatus | None = None,
    ) -> str:
        """A configuration made outside reconciler (e.g. in the portal); ``settings`` may be a domain."""
        with self._lock:
            if isinstance(settings, str):
                settings = Settings(domain=settings, notification_email=f"admin@{settings}", enabled=False)
            id = self._new_id()
            rows = tuple(
                m
                for m in (self._template_defaults() if mappings is None else mappings)
                if m.target != CREDENTIAL_DATA
            )
            self._records[id] = _Record(
                id=id,
                name=None,
                managed=False,
                settings=settings,
                scope=scope or Scope.all(),
                mappings=rows,
                status=status or JobStatus(code="Active" if settings.enabled else "Paused"),
                credential_data_count=_credential_counts(settings.password_hash_sync, rows),
            )
            return id

    def add_incomplete(self, name: str, settings: Settings) -> str:
        """A managed configuration whose create was interrupted before its job was made."""
        with self._lock:
            id = self._new_id()
            self._records[id] = _Record(
                id=id,
                name=name,
                managed=True,
                settings=replace(settings, enabled=False),
                scope=Scope.all(),
                mappings=(),
                status=JobStatus(code="NotConfigured"),
                complete=False,
                credential_data_count={},
            )
            return id

    def set_status(self, id: str, status: JobStatus | str | None = None, **fields: Any) -> None:
        """Set the job health: a whole ``JobStatus``, a code, and/or ``JobStatus`` fields."""
        with self._lock:
            record = self._get(id)
            current = status if isinstance(status, JobStatus) else record.status
            if isinstance(status, str):
                current = replace(current, code=status)
            record.status = replace(current, **fields)

    def quarantine(
        self,
        id: str,
        reason: str = "EncounteredQuarantineException",
        since: str = "",
        staged: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Quarantine the job; ``staged`` (objects: ``id``, ``displayName``, ``identityType``) are the
        deletes a TooManyDeletes quarantine holds, logged as the service logs them, at ``since``."""
        self.set_status(id, "Quarantine", quarantine_reason=reason, quarantine_since=since or None)
        with self._lock:
            record = self._get(id)
            sp = {"id": id, "displayName": record.settings.domain}
            at = since or _dt.datetime.now(_dt.UTC).isoformat()
            cycle = self._new_id()
            record.staged += [
                staged_delete_entry(job_id=id, sp=sp, source=o, at=at, cycle_id=cycle) for o in staged
            ]

    def held_deletes(self, id: str, since: str | None) -> HeldDeletes:
        with self._lock:
            try:
                self._enter("held_deletes", id)
            except ProviderError as exc:
                return unknown_held_deletes(since, exc)
            return count_held_deletes(self._get(id).staged, id, since)

    def set_credential_data_count(self, id: str, counts: dict[str, int]) -> None:
        """Simulate CredentialData drift (a copy added twice, or removed by hand)."""
        with self._lock:
            self._get(id).credential_data_count = dict(counts)

    def fail(self, method: str, error: BaseException, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error`` before doing anything."""
        with self._lock:
            self._failures.setdefault(method, []).extend([error] * times)

    def edit(self, id: str, **changes: Any) -> None:
        """Change a configuration behind reconciler's back (drift): any ``Observed`` field."""
        with self._lock:
            record = self._get(id)
            names = {f.name for f in dataclasses.fields(record)}
            for key, value in changes.items():
                if key not in names:
                    raise TypeError(f"unknown field {key!r}")
                setattr(record, key, tuple(value) if key == "mappings" else value)

    def calls_of(self, method: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == method]
