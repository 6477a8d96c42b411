"""Door-log credentials and personnel: ``cloud.credential_unassigned``, and a person's ACA user.

A credential is matched to ACA through the user's assigned tags, a person through
``external_id``. Only an ACA-assigned tag is ever assigned, and only to its own person: an
unknown or lost credential is a security finding, a masked PIN or a temp key never a remedy.
Each presented credential is its own incident (the subject names it), so a finding is never
folded into another card's fix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from doorfix.connectors.models.aca import User
from doorfix.playbooks import causes
from doorfix.playbooks.door_logs.evidence import context
from doorfix.playbooks.facts import DoorLogFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Cause, Plan, PlannedAction, Remedy


def credential_known(facts: DoorLogFacts) -> bool:
    """Whether the log names a person or a visitor holding the presented credential."""
    return facts.log.personnel_id is not None or facts.log.visitor_id is not None


def person_aca_user(facts: DoorLogFacts) -> User | None:
    """The ACA user of the log's person (matched through ``external_id``), if the facts hold it."""
    person, user = facts.personnel, facts.aca_user
    if person is None or user is None:
        return None
    if user.id == person.external_id or user.cloud_personnel_id == person.personnel_id:
        return user
    return None


def credential_evidence(facts: DoorLogFacts, now: datetime) -> dict[str, Any]:
    """The facts behind ``cloud.credential_unassigned``: ACA's tag state and the owners."""
    user = facts.aca_user
    return {
        "tag_state": facts.tag_state,
        "aca_user_id": user.id if user else None,
        "aca_personnel_id": user.cloud_personnel_id if user else None,
        "owner_ids": sorted(p.personnel_id for p in facts.credential_owners),
    }


def _masked(value: str) -> bool:
    return bool(value) and set(value) == {"*"}


def plan_credential(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """Assign only an ACA-assigned tag to its own person; anything else is for a person."""
    log, user, state = facts.log, facts.aca_user, facts.tag_state
    values = context(facts)
    cause = Cause.CLOUD_CREDENTIAL_UNASSIGNED
    owners = sorted(facts.credential_owners, key=lambda p: p.personnel_id)
    values["owner_ids"] = ", ".join(p.personnel_id for p in owners) or "-"
    values["aca_user_id"] = user.id if user else "-"
    if log.credential_type == "pin" or _masked(log.credential_value):
        return causes.needs_human(
            cause, values, variant="masked_pin", reason="a masked PIN can never be assigned"
        )
    if log.credential_type == "temp_key":
        return causes.needs_human(
            cause, values, variant="temp_key", reason="a visitor's temp key is never assigned"
        )
    if state == "assigned" and user is not None:
        target = facts.aca_personnel
        if target is None or target.personnel_id != user.cloud_personnel_id:
            return causes.needs_human(
                cause, values, variant="no_person", reason="the tag's ACA user has no person here"
            )
        values.update(personnel_id=target.personnel_id, personnel_name=target.name)
        if any(p.personnel_id != target.personnel_id for p in owners):
            return causes.needs_human(
                cause, values, variant="conflict", reason="the cloud has it on someone else"
            )
        if target.has_credential(log.credential_type, log.credential_value):
            return causes.no_fault("already resolved: the credential is assigned to its person")
        project_id = facts.project.project_id
        action = PlannedAction(
            Remedy.ASSIGN_CREDENTIAL,
            "cloud",
            f"{project_id}/{target.personnel_id}",
            {
                "project_id": project_id,
                "personnel_id": target.personnel_id,
                "type": log.credential_type,
                "value": log.credential_value,
            },
        )
        return causes.remedy(
            cause, (action,), values, reason="ACA lists the credential as this person's tag"
        )
    if owners and state != "lost":
        return causes.no_fault(f"already resolved: the cloud now assigns it to {owners[0].name}")
    values["aca_says"] = (
        f"ACA marks it lost (user {values['aca_user_id']})"
        if state == "lost"
        else "ACA does not list it as anyone's assigned tag"
    )
    reason = "a lost credential was presented" if state == "lost" else "an unknown credential"
    return causes.needs_human(
        cause, values, variant="security", reason=f"security finding: {reason}"
    )
