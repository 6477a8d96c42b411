"""aca-rejections: a user x lock refusal (ACA events, or a ticket) -> an ``aca.*`` cause.

The checks run in DESIGN.md's order as a table (:data:`EVENT_CHAIN`); the ticket path (no
event registered under the user) first runs the hardware checks A (:data:`TICKET_CHAIN`).
One refinement on the event path: before concluding ``aca.iq_out_of_sync`` ("the lock still
rejects"), the lock's own state is consulted, because a lock in privacy mode or cut off from
its IQ rejects whatever Sync Access pushes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from doorfix.connectors.models import iso_z
from doorfix.connectors.models.aca import Event, Inventory, MobileKey
from doorfix.connectors.models.clp import Iq, Lock
from doorfix.playbooks import causes
from doorfix.playbooks.facts import LockFacts
from doorfix.playbooks.policy import DEFAULT_POLICY, PlanPolicy
from doorfix.playbooks.schedules import booking_active
from doorfix.playbooks.types import Cause, Diagnosis, Plan, PlannedAction, Remedy, Step, Subject

_LABEL = re.compile(r"\s*([a-z]*\d+)")


def room_label(name: str) -> str | None:
    """The room label an inventory name starts with: ``714`` for ``714ResCo-work01``.

    Letters then digits, up to the first non-digit (``A714-2`` -> ``a714``); a name that does
    not start that way has no label. Case is ignored.
    """
    match = _LABEL.match(name.casefold())
    return match.group(1) if match else None


def same_room(a: str, b: str) -> bool:
    """Whether two inventory names share a room label (``714`` and ``714ResCo-work01``)."""
    label = room_label(a)
    return label is not None and label == room_label(b)


@dataclass(frozen=True)
class Finding:
    """A check's verdict: the cause and the facts that decided it."""

    cause: Cause
    evidence: Mapping[str, Any] = field(default_factory=dict)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else iso_z(when, whole_seconds=True)


# --------------------------------------------------------------------------- reading the facts


def _rejections(facts: LockFacts) -> list[Event]:
    rows = [e for e in facts.events if e.type.endswith("_rejected") and e.lock_id == facts.lock_id]
    return sorted(rows, key=lambda e: (e.occurred_at, e.id))


def _lock_inventories(facts: LockFacts) -> list[Inventory]:
    return sorted(
        (inv for inv in facts.inventories if facts.lock_id in inv.lock_ids), key=lambda i: i.id
    )


def _aca_state(facts: LockFacts, now: datetime) -> tuple[str, str | None]:
    """ACA's access to the lock: ``active``, ``disabled`` (with by whom) or ``none``."""
    rows = [a for a in facts.accesses if a.lock_id == facts.lock_id]
    if any(a.state == "active" for a in rows):
        return "active", None
    if any(a.disabled_by == "access_matrix" for a in rows):
        return "disabled", "access_matrix"
    # a booking that gives the lock is ACA's grant even when its access row is missing
    if _bookings_giving(facts, now):
        return "active", None
    if rows:
        return "disabled", rows[0].disabled_by
    return "none", None


def _bookings_giving(facts: LockFacts, now: datetime) -> list[str]:
    holding = {inv.id for inv in _lock_inventories(facts)}
    return sorted(
        b.id
        for b in facts.bookings
        if b.company_id == facts.user.company_id
        and b.inventory_id in holding
        and booking_active(b, now)
    )


def mismatched_inventories(facts: LockFacts, now: datetime) -> list[Inventory]:
    """Booked inventories of the company that share the lock's room label but lack the lock."""
    labels = {room_label(inv.name) for inv in _lock_inventories(facts)}
    if not labels and facts.lock is not None:
        # a lock in no inventory: its CLP reference ("714 main door") is the only room hint
        labels = {room_label(facts.lock.customer_reference)}
    labels.discard(None)
    by_id = {inv.id: inv for inv in facts.inventories}
    found: dict[str, Inventory] = {}
    for booking in facts.bookings:
        inv = by_id.get(booking.inventory_id)
        if (
            inv is not None
            and booking.company_id == facts.user.company_id
            and booking.center_id == facts.center.id
            and booking_active(booking, now)
            and facts.lock_id not in inv.lock_ids
            and room_label(inv.name) in labels
        ):
            found[inv.id] = inv
    return [found[k] for k in sorted(found)]


def _iq_online(lock: Lock, iq: Iq | None) -> bool:
    return iq.online if iq is not None and iq.id == lock.iq.id else lock.iq.online


def _iq_revision(lock: Lock, iq: Iq | None) -> int:
    return iq.revision if iq is not None and iq.id == lock.iq.id else lock.iq.revision


def connection_problems(lock: Lock, iq: Iq | None) -> list[str]:
    """Why a lock's events cannot reach CLP (A a1), from CLP's lock and IQ state."""
    problems = []
    if not _iq_online(lock, iq):
        problems.append("iq_offline")
    if not lock.online:
        problems.append("lock_offline")
    if lock.iq_link_state == "attached_pending" and lock.online and _iq_revision(lock, iq) == 1:
        # the IQ1 half-connected lock: online, never fully attached, its events never arrive
        problems.append("half_connected")
    elif lock.iq_link_state != "attached":
        problems.append(f"link_{lock.iq_link_state}")
    return problems


def hardware_evidence(lock: Lock, iq: Iq | None) -> dict[str, Any]:
    """CLP's view of a lock and its IQ, for the report."""
    return {
        "lock_id": lock.id,
        "lock_name": lock.customer_reference,
        "lock_type": lock.lock_type,
        "lock_online": lock.online,
        "iq_id": lock.iq.id,
        "iq_online": _iq_online(lock, iq),
        "iq_revision": _iq_revision(lock, iq),
        "iq_link_state": lock.iq_link_state,
        "privacy_mode": lock.privacy_mode,
        "collection_id": lock.collection_id,
        "last_event_utc": _iso(lock.last_event_utc),
    }


def hardware_finding(lock: Lock, iq: Iq | None) -> Finding | None:
    """A a1 (connection) then A a2 (privacy mode) from CLP state alone, or None."""
    problems = connection_problems(lock, iq)
    if problems:
        return Finding(Cause.ACA_LOCK_OFFLINE, {"offline_reasons": problems})
    if lock.privacy_mode:
        return Finding(Cause.ACA_PRIVACY_MODE, {})
    return None


# --------------------------------------------------------------------------- the checks

_Check = Callable[[LockFacts, datetime, PlanPolicy], Finding | None]


def check_lock_offline(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """A a1: the IQ or the lock is offline, half-connected, or the lock sends no events."""
    if facts.lock is None:
        return None
    problems = connection_problems(facts.lock, facts.iq)
    last = facts.last_event_at
    if last is None or now - last > policy.quiet_lock_after:
        problems.append("no_recent_events")
    kinds = sorted({i.type for i in facts.incidents})
    if problems:
        return Finding(Cause.ACA_LOCK_OFFLINE, {"offline_reasons": problems, "incidents": kinds})
    return None


def check_privacy(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """A a2: the lock reports privacy mode on (ACA has none: a damaged connector)."""
    if facts.lock is not None and facts.lock.privacy_mode:
        return Finding(Cause.ACA_PRIVACY_MODE, {})
    return None


def check_mismatch(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """A a3: no booking gives the lock, but one books a same-label inventory without it."""
    state, by = _aca_state(facts, now)
    if state == "active" or by == "access_matrix":
        # a booking gives the lock (a disabled Access Matrix cell has one behind it)
        return None
    wrong = mismatched_inventories(facts, now)
    if not wrong:
        return None
    evidence = {
        "booked_inventories": [f"{inv.name} ({inv.id})" for inv in wrong],
        "lock_inventories": [f"{inv.name} ({inv.id})" for inv in _lock_inventories(facts)],
        "label": room_label(wrong[0].name),
    }
    return Finding(Cause.ACA_BOOKING_MISMATCH, evidence)


def check_too_early(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """The center was released less than the grace period ago."""
    due = facts.center.released_at + policy.release_grace
    if due > now:
        return Finding(Cause.ACA_TOO_EARLY, {"release_due": _iso(due)})
    return None


def check_access(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """B: disabled in the Access Matrix; else no booking (or a mismatched one)."""
    state, by = _aca_state(facts, now)
    if state == "active":
        return None
    if by == "access_matrix":
        return Finding(Cause.ACA_ACCESS_DISABLED, {})
    return check_mismatch(facts, now, policy) or Finding(Cause.ACA_NO_BOOKING, {})


def check_clp(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """C c1: ACA grants, Larry access does not."""
    if facts.larry is not None and facts.larry.status == "denied":
        return Finding(Cause.ACA_CLP_OUT_OF_SYNC, {})
    return None


def _mkey_presented(facts: LockFacts) -> bool:
    rejections = _rejections(facts)
    if rejections:
        return rejections[-1].type == "mkey_rejected"
    user_entries = [
        e
        for e in facts.entries
        if e.user_id == facts.user.clp_user_id and e.event_category == "lock_rejected"
    ]
    latest = max(user_entries, key=lambda e: (e.utc_date_time, e.id), default=None)
    return latest is not None and latest.access_by == "mkey"


def _presented_key(facts: LockFacts) -> MobileKey | None:
    keys = sorted(facts.mobile_keys, key=lambda k: (k.issued_at, k.id))
    rejections = _rejections(facts)
    if rejections:
        shown = rejections[-1].credential
        return next((k for k in keys if k.id == shown), None)
    return keys[-1] if keys else None


def check_mkey(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """D: generation failed (or a new key still fails), then revoked / corrupted."""
    if not _mkey_presented(facts):
        return None
    keys = sorted(facts.mobile_keys, key=lambda k: (k.issued_at, k.id))
    key = _presented_key(facts)
    newest = keys[-1] if keys else None
    for candidate in (key, newest):
        if candidate is not None and candidate.last_error == "generation_failed":
            evidence = {"key_id": candidate.id, "problem": "the mobile key cannot be generated"}
            return Finding(Cause.ACA_MKEY_GENERATION_FAILED, evidence)
    if key is None:
        return None
    if key.state == "revoked":
        return Finding(Cause.ACA_MKEY_REVOKED, {"key_id": key.id, "key_state": key.state})
    if key.state == "corrupted":
        return Finding(Cause.ACA_MKEY_CORRUPTED, {"key_id": key.id, "key_state": key.state})
    replaced = [k.id for k in keys if k.issued_at < key.issued_at and k.state != "active"]
    if replaced:
        # the runbook: the app made a new key after a revoked/corrupted one and it still fails
        still_fails: dict[str, Any] = {
            "key_id": key.id,
            "replaced_key_ids": replaced,
            "problem": "a new mobile key still fails after the app was reinstalled",
        }
        return Finding(Cause.ACA_MKEY_GENERATION_FAILED, still_fails)
    return None


def check_tag(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """The runbook's premise: the presented tag must be properly assigned to the user."""
    rejections = _rejections(facts)
    if not rejections or rejections[-1].type != "tag_rejected":
        return None
    number = rejections[-1].credential
    state = next((t.state for t in facts.user.tags if t.number == number), "not_the_users")
    if state == "assigned":
        return None
    return Finding(Cause.UNKNOWN, {"tag_state": state, "credential": number})


def check_lock_state(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """Before blaming the IQ: a lock cut off from its IQ or in privacy mode rejects anyway."""
    if facts.lock is None:
        return None
    return hardware_finding(facts.lock, facts.iq)


def check_iq(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """C c2: ACA and Larry grant, the lock still rejects."""
    if facts.larry is not None and facts.larry.status == "granted":
        return Finding(Cause.ACA_IQ_OUT_OF_SYNC, {})
    return None


#: The event path, in DESIGN.md's order ("Order of checks").
EVENT_CHAIN: tuple[_Check, ...] = (
    check_too_early,
    check_access,
    check_clp,
    check_mkey,
    check_tag,
    check_lock_state,
    check_iq,
)
#: The ticket path: the hardware checks A first, then the event path's chain.
TICKET_CHAIN: tuple[_Check, ...] = (check_lock_offline, check_privacy, check_mismatch, *EVENT_CHAIN)


# --------------------------------------------------------------------------- diagnose


def base_evidence(facts: LockFacts, now: datetime) -> dict[str, Any]:
    """What every lock diagnosis reports: the events, ACA's and Larry's answers, the lock."""
    rejections = _rejections(facts)
    state, by = _aca_state(facts, now)
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
        "first_seen": _iso(rejections[0].occurred_at) if rejections else None,
        "last_seen": _iso(rejections[-1].occurred_at) if rejections else None,
        "released_at": _iso(facts.center.released_at),
        "aca_access": state,
        "disabled_by": by,
        "booking_ids": _bookings_giving(facts, now),
        "larry_access": larry.status if larry else None,
        "larry_reason": larry.reason if larry else None,
        "clp_lock": "found" if facts.lock else "not_found",
    }
    if facts.lock is not None:
        evidence |= hardware_evidence(facts.lock, facts.iq)
    return evidence


def diagnose(facts: LockFacts, now: datetime, policy: PlanPolicy = DEFAULT_POLICY) -> Diagnosis:
    """The cause of a user x lock refusal: the first check of the chain that fits."""
    chain = EVENT_CHAIN if _rejections(facts) else TICKET_CHAIN
    finding = Finding(Cause.UNKNOWN, {})
    for check in chain:
        found = check(facts, now, policy)
        if found is not None:
            finding = found
            break
    subject = Subject(center_id=facts.center.id, user_id=facts.user.id, lock_id=facts.lock_id)
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
            evidence["scanned_at"] = _iso(now)
            subject = Subject(center_id=center_id, lock_id=lock.id)
            found.append(Diagnosis(finding.cause, subject, evidence))
    return found


# --------------------------------------------------------------------------- plan


def plan_hardware(diagnosis: Diagnosis) -> Plan:
    """The on-site checklist of an A-row diagnosis (lock offline or privacy mode)."""
    evidence = diagnosis.evidence
    if diagnosis.cause is Cause.ACA_PRIVACY_MODE:
        return causes.needs_human(
            diagnosis.cause, evidence, reason="privacy mode on: likely a damaged connector"
        )
    extra: tuple[Step, ...] = ()
    if evidence.get("iq_revision") == 1:
        extra = causes.spec(Cause.ACA_LOCK_OFFLINE).checklist(evidence, "iq1")
    reasons = ", ".join(evidence.get("offline_reasons", ())) or "no events"
    return causes.needs_human(
        Cause.ACA_LOCK_OFFLINE, evidence, reason=f"lock not reporting: {reasons}", extra=extra
    )


def _toggle(diagnosis: Diagnosis, facts: LockFacts) -> Plan:
    evidence = diagnosis.evidence
    if evidence.get("larry_reason") in ("suspended", "blocked"):
        return causes.needs_human(
            diagnosis.cause,
            evidence,
            variant="clp_refuses",
            reason=f"the CLP user is {evidence['larry_reason']}: a sync would not change it",
        )
    action = PlannedAction(
        Remedy.TOGGLE_ACCESS_MATRIX,
        "aca",
        f"{facts.user.id}/{facts.lock_id}",
        {"user_id": facts.user.id, "lock_id": facts.lock_id},
    )
    return causes.remedy(
        diagnosis.cause, (action,), evidence, reason="force the ACA -> CLP sync (c1)"
    )


def _sync(diagnosis: Diagnosis, facts: LockFacts) -> Plan:
    if facts.lock is None:
        return causes.needs_human(
            diagnosis.cause, diagnosis.evidence, variant="no_lock", reason="CLP lock not found"
        )
    site, collection = facts.center.clp_site_id, facts.lock.collection_id
    action = PlannedAction(
        Remedy.SYNC_ACCESS,
        "clp",
        f"{site}/{collection}",
        {"site_id": site, "collection_id": collection},
    )
    return causes.remedy(
        diagnosis.cause, (action,), diagnosis.evidence, reason="force the CLP -> IQ sync (c2)"
    )


def _escalate(diagnosis: Diagnosis, facts: LockFacts) -> Plan:
    problem = diagnosis.evidence.get("problem", "mobile key failure")
    reason = f"{problem}: user {facts.user.id}, lock {facts.lock_id}"
    key_id = diagnosis.evidence.get("key_id")
    if key_id:
        reason += f", key {key_id}"
    action = PlannedAction(
        Remedy.ESCALATE, None, f"{facts.user.id}/{facts.lock_id}", {"reason": reason}
    )
    return causes.remedy(diagnosis.cause, (action,), diagnosis.evidence, reason=problem)


def _human(reason: str, variant: str | None = None) -> Callable[[Diagnosis, LockFacts], Plan]:
    def build(diagnosis: Diagnosis, facts: LockFacts) -> Plan:
        return causes.needs_human(
            diagnosis.cause, diagnosis.evidence, reason=reason, variant=variant
        )

    return build


def _unknown(diagnosis: Diagnosis, facts: LockFacts) -> Plan:
    evidence = diagnosis.evidence
    if "tag_state" in evidence:
        return causes.needs_human(
            Cause.UNKNOWN,
            evidence,
            variant="tag_not_assigned",
            reason="the presented tag is not an assigned tag of the user",
        )
    values = dict(evidence) | {"summary": f"user {facts.user.id} at lock {facts.lock_id}"}
    return causes.needs_human(Cause.UNKNOWN, values, reason="no runbook row explains it")


_PLANNERS: Mapping[Cause, Callable[[Diagnosis, LockFacts], Plan]] = MappingProxyType(
    {
        Cause.ACA_LOCK_OFFLINE: lambda d, _f: plan_hardware(d),
        Cause.ACA_PRIVACY_MODE: lambda d, _f: plan_hardware(d),
        Cause.ACA_BOOKING_MISMATCH: _human("the booking and the lock's inventory disagree"),
        Cause.ACA_ACCESS_DISABLED: lambda _d, _f: causes.no_fault(
            "refused as designed: access disabled in the Access Matrix"
        ),
        Cause.ACA_NO_BOOKING: lambda _d, _f: causes.no_fault(
            "refused as designed: no active booking gives this lock"
        ),
        Cause.ACA_CLP_OUT_OF_SYNC: _toggle,
        Cause.ACA_IQ_OUT_OF_SYNC: _sync,
        Cause.ACA_MKEY_REVOKED: _human("the mobile key is revoked: reinstall the app"),
        Cause.ACA_MKEY_CORRUPTED: _human("the mobile key is corrupted: reinstall the app"),
        Cause.ACA_MKEY_GENERATION_FAILED: _escalate,
        Cause.UNKNOWN: _unknown,
    }
)


def plan(diagnosis: Diagnosis, facts: LockFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """What to do about a lock diagnosis: a sync, an escalation, a checklist, nothing, later."""
    if diagnosis.cause is Cause.ACA_TOO_EARLY:
        due = facts.center.released_at + policy.release_grace
        hours = policy.release_grace.total_seconds() / 3600
        return causes.deferred(due, f"the center was released less than {hours:g} h ago")
    planner = _PLANNERS.get(diagnosis.cause, _unknown)
    return planner(diagnosis, facts)
