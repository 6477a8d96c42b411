"""license-renewal: doors whose license is expired, inactivated or about to expire.

The proactive pass over the door list, and the license plan the door-logs playbook shares:
renew when the account may pay and renewals are on, else the distributor (or support, when
only doorfix's config stands in the way). Budgets are the engine's guards, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from doorfix.connectors.models import epoch_seconds
from doorfix.connectors.models.cloud import Door, ProjectInfo
from doorfix.playbooks import causes
from doorfix.playbooks.facts import DoorLicenseFacts
from doorfix.playbooks.policy import DEFAULT_POLICY, PlanPolicy
from doorfix.playbooks.schedules import epoch_iso, license_active
from doorfix.playbooks.types import Cause, Diagnosis, Plan, PlannedAction, Remedy, Subject

_DAY = 86_400


def license_evidence(door: Door, now: datetime) -> dict[str, Any]:
    """The facts that decide a license: status, expiry, days left, auto-renew."""
    lic = door.license
    days_left = None
    if lic.expires_at is not None:
        days_left = (lic.expires_at - epoch_seconds(now)) // _DAY
    return {
        "door_id": door.door_id,
        "door_name": door.name,
        "license_status": lic.status,
        "expires_at": None if lic.expires_at is None else epoch_iso(lic.expires_at),
        # for checklists: a person reads "expires never set", not "expires None"
        "expiry": "no expiry date" if lic.expires_at is None else epoch_iso(lic.expires_at),
        "days_left": days_left,
        "auto_renew": lic.auto_renew,
        "license_state": _license_state(lic.status, lic.expires_at, days_left),
    }


def _license_state(status: str, expires_at: int | None, days_left: int | None) -> str:
    """What is wrong with a license, for a checklist: an active one is due, never the cause."""
    if expires_at is None:
        return "was never activated (no expiry date)"
    when = epoch_iso(expires_at)
    if days_left is not None and days_left >= 0 and status == "active":
        return f"is still active but expires on {when} ({days_left} day(s) left)"
    if days_left is not None and days_left < 0:
        return f"expired on {when}"
    return f"is {status} (expiry {when})"


def renew_action(project_id: str, door_id: str, policy: PlanPolicy) -> PlannedAction:
    """The exact ``renew_door_license`` call."""
    return PlannedAction(
        Remedy.RENEW_LICENSE,
        "cloud",
        f"{project_id}/{door_id}",
        {"project_id": project_id, "door_id": door_id, "months": policy.renewal_months},
    )


def renewal_plan(
    door: Door, project: ProjectInfo, policy: PlanPolicy, context: Mapping[str, Any]
) -> Plan:
    """Renew when the account may pay and renewals are on; otherwise who must act."""
    cause = Cause.CLOUD_LICENSE_INACTIVE
    if not project.can_pay:
        return causes.needs_human(
            cause,
            context,
            variant="no_payment",
            reason="the account has no payment permission: the distributor must renew",
        )
    if not policy.renewals_enabled:
        return causes.needs_human(
            cause,
            context,
            variant="renewals_off",
            reason="renewals are off in doorfix's config",
        )
    action = renew_action(project.project_id, door.door_id, policy)
    return causes.remedy(
        cause,
        (action,),
        context,
        reason=f"renew the license for {policy.renewal_months} month(s)",
    )


def _needs_renewal(door: Door, policy: PlanPolicy, now: datetime) -> bool:
    lic = door.license
    if not license_active(lic, now):
        return True
    if lic.auto_renew or lic.expires_at is None:
        # an active license that renews itself (or never expires) needs nothing from doorfix
        return False
    return lic.expires_at - epoch_seconds(now) <= policy.license_lookahead // timedelta(seconds=1)


def diagnose(
    facts: DoorLicenseFacts, now: datetime, policy: PlanPolicy = DEFAULT_POLICY
) -> Diagnosis | None:
    """The door's license diagnosis, or None when it is active and not due within the lookahead."""
    if not _needs_renewal(facts.door, policy, now):
        return None
    evidence = license_evidence(facts.door, now)
    evidence["expired"] = not license_active(facts.door.license, now)
    evidence["payment_permission"] = facts.project.can_pay
    subject = Subject(center_id=facts.center_id, door_id=facts.door.door_id)
    return Diagnosis(Cause.CLOUD_LICENSE_INACTIVE, subject, evidence)


def plan(diagnosis: Diagnosis, facts: DoorLicenseFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """Renew, or ask the distributor; nothing when the license no longer needs it."""
    if diagnosis.cause is not Cause.CLOUD_LICENSE_INACTIVE or not _needs_renewal(
        facts.door, policy, now
    ):
        return causes.no_fault("already resolved: the license is active and not due")
    context = {"project_id": facts.project.project_id, **license_evidence(facts.door, now)}
    return renewal_plan(facts.door, facts.project, policy, context)


def diagnose_licenses(
    doors: Iterable[Door],
    project: ProjectInfo,
    policy: PlanPolicy,
    now: datetime,
    *,
    center_id: str | None = None,
) -> list[tuple[Diagnosis, Plan]]:
    """Every door of a project that needs a renewal, with its plan, in door-id order."""
    found: list[tuple[Diagnosis, Plan]] = []
    for door in sorted(doors, key=lambda d: d.door_id):
        facts = DoorLicenseFacts(door, project, center_id)
        diagnosis = diagnose(facts, now, policy)
        if diagnosis is not None:
            found.append((diagnosis, plan(diagnosis, facts, policy, now)))
    return found
