"""How many deletes a ``TooManyDeletes`` quarantine holds: looked up where a command shows or approves
them (``status``, ``approve-deletes``, a plan with ``approveDeletes``), and nowhere else, since each look
is one more read of the target (its provisioning logs).

I/O: the target, through its provider (a read only).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from reconciler.core.observed import HeldDeletes, Observed
from reconciler.providers.base import CountsHeldDeletes, Provider

__all__ = ["held_deletes_of", "with_held_deletes"]

_NO_LOGS = "this target keeps no provisioning logs"


def held_deletes_of(provider: Provider, o: Observed) -> HeldDeletes:
    """What configuration ``o``'s quarantine holds (an unknown count when the target cannot tell)."""
    since = o.status.quarantine_since
    if not isinstance(provider, CountsHeldDeletes):
        return HeldDeletes(since, None, _NO_LOGS)
    return provider.held_deletes(o.id, since)


def with_held_deletes(
    provider: Provider, observed: Sequence[Observed], names: Collection[str] | None = None
) -> tuple[Observed, ...]:
    """``observed`` with ``held_deletes`` looked up for every configuration whose provisioning job is in
    a TooManyDeletes quarantine (with ``names``: those of them named so, by name or id)."""
    out = []
    for o in observed:
        if o.status.holds_deletes() and (names is None or o.name in names or o.id in names):
            o = replace(o, held_deletes=held_deletes_of(provider, o))
        out.append(o)
    return tuple(out)
