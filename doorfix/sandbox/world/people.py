"""People presenting credentials: at a lock (an ACA event and a CLP entry, if they get out)
and at a cloud door (a door-log row), now or on a schedule the world runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from doorfix.sandbox.world import doors, rules, truth
from doorfix.sandbox.world.doorlogs import DoorSnapshot
from doorfix.sandbox.world.events import Pending, WorldWithEvents
from doorfix.sandbox.world.model import (
    AcaEvent,
    AcaEventType,
    CredentialType,
    Door,
    DoorDecision,
    Entry,
    Lock,
    LockDecision,
    User,
)
from doorfix.sandbox.world.rules import Via


@dataclass(frozen=True, slots=True)
class LockPresentation:
    """A user presenting a tag or mobile key to a lock."""

    user_id: str
    lock_id: str
    via: Via


@dataclass(frozen=True, slots=True)
class DoorPresentation:
    """A credential presented to a door; a visitor presents their newest temp key."""

    door_id: str
    credential_type: CredentialType
    credential_value: str | None = None
    visitor_id: str | None = None


def at_lock(w: WorldWithEvents, user: User, lock: Lock, via: Via, at: datetime) -> LockDecision:
    """The lock decides; its event goes to CLP and ACA as the connection allows."""
    verdict = rules.decide_at_lock(w, user, lock, via)
    layers = truth.truth_lock(w, user, lock, at)
    if verdict.reason in ("privacy_mode", "no_credential"):
        # a lock in privacy mode refuses before reading, so nothing reaches CLP or ACA
        return LockDecision(False, verdict.reason, "never", layers)
    kind = "granted" if verdict.granted else "rejected"
    event = AcaEvent(
        id=w.new_id("ev"),
        type=cast(AcaEventType, f"{via}_{kind}"),
        occurred_at=at,
        recorded_at=at,
        user_id=user.id,
        lock_id=lock.id,
        center_id=rules.center_of_site(w, lock.site_id) or user.center_id,
        credential=verdict.credential,
    )
    member = rules.site_user(w, lock.site_id, user.clp_user_id)
    entry = Entry(
        id=w.new_id("en"),
        event_category="lock_opened" if verdict.granted else "lock_rejected",
        event_detail=verdict.entry_detail,
        utc_date_time=at,
        lock_id=lock.id,
        iq_id=lock.iq_id,
        collection_id=lock.collection_id,
        user_id=user.clp_user_id if member else None,
        user_alias=member.alias if member else None,
        access_by=via,
        key_id=verdict.key_id,
    )
    recorded = w.events.emit(Pending(lock.id, lock.site_id, at, event=event, entry=entry), at)
    sent = recorded != "never"
    return LockDecision(
        verdict.granted,
        verdict.reason,
        recorded,
        layers,
        event_id=event.id if sent else None,
        entry_id=entry.id if sent else None,
    )


def at_door(
    w: WorldWithEvents, door: Door, ctype: CredentialType, value: str, at: datetime
) -> DoorDecision:
    """The door's device decides and writes a log row (no Detail on old firmware)."""
    verdict = doors.decide_at_door(w, door, ctype, value, at)
    detail = verdict.detail
    if not doors.firmware_current(door.device.model, door.device.firmware):
        detail = ""
    log_id = w.door_logs.append(
        door.project_id,
        int(at.timestamp()),
        DoorSnapshot(door.door_id, door.name, door.device.model, door.device.firmware),
        success=verdict.granted,
        detail=detail,
        credential_type=ctype,
        credential_value="****" if ctype == "pin" else value,
        personnel_id=verdict.personnel_id,
        visitor_id=verdict.visitor_id,
        initiator=verdict.initiator,
    )
    return DoorDecision(verdict.granted, detail, log_id, verdict.cause)


def schedule(
    w: WorldWithEvents,
    presentation: LockPresentation | DoorPresentation,
    first: datetime,
    every_s: float,
    until: datetime,
) -> None:
    """Have someone present at ``first`` and every ``every_s`` seconds up to ``until``."""
    name = f"present {presentation}"

    def run(at: datetime) -> None:
        _run(w, presentation, at)
        following = at + timedelta(seconds=every_s)
        if following <= until:
            w.schedule(following, name, run)

    w.schedule(first, name, run)


def _run(w: WorldWithEvents, p: LockPresentation | DoorPresentation, at: datetime) -> None:
    if isinstance(p, LockPresentation):
        at_lock(w, w.users[p.user_id], w.locks[p.lock_id], p.via, at)
        return
    value = p.credential_value
    if p.visitor_id is not None:
        keys = w.visitors[p.visitor_id].temp_keys
        value = keys[-1].code if keys else None
    if value is not None:
        at_door(w, w.doors[p.door_id], p.credential_type, value, at)
