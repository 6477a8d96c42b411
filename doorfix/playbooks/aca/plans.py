"""The aca-rejections plans: what to do about each ``aca.*`` cause.

A sync where a sync helps (the Access Matrix toggle for C c1, Sync Access for C c2), an
escalation to vendor support for a mobile key that cannot be made, the on-site or user
checklist for the rest, and nothing for a refusal that is as designed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from doorfix.playbooks import causes
from doorfix.playbooks.facts import LockFacts
from doorfix.playbooks.types import Cause, Diagnosis, Plan, PlannedAction, Remedy, Step


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


def _tag_not_assigned(diagnosis: Diagnosis, facts: LockFacts) -> Plan:
    """A security finding: never a toggle or a Sync Access for a tag that is not the user's."""
    evidence = dict(diagnosis.evidence)
    state = evidence.get("tag_state")
    if evidence.get("event_count"):
        evidence["aca_says"] = _TAG_STATES.get(str(state), f"ACA has it as {state}")
        return causes.needs_human(
            diagnosis.cause,
            evidence,
            variant="security",
            reason=f"security finding: {evidence['aca_says']}",
        )
    evidence["tags"] = ", ".join(f"{t.number} ({t.state})" for t in facts.user.tags) or "none"
    return causes.needs_human(
        diagnosis.cause,
        evidence,
        reason="the user has no properly assigned tag: no sync can open the lock for them",
    )


#: a presented tag's state -> what ACA says about it, in a person's words
_TAG_STATES: Mapping[str, str] = MappingProxyType(
    {
        "lost": "ACA marks the tag lost",
        "not_the_users": "ACA does not list the tag as an assigned tag of this user "
        "(unknown, or another user's)",
    }
)


def _unknown(diagnosis: Diagnosis, facts: LockFacts) -> Plan:
    values = dict(diagnosis.evidence) | {"summary": f"user {facts.user.id} at lock {facts.lock_id}"}
    return causes.needs_human(Cause.UNKNOWN, values, reason="no runbook row explains it")


#: cause -> how to plan it from the diagnosis and the facts (``aca.too_early`` aside: a deferral).
PLANNERS: Mapping[Cause, Callable[[Diagnosis, LockFacts], Plan]] = MappingProxyType(
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
        Cause.ACA_TAG_NOT_ASSIGNED: _tag_not_assigned,
        Cause.UNKNOWN: _unknown,
    }
)
