"""The aca-rejections checks: each reads the facts and returns a finding, or None.

The chains run them in DESIGN.md's order ("Order of checks"): :data:`EVENT_CHAIN` when a
rejection event is registered under the user, :data:`TICKET_CHAIN` (the hardware checks A
first) when none is. The first finding explains the refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from doorfix.connectors.models.aca import MobileKey
from doorfix.connectors.models.clp import Iq, Lock
from doorfix.playbooks.aca.access import (
    aca_state,
    lock_inventories,
    mismatched_inventories,
    rejection_events,
    room_label,
    tag_state,
)
from doorfix.playbooks.aca.lock_hardware import connection_problems
from doorfix.playbooks.facts import LockFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.schedules import datetime_iso
from doorfix.playbooks.types import Cause


@dataclass(frozen=True)
class Finding:
    """A check's verdict: the cause and the facts that decided it."""

    cause: Cause
    evidence: Mapping[str, Any] = field(default_factory=dict)


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
    state, by = aca_state(facts, now)
    if state == "active" or by == "access_matrix":
        # a booking gives the lock (a disabled Access Matrix cell has one behind it)
        return None
    wrong = mismatched_inventories(facts, now)
    if not wrong:
        return None
    evidence = {
        "booked_inventories": [f"{inv.name} ({inv.id})" for inv in wrong],
        "lock_inventories": [f"{inv.name} ({inv.id})" for inv in lock_inventories(facts)],
        "label": room_label(wrong[0].name),
    }
    return Finding(Cause.ACA_BOOKING_MISMATCH, evidence)


def check_too_early(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """The center was released less than the grace period ago."""
    due = facts.center.released_at + policy.release_grace
    if due > now:
        return Finding(Cause.ACA_TOO_EARLY, {"release_due": datetime_iso(due)})
    return None


def check_access(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """B: disabled in the Access Matrix; else no booking (or a mismatched one)."""
    state, by = aca_state(facts, now)
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
    rejections = rejection_events(facts)
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
    rejections = rejection_events(facts)
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
    replaced = [k for k in keys if k.issued_at < key.issued_at and k.state != "active"]
    if replaced and _new_key_still_fails(facts, key, replaced[-1], now, policy):
        # the runbook: the app made a new key after a revoked/corrupted one and it still fails
        still_fails: dict[str, Any] = {
            "key_id": key.id,
            "replaced_key_ids": [k.id for k in replaced],
            "key_issued_at": datetime_iso(key.issued_at),
            "problem": "a new mobile key still fails after the app was reinstalled",
        }
        return Finding(Cause.ACA_MKEY_GENERATION_FAILED, still_fails)
    return None


def _new_key_still_fails(
    facts: LockFacts, key: MobileKey, previous: MobileKey, now: datetime, policy: PlanPolicy
) -> bool:
    """Whether ``key`` is the new key that replaced ``previous`` and still fails (D).

    Only when it was issued after the previous key's failure and within
    ``mkey_replacement_window`` of it: ACA keeps no failure time, so the failure is the
    previous key's last rejection the facts hold (the key must be issued after it and within
    the window), and the key must be at most the window old at the rejection. A key issued
    long ago, after a key revoked long ago, failing now is not "a new key": the normal checks
    (CLP, the lock, the IQ) explain it.
    """
    window = policy.mkey_replacement_window
    rejections = rejection_events(facts)
    failing_at = rejections[-1].occurred_at if rejections else now
    if not timedelta(0) <= failing_at - key.issued_at <= window:
        return False
    failed = [
        e.occurred_at
        for e in facts.events
        if e.credential == previous.id and e.type == "mkey_rejected"
    ]
    if failed:
        last = max(failed)
        return last <= key.issued_at <= last + window
    return True


def check_tag(facts: LockFacts, now: datetime, policy: PlanPolicy) -> Finding | None:
    """The runbook's premise: the presented tag must be properly assigned to the user.

    On the event path, the newest rejection's tag; on the ticket path (no event), a user
    who is not on a mobile key and holds no assigned tag at all. Checked before any sync
    remedy: a lost, unknown or someone else's tag is a security finding, never a sync.
    """
    rejections = rejection_events(facts)
    if rejections:
        if rejections[-1].type != "tag_rejected":
            return None
        number = rejections[-1].credential
        state = tag_state(facts.user, number)
        if state == "assigned":
            return None
        return Finding(Cause.ACA_TAG_NOT_ASSIGNED, {"tag_state": state, "credential": number})
    if _mkey_presented(facts) or any(t.state == "assigned" for t in facts.user.tags):
        return None
    lost = sorted(t.number for t in facts.user.tags if t.state == "lost")
    evidence: dict[str, Any] = {
        "tag_state": "lost" if lost else "none",
        "credential": lost[-1] if lost else None,
        "lost_tags": lost,
    }
    return Finding(Cause.ACA_TAG_NOT_ASSIGNED, evidence)


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
    check_tag,
    check_access,
    check_clp,
    check_mkey,
    check_lock_state,
    check_iq,
)
#: The ticket path: the hardware checks A first, then the event path's chain.
TICKET_CHAIN: tuple[_Check, ...] = (check_lock_offline, check_privacy, check_mismatch, *EVENT_CHAIN)
