"""Shared pure helpers: local time in a time zone, schedules, holidays, licenses, bookings.

Cloud schedules and holidays are in the project's time zone; a window is compared at minute
precision with both ends included, as a device reads ``HH:MM`` bounds. A window whose end is
before its start is never open (the contract draws no overnight windows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from doorfix.connectors.models import epoch_seconds, iso_z
from doorfix.connectors.models.aca import Booking, Inventory
from doorfix.connectors.models.cloud import (
    AccessGroup,
    Door,
    Holiday,
    License,
    Personnel,
    Schedule,
    UserGroup,
)
from doorfix.playbooks.facts import ProjectFacts


def local_time(at: datetime, time_zone: str) -> datetime:
    """``at`` in ``time_zone``; an unknown zone name falls back to UTC rather than failing."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        # a diagnosis must never raise on one bad project; UTC is the contract's wire zone
        zone = ZoneInfo("UTC")
    return at.astimezone(zone)


def window_open(start: time, end: time, local: datetime) -> bool:
    """Whether a local instant is inside ``start``..``end`` (minute precision, ends included)."""
    minute = local.time().replace(second=0, microsecond=0, tzinfo=None)
    return start <= minute <= end


def schedule_open(schedule: Schedule, local: datetime) -> bool:
    """Whether a cloud schedule covers a project-local instant (weekday 1 = Monday)."""
    return local.isoweekday() in schedule.weekdays and window_open(
        schedule.start_time, schedule.end_time, local
    )


def group_opens(group: AccessGroup, door_id: str, local: datetime) -> bool:
    """Whether an access group opens a door at a project-local instant."""
    return door_id in group.door_ids and schedule_open(group.schedule, local)


def holiday_blocks(holiday: Holiday, door_id: str, local: datetime) -> bool:
    """Whether a holiday keeps a door shut at a local instant (its date, outside its hours)."""
    if door_id not in holiday.door_ids or local.date() not in holiday.dates:
        return False
    hours = holiday.working_hours
    return not (
        holiday.working_hours_enabled and window_open(hours.start_time, hours.end_time, local)
    )


def license_active(license_: License, at: datetime) -> bool:
    """Whether a door's license lets it open at ``at``."""
    if license_.status != "active":
        return False
    return license_.expires_at is None or license_.expires_at > epoch_seconds(at)


def door_license_active(door: Door | None, at: datetime) -> bool | None:
    """:func:`license_active` of a door, or None when the door is unknown."""
    return None if door is None else license_active(door.license, at)


def booking_active(booking: Booking, at: datetime) -> bool:
    """Whether a booking gives access at ``at``."""
    return booking.status == "active" and booking.starts_at <= at < booking.ends_at


def epoch_iso(seconds: int) -> str:
    """Epoch seconds as the report's ISO 8601 ``Z`` text (the number itself if out of range)."""
    try:
        return iso_z(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        # a garbled capture time is still evidence; it must not break the diagnosis
        return str(seconds)


def datetime_iso(when: datetime | None) -> str | None:
    """An instant as the report's ISO 8601 ``Z`` text in whole seconds (None stays None)."""
    return None if when is None else iso_z(when, whole_seconds=True)


def sorted_unique(values: Iterable[str]) -> list[str]:
    """Distinct values in a stable order (evidence must not depend on set ordering)."""
    return sorted(set(values))


# --------------------------------------------------------------------------- access groups


def person_group_ids(person: Personnel, user_groups: Mapping[str, UserGroup]) -> list[str]:
    """A person's access groups: direct ones, then those inherited through user groups."""
    ids = list(person.access_group_ids)
    for user_group_id in person.user_group_ids:
        group = user_groups.get(user_group_id)
        if group is not None:
            ids.extend(ag for ag in group.access_group_ids if ag not in ids)
    return ids


def opening_groups(
    project: ProjectFacts, person: Personnel, door_id: str, at: datetime
) -> list[str]:
    """The ids of the person's access groups that open ``door_id`` at ``at``."""
    local = local_time(at, project.time_zone)
    groups = (project.access_groups.get(i) for i in person_group_ids(person, project.user_groups))
    return [g.access_group_id for g in groups if g is not None and group_opens(g, door_id, local)]


def bookings_giving_door(
    bookings: Iterable[Booking],
    inventories: Iterable[Inventory],
    company_id: str,
    door_id: str,
    now: datetime,
) -> list[Booking]:
    """The company's bookings active now whose inventory's ``door_ids`` hold the door."""
    by_id = {inv.id: inv for inv in inventories}
    found = []
    for booking in bookings:
        inv = by_id.get(booking.inventory_id)
        if (
            booking.company_id == company_id
            and booking_active(booking, now)
            and inv is not None
            and door_id in inv.door_ids
        ):
            found.append(booking)
    return sorted(found, key=lambda b: b.id)


def booked_doors(
    bookings: Iterable[Booking], inventories: Iterable[Inventory], company_id: str, now: datetime
) -> set[str]:
    """Every door the company's bookings active now give."""
    by_id = {inv.id: inv for inv in inventories}
    doors: set[str] = set()
    for booking in bookings:
        inv = by_id.get(booking.inventory_id)
        if booking.company_id == company_id and booking_active(booking, now) and inv is not None:
            doors.update(inv.door_ids)
    return doors


@dataclass(frozen=True)
class GroupChoice:
    """The access group to add a person to, and why the others were not chosen."""

    chosen: AccessGroup | None
    #: group id -> why it was passed over
    rejected: Mapping[str, str]


def choose_group(
    groups: Iterable[AccessGroup],
    door_id: str,
    local: datetime,
    allowed_doors: set[str],
    *,
    exclude: Iterable[str] = (),
) -> GroupChoice:
    """The existing group that opens the door at ``local`` within ``allowed_doors``.

    Deterministic: the fewest doors, then the lowest id. A group that would open a door the
    bookings do not give is never chosen (adding someone to it grants too much).
    """
    skip = set(exclude)
    fitting: list[AccessGroup] = []
    rejected: dict[str, str] = {}
    for group in groups:
        if door_id not in group.door_ids or group.access_group_id in skip:
            continue
        extra = sorted(set(group.door_ids) - allowed_doors)
        if not schedule_open(group.schedule, local):
            rejected[group.access_group_id] = "closed at that time"
        elif extra:
            rejected[group.access_group_id] = "would also open " + ", ".join(extra)
        else:
            fitting.append(group)
    chosen = min(fitting, key=lambda g: (len(set(g.door_ids)), g.access_group_id), default=None)
    return GroupChoice(chosen, dict(sorted(rejected.items())))
