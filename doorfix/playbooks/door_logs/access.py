"""Door-log access: access groups, user groups, schedules and holidays.

``cloud.no_access_group`` and ``cloud.inherited_group`` (the person is in no group that opens
the door at that time; inherited groups cannot be edited one by one) and
``cloud.holiday_restriction`` (a holiday without working hours keeps the door shut). A person
is added only to an existing group that an ACA booking justifies and that opens no door the
bookings do not give; holiday hours are set only for the holidays the config lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from doorfix.connectors.models.aca import User
from doorfix.connectors.models.cloud import Holiday
from doorfix.playbooks import causes
from doorfix.playbooks.door_logs.credentials import person_aca_user
from doorfix.playbooks.door_logs.evidence import context, refusal_at
from doorfix.playbooks.door_logs.visitors import presented_keys
from doorfix.playbooks.facts import DoorLogFacts
from doorfix.playbooks.policy import PlanPolicy, parse_hhmm
from doorfix.playbooks.schedules import (
    GroupChoice,
    booked_doors,
    bookings_giving_door,
    choose_group,
    holiday_blocks,
    local_time,
    opening_groups,
)
from doorfix.playbooks.types import Cause, Plan, PlannedAction, Remedy

# --------------------------------------------------------------------------- checks


def permission_cause(facts: DoorLogFacts) -> Cause:
    """A missing permission's cause: inherited from a user group, or no access group."""
    person = facts.personnel
    if person is not None and person.user_group_ids:
        return Cause.CLOUD_INHERITED_GROUP
    return Cause.CLOUD_NO_ACCESS_GROUP


def blocking_holidays(facts: DoorLogFacts) -> list[Holiday]:
    """The holidays that kept the log's door shut at the refusal, by holiday id."""
    local = local_time(refusal_at(facts), facts.project.time_zone)
    return sorted(
        (h for h in facts.project.holidays if holiday_blocks(h, facts.log.door_id, local)),
        key=lambda h: h.holiday_id,
    )


def group_missing(facts: DoorLogFacts) -> bool:
    """Whether no key (a visitor) or no access group (a person) opens the door at the refusal."""
    if facts.log.visitor_id is not None and facts.visitor is not None:
        keys = presented_keys(facts.visitor, facts.log)
        return not any(facts.log.door_id in key.door_ids for key in keys)
    person = facts.personnel
    return person is not None and not opening_groups(
        facts.project, person, facts.log.door_id, refusal_at(facts)
    )


def access_evidence(facts: DoorLogFacts, now: datetime) -> dict[str, Any]:
    """The facts behind a missing permission: the person's groups and ACA user, the time."""
    person = facts.personnel
    aca_user = person_aca_user(facts)
    return {
        "access_group_ids": list(person.access_group_ids) if person else [],
        "user_group_ids": list(person.user_group_ids) if person else [],
        "aca_user_id": aca_user.id if aca_user else None,
        "local_time": local_time(refusal_at(facts), facts.project.time_zone).isoformat(),
    }


def holiday_evidence(facts: DoorLogFacts, now: datetime) -> dict[str, Any]:
    """The facts behind ``cloud.holiday_restriction``: the local time and the holidays."""
    local = local_time(refusal_at(facts), facts.project.time_zone)
    return {
        "local_time": local.isoformat(),
        "holiday_ids": [h.holiday_id for h in blocking_holidays(facts)],
    }


# --------------------------------------------------------------------------- plans


def _choice(facts: DoorLogFacts, user: User, now: datetime) -> tuple[GroupChoice, set[str]]:
    project = facts.project
    allowed = booked_doors(facts.bookings, project.inventories, user.company_id, now)
    local = local_time(refusal_at(facts), project.time_zone)
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
        "local_time": local_time(refusal_at(facts), facts.project.time_zone).strftime(
            "%A %Y-%m-%d %H:%M"
        ),
    }


def _already_open(facts: DoorLogFacts) -> Plan | None:
    person = facts.personnel
    if person is None:
        return None
    opening = opening_groups(facts.project, person, facts.log.door_id, refusal_at(facts))
    if opening:
        groups = ", ".join(opening)
        return causes.no_fault(f"already resolved: access group(s) {groups} open the door")
    return None


def plan_access_group(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
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


def plan_inherited_group(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """Inherited access is changed by a person; doorfix suggests the group that would fit."""
    person = facts.personnel
    if person is None or not person.user_group_ids:
        return plan_access_group(facts, policy, now)
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


def plan_holiday(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """Enable working hours only on holidays the config lists, with the hours it gives."""
    blocking = blocking_holidays(facts)
    if not blocking:
        return causes.no_fault("already resolved: no holiday blocks the door at that time")
    project_id = facts.project.project_id
    actions: list[PlannedAction] = []
    missing: list[Holiday] = []
    person_set: list[Holiday] = []
    for holiday in blocking:
        hours = policy.hours_for(holiday.holiday_id, holiday.name)
        if hours is None:
            missing.append(holiday)
            continue
        if holiday.working_hours_enabled:
            current = (holiday.working_hours.start_time, holiday.working_hours.end_time)
            if current != (parse_hhmm(hours[0]), parse_hhmm(hours[1])):
                # hours a person set: doorfix only enables hours where none are enabled, it
                # never shortens or replaces them
                person_set.append(holiday)
            # else the configured hours are in force: the refusal fell outside them, as designed
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
    local = local_time(refusal_at(facts), facts.project.time_zone)
    values = context(facts) | {
        "holidays": ", ".join(f"{h.name} ({h.holiday_id})" for h in missing or blocking),
        "local_date": local.date().isoformat(),
        "local_time": f"{local:%H:%M}",
    }
    cause = Cause.CLOUD_HOLIDAY_RESTRICTION
    if missing:
        return causes.needs_human(cause, values, reason="the holiday is not in doorfix's config")
    if person_set:
        values["holidays"] = ", ".join(f"{h.name} ({h.holiday_id})" for h in person_set)
        values["hours_found"] = ", ".join(
            f"{h.working_hours.start_time:%H:%M}-{h.working_hours.end_time:%H:%M}"
            for h in person_set
        )
        return causes.needs_human(
            cause,
            values,
            variant="hours_set",
            reason="the holiday already has working hours a person set: never replaced",
        )
    if not actions:
        return causes.no_fault("refused as designed: outside the configured working hours")
    return causes.remedy(
        cause, tuple(actions), values, reason="enable the configured holiday working hours"
    )
