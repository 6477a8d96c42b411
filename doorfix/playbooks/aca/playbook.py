"""aca-rejections: a user x lock refusal (ACA events, or a ticket) -> an ``aca.*`` cause.

The checks run in DESIGN.md's order as a table (:data:`EVENT_CHAIN`); the ticket path (no
event registered under the user) first runs the hardware checks A (:data:`TICKET_CHAIN`).
One refinement on the event path: before concluding ``aca.iq_out_of_sync`` ("the lock still
rejects"), the lock's own state is consulted, because a lock in privacy mode or cut off from
its IQ rejects whatever Sync Access pushes.

This module is the playbook's entry point; the parts live in
:mod:`~doorfix.playbooks.aca.access` (what ACA says), :mod:`~doorfix.playbooks.aca.lock_hardware`
(what CLP says about the lock and its IQ), :mod:`~doorfix.playbooks.aca.checks` (the checks
and their chains) and :mod:`~doorfix.playbooks.aca.plans` (a plan per cause).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from doorfix.connectors.models.clp import Iq, Lock
from doorfix.playbooks import causes
from doorfix.playbooks.aca.access import (
    aca_state,
    bookings_giving,
    mismatched_inventories,
    rejection_events,
    room_label,
    same_room,
    unassigned_tag_events,
)
from doorfix.playbooks.aca.checks import (
    EVENT_CHAIN,
    TICKET_CHAIN,
    Finding,
    check_access,
    check_clp,
    check_iq,
    check_lock_offline,
    check_lock_state,
    check_mismatch,
    check_mkey,
    check_privacy,
    check_tag,
    check_too_early,
    hardware_finding,
)
from doorfix.playbooks.aca.lock_hardware import connection_problems, hardware_evidence
from doorfix.playbooks.aca.plans import PLANNERS, plan_hardware
from doorfix.playbooks.facts import LockFacts
from doorfix.playbooks.policy import DEFAULT_POLICY, PlanPolicy
from doorfix.playbooks.schedules import datetime_iso
from doorfix.playbooks.types import Cause, Diagnosis, Plan, Subject

__all__ = [
    "EVENT_CHAIN",
    "TICKET_CHAIN",
    "Finding",
    "base_evidence",
    "check_access",
    "check_clp",
    "check_iq",
    "check_lock_offline",
    "check_lock_state",
    "check_mismatch",
    "check_mkey",
    "check_privacy",
    "check_tag",
    "check_too_early",
    "connection_problems",
    "diagnose",
    "hardware_evidence",
    "hardware_finding",
    "mismatched_inventories",
    "plan",
    "plan_hardware",
    "room_label",
    "same_room",
    "scan_hardware",
    "unassigned_tag_events",
]

# --------------------------------------------------------------------------- diagnose


def base_evidence(facts: LockFacts, now: datetime) -> dict[str, Any]:
    """What every lock diagnosis reports: the events, ACA's and Larry's answers, the lock."""
    rejections = rejection_events(facts)
    state, by = aca_state(facts, now)
    larry = facts.larry
    evidence: dict[str, Any] = {
        "path": "event" if rejections else "ticket",
        "center_id": facts.center.id,
        "user_id": facts.user.id,
        "clp_user_id": facts.user.clp_user_id,
        "company_id": facts.user.company_id,
        "lock_id": facts.lock_id,
        "event_ids": [e.id for e in rejections],
        "event_count": len(rejections),
        "event_type": rejections[-1].type if rejections else None,
        "credential": rejections[-1].credential if rejections else None,
        "first_seen": datetime_iso(rejections[0].occurred_at) if rejections else None,
        "last_seen": datetime_iso(rejections[-1].occurred_at) if rejections else None,
        "released_at": datetime_iso(facts.center.released_at),
        "aca_access": state,
        "disabled_by": by,
        "booking_ids": bookings_giving(facts, now),
        "larry_access": larry.status if larry else None,
        "larry_reason": larry.reason if larry else None,
        "clp_lock": "found" if facts.lock else "not_found",
    }
    if facts.lock is not None:
        evidence |= hardware_evidence(facts.lock, facts.iq)
    return evidence


def diagnose(facts: LockFacts, now: datetime, policy: PlanPolicy = DEFAULT_POLICY) -> Diagnosis:
    """The cause of a user x lock refusal: the first check of the chain that fits."""
    chain = EVENT_CHAIN if rejection_events(facts) else TICKET_CHAIN
    finding = Finding(Cause.UNKNOWN, {})
    for check in chain:
        found = check(facts, now, policy)
        if found is not None:
            finding = found
            break
    # a tag finding is about the tag: one incident per presented tag (DESIGN.md "Incident
    # identity"), never merged with the user's other refusals at the lock
    credential = (
        finding.evidence.get("credential") if finding.cause is Cause.ACA_TAG_NOT_ASSIGNED else None
    )
    subject = Subject(
        center_id=facts.center.id,
        user_id=facts.user.id,
        lock_id=facts.lock_id,
        credential=credential,
    )
    return Diagnosis(finding.cause, subject, base_evidence(facts, now) | dict(finding.evidence))


def scan_hardware(
    locks: Iterable[Lock], iqs: Iterable[Iq], now: datetime, *, center_id: str | None = None
) -> list[Diagnosis]:
    """The proactive pass: every lock whose CLP state shows an A-row problem, by lock id."""
    by_id = {iq.id: iq for iq in iqs}
    found = []
    for lock in sorted(locks, key=lambda lk: lk.id):
        iq = by_id.get(lock.iq.id)
        finding = hardware_finding(lock, iq)
        if finding is not None:
            evidence = hardware_evidence(lock, iq) | dict(finding.evidence)
            evidence["scanned_at"] = datetime_iso(now)
            subject = Subject(center_id=center_id, lock_id=lock.id)
            found.append(Diagnosis(finding.cause, subject, evidence))
    return found


# --------------------------------------------------------------------------- plan


def plan(diagnosis: Diagnosis, facts: LockFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """What to do about a lock diagnosis: a sync, an escalation, a checklist, nothing, later."""
    if diagnosis.cause is Cause.ACA_TOO_EARLY:
        due = facts.center.released_at + policy.release_grace
        hours = policy.release_grace.total_seconds() / 3600
        return causes.deferred(due, f"the center was released less than {hours:g} h ago")
    planner = PLANNERS.get(diagnosis.cause, PLANNERS[Cause.UNKNOWN])
    return planner(diagnosis, facts)
