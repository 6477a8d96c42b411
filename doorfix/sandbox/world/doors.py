"""The rules of the cloud's doors: which Detail text a device writes for a presentation.

The checks run in the order a device applies them (credential, license, visitor validity,
holiday, access group), and each maps to one row of the door-cloud runbook. Which text a
device writes depends on its model and firmware: two models write the ambiguous
"No access permission or door license is not available", and firmware older than the
runbook's table writes no Detail at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from doorfix.sandbox.world.model import (
    CloudAccessGroup,
    CredentialType,
    Door,
    Holiday,
    Personnel,
    Schedule,
    TempKey,
    Visitor,
)
from doorfix.sandbox.world.rules import zone
from doorfix.sandbox.world.state import WorldState

#: The runbook's "Supported Devices" table: older firmware writes an empty Detail.
MIN_FIRMWARE: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "A08": (108, 30, 11, 210),
        "EC33": (33, 30, 1, 107),
        "R20": (320, 30, 12, 16),
        "R29": (29, 30, 10, 712),
        "X915V2": (2915, 30, 10, 707),
    }
)
#: Models whose firmware writes one text for both "no permission" and "no license".
AMBIGUOUS_MODELS = frozenset({"R20", "R29"})

INVALID: Mapping[str, str] = MappingProxyType(
    {
        "card": "Invalid Card",
        "pin": "Invalid PIN",
        "face": "Invalid Face",
        "qr": "Invalid QR Code",
        "nfc": "Invalid NFC",
        "ble": "Invalid BLE",
        # a visitor's temp key is shown to the reader as a QR code
        "temp_key": "Invalid QR Code",
    }
)

LICENSE = "Door license expired or not activated"
NO_PERMISSION = "No access permission"
AMBIGUOUS = "No access permission or door license is not available"
NOT_VALID = "Not within the valid period"
HOLIDAY = "No access permission during holidays"

#: Credential types a person can carry (a temp key belongs to a visitor).
PERSON_CREDENTIALS = frozenset({"card", "pin", "face", "ble", "nfc", "qr"})


def firmware_current(model: str, firmware: str) -> bool:
    """Whether a device's firmware is at or above the runbook's table (unknown = current)."""
    floor = MIN_FIRMWARE.get(model)
    if floor is None:
        return True
    try:
        version = tuple(int(part) for part in firmware.split("."))
    except ValueError:
        return True
    return version >= floor


def license_active(door: Door, at: datetime) -> bool:
    """Whether a door's license lets it open at ``at``."""
    lic = door.license
    return lic.status == "active" and (lic.expires_at is None or lic.expires_at > at)


def credential_owner(
    world: WorldState, project_id: str, ctype: str, value: str
) -> Personnel | None:
    """The person of a project who holds that credential."""
    for person in world.personnel.where("project_id", project_id):
        for cred in person.credentials:
            if cred.type == ctype and cred.value == value:
                return person
    return None


def find_temp_key(world: WorldState, project_id: str, code: str) -> tuple[Visitor, TempKey] | None:
    """The visitor and temp key with that code in a project."""
    for visitor in world.visitors.where("project_id", project_id):
        for key in visitor.temp_keys:
            if key.code == code:
                return visitor, key
    return None


def temp_key_valid(key: TempKey, at: datetime) -> bool:
    """Whether a temp key is inside its validity at ``at``."""
    return key.start_time <= at < key.finish_time


def schedule_open(schedule: Schedule, local: datetime) -> bool:
    """Whether a cloud schedule covers a project-local instant (1 = Monday)."""
    hhmm = local.strftime("%H:%M")
    return local.isoweekday() in schedule.weekdays and (
        schedule.start_time <= hhmm <= schedule.end_time
    )


def person_groups(world: WorldState, person: Personnel) -> list[CloudAccessGroup]:
    """A person's access groups: direct ones, then those inherited through user groups."""
    ids = list(person.access_group_ids)
    for ug_id in person.user_group_ids:
        ug = world.user_groups.get(ug_id)
        if ug is not None:
            ids.extend(ag for ag in ug.access_group_ids if ag not in ids)
    return [world.cloud_access_groups[i] for i in ids if i in world.cloud_access_groups]


def opening_groups(world: WorldState, person: Personnel, door: Door, at: datetime) -> list[str]:
    """The ids of the person's groups that open the door at ``at``."""
    local = at.astimezone(zone(world.projects[door.project_id].time_zone))
    return [
        g.access_group_id
        for g in person_groups(world, person)
        if door.door_id in g.door_ids and schedule_open(g.schedule, local)
    ]


def blocking_holiday(world: WorldState, door: Door, at: datetime) -> Holiday | None:
    """The holiday that keeps the door shut at ``at``, if any."""
    local = at.astimezone(zone(world.projects[door.project_id].time_zone))
    day = local.date().isoformat()
    hhmm = local.strftime("%H:%M")
    for holiday in world.holidays.where("project_id", door.project_id):
        if door.door_id not in holiday.door_ids:
            continue
        if day not in holiday.dates:
            continue
        hours = holiday.working_hours
        if not holiday.working_hours_enabled or not (hours.start_time <= hhmm <= hours.end_time):
            return holiday
    return None


@dataclass(frozen=True, slots=True)
class DoorVerdict:
    """A device's decision before firmware decides whether to write its Detail."""

    granted: bool
    detail: str
    cause: str | None
    personnel_id: str | None
    visitor_id: str | None
    initiator: str


def decide_at_door(
    world: WorldState, door: Door, ctype: CredentialType, value: str, at: datetime
) -> DoorVerdict:
    """What a door's device does with a presented credential at ``at``."""
    ambiguous = door.device.model in AMBIGUOUS_MODELS
    person: Personnel | None = None
    visit: tuple[Visitor, TempKey] | None = None
    who: Personnel | Visitor | None
    if ctype == "temp_key":
        visit = find_temp_key(world, door.project_id, value)
        who = visit[0] if visit else None
    else:
        person = credential_owner(world, door.project_id, ctype, value)
        who = person
    if who is None:
        return DoorVerdict(
            False, INVALID[ctype], "cloud.credential_unassigned", None, None, "Unknown"
        )
    pid = person.personnel_id if person else None
    vid = visit[0].visitor_id if visit else None

    def refuse(detail: str, cause: str) -> DoorVerdict:
        return DoorVerdict(False, detail, cause, pid, vid, who.name)

    if not license_active(door, at):
        return refuse(AMBIGUOUS if ambiguous else LICENSE, "cloud.license_inactive")
    if visit is not None and not temp_key_valid(visit[1], at):
        return refuse(NOT_VALID, "cloud.visitor_expired")
    if blocking_holiday(world, door, at) is not None:
        return refuse(HOLIDAY, "cloud.holiday_restriction")
    if visit is not None:
        if door.door_id not in visit[1].door_ids:
            return refuse(NO_PERMISSION, "cloud.no_access_group")
    elif person is not None and not opening_groups(world, person, door, at):
        cause = "cloud.inherited_group" if person.user_group_ids else "cloud.no_access_group"
        return refuse(AMBIGUOUS if ambiguous else NO_PERMISSION, cause)
    return DoorVerdict(True, "", None, pid, vid, who.name)
