"""What each layer of the world decides for a user and a lock, or a credential and a door.

The control API serves these dictionaries so tests (and a curious operator) can see the cause
the agent ought to find; ``cause`` follows the order of checks in ``DESIGN.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from doorfix.sandbox.world import doors, rules
from doorfix.sandbox.world.model import CredentialType, Door, Lock, User, WorldError
from doorfix.sandbox.world.state import WorldState

_MKEY_CAUSES: Mapping[str, str] = MappingProxyType(
    {
        "mkey_generation_failed": "aca.mkey_generation_failed",
        "mkey_revoked": "aca.mkey_revoked",
        "mkey_corrupted": "aca.mkey_corrupted",
    }
)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _cause(facts: dict[str, object], verdict: rules.LockVerdict) -> str | None:
    """The cause code of a refusal, checks in the design's order."""
    if verdict.granted:
        return None
    if facts["too_early"]:
        return "aca.too_early"
    if not facts["connected"]:
        return "aca.lock_offline"
    if verdict.reason == "privacy_mode":
        return "aca.privacy_mode"
    if verdict.reason in ("tag_lost", "tag_unknown"):
        # the premise: a properly assigned tag; checked before any sync could be blamed
        return "aca.tag_not_assigned"
    if facts["access"] == "disabled" and facts["disabled_by"] == "access_matrix":
        return "aca.access_disabled"
    if facts["access"] != "active":
        return "aca.booking_mismatch" if facts["mismatch"] else "aca.no_booking"
    if facts["larry"] != "granted":
        return "aca.clp_out_of_sync"
    if verdict.reason in _MKEY_CAUSES:
        return _MKEY_CAUSES[verdict.reason]
    if verdict.reason == "no_access" and not facts["holds"]:
        return "aca.iq_out_of_sync"
    return "unknown"


def truth_lock(world: WorldState, user: User, lock: Lock, at: datetime) -> dict[str, object]:
    """Every layer's view of ``user`` at ``lock`` at ``at``, the decisions and their causes."""
    iq = world.iqs[lock.iq_id]
    center_id = rules.center_of_site(world, lock.site_id) or user.center_id
    access = rules.aca_access(world, user, lock.id, at)
    mismatch = rules.booking_mismatch(world, user, lock.id, at)
    larry = rules.larry_access(world, lock.site_id, user.clp_user_id, lock.id, at)
    holds = (user.clp_user_id, lock.id) in iq.held
    cell = world.matrix.get((user.id, lock.id))
    tag = rules.presented_tag(user)
    mkey = rules.latest_mobile_key(world, user.id)
    member = rules.site_user(world, lock.site_id, user.clp_user_id)
    tag_key = rules.site_key(world, member.id, "tag", tag.number) if member and tag else None
    facts: dict[str, object] = {
        "too_early": rules.center_too_early(world, center_id, at),
        "connected": rules.lock_connected(world, lock),
        "access": access.state if access else "none",
        "disabled_by": access.disabled_by if access else None,
        "mismatch": mismatch is not None,
        "larry": larry.status,
        "holds": holds,
    }
    decisions: dict[str, object] = {}
    causes: dict[str, str | None] = {}
    for via in ("tag", "mkey"):
        verdict = rules.decide_at_lock(world, user, lock, via)
        decisions[via] = {"granted": verdict.granted, "reason": verdict.reason}
        causes[via] = _cause(facts, verdict)
    return {
        "user_id": user.id,
        "lock_id": lock.id,
        "center_id": center_id,
        "site_id": lock.site_id,
        "at": at.isoformat(),
        "aca": {
            "access": facts["access"],
            "disabled_by": facts["disabled_by"],
            "inventory_id": access.inventory_id if access else None,
            "booking_ids": [b.id for b in rules.active_bookings_giving(world, user, lock.id, at)],
            "matrix_enabled": cell.enabled if cell else True,
            "mismatch_inventory_id": mismatch.id if mismatch else None,
            "center_released_at": world.centers[center_id].released_at.isoformat(),
            "too_early": facts["too_early"],
            "push_broken": user.id in world.push_broken,
        },
        "clp": {
            "larry": larry.status,
            "reason": larry.reason,
            "access_group_ids": larry.access_group_ids,
            "site_user": member.id if member else None,
        },
        "iq": {
            "id": iq.id,
            "revision": iq.revision,
            "online": iq.online,
            "collection_id": iq.collection_id,
            "holds": holds,
        },
        "lock": {
            "online": lock.online,
            "iq_link_state": lock.iq_link_state,
            "privacy_mode": lock.privacy_mode,
            "lock_type": lock.lock_type,
            "events": rules.event_path(world, lock),
            "last_event_utc": _iso(lock.last_event_utc),
        },
        "tag": None
        if tag is None
        else {
            "number": tag.number,
            "state": tag.state,
            "clp_key": tag_key is not None,
            "blocked": bool(tag_key and tag_key.blocked),
        },
        "mkey": None
        if mkey is None
        else {
            "id": mkey.id,
            "state": mkey.state,
            "last_error": mkey.last_error,
        },
        "decision": decisions,
        "cause": causes["tag"],
        "mkey_cause": causes["mkey"],
    }


def resolve_credential(
    world: WorldState,
    *,
    personnel_id: str | None,
    visitor_id: str | None,
    credential_value: str | None,
    credential_type: CredentialType | None,
) -> tuple[CredentialType, str]:
    """The credential someone would present: as given, a person's ACA tag, a visitor's key."""
    if credential_value is not None:
        return credential_type or "card", credential_value
    if visitor_id is not None:
        visitor = world.visitors.get(visitor_id)
        if visitor is None or not visitor.temp_keys:
            raise WorldError("not_found", f"visitor {visitor_id} has no temp key")
        return "temp_key", visitor.temp_keys[-1].code
    if personnel_id is not None:
        person = world.personnel.get(personnel_id)
        if person is None:
            raise WorldError("not_found", f"no personnel {personnel_id}")
        # the card in the person's hand is the one ACA assigned, even if the cloud lacks it
        user = world.users.get(person.external_id or "")
        tag = rules.presented_tag(user) if user else None
        if tag is not None:
            return "card", tag.number
        if person.credentials:
            return person.credentials[0].type, person.credentials[0].value
        raise WorldError("not_found", f"personnel {personnel_id} has no credential")
    raise WorldError("invalid", "name a personnel_id, visitor_id or credential_value")


def truth_door(
    world: WorldState, door: Door, ctype: CredentialType, value: str, at: datetime
) -> dict[str, object]:
    """Every check of a door for one presented credential at ``at``, and the resulting Detail."""
    project = world.projects[door.project_id]
    verdict = doors.decide_at_door(world, door, ctype, value, at)
    current = doors.firmware_current(door.device.model, door.device.firmware)
    owner = (
        doors.credential_owner(world, door.project_id, ctype, value)
        if ctype != "temp_key"
        else None
    )
    aca_user = world.users.first("tag", value)
    person = world.personnel.get(verdict.personnel_id or "")
    visit = doors.find_temp_key(world, door.project_id, value) if ctype == "temp_key" else None
    holiday = doors.blocking_holiday(world, door, at)
    detail = verdict.detail if current or verdict.granted else ""
    return {
        "door_id": door.door_id,
        "project_id": door.project_id,
        "at": at.isoformat(),
        "door": {
            "model": door.device.model,
            "firmware": door.device.firmware,
            "firmware_current": current,
            "ambiguous_text": door.device.model in doors.AMBIGUOUS_MODELS,
            "license": door.license.status,
            "license_active": doors.license_active(door, at),
            "expires_at": _iso(door.license.expires_at),
        },
        "project": {"payment": "payment" in project.permissions, "funds": project.funds},
        "credential": {
            "type": ctype,
            "value": value,
            "owner_personnel_id": owner.personnel_id if owner else None,
            "aca_user_id": aca_user.id if aca_user else None,
            "aca_tag_state": next((t.state for t in aca_user.tags if t.number == value), None)
            if aca_user
            else None,
        },
        "person": None
        if person is None
        else {
            "personnel_id": person.personnel_id,
            "external_id": person.external_id,
            "access_group_ids": list(person.access_group_ids),
            "user_group_ids": list(person.user_group_ids),
            "opening_group_ids": doors.opening_groups(world, person, door, at),
        },
        "visitor": None
        if visit is None
        else {
            "visitor_id": visit[0].visitor_id,
            "aca_visit_id": visit[0].aca_visit_id,
            "temp_key_id": visit[1].temp_key_id,
            "valid": doors.temp_key_valid(visit[1], at),
        },
        "holiday": None
        if holiday is None
        else {
            "holiday_id": holiday.holiday_id,
            "working_hours_enabled": holiday.working_hours_enabled,
        },
        "decision": {"granted": verdict.granted, "detail": detail, "cause": verdict.cause},
    }
