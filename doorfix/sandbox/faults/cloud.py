"""Fault kinds of the door cloud (runbook "door opening failure") and of the event feed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from doorfix.sandbox.faults.base import (
    FaultSpec,
    Injected,
    Subject,
    Undo,
    door_or_person,
    door_subject,
    get,
    lock_subject,
    person_subject,
)
from doorfix.sandbox.world import doors, rules
from doorfix.sandbox.world.model import AcaEvent, Holiday, UserGroup, WorkingHours, WorldError
from doorfix.sandbox.world.state import WorldState

# --------------------------------------------------------------------------- cloud


def _set_license(w: WorldState, door_id: str, status: str, now: datetime) -> Undo:
    door = get(w.doors, door_id, "door")
    if status not in ("expired", "inactivated"):
        raise WorldError("invalid", "status is expired or inactivated")
    saved = replace(door.license)
    door.license.status = "expired" if status == "expired" else "inactivated"
    door.license.expires_at = now - timedelta(days=3) if status == "expired" else None
    door.license.auto_renew = False

    def undo() -> None:
        door.license = replace(saved)
        w.watch_license(door)

    return undo


def _license_inactive(
    w: WorldState,
    now: datetime,
    *,
    door_id: str,
    status: str = "expired",
    personnel_id: str | None = None,
) -> Injected:
    undo = _set_license(w, door_id, status, now)
    return Injected(door_or_person(w, door_id, personnel_id), undo)


def _present_license(w: WorldState, s: Subject, now: datetime) -> bool:
    return not doors.license_active(w.doors[s["door_id"]], now)


def _no_payment(
    w: WorldState,
    now: datetime,
    *,
    door_id: str,
    status: str = "expired",
    reason: str = "permission",
    personnel_id: str | None = None,
) -> Injected:
    if reason not in ("permission", "funds"):
        raise WorldError("invalid", "reason is permission or funds")
    undo_license = _set_license(w, door_id, status, now)
    project = w.projects[w.doors[door_id].project_id]
    permissions, funds = list(project.permissions), project.funds
    if reason == "permission":
        project.permissions = [p for p in project.permissions if p != "payment"]
    else:
        project.funds = False

    def undo() -> None:
        project.permissions, project.funds = permissions, funds
        undo_license()

    return Injected(door_or_person(w, door_id, personnel_id), undo)


def _credential_unassigned(w: WorldState, now: datetime, *, user_id: str, door_id: str) -> Injected:
    user = get(w.users, user_id, "user")
    door = get(w.doors, door_id, "door")
    person = w.personnel.get(user.cloud_personnel_id or "")
    tag = rules.presented_tag(user)
    if person is None or tag is None or tag.state != "assigned":
        raise WorldError("invalid", "the user needs cloud personnel and an assigned tag")
    removed = [c for c in person.credentials if c.value == tag.number]
    person.credentials = [c for c in person.credentials if c.value != tag.number]

    def undo() -> None:
        person.credentials.extend(removed)

    subject = door_subject(w, door.door_id) | {
        "user_id": user_id,
        "personnel_id": person.personnel_id,
        "credential_type": "card",
        "credential_value": tag.number,
    }
    return Injected(subject, undo)


def _present_credential_unowned(w: WorldState, s: Subject, now: datetime) -> bool:
    return doors.credential_owner(w, s["project_id"], "card", s["credential_value"]) is None


def _unknown_credential(
    w: WorldState,
    now: datetime,
    *,
    door_id: str,
    value: str | None = None,
    lost_user_id: str | None = None,
) -> Injected:
    door = get(w.doors, door_id, "door")
    subject = door_subject(w, door_id) | {"credential_type": "card"}
    undos: list[Undo] = []
    if lost_user_id is not None:
        user = get(w.users, lost_user_id, "user")
        tag = rules.presented_tag(user)
        if tag is None or tag.state != "assigned":
            raise WorldError("invalid", "the user has no assigned tag to lose")
        value = tag.number
        tag.state = "lost"
        member = rules.site_user(w, w.centers[user.center_id].clp_site_id, user.clp_user_id)
        key = rules.site_key(w, member.id, "tag", tag.number) if member else None
        if key is not None:
            key.blocked = True
        person = w.personnel.get(user.cloud_personnel_id or "")
        removed = []
        if person is not None:
            removed = [c for c in person.credentials if c.value == tag.number]
            person.credentials = [c for c in person.credentials if c.value != tag.number]

        def undo_lost() -> None:
            tag.state = "assigned"
            if key is not None:
                key.blocked = False
            if person is not None:
                person.credentials.extend(removed)

        undos.append(undo_lost)
        subject["user_id"] = lost_user_id
        subject["aca_tag_state"] = "lost"
    elif value is None:
        known = {t.number for u in w.users.values() for t in u.tags}
        while (
            value is None
            or value in known
            or doors.credential_owner(w, door.project_id, "card", value)
        ):
            value = f"{w.rng.randrange(16**7, 16**8):08X}"
    elif doors.credential_owner(w, door.project_id, "card", value) is not None:
        raise WorldError("invalid", "that card belongs to someone")
    subject["credential_value"] = value

    def undo() -> None:
        for step in undos:
            step()

    return Injected(subject, undo)


def _no_access_group(w: WorldState, now: datetime, *, personnel_id: str, door_id: str) -> Injected:
    person = get(w.personnel, personnel_id, "personnel")
    door = get(w.doors, door_id, "door")
    if person.user_group_ids:
        raise WorldError("invalid", "the person is in a user group: use cloud.inherited_group")
    saved = list(person.access_group_ids)
    person.access_group_ids = [g for g in saved if door_id not in w.cloud_access_groups[g].door_ids]

    def undo() -> None:
        person.access_group_ids = list(saved)

    return Injected(person_subject(w, person.personnel_id, door.door_id), undo)


def _present_no_access_group(w: WorldState, s: Subject, now: datetime) -> bool:
    person = w.personnel[s["personnel_id"]]
    return not doors.opening_groups(w, person, w.doors[s["door_id"]], now)


def _inherited_group(
    w: WorldState,
    now: datetime,
    *,
    personnel_id: str,
    door_id: str,
    user_group_id: str | None = None,
) -> Injected:
    person = get(w.personnel, personnel_id, "personnel")
    door = get(w.doors, door_id, "door")
    if user_group_id is None:
        group = UserGroup(w.new_id("ug"), person.project_id, "Contractors")
        w.user_groups[group.user_group_id] = group
    else:
        group = get(w.user_groups, user_group_id, "user group")
    if any(door_id in w.cloud_access_groups[g].door_ids for g in group.access_group_ids):
        raise WorldError("invalid", "the user group already opens the door")
    saved = (list(person.access_group_ids), list(person.user_group_ids))
    person.access_group_ids = [
        g for g in person.access_group_ids if door_id not in w.cloud_access_groups[g].door_ids
    ]
    if group.user_group_id not in person.user_group_ids:
        person.user_group_ids.append(group.user_group_id)
    added = personnel_id not in group.member_ids
    if added:
        group.member_ids.append(personnel_id)

    def undo() -> None:
        person.access_group_ids, person.user_group_ids = list(saved[0]), list(saved[1])
        if added and personnel_id in group.member_ids:
            group.member_ids.remove(personnel_id)

    subject = person_subject(w, personnel_id, door.door_id)
    subject["user_group_id"] = group.user_group_id
    return Injected(subject, undo)


def _present_inherited_group(w: WorldState, s: Subject, now: datetime) -> bool:
    person = w.personnel[s["personnel_id"]]
    return bool(person.user_group_ids) and _present_no_access_group(w, s, now)


def _visitor_expired(
    w: WorldState, now: datetime, *, visitor_id: str, visit_over: bool = False
) -> Injected:
    visitor = get(w.visitors, visitor_id, "visitor")
    if not visitor.temp_keys:
        raise WorldError("invalid", "the visitor has no temp key to expire")
    visit = w.visits.get(visitor.aca_visit_id or "")
    if visit_over and visit is None:
        raise WorldError("invalid", "visit_over needs the visitor's ACA visit")
    saved_keys = [(k, k.start_time, k.finish_time) for k in visitor.temp_keys]
    finish = now - timedelta(hours=1)
    for key in visitor.temp_keys:
        if key.finish_time > finish:
            key.finish_time = finish
            key.start_time = min(key.start_time, finish - timedelta(hours=4))
    saved_visit = (visit.starts_at, visit.ends_at, visit.status) if visit else None
    if visit_over and visit is not None:
        visit.ends_at = now - timedelta(minutes=30)
        visit.starts_at = min(visit.starts_at, visit.ends_at - timedelta(hours=2))
        visit.status = "ended"

    def undo() -> None:
        for key, start, end in saved_keys:
            key.start_time, key.finish_time = start, end
        if visit is not None and saved_visit is not None:
            visit.starts_at, visit.ends_at, visit.status = saved_visit

    subject = door_subject(w, visitor.temp_keys[-1].door_ids[0]) | {
        "visitor_id": visitor_id,
        "credential_type": "temp_key",
    }
    if visit is not None:
        subject["visit_id"] = visit.id
    return Injected(
        subject, undo, outcome="no_fault" if visit_over else None, remedy_applies=not visit_over
    )


def _present_visitor_expired(w: WorldState, s: Subject, now: datetime) -> bool:
    visitor = w.visitors[s["visitor_id"]]
    return not any(
        doors.temp_key_valid(k, now) and s["door_id"] in k.door_ids for k in visitor.temp_keys
    )


def _holiday_restriction(
    w: WorldState,
    now: datetime,
    *,
    door_id: str,
    holiday_id: str | None = None,
    days: int = 2,
    personnel_id: str | None = None,
    hours: str | None = None,
) -> Injected:
    """A holiday keeps the door shut; ``hours`` (``"HH:MM-HH:MM"``): working hours a person
    set and enabled, so the door is shut only outside them (and no remedy may replace them)."""
    door = get(w.doors, door_id, "door")
    person_hours = _person_hours(hours)
    today = now.astimezone(rules.zone(w.projects[door.project_id].time_zone)).date()
    dates = [(today + timedelta(days=i)).isoformat() for i in range(max(1, days))]
    if holiday_id is None:
        holiday = Holiday(
            w.new_id("hol"),
            door.project_id,
            "Public holiday",
            dates,
            person_hours is not None,
            person_hours or WorkingHours(),
            [door_id],
        )
        w.holidays[holiday.holiday_id] = holiday

        def undo() -> None:
            w.holidays.pop(holiday.holiday_id, None)
    else:
        holiday = get(w.holidays, holiday_id, "holiday")
        saved = replace(holiday, dates=list(holiday.dates), door_ids=list(holiday.door_ids))
        holiday.dates = sorted(set(holiday.dates) | set(dates))
        if door_id not in holiday.door_ids:
            holiday.door_ids.append(door_id)
        holiday.working_hours_enabled = person_hours is not None
        if person_hours is not None:
            holiday.working_hours = person_hours

        def undo() -> None:
            w.holidays[holiday.holiday_id] = saved

    subject = door_or_person(w, door_id, personnel_id) | {"holiday_id": holiday.holiday_id}
    if person_hours is not None:
        # hours a person set are theirs: doorfix reports, a person widens them
        return Injected(subject, undo, outcome="needs_human", remedy_applies=False)
    return Injected(subject, undo)


def _person_hours(hours: str | None) -> WorkingHours | None:
    if hours is None:
        return None
    start, _, end = hours.partition("-")
    if not (len(start) == len(end) == 5 and start[2] == end[2] == ":" and start < end):
        raise WorldError("invalid", f"hours must be HH:MM-HH:MM, start before end: {hours!r}")
    return WorkingHours(start, end)


def _present_holiday(w: WorldState, s: Subject, now: datetime) -> bool:
    return doors.blocking_holiday(w, w.doors[s["door_id"]], now) is not None


# --------------------------------------------------------------------------- feeds


def _duplicate_events(w: WorldState, now: datetime, *, every: int = 5, count: int = 2) -> Injected:
    if every < 1 or count < 0:
        raise WorldError("invalid", "every >= 1 and count >= 0")
    previous = w.feed_duplicate_every
    w.feed_duplicate_every = every
    seen: set[str] = set()
    again: list[AcaEvent] = []
    for event in reversed(w.aca_feed):
        if len(again) >= count:
            break
        if event.id not in seen:
            seen.add(event.id)
            again.append(event)
    # a redelivery of events already read: same ids, appended after them
    w.aca_feed.extend(reversed(again))

    def undo() -> None:
        w.feed_duplicate_every = previous

    return Injected({"feed": "aca"}, undo)


def _late_events(w: WorldState, now: datetime, *, lock_id: str, hours: float = 3.0) -> Injected:
    lock = get(w.locks, lock_id, "lock")
    if hours <= 0:
        raise WorldError("invalid", "hours must be positive")
    w.feed_delay_h[lock_id] = hours

    def undo() -> None:
        w.feed_delay_h.pop(lock_id, None)

    return Injected(lock_subject(w, None, lock) | {"feed": "aca"}, undo)


def _present_duplicates(w: WorldState, s: Subject, now: datetime) -> bool:
    return w.feed_duplicate_every > 0


def _present_late(w: WorldState, s: Subject, now: datetime) -> bool:
    return s["lock_id"] in w.feed_delay_h


#: Cloud and feed fault kinds.
SPECS: tuple[FaultSpec, ...] = (
    FaultSpec(
        "cloud.license_inactive",
        "cloud.license_inactive",
        "renew_license",
        "fixed",
        _license_inactive,
        _present_license,
    ),
    FaultSpec(
        "cloud.no_payment",
        "cloud.license_inactive",
        None,
        "needs_human",
        _no_payment,
        _present_license,
    ),
    FaultSpec(
        "cloud.credential_unassigned",
        "cloud.credential_unassigned",
        "assign_credential",
        "fixed",
        _credential_unassigned,
        _present_credential_unowned,
    ),
    FaultSpec(
        "cloud.unknown_credential",
        "cloud.credential_unassigned",
        None,
        "needs_human",
        _unknown_credential,
        _present_credential_unowned,
    ),
    FaultSpec(
        "cloud.no_access_group",
        "cloud.no_access_group",
        "add_to_access_group",
        "fixed",
        _no_access_group,
        _present_no_access_group,
    ),
    FaultSpec(
        "cloud.inherited_group",
        "cloud.inherited_group",
        None,
        "needs_human",
        _inherited_group,
        _present_inherited_group,
    ),
    FaultSpec(
        "cloud.visitor_expired",
        "cloud.visitor_expired",
        "create_temp_key",
        "fixed",
        _visitor_expired,
        _present_visitor_expired,
    ),
    FaultSpec(
        "cloud.holiday_restriction",
        "cloud.holiday_restriction",
        "set_holiday_hours",
        "fixed",
        _holiday_restriction,
        _present_holiday,
    ),
    FaultSpec("feed.duplicate_events", None, None, None, _duplicate_events, _present_duplicates),
    FaultSpec("feed.late_events", None, None, None, _late_events, _present_late),
)
