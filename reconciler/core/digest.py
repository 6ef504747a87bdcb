"""Digests: what a plan saw of the target (fingerprints) and what it was made from (the desired digest).

Apply refuses a plan whose fingerprints no longer match what the target holds, and a saved plan is
checked against the desired files by its desired digest: formatting, comments and file layout do not
change it. Both
are SHA-256 of canonical tuples of plain values, so fields added later (directions, extensions) leave
the digests of configurations without them as they were.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from reconciler.core.model import DesiredState, Mapping, Scope, Settings, folded_key
from reconciler.core.observed import Observed
from reconciler.core.onprem import onprem_canon
from reconciler.core.plan import Spec, spec_for

__all__ = ["desired_digest", "fingerprint", "fingerprints", "specs_digest"]


def _canon_mappings(mappings: Iterable[Mapping]) -> tuple[tuple[Any, ...], ...]:
    return tuple(sorted([m.canonical for m in mappings]))


def _canon(
    settings: Settings,
    scope: Scope,
    mappings: Iterable[Mapping],
    deletion_protection: bool,
    restart_token: str | None,
    removals: Iterable[tuple[str, str]] = (),
) -> tuple[Any, ...]:
    """A canonical tuple of plain values (strings, numbers, booleans, None and tuples of them)."""
    s = settings
    return (
        (
            s.domain,
            s.notification_email,
            s.enabled,
            s.password_hash_sync,
            s.accidental_deletes_enabled,
            s.accidental_deletes_threshold,
            # Fields of the other directions and add-on jobs, only when set: the canonical form (and
            # so digests and fingerprints) of an AD -> Entra ID configuration without them is unchanged.
            *_extra_settings(s),
        ),
        (scope.kind._value_, tuple(sorted(e.casefold() for e in scope.entries)), *_canon_filters(scope)),
        _canon_mappings(mappings),
        deletion_protection,
        restart_token,
        *((tuple(sorted(folded_key(o, t) for o, t in removals)),) if removals else ()),
    )


def _canon_extensions(s: Spec) -> tuple[Any, ...]:
    return (
        tuple(
            (e.name.casefold(), e.data_type, tuple(sorted(e.target_objects)), e.multi_valued)
            for e in s.extensions
        ),
        tuple(n.casefold() for n in s.extension_removals),
    )


def _canon_filters(scope: Scope) -> tuple[Any, ...]:
    if not scope.filters:
        return ()
    return (tuple(tuple((c.attribute, c.operator, c.value) for c in f) for f in scope.filters),)


def _extra_settings(s: Settings) -> tuple[Any, ...]:
    extra = {k: v for k, v in s.as_dict().items() if k in _EXTRA_SETTINGS}
    return (tuple(sorted(extra.items())),) if extra else ()


_EXTRA_SETTINGS = frozenset(("direction", "exchangeHybridWriteback", "deviceSync", "previewUsers"))


def _digest(data: Any) -> str:
    """SHA-256 of a canonical tuple's JSON text (orjson: ~4x faster than ``repr``, as stable).

    A value JSON cannot hold (a lone surrogate from a YAML escape, an integer beyond 64 bits) takes
    ``repr`` instead; the same value always takes the same path, so digests stay comparable.
    """
    try:
        text = orjson.dumps(data)
    except TypeError:
        text = b"repr:" + repr(data).encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:32]


def fingerprint(o: Observed) -> str:
    """What the planner saw of one configuration (status excluded: it changes on its own)."""
    return _digest(
        (
            o.id,
            o.name,
            o.managed,
            o.complete,
            o.restart_pending,
            tuple(sorted(o.credential_data_count.items())),
            _canon(o.settings, o.scope, o.mappings, o.deletion_protection, o.restart_token),
            # Only when there are any: fingerprints of configurations without them stay as they were.
            *((o.unmanaged_scoping,) if o.unmanaged_scoping else ()),
        )
    )


def fingerprints(observed: Iterable[Observed]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((o.id, fingerprint(o)) for o in observed))


def desired_digest(
    state: DesiredState, defaults: Sequence[Mapping], only: frozenset[str] | None = None
) -> str:
    """A digest of the desired state's meaning: formatting, comments and file layout do not change it.

    With ``only`` it covers those configurations alone, as the plan restricted to them does, so such a
    plan (``--changed-since``) does not go stale when files of other configurations change.
    """
    return specs_digest({d.name: spec_for(d) for d in state.configurations if only is None or d.name in only})


def specs_digest(by_name: dict[str, Spec]) -> str:
    specs = sorted(by_name.items())
    return _digest(
        tuple(
            (
                name,
                _canon(s.settings, s.scope, s.mappings, s.deletion_protection, s.restart_token, s.removals),
                # Only when there are any: digests of configurations without extensions stay as they were.
                *((_canon_extensions(s),) if s.extensions or s.extension_removals else ()),
                *((onprem_canon(s.onprem_attributes),) if s.onprem_attributes else ()),
            )
            for name, s in specs
        )
    )
