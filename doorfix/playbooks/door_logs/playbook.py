"""door-logs: a cloud door-log failure group -> a ``cloud.*`` cause and its plan.

The Detail text picks the runbook row (:data:`DETAIL_ROWS`). An empty Detail (firmware older
than the runbook's table, or a device that wrote none) runs the runbook's "always verify" list
in the order a device applies its checks (credential, license, visitor validity, holiday,
access group): the first that fails explains the refusal. Unknown texts are reported, never
fatal. ``diagnose`` names the cause; ``plan`` decides, from the same facts, what to do.

This module is the playbook's entry point and its tables; each family of causes lives in its
own module: :mod:`~doorfix.playbooks.door_logs.credentials` (credentials and personnel),
:mod:`~doorfix.playbooks.door_logs.access` (access groups, schedules, holidays),
:mod:`~doorfix.playbooks.door_logs.visitors` and :mod:`~doorfix.playbooks.door_logs.licenses`,
over :mod:`~doorfix.playbooks.door_logs.details` (Detail rows, firmware) and
:mod:`~doorfix.playbooks.door_logs.evidence` (the common evidence and checklist context).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from doorfix.playbooks import causes
from doorfix.playbooks.door_logs.access import (
    access_evidence,
    blocking_holidays,
    group_missing,
    holiday_evidence,
    permission_cause,
    plan_access_group,
    plan_holiday,
    plan_inherited_group,
)
from doorfix.playbooks.door_logs.credentials import (
    credential_evidence,
    credential_known,
    person_aca_user,
    plan_credential,
)
from doorfix.playbooks.door_logs.details import (
    CREDENTIAL_TYPE_NAMES,
    DETAIL_ROWS,
    MIN_FIRMWARE,
    Detail,
    classify,
    firmware_outdated,
    parse_version,
)
from doorfix.playbooks.door_logs.evidence import base_evidence, context
from doorfix.playbooks.door_logs.licenses import door_license_evidence, license_down, plan_license
from doorfix.playbooks.door_logs.visitors import plan_visitor, visitor_evidence, visitor_expired
from doorfix.playbooks.facts import DoorLogFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Cause, Diagnosis, Plan, Step, Subject

__all__ = [
    "CAUSE_EVIDENCE",
    "CREDENTIAL_TYPE_NAMES",
    "DETAIL_ROWS",
    "MIN_FIRMWARE",
    "PLANNERS",
    "ROW_CAUSES",
    "VERIFY_CHECKS",
    "Detail",
    "base_evidence",
    "classify",
    "context",
    "diagnose",
    "firmware_outdated",
    "parse_version",
    "person_aca_user",
    "plan",
    "subject_of",
]

# --------------------------------------------------------------------------- diagnose

#: The runbook's "always verify" list, in the order a device applies the checks.
VERIFY_CHECKS: tuple[tuple[str, Callable[[DoorLogFacts, datetime], bool], Cause | None], ...] = (
    ("credential", lambda f, _now: not credential_known(f), Cause.CLOUD_CREDENTIAL_UNASSIGNED),
    ("license", license_down, Cause.CLOUD_LICENSE_INACTIVE),
    ("visitor_validity", lambda f, _now: visitor_expired(f), Cause.CLOUD_VISITOR_EXPIRED),
    ("schedule", lambda f, _now: bool(blocking_holidays(f)), Cause.CLOUD_HOLIDAY_RESTRICTION),
    # None: the access-group check resolves to inherited_group or no_access_group
    ("access_group", lambda f, _now: group_missing(f), None),
)


def _verify(facts: DoorLogFacts, now: datetime) -> tuple[Cause, dict[str, str]]:
    results: dict[str, str] = {}
    found: Cause | None = None
    for name, fails, cause in VERIFY_CHECKS:
        failed = fails(facts, now)
        results[name] = "fails" if failed else "ok"
        if failed and found is None:
            found = cause if cause is not None else permission_cause(facts)
    return found or Cause.UNKNOWN, results


def _license_then_permission(facts: DoorLogFacts, now: datetime) -> Cause:
    # the runbook: for this text the door's license is checked first
    if license_down(facts, now):
        return Cause.CLOUD_LICENSE_INACTIVE
    return permission_cause(facts)


#: Detail row -> its cause (EMPTY and OTHER are decided in :func:`diagnose`).
ROW_CAUSES: Mapping[Detail, Callable[[DoorLogFacts, datetime], Cause]] = MappingProxyType(
    {
        Detail.INVALID_CREDENTIAL: lambda _f, _now: Cause.CLOUD_CREDENTIAL_UNASSIGNED,
        Detail.LICENSE: lambda _f, _now: Cause.CLOUD_LICENSE_INACTIVE,
        Detail.NO_PERMISSION_OR_LICENSE: _license_then_permission,
        Detail.NO_PERMISSION: lambda f, _now: permission_cause(f),
        Detail.NOT_VALID: lambda _f, _now: Cause.CLOUD_VISITOR_EXPIRED,
        Detail.HOLIDAY: lambda _f, _now: Cause.CLOUD_HOLIDAY_RESTRICTION,
    }
)

#: cause -> the facts that decided it, beside the common evidence (none for the others).
CAUSE_EVIDENCE: Mapping[Cause, Callable[[DoorLogFacts, datetime], dict[str, Any]]] = (
    MappingProxyType(
        {
            Cause.CLOUD_CREDENTIAL_UNASSIGNED: credential_evidence,
            Cause.CLOUD_LICENSE_INACTIVE: door_license_evidence,
            Cause.CLOUD_NO_ACCESS_GROUP: access_evidence,
            Cause.CLOUD_INHERITED_GROUP: access_evidence,
            Cause.CLOUD_VISITOR_EXPIRED: visitor_evidence,
            Cause.CLOUD_HOLIDAY_RESTRICTION: holiday_evidence,
        }
    )
)


def _cause(facts: DoorLogFacts, now: datetime, row: Detail) -> tuple[Cause, dict[str, Any]]:
    if row is Detail.EMPTY:
        cause, checks = _verify(facts, now)
        return cause, {"checks": checks}
    by_row = ROW_CAUSES.get(row)
    return (by_row(facts, now) if by_row else Cause.UNKNOWN), {}


def diagnose(facts: DoorLogFacts, now: datetime) -> Diagnosis:
    """The cause of a door-log failure group, with the evidence that decided it."""
    log = facts.log
    row = classify(log.detail)
    cause, extra = _cause(facts, now, row)
    evidence = base_evidence(facts) | {"row": row.value} | extra
    by_cause = CAUSE_EVIDENCE.get(cause)
    if by_cause is not None:
        evidence |= by_cause(facts, now)
    return Diagnosis(cause, subject_of(cause, facts), evidence)


def subject_of(cause: Cause, facts: DoorLogFacts) -> Subject:
    """Whom an incident of this cause is about: the facts that decide its outcome, no fewer.

    The engine groups incidents by cause and subject, so the subject holds what tells two
    outcomes apart (DESIGN.md "Incident identity"): a credential finding names the presented
    credential (one incident per credential: an unknown or lost card is never folded into
    another card's fix); a door's license is one incident keyed by the door, whoever was
    refused (the refusals join it as events, as the license-renewal playbook's own incident).
    """
    log = facts.log
    center = facts.project.center
    center_id = center.id if center else None
    if cause is Cause.CLOUD_LICENSE_INACTIVE:
        return Subject(center_id=center_id, door_id=log.door_id)
    return Subject(
        center_id=center_id,
        personnel_id=log.personnel_id,
        visitor_id=log.visitor_id,
        door_id=log.door_id,
        credential=log.credential_value if cause is Cause.CLOUD_CREDENTIAL_UNASSIGNED else None,
    )


# --------------------------------------------------------------------------- plan


def _plan_unknown(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    empty = classify(facts.log.detail) is Detail.EMPTY
    return causes.needs_human(
        Cause.UNKNOWN,
        context(facts),
        variant="door_checks" if empty else "unknown_detail",
        reason="no runbook row explains the failure",
    )


_Planner = Callable[[DoorLogFacts, PlanPolicy, datetime], Plan]

#: cause -> how to plan it from the facts; every door-log cause has one.
PLANNERS: Mapping[Cause, _Planner] = MappingProxyType(
    {
        Cause.CLOUD_CREDENTIAL_UNASSIGNED: plan_credential,
        Cause.CLOUD_LICENSE_INACTIVE: plan_license,
        Cause.CLOUD_NO_ACCESS_GROUP: plan_access_group,
        Cause.CLOUD_INHERITED_GROUP: plan_inherited_group,
        Cause.CLOUD_VISITOR_EXPIRED: plan_visitor,
        Cause.CLOUD_HOLIDAY_RESTRICTION: plan_holiday,
        Cause.UNKNOWN: _plan_unknown,
    }
)


def _firmware_steps(facts: DoorLogFacts) -> tuple[Step, ...]:
    log = facts.log
    if not firmware_outdated(log.device_model, log.firmware):
        return ()
    return (causes.FIRMWARE_STEP.render(context(facts)),)


def plan(diagnosis: Diagnosis, facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """What to do about a door-log diagnosis (exact cloud calls, a checklist, or nothing)."""
    planner = PLANNERS.get(diagnosis.cause, _plan_unknown)
    result = planner(facts, policy, now)
    extra = _firmware_steps(facts)
    if not extra:
        return result
    return Plan(
        result.disposition,
        result.actions,
        result.steps + extra,
        result.not_before,
        result.reason,
    )
