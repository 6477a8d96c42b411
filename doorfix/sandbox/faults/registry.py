"""World faults: one kind per cause code, each bending the world into the runbook's symptom.

A fault is a row of :data:`FAULTS`: how to inject it (a function of the world and typed
parameters that changes entities and returns the subject and an undo), and how to tell from
the world *as it is now* whether the cause is still there. ``present`` is never a stored
flag: the runbook's remedy, applied through the world's write methods (so through the API),
makes it False; ``clear`` is the control API's undo by fiat.

=========================  =====================================================================
kind                       cleared by
=========================  =====================================================================
aca.tag_not_assigned       a person (the tag found, or a new one assigned); never a sync
aca.clp_out_of_sync        matrix off then on (``sticky=True``: pushes never land, nothing does)
aca.iq_out_of_sync         Sync Access on the lock's collection
cloud.license_inactive     renew_door_license
cloud.no_payment           nothing through the API (renewal refused): a person
cloud.credential_unassigned  add_personnel_credential of the ACA tag
cloud.unknown_credential   never (a card nobody has, or a ``lost`` ACA tag)
cloud.no_access_group      add_access_group_member into a group opening the door
cloud.inherited_group      nothing (add_access_group_member answers ``conflict``)
cloud.visitor_expired      create_visitor_temp_key (``visit_over=True``: as designed, no fault)
cloud.holiday_restriction  set_holiday_working_hours (``hours=``: hours a person set, never)
aca.lock_offline           power_cycle_iq (control), not the API
aca.privacy_mode           on-site repair (control ``set_privacy_mode``)
aca.booking_mismatch       a person fixing the booking or the inventory
aca.access_disabled        as designed (no fault to fix)
aca.no_booking             as designed
aca.too_early              time: the grace period passing
aca.mkey_revoked/corrupted the user reinstalling the app (control ``reinstall_app``)
aca.mkey_generation_failed nothing (vendor bug)
aca.mkey_replaced_long_ago history, no fault: a key revoked and replaced ``days_ago`` (400) ago
feed.duplicate_events      clear only
feed.late_events           clear only
=========================  =====================================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from doorfix.sandbox.faults import aca as faults_aca
from doorfix.sandbox.faults import cloud as faults_cloud
from doorfix.sandbox.faults.base import FaultSpec, Subject, Undo
from doorfix.sandbox.world.model import WorldError
from doorfix.sandbox.world.state import WorldState

__all__ = ["FAULTS", "FaultRecord", "FaultSpec", "FaultStatus", "inject", "status"]


@dataclass(slots=True)
class FaultRecord:
    """An injected fault: its id, kind, the entities it concerns and the parameters given."""

    fault_id: str
    kind: str
    subject: Subject
    params: dict[str, object]
    injected_at: datetime
    #: the remedy the runbook prescribes (DESIGN's remedy name), None when none applies
    remedy: str | None
    #: the outcome a correct agent reaches for it
    outcome: str | None
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class FaultStatus:
    """A fault as ``World.faults()`` reports it; ``present`` is computed from the world."""

    fault_id: str
    kind: str
    cause: str | None
    subject: Subject
    params: dict[str, object]
    present: bool
    cleared: bool
    remedy: str | None
    outcome: str | None


#: Every fault kind, by name.
FAULTS: Mapping[str, FaultSpec] = MappingProxyType(
    {spec.kind: spec for spec in (*faults_aca.SPECS, *faults_cloud.SPECS)}
)

#: The parameter annotations injectors use, and the JSON values each accepts.
_PARAM_TYPES: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {
        "str": (str,),
        "str | None": (str, type(None)),
        "bool": (bool,),
        "int": (int,),
        "float": (int, float),
    }
)


def _check_params(spec: FaultSpec, params: Mapping[str, object]) -> None:
    """Refuse unknown, missing or ill-typed parameters with a WorldError naming them."""
    signature = inspect.signature(spec.inject)
    try:
        signature.bind(None, None, **params)
    except TypeError as exc:
        raise WorldError("invalid", f"{spec.kind}: {exc}") from exc
    for name, value in params.items():
        annotation = signature.parameters[name].annotation
        allowed = _PARAM_TYPES.get(str(annotation), (object,))
        if isinstance(value, bool) and bool not in allowed:
            raise WorldError("invalid", f"{spec.kind}: {name} must be {annotation}")
        if not isinstance(value, allowed):
            raise WorldError("invalid", f"{spec.kind}: {name} must be {annotation}")


def inject(
    w: WorldState, kind: str, params: Mapping[str, object], now: datetime
) -> tuple[FaultRecord, Undo]:
    """Inject a fault of ``kind`` into ``w``; answer its record and how to undo it."""
    spec = FAULTS.get(kind)
    if spec is None:
        raise WorldError("invalid", f"unknown fault kind {kind!r}; known: {sorted(FAULTS)}")
    _check_params(spec, params)
    done = spec.inject(w, now, **params)
    record = FaultRecord(
        fault_id=w.new_id("fault"),
        kind=kind,
        subject=done.subject,
        params=dict(params),
        injected_at=now,
        remedy=spec.remedy if done.remedy_applies else None,
        outcome=done.outcome or spec.outcome,
    )
    return record, done.undo


def status(w: WorldState, record: FaultRecord, now: datetime) -> FaultStatus:
    """The record with ``present`` computed from the world as it is at ``now``."""
    spec = FAULTS[record.kind]
    return FaultStatus(
        fault_id=record.fault_id,
        kind=record.kind,
        cause=spec.cause,
        subject=dict(record.subject),
        params=dict(record.params),
        present=spec.present(w, record.subject, now),
        cleared=record.cleared,
        remedy=record.remedy,
        outcome=record.outcome,
    )
