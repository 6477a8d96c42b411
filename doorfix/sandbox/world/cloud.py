"""The cloud's writes: licenses, credentials, access groups, holidays, visitor temp keys.

Each validates like the vendor does and raises :class:`WorldError` with the contract's codes
(``not_found``, ``invalid_param``, ``permission_denied``, ``payment_required``, ``conflict``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from doorfix.sandbox.world import doors
from doorfix.sandbox.world.model import (
    CloudAccessGroup,
    Credential,
    CredentialType,
    Door,
    Holiday,
    Personnel,
    Project,
    TempKey,
    WorkingHours,
    WorldError,
)
from doorfix.sandbox.world.state import WorldState


def project(w: WorldState, project_id: str) -> Project:
    """A project, or ``not_found``."""
    found = w.projects.get(project_id)
    if found is None:
        raise WorldError("not_found", f"no project {project_id}")
    return found


def door(w: WorldState, project_id: str, door_id: str) -> Door:
    """A door of the project, or ``not_found``."""
    project(w, project_id)
    found = w.doors.get(door_id)
    if found is None or found.project_id != project_id:
        raise WorldError("not_found", f"no door {door_id} in project {project_id}")
    return found


def person(w: WorldState, project_id: str, personnel_id: str) -> Personnel:
    """A person of the project, or ``not_found``."""
    project(w, project_id)
    found = w.personnel.get(personnel_id)
    if found is None or found.project_id != project_id:
        raise WorldError("not_found", f"no personnel {personnel_id} in {project_id}")
    return found


def renew_door_license(
    w: WorldState, project_id: str, door_id: str, months: int, now: datetime
) -> Door:
    """Renew (and bill) a door license by ``months``; counted in ``w.renewals``."""
    target = door(w, project_id, door_id)
    account = w.projects[project_id]
    if not 1 <= months <= 12:
        raise WorldError("invalid_param", "months must be 1..12")
    if "payment" not in account.permissions:
        raise WorldError("permission_denied", "the account has no payment permission")
    if not account.funds:
        raise WorldError("payment_required", "the account has no funds")
    lic = target.license
    base = lic.expires_at if doors.license_active(target, now) and lic.expires_at else now
    lic.status = "active"
    lic.expires_at = base + timedelta(days=w.settings.license_month_days * months)
    w.renewals[door_id] = w.renewals.get(door_id, 0) + 1
    watch_license(w, target)
    return target


def watch_license(w: WorldState, target: Door) -> None:
    """Turn the license's status to expired when its ``expires_at`` passes."""
    expires = target.license.expires_at
    if target.license.status != "active" or expires is None:
        return

    def expire(at: datetime) -> None:
        lic = target.license
        if lic.status == "active" and lic.expires_at is not None and lic.expires_at <= at:
            lic.status = "expired"

    w.schedule(expires, f"license_expiry {target.door_id}", expire)


def add_personnel_credential(
    w: WorldState, project_id: str, personnel_id: str, ctype: str, value: str
) -> Personnel:
    """Give a person a credential; ``conflict`` if someone else holds that value."""
    holder = person(w, project_id, personnel_id)
    if ctype not in doors.PERSON_CREDENTIALS or not value:
        raise WorldError("invalid_param", f"bad credential {ctype!r}")
    owner = doors.credential_owner(w, project_id, ctype, value)
    if owner is not None and owner.personnel_id != personnel_id:
        raise WorldError("conflict", "the credential belongs to someone else")
    if owner is None:
        holder.credentials.append(Credential(cast(CredentialType, ctype), value))
    return holder


def add_access_group_member(
    w: WorldState, project_id: str, access_group_id: str, personnel_id: str
) -> CloudAccessGroup:
    """Add a person to an access group; twice is a no-op; refused for user-group members."""
    member = person(w, project_id, personnel_id)
    group = w.cloud_access_groups.get(access_group_id)
    if group is None or group.project_id != project_id:
        raise WorldError("not_found", f"no access group {access_group_id}")
    if member.user_group_ids:
        raise WorldError("conflict", "the person inherits access from a user group")
    if access_group_id not in member.access_group_ids:
        member.access_group_ids.append(access_group_id)
    return group


def _hhmm(value: str) -> bool:
    return (
        len(value) == 5
        and value[2] == ":"
        and (value[:2] + value[3:]).isdigit()
        and int(value[:2]) < 24
        and int(value[3:]) < 60
    )


def set_holiday_working_hours(
    w: WorldState,
    project_id: str,
    holiday_id: str,
    *,
    enabled: bool,
    start_time: str,
    end_time: str,
) -> Holiday:
    """Switch a holiday's working hours on or off."""
    project(w, project_id)
    holiday = w.holidays.get(holiday_id)
    if holiday is None or holiday.project_id != project_id:
        raise WorldError("not_found", f"no holiday {holiday_id}")
    if not (_hhmm(start_time) and _hhmm(end_time)):
        raise WorldError("invalid_param", "times are HH:MM")
    if enabled and start_time >= end_time:
        raise WorldError("invalid_param", "start_time must be before end_time")
    holiday.working_hours_enabled = enabled
    holiday.working_hours = WorkingHours(start_time, end_time)
    return holiday


def create_visitor_temp_key(
    w: WorldState,
    project_id: str,
    visitor_id: str,
    *,
    door_ids: list[str],
    start: datetime,
    finish: datetime,
) -> TempKey:
    """Issue a visitor a new temp key for some doors of the project."""
    project(w, project_id)
    visitor = w.visitors.get(visitor_id)
    if visitor is None or visitor.project_id != project_id:
        raise WorldError("not_found", f"no visitor {visitor_id}")
    if not door_ids or finish <= start:
        raise WorldError("invalid_param", "doors required and finish after start")
    for door_id in door_ids:
        door(w, project_id, door_id)
    code = f"{w.rng.randrange(10**7, 10**8)}"
    while doors.find_temp_key(w, project_id, code) is not None:
        code = f"{w.rng.randrange(10**7, 10**8)}"
    key = TempKey(
        temp_key_id=w.new_id("tk"),
        code=code,
        door_ids=list(door_ids),
        start_time=start,
        finish_time=finish,
    )
    visitor.temp_keys.append(key)
    return key
