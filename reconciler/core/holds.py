"""What the planner holds back, or approves, for one configuration before it compares any fields:
a direction that would change, Exchange writeback without the Exchange schema, mappings of an object
the job schema lacks, on-premises attributes the service has not discovered, and ``approveDeletes``
(released only with ``--allow-delete``).

Pure: no I/O. Warnings are appended to the list given.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.core.diff import FieldChange
from reconciler.core.model import RESET_FORCE_DELETES, TOO_MANY_DELETES, Desired, Direction
from reconciler.core.observed import Observed
from reconciler.core.onprem import DEFINITION_PATH, DEFINITION_VALUE, definition_rows, unchecked_warning
from reconciler.core.plan import Action, Change, Held, Plan, PlanOptions, Spec
from reconciler.errors import PlanError

__all__ = [
    "check_delete_request",
    "exchange_precondition",
    "held_direction_change",
    "no_object",
    "onprem_definitions",
    "plan_approval",
]


def no_object(missing: Sequence[str]) -> str:
    """Why a configuration whose mappings name object types the job schema lacks is held back."""
    return (
        f"its mappings speak about {', '.join(missing)}, but the job schema has no object mapping for "
        f"{'it' if len(missing) == 1 else 'them'}; remove those mappings from the desired state"
    )


def onprem_definitions(
    d: Desired, spec: Spec, found: Observed | None, warnings: list[str]
) -> tuple[FieldChange, ...] | Held:
    """A row per declared on-premises attribute whose definition apply copies from a directory discover
    (``core.onprem``), or the hold of the configuration when the service has not discovered one."""
    if not spec.onprem_attributes:
        return ()
    if found is None or not found.complete:
        # No job to discover with yet: apply checks once it has made the job, before writing its schema.
        warnings.append(unchecked_warning(d.name))
        pairs = tuple(p for a in spec.onprem_attributes for p in a.pairs())
    elif found.onprem_attributes is None:
        return ()  # not looked up (a target that cannot discover): apply's schema step still checks
    else:
        pairs, problem = definition_rows(spec.onprem_attributes, found.onprem_attributes)
        if problem is not None:
            return Held(d.name, Action.UPDATE, found.id, (problem,))
    return tuple(FieldChange(f"{DEFINITION_PATH}.{o}.{n}", None, DEFINITION_VALUE) for o, n in pairs)


def exchange_precondition(d: Desired, found: Observed | None, warnings: list[str]) -> Held | None:
    """Exchange hybrid writeback asked for where the configuration lacks it: held when a directory
    discover found no Exchange schema in AD (the documented precondition); a warning when it could not
    be looked up (a new configuration, or a target that cannot discover)."""
    if not d.settings.exchange_hybrid_writeback or (
        found is not None and found.settings.exchange_hybrid_writeback
    ):
        return None
    if found is not None and found.exchange_schema is False:
        reason = (
            f"exchangeHybridWriteback: the AD schema of {d.settings.domain} has no Exchange attributes (a "
            "directory discover finds no mailNickname on user); extend the schema for Exchange and restart "
            "the provisioning agent, then plan again"
        )
        return Held(d.name, Action.UPDATE, found.id, (reason,))
    if found is None or found.exchange_schema is None:
        warnings.append(
            f"{d.name}: exchangeHybridWriteback needs the Exchange schema in AD; it could not be checked "
            + ("before the configuration exists" if found is None else "on this target")
        )
    return None


_DIRECTION_WORDS = {Direction.AD_TO_ENTRA: "AD -> Entra ID", Direction.ENTRA_TO_AD: "Entra ID -> AD"}


def held_direction_change(d: Desired, found: Observed) -> Held:
    """A managed configuration the desired state gives the other direction: the service makes each
    direction from its own template, so a direction never changes in place."""
    reason = (
        f"the target's configuration '{d.name}' provisions {_DIRECTION_WORDS[found.settings.direction]} and "
        f"the desired one {_DIRECTION_WORDS[d.settings.direction]}; a configuration's direction cannot "
        "change: give the new one another name"
    )
    return Held(d.name, Action.UPDATE, found.id, (reason,))


def plan_approval(
    d: Desired, found: Observed | None, options: PlanOptions, warnings: list[str]
) -> Change | Held | None:
    """``approveDeletes``: the documented restart with ForceDeletes, for the one TooManyDeletes
    quarantine it names by the time it began. Any other state (no quarantine, another reason, a later
    quarantine) approves nothing and says so; releasing deletes needs ``--allow-delete``."""
    since = d.approve_deletes
    if since is None:
        return None
    if found is None:
        warnings.append(
            f"{d.name}: approveDeletes names the quarantine that began {since}, but the configuration does "
            "not exist on the target: nothing is approved; remove the field"
        )
        return None
    status = found.status
    if not status.holds_deletes(since):
        warnings.append(
            f"{d.name}: approveDeletes names the {TOO_MANY_DELETES} quarantine that began {since}; the "
            f"provisioning job is {status.state_text()}, so nothing is approved; remove the field"
        )
        return None
    if found.deletes_approved is not None and status.holds_deletes(found.deletes_approved):
        warnings.append(
            f"{d.name}: the held deletes of the quarantine that began {status.quarantine_since} were "
            "approved already; remove approveDeletes"
        )
        return None
    held = found.held_deletes
    counted = f": {held.text()}" if held is not None else ""
    reason = f"approve held deletes (quarantined since {status.quarantine_since}){counted}"
    if not options.allow_delete:
        return Held(
            d.name,
            Action.APPROVE_DELETES,
            found.id,
            (f"{reason}: releasing deletes needs --allow-delete",),
            override="--allow-delete",
        )
    return Change(
        name=d.name,
        action=Action.APPROVE_DELETES,
        target_id=found.id,
        reasons=(reason,),
        reset_scope=RESET_FORCE_DELETES,
        quarantine_since=status.quarantine_since,
        held_deletes=held.count if held is not None else None,
    )


def check_delete_request(plan: Plan) -> None:
    """--allow-delete asked for a delete that deletion protection holds back: that is a failure."""
    if not plan.options.allow_delete:
        return
    # A held delete with no flag to release it is one that deletion protection holds.
    protected = sorted(h.name for h in plan.held if h.action is Action.DELETE and h.override is None)
    if protected:
        raise PlanError(
            f"--allow-delete cannot delete {', '.join(protected)}: deletion protection is on for "
            f"{'it' if len(protected) == 1 else 'them'} on the target; first apply a change that sets "
            "deletionProtection: false, then remove the configuration"
        )
