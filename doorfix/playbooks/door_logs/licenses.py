"""Door-log licenses: ``cloud.license_inactive``, a door whose subscription is down.

The plan is the license-renewal playbook's ``renewal_plan``: renew when the account may pay
and renewals are on, else who must act.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from doorfix.playbooks import causes
from doorfix.playbooks.door_logs.evidence import context
from doorfix.playbooks.facts import DoorLogFacts
from doorfix.playbooks.license_renewal import license_evidence, renewal_plan
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.schedules import license_active
from doorfix.playbooks.types import Cause, Plan


def license_down(facts: DoorLogFacts, now: datetime) -> bool:
    """Whether the log's door is known and its license is not active at ``now``."""
    door = facts.door
    return door is not None and not license_active(door.license, now)


def door_license_evidence(facts: DoorLogFacts, now: datetime) -> dict[str, Any]:
    """The facts behind ``cloud.license_inactive``: the payment permission and the license."""
    door = facts.door
    # the incident is the door's (keyed by it); who was refused is evidence, not its subject
    evidence: dict[str, Any] = {
        "payment_permission": facts.project.project.can_pay,
        "personnel_id": facts.log.personnel_id,
        "visitor_id": facts.log.visitor_id,
    }
    if door is not None:
        evidence |= license_evidence(door, now)
    return evidence


def plan_license(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """Renew the door's license (or say who must), unless it is active again."""
    door = facts.door
    values = context(facts)
    if door is None:
        return causes.needs_human(
            Cause.CLOUD_LICENSE_INACTIVE,
            values,
            variant="door_unknown",
            reason="the door is not in the project's door list",
        )
    if license_active(door.license, now):
        return causes.no_fault("already resolved: the door's license is active again")
    values |= license_evidence(door, now)
    return renewal_plan(door, facts.project.project, policy, values)
