"""door-logs: a cloud door-log failure group -> a ``cloud.*`` cause and its plan.

The Detail text picks the runbook row (:data:`DETAIL_ROWS`). An empty Detail (firmware older
than the runbook's table, or a device that wrote none) runs the runbook's "always verify" list
in the order a device applies its checks (credential, license, visitor validity, holiday,
access group): the first that fails explains the refusal. Unknown texts are reported, never
fatal. ``diagnose`` names the cause; ``plan`` decides, from the same facts, what to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from doorfix.connectors.models import epoch_seconds
from doorfix.connectors.models.aca import User
from doorfix.connectors.models.cloud import DoorLog, Holiday, TempKey, Visitor
from doorfix.playbooks import causes
from doorfix.playbooks.facts import DoorLogFacts
from doorfix.playbooks.license_renewal import license_evidence, renewal_plan
from doorfix.playbooks.policy import PlanPolicy, parse_hhmm
from doorfix.playbooks.schedules import (
    GroupChoice,
    booked_doors,
    bookings_giving_door,
    choose_group,
    epoch_iso,
    holiday_blocks,
    license_active,
    local_time,
    opening_groups,
    sorted_unique,
)
from doorfix.playbooks.types import Cause, Diagnosis, Plan, PlannedAction, Remedy, Step, Subject


class Detail(StrEnum):
    """The runbook row a Detail text selects."""

    INVALID_CREDENTIAL = "invalid_credential"
    LICENSE = "license"
    NO_PERMISSION = "no_permission"
    NO_PERMISSION_OR_LICENSE = "no_permission_or_license"
    NOT_VALID = "not_valid"
    HOLIDAY = "holiday"
    EMPTY = "empty"
    OTHER = "other"


#: Normalised Detail text -> row (``Invalid <Credential Type>`` is matched by pattern).
DETAIL_ROWS: Mapping[str, Detail] = MappingProxyType(
    {
        "door license expired or not activated": Detail.LICENSE,
        "no access permission": Detail.NO_PERMISSION,
        "no access permission or door license is not available": Detail.NO_PERMISSION_OR_LICENSE,
        "not within the valid period": Detail.NOT_VALID,
        "no access permission during holidays": Detail.HOLIDAY,
    }
)
_INVALID = re.compile(r"^invalid (?P<kind>.+)$")
#: What ``Invalid <Credential Type>`` names; other ``Invalid ...`` texts are not this row.
CREDENTIAL_TYPE_NAMES = frozenset(
    {
        "card",
        "pin",
        "face",
        "qr code",
        "qr",
        "nfc",
        "ble",
        "credential",
        "credentials",
        "temp key",
        "tag",
        "fingerprint",
        "ic card",
        "id card",
    }
)

#: The runbook's "Supported Devices": model -> the oldest firmware that writes a Detail.
MIN_FIRMWARE: Mapping[str, str] = MappingProxyType(
    {
        "A08": "108.30.11.210",
        "EC33": "33.30.1.107",
        "R20": "320.30.12.16",
        "R29": "29.30.10.712",
        "X915V2": "2915.30.10.707",
    }
)


def classify(detail: str) -> Detail:
    """The row a Detail text selects (case and spacing ignored)."""
    text = " ".join(detail.split()).casefold().rstrip(".")
    if not text:
        return Detail.EMPTY
    if text in DETAIL_ROWS:
        return DETAIL_ROWS[text]
    invalid = _INVALID.match(text)
    if invalid and invalid.group("kind") in CREDENTIAL_TYPE_NAMES:
        return Detail.INVALID_CREDENTIAL
    return Detail.OTHER


def parse_version(text: str) -> tuple[int, ...] | None:
    """A dotted firmware version as numbers (``"29.30.10.712"`` -> ``(29, 30, 10, 712)``)."""
    parts = text.strip().split(".")
    # ASCII digits only: str.isdigit() also accepts "¹" and "٣", which int() refuses or misreads
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def firmware_outdated(model: str, firmware: str) -> bool:
    """Whether a device runs firmware older than the runbook's table (unknown: not outdated)."""
    floor = MIN_FIRMWARE.get(model.strip().upper())
    version = parse_version(firmware)
    if floor is None or version is None:
        return False
    minimum = parse_version(floor)
    return minimum is not None and version < minimum


# --------------------------------------------------------------------------- evidence


def _presentations(facts: DoorLogFacts) -> list[DoorLog]:
    rows = {row.log_id: row for row in (*facts.logs, *facts.presentations)}
    return sorted(rows.values(), key=lambda row: (row.capture_time, row.log_id))


def base_evidence(facts: DoorLogFacts) -> dict[str, Any]:
    """What every door-log diagnosis reports: the log, the device, how often and where."""
    log = facts.log
    rows = _presentations(facts)
    return {
        "detail": log.detail,
        "door_id": log.door_id,
        "door_name": log.door_name,
        "device_model": log.device_model,
        "firmware": log.firmware,
        "firmware_outdated": firmware_outdated(log.device_model, log.firmware),
        "credential_type": log.credential_type,
        "credential_value": log.credential_value,
        "count": len(rows),
        "doors": sorted_unique(row.door_id for row in rows),
        "first_seen": epoch_iso(rows[0].capture_time),
        "last_seen": epoch_iso(rows[-1].capture_time),
        "log_ids": [row.log_id for row in facts.logs],
    }


def context(facts: DoorLogFacts) -> dict[str, Any]:
    """The checklist context of a group: evidence plus the names a person looks for."""
    log = facts.log
    person = facts.personnel
    values = base_evidence(facts)
    values.update(
        project_id=facts.project.project_id,
        personnel_id=log.personnel_id or "-",
        personnel_name=person.name if person else "-",
        visitor_id=log.visitor_id or "-",
        min_firmware=MIN_FIRMWARE.get(log.device_model.strip().upper(), "?"),
        summary=f"Detail {log.detail!r} at door {log.door_id}",
    )
    return values


def _at(facts: DoorLogFacts) -> datetime:
    """The refusal's instant (the group's latest presentation)."""
    return facts.log.capture_time_utc


# --------------------------------------------------------------------------- shared facts


def _presented_keys(visitor: Visitor, log: DoorLog) -> tuple[TempKey, ...]:
    """The temp key the log shows (by code), else every key of the visitor."""
    shown = tuple(key for key in visitor.temp_keys if key.code == log.credential_value)
    return shown or visitor.temp_keys


def _key_valid(key: TempKey, at: datetime) -> bool:
    return key.start_time <= epoch_seconds(at) < key.finish_time


def person_aca_user(facts: DoorLogFacts) -> User | None:
    """The ACA user of the log's person (matched through ``external_id``), if the facts hold it."""
    person, user = facts.personnel, facts.aca_user
    if person is None or user is None:
        return None
    if user.id == person.external_id or user.cloud_personnel_id == person.personnel_id:
        return user
    return None


# --------------------------------------------------------------------------- checks


def _permission_cause(facts: DoorLogFacts) -> Cause:
    person = facts.personnel
    if person is not None and person.user_group_ids:
        return Cause.CLOUD_INHERITED_GROUP
    return Cause.CLOUD_NO_ACCESS_GROUP


def _credential_known(facts: DoorLogFacts) -> bool:
    return facts.log.personnel_id is not None or facts.log.visitor_id is not None


def _license_down(facts: DoorLogFacts, now: datetime) -> bool:
    door = facts.door
    return door is not None and not license_active(door.license, now)


def _visitor_expired(facts: DoorLogFacts) -> bool:
    visitor = facts.visitor
    if facts.log.visitor_id is None or visitor is None:
        return False
    return not any(_key_valid(key, _at(facts)) for key in _presented_keys(visitor, facts.log))


def _holiday_blocks(facts: DoorLogFacts) -> bool:
    local = local_time(_at(facts), facts.project.time_zone)
    return any(holiday_blocks(h, facts.log.door_id, local) for h in facts.project.holidays)


def _group_missing(facts: DoorLogFacts) -> bool:
    if facts.log.visitor_id is not None and facts.visitor is not None:
        keys = _presented_keys(facts.visitor, facts.log)
        return not any(facts.log.door_id in key.door_ids for key in keys)
    person = facts.personnel
    return person is not None and not opening_groups(
        facts.project, person, facts.log.door_id, _at(facts)
    )


#: The runbook's "always verify" list, in the order a device applies the checks.
VERIFY_CHECKS: tuple[tuple[str, Callable[[DoorLogFacts, datetime], bool], Cause | None], ...] = (
    ("credential", lambda f, _now: not _credential_known(f), Cause.CLOUD_CREDENTIAL_UNASSIGNED),
    ("license", _license_down, Cause.CLOUD_LICENSE_INACTIVE),
    ("visitor_validity", lambda f, _now: _visitor_expired(f), Cause.CLOUD_VISITOR_EXPIRED),
    ("schedule", lambda f, _now: _holiday_blocks(f), Cause.CLOUD_HOLIDAY_RESTRICTION),
    # None: the access-group check resolves to inherited_group or no_access_group
    ("access_group", lambda f, _now: _group_missing(f), None),
)


def _verify(facts: DoorLogFacts, now: datetime) -> tuple[Cause, dict[str, str]]:
    results: dict[str, str] = {}
    found: Cause | None = None
    for name, fails, cause in VERIFY_CHECKS:
        failed = fails(facts, now)
        results[name] = "fails" if failed else "ok"
        if failed and found is None:
            found = cause if cause is not None else _permission_cause(facts)
    return found or Cause.UNKNOWN, results


def _license_then_permission(facts: DoorLogFacts, now: datetime) -> Cause:
    # the runbook: for this text the door's license is checked first
    if _license_down(facts, now):
        return Cause.CLOUD_LICENSE_INACTIVE
    return _permission_cause(facts)


#: Detail row -> its cause (EMPTY and OTHER are decided in :func:`diagnose`).
ROW_CAUSES: Mapping[Detail, Callable[[DoorLogFacts, datetime], Cause]] = MappingProxyType(
    {
        Detail.INVALID_CREDENTIAL: lambda _f, _now: Cause.CLOUD_CREDENTIAL_UNASSIGNED,
        Detail.LICENSE: lambda _f, _now: Cause.CLOUD_LICENSE_INACTIVE,
        Detail.NO_PERMISSION_OR_LICENSE: _license_then_permission,
        Detail.NO_PERMISSION: lambda f, _now: _permission_cause(f),
        Detail.NOT_VALID: lambda _f, _now: Cause.CLOUD_VISITOR_EXPIRED,
        Detail.HOLIDAY: lambda _f, _now: Cause.CLOUD_HOLIDAY_RESTRICTION,
    }
)


def _cause(facts: DoorLogFacts, now: datetime, row: Detail) -> tuple[Cause, dict[str, Any]]:
    if row is Detail.EMPTY:
        cause, checks = _verify(facts, now)
        return cause, {"checks": checks}
    by_row = ROW_CAUSES.get(row)
    return (by_row(facts, now) if by_row else Cause.UNKNOWN), {}


def _cause_evidence(facts: DoorLogFacts, cause: Cause, now: datetime) -> dict[str, Any]:
    """The facts that decided ``cause``, beside the common evidence."""
    if cause is Cause.CLOUD_CREDENTIAL_UNASSIGNED:
        user = facts.aca_user
        return {
            "tag_state": facts.tag_state,
            "aca_user_id": user.id if user else None,
            "aca_personnel_id": user.cloud_personnel_id if user else None,
            "owner_ids": sorted(p.personnel_id for p in facts.credential_owners),
        }
    if cause is Cause.CLOUD_LICENSE_INACTIVE:
        door = facts.door
        evidence = {"payment_permission": facts.project.project.can_pay}
        if door is not None:
            evidence |= license_evidence(door, now)
        return evidence
    if cause in (Cause.CLOUD_NO_ACCESS_GROUP, Cause.CLOUD_INHERITED_GROUP):
        person = facts.personnel
        aca_user = person_aca_user(facts)
        return {
            "access_group_ids": list(person.access_group_ids) if person else [],
            "user_group_ids": list(person.user_group_ids) if person else [],
            "aca_user_id": aca_user.id if aca_user else None,
            "local_time": local_time(_at(facts), facts.project.time_zone).isoformat(),
        }
    if cause is Cause.CLOUD_VISITOR_EXPIRED:
        visit = facts.visit
        return {
            "aca_visit_id": facts.visitor.aca_visit_id if facts.visitor else None,
            "visit_status": visit.status if visit else None,
            "visit_ends_at": visit.ends_at.isoformat() if visit else None,
        }
    if cause is Cause.CLOUD_HOLIDAY_RESTRICTION:
        local = local_time(_at(facts), facts.project.time_zone)
        return {
            "local_time": local.isoformat(),
            "holiday_ids": sorted(
                h.holiday_id
                for h in facts.project.holidays
                if holiday_blocks(h, facts.log.door_id, local)
            ),
        }
    return {}


def diagnose(facts: DoorLogFacts, now: datetime) -> Diagnosis:
    """The cause of a door-log failure group, with the evidence that decided it."""
    log = facts.log
    row = classify(log.detail)
    cause, extra = _cause(facts, now, row)
    evidence = base_evidence(facts) | {"row": row.value} | extra
    evidence |= _cause_evidence(facts, cause, now)
    center = facts.project.center
    subject = Subject(
        center_id=center.id if center else None,
        personnel_id=log.personnel_id,
        visitor_id=log.visitor_id,
        door_id=log.door_id,
    )
    return Diagnosis(cause, subject, evidence)


# --------------------------------------------------------------------------- plans


def _masked(value: str) -> bool:
    return bool(value) and set(value) == {"*"}


def _plan_credential(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
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


def _choice(facts: DoorLogFacts, user: User, now: datetime) -> tuple[GroupChoice, set[str]]:
    project = facts.project
    allowed = booked_doors(facts.bookings, project.inventories, user.company_id, now)
    local = local_time(_at(facts), project.time_zone)
    person_groups = facts.personnel.access_group_ids if facts.personnel else ()
    groups = sorted(project.access_groups.values(), key=lambda g: g.access_group_id)
    return choose_group(groups, facts.log.door_id, local, allowed, exclude=person_groups), allowed


def _access_context(facts: DoorLogFacts, user: User, now: datetime) -> dict[str, Any]:
    choice, allowed = _choice(facts, user, now)
    giving = bookings_giving_door(
        facts.bookings, facts.project.inventories, user.company_id, facts.log.door_id, now
    )
    return {
        "booking_ids": ", ".join(b.id for b in giving),
        "allowed_doors": ", ".join(sorted(allowed)),
        "rejected_groups": "; ".join(f"{k}: {v}" for k, v in choice.rejected.items()) or "none",
        "local_time": local_time(_at(facts), facts.project.time_zone).strftime("%A %Y-%m-%d %H:%M"),
    }


def _already_open(facts: DoorLogFacts) -> Plan | None:
    person = facts.personnel
    if person is None:
        return None
    opening = opening_groups(facts.project, person, facts.log.door_id, _at(facts))
    if opening:
        groups = ", ".join(opening)
        return causes.no_fault(f"already resolved: access group(s) {groups} open the door")
    return None


def _plan_access_group(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """Add to an existing group only when a booking justifies it and the group grants no more."""
    cause = Cause.CLOUD_NO_ACCESS_GROUP
    values = context(facts)
    person = facts.personnel
    if person is None:
        if facts.log.visitor_id is not None:
            return causes.no_fault("refused as designed: the visitor's key does not list the door")
        return causes.needs_human(cause, values, variant="no_person", reason="no person to act on")
    resolved = _already_open(facts)
    if resolved is not None:
        return resolved
    user = person_aca_user(facts)
    if user is None:
        return causes.needs_human(
            cause, values, variant="no_aca_user", reason="the person has no ACA user"
        )
    door_id = facts.log.door_id
    project = facts.project
    if not bookings_giving_door(facts.bookings, project.inventories, user.company_id, door_id, now):
        return causes.no_fault("refused as designed: no active ACA booking gives this door")
    values |= _access_context(facts, user, now)
    group = _choice(facts, user, now)[0].chosen
    if group is None:
        return causes.needs_human(
            cause, values, variant="no_suitable_group", reason="no existing group fits the booking"
        )
    values.update(group_name=group.name, access_group_id=group.access_group_id)
    action = PlannedAction(
        Remedy.ADD_TO_ACCESS_GROUP,
        "cloud",
        f"{project.project_id}/{person.personnel_id}",
        {
            "project_id": project.project_id,
            "access_group_id": group.access_group_id,
            "personnel_id": person.personnel_id,
        },
    )
    return causes.remedy(
        cause, (action,), values, reason=f"the booking gives the door; group {group.name} fits"
    )


def _plan_inherited_group(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """Inherited access is changed by a person; doorfix suggests the group that would fit."""
    person = facts.personnel
    if person is None or not person.user_group_ids:
        return _plan_access_group(facts, policy, now)
    resolved = _already_open(facts)
    if resolved is not None:
        return resolved
    values = context(facts)
    names = [
        facts.project.user_groups[i].name if i in facts.project.user_groups else i
        for i in person.user_group_ids
    ]
    values["user_groups"] = ", ".join(names)
    values["suggestion"] = "one that opens the door at the booked times"
    user = person_aca_user(facts)
    if user is not None:
        project = facts.project
        door_id = facts.log.door_id
        if not bookings_giving_door(
            facts.bookings, project.inventories, user.company_id, door_id, now
        ):
            # ACA says they should not have the door: the user group is not the problem
            return causes.no_fault("refused as designed: no active ACA booking gives this door")
        group = _choice(facts, user, now)[0].chosen
        if group is not None:
            values["suggestion"] = f"for example {group.name} ({group.access_group_id})"
    return causes.needs_human(
        Cause.CLOUD_INHERITED_GROUP,
        values,
        reason="access is inherited from a user group and cannot be edited one by one",
    )


def _visitor_doors(visitor: Visitor, log: DoorLog) -> list[str]:
    """The doors of the visitor's last key for this door (never more than they had)."""
    keys = _presented_keys(visitor, log)
    pool = [key for key in keys if log.door_id in key.door_ids] or list(keys)
    if not pool:
        return [log.door_id]
    latest = max(pool, key=lambda key: (key.finish_time, key.temp_key_id))
    return sorted_unique(latest.door_ids) or [log.door_id]


def _plan_visitor(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """A new temp key from now to the visit's end, only while ACA's visit is valid."""
    visitor, visit = facts.visitor, facts.visit
    if visitor is None or visit is None or visit.id != visitor.aca_visit_id:
        return causes.no_fault("refused as designed: no ACA visit is known for this visitor")
    if visit.status not in ("scheduled", "active") or not visit.starts_at <= now < visit.ends_at:
        return causes.no_fault(f"refused as designed: the visit is {visit.status} or not current")
    start, finish = epoch_seconds(now), epoch_seconds(visit.ends_at)
    if finish <= start:
        return causes.no_fault("refused as designed: the visit ends now")
    door_ids = _visitor_doors(visitor, facts.log)
    if any(
        _key_valid(key, now) and not key.expired and facts.log.door_id in key.door_ids
        for key in visitor.temp_keys
    ):
        return causes.no_fault("already resolved: the visitor holds a valid temp key")
    project_id = facts.project.project_id
    values = context(facts) | {
        "visitor_name": visitor.name,
        "door_ids": ", ".join(door_ids),
        "visit_ends_at": epoch_iso(finish),
    }
    action = PlannedAction(
        Remedy.CREATE_TEMP_KEY,
        "cloud",
        f"{project_id}/{visitor.visitor_id}",
        {
            "project_id": project_id,
            "visitor_id": visitor.visitor_id,
            "door_ids": door_ids,
            "start_time": start,
            "finish_time": finish,
        },
    )
    return causes.remedy(
        Cause.CLOUD_VISITOR_EXPIRED, (action,), values, reason="the ACA visit is still valid"
    )


def _blocking_holidays(facts: DoorLogFacts) -> list[Holiday]:
    local = local_time(_at(facts), facts.project.time_zone)
    return sorted(
        (h for h in facts.project.holidays if holiday_blocks(h, facts.log.door_id, local)),
        key=lambda h: h.holiday_id,
    )


def _plan_holiday(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """Enable working hours only on holidays the config lists, with the hours it gives."""
    blocking = _blocking_holidays(facts)
    if not blocking:
        return causes.no_fault("already resolved: no holiday blocks the door at that time")
    project_id = facts.project.project_id
    actions: list[PlannedAction] = []
    missing: list[Holiday] = []
    for holiday in blocking:
        hours = policy.hours_for(holiday.holiday_id, holiday.name)
        if hours is None:
            missing.append(holiday)
            continue
        current = (holiday.working_hours.start_time, holiday.working_hours.end_time)
        if holiday.working_hours_enabled and current == (
            parse_hhmm(hours[0]),
            parse_hhmm(hours[1]),
        ):
            # the configured hours are in force: the refusal fell outside them, as designed
            continue
        params = {
            "project_id": project_id,
            "holiday_id": holiday.holiday_id,
            "enabled": True,
            "start_time": hours[0],
            "end_time": hours[1],
        }
        target = f"{project_id}/{holiday.holiday_id}"
        actions.append(PlannedAction(Remedy.SET_HOLIDAY_HOURS, "cloud", target, params))
    values = context(facts) | {
        "holidays": ", ".join(f"{h.name} ({h.holiday_id})" for h in missing or blocking),
        "local_date": local_time(_at(facts), facts.project.time_zone).date().isoformat(),
    }
    cause = Cause.CLOUD_HOLIDAY_RESTRICTION
    if missing:
        return causes.needs_human(cause, values, reason="the holiday is not in doorfix's config")
    if not actions:
        return causes.no_fault("refused as designed: outside the configured working hours")
    return causes.remedy(
        cause, tuple(actions), values, reason="enable the configured holiday working hours"
    )


def _plan_license(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
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
        Cause.CLOUD_CREDENTIAL_UNASSIGNED: _plan_credential,
        Cause.CLOUD_LICENSE_INACTIVE: _plan_license,
        Cause.CLOUD_NO_ACCESS_GROUP: _plan_access_group,
        Cause.CLOUD_INHERITED_GROUP: _plan_inherited_group,
        Cause.CLOUD_VISITOR_EXPIRED: _plan_visitor,
        Cause.CLOUD_HOLIDAY_RESTRICTION: _plan_holiday,
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
