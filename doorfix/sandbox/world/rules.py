"""The rules of the ACA and CLP layers and of the locks, as functions of the world and a time.

Nothing here mutates the world or reads the clock: :class:`~doorfix.sandbox.world.world.World`
passes the instant, so a scheduled presentation is judged at its own time. Cloud doors have
their own module (:mod:`doorfix.sandbox.world.doors`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from doorfix.sandbox.world.model import (
    Access,
    Booking,
    ClpAccessGroup,
    EntryDetail,
    EventRecorded,
    Inventory,
    Key,
    LarryAccess,
    Lock,
    MobileKey,
    SiteUser,
    Tag,
    TimeSchedule,
    User,
    WorldError,
)
from doorfix.sandbox.world.state import WorldState

Via = Literal["tag", "mkey"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ROOM_LABEL = re.compile(r"\d+")


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (ZoneInfo keeps its own cache of instances)."""
    return ZoneInfo(name)


# --------------------------------------------------------------------------- ACA


def booking_active(booking: Booking, at: datetime) -> bool:
    """Whether a booking gives access at ``at``."""
    return booking.status == "active" and booking.starts_at <= at < booking.ends_at


def company_bookings(world: WorldState, company_id: str) -> list[Booking]:
    """Every booking of a company, in id order."""
    return world.bookings.where("company_id", company_id)


def inventories_of_lock(world: WorldState, lock_id: str) -> list[Inventory]:
    """The inventories that list a lock."""
    return world.inventories.where("lock_id", lock_id)


def active_bookings_giving(
    world: WorldState, user: User, lock_id: str, at: datetime
) -> list[Booking]:
    """The user's company's active bookings whose inventory holds ``lock_id``."""
    out = []
    for booking in company_bookings(world, user.company_id):
        inv = world.inventories.get(booking.inventory_id)
        if inv is not None and lock_id in inv.lock_ids and booking_active(booking, at):
            out.append(booking)
    return out


def aca_accesses(world: WorldState, user: User, at: datetime) -> list[Access]:
    """ACA's access rows for a user: one per lock of every booked inventory, active ones first."""
    active: dict[str, Access] = {}
    ended: dict[str, Access] = {}
    for booking in company_bookings(world, user.company_id):
        inv = world.inventories.get(booking.inventory_id)
        if inv is None or booking.status == "cancelled":
            continue
        if booking_active(booking, at):
            for lock_id in inv.lock_ids:
                if lock_id in active:
                    continue
                cell = world.matrix.get((user.id, lock_id))
                if cell is not None and not cell.enabled:
                    active[lock_id] = Access(
                        lock_id, inv.id, "disabled", "access_matrix", cell.changed_at
                    )
                else:
                    changed = booking.starts_at
                    if cell is not None and cell.changed_at > changed:
                        changed = cell.changed_at
                    active[lock_id] = Access(lock_id, inv.id, "active", None, changed)
        elif booking.status == "ended" or booking.ends_at <= at:
            for lock_id in inv.lock_ids:
                ended.setdefault(
                    lock_id,
                    Access(lock_id, inv.id, "disabled", "booking_ended", booking.ends_at),
                )
    rows = list(active.values())
    rows.extend(acc for lock_id, acc in ended.items() if lock_id not in active)
    return rows


def aca_access(world: WorldState, user: User, lock_id: str, at: datetime) -> Access | None:
    """ACA's access row for one user and lock, or None when no booking ever gave it."""
    for row in aca_accesses(world, user, at):
        if row.lock_id == lock_id:
            return row
    return None


def room_label(name: str) -> str | None:
    """The room number an inventory name starts with (``714`` for ``714ResCo-work01``)."""
    match = _ROOM_LABEL.match(name)
    return match.group(0) if match else None


def booking_mismatch(world: WorldState, user: User, lock_id: str, at: datetime) -> Inventory | None:
    """The inventory of a booking that shares the lock's room label but lacks the lock (A a3)."""
    labels = {room_label(inv.name) for inv in inventories_of_lock(world, lock_id)}
    labels.discard(None)
    if not labels:
        return None
    for booking in company_bookings(world, user.company_id):
        inv = world.inventories.get(booking.inventory_id)
        if (
            inv is not None
            and booking_active(booking, at)
            and booking.center_id == user.center_id
            and lock_id not in inv.lock_ids
            and room_label(inv.name) in labels
        ):
            return inv
    return None


def center_too_early(world: WorldState, center_id: str, at: datetime) -> bool:
    """Whether a center was released less than the grace period before ``at``."""
    center = world.centers[center_id]
    grace = world.settings.release_grace_h * 3600
    return (at - center.released_at).total_seconds() < grace


def center_of_site(world: WorldState, site_id: str) -> str | None:
    """The ACA center whose CLP site is ``site_id``."""
    center = world.centers.first("clp_site_id", site_id)
    return None if center is None else center.id


def presented_tag(user: User) -> Tag | None:
    """The tag a user holds to a reader: the first assigned one, else the first at all."""
    for tag in user.tags:
        if tag.state == "assigned":
            return tag
    return user.tags[0] if user.tags else None


def latest_mobile_key(world: WorldState, user_id: str) -> MobileKey | None:
    """The user's newest mobile key (what the app presents)."""
    best: MobileKey | None = None
    for key in world.mobile_keys.where("user_id", user_id):
        if best is None or key.issued_at >= best.issued_at:
            best = key
    return best


# --------------------------------------------------------------------------- CLP


def site_user(world: WorldState, site_id: str, platform_user_id: str) -> SiteUser | None:
    """A platform user's membership of a site."""
    return world.site_users.first("member", (site_id, platform_user_id))


def site_key(
    world: WorldState, site_user_id: str, key_type: Literal["tag", "mkey"], identifier: str
) -> Key | None:
    """The CLP key of a site user with that type and identifier."""
    for key in world.keys.where("site_user_id", site_user_id):
        if key.key_type == key_type and key.key_identifier == identifier:
            return key
    return None


def groups_listing(world: WorldState, site_id: str, lock_id: str) -> list[ClpAccessGroup]:
    """The CLP access groups of a site that list a lock."""
    return [g for g in world.clp_access_groups.where("site_id", site_id) if lock_id in g.lock_ids]


def clp_grants(world: WorldState, lock: Lock) -> set[str]:
    """Platform users CLP gives a lock to: what a push sends to the lock's IQ."""
    users: set[str] = set()
    for group in groups_listing(world, lock.site_id, lock.id):
        users |= group.user_ids
    return users


def schedule_matches(schedule: TimeSchedule, local: datetime) -> bool:
    """Whether a CLP time schedule covers a site-local instant."""
    if not getattr(schedule, _WEEKDAYS[local.weekday()]):
        return False
    now = local.strftime("%H:%M:%S")
    return schedule.start_time <= now <= schedule.end_time


def larry_access(
    world: WorldState, site_id: str, platform_user_id: str, lock_id: str, at: datetime
) -> LarryAccess:
    """ "Larry access": whether CLP grants a platform user a lock at ``at``, and if not why."""
    site = world.sites.get(site_id)
    lock = world.locks.get(lock_id)
    if site is None or lock is None or lock.site_id != site_id:
        raise WorldError("not_found", f"no lock {lock_id} on site {site_id}")
    groups = [g for g in groups_listing(world, site_id, lock_id) if platform_user_id in g.user_ids]
    ids = [g.id for g in groups]
    member = site_user(world, site_id, platform_user_id)
    if member is None or not groups:
        return LarryAccess(platform_user_id, lock_id, "denied", "no_access_group", ids)
    if member.subscription_state == "suspended":
        return LarryAccess(platform_user_id, lock_id, "denied", "suspended", ids)
    if member.blocked:
        return LarryAccess(platform_user_id, lock_id, "denied", "blocked", ids)
    local = at.astimezone(zone(site.time_zone))
    # a group without schedules is taken as "always": CLP's default when none is set
    if not any(
        not g.time_schedules or any(schedule_matches(ts, local) for ts in g.time_schedules)
        for g in groups
    ):
        return LarryAccess(platform_user_id, lock_id, "denied", "no_time_schedule", ids)
    return LarryAccess(platform_user_id, lock_id, "granted", None, ids)


def lock_connected(world: WorldState, lock: Lock) -> bool:
    """Whether the lock, its link and its IQ are all up (A a1 is about the opposite)."""
    iq = world.iqs[lock.iq_id]
    return lock.online and iq.online and lock.iq_link_state == "attached"


def event_path(world: WorldState, lock: Lock) -> EventRecorded:
    """Where an event at this lock goes: to CLP/ACA now, later on reconnect, or nowhere."""
    iq = world.iqs[lock.iq_id]
    if lock.iq_link_state != "attached":
        # a half-connected (or detaching) lock never hands its events to the IQ
        return "never"
    if not (lock.online and iq.online):
        return "late"
    return "now"


# --------------------------------------------------------------------------- the lock


@dataclass(frozen=True, slots=True)
class LockVerdict:
    """What a lock decided and what its CLP entry will say."""

    granted: bool
    reason: str
    credential: str
    key_id: str | None
    entry_detail: EntryDetail | None


def _refuse(
    reason: str, credential: str, key: Key | None, detail: EntryDetail | None
) -> LockVerdict:
    return LockVerdict(False, reason, credential, key.id if key else None, detail)


def _credential(
    world: WorldState, user: User, member: SiteUser | None, via: Via
) -> tuple[str, Key | None, LockVerdict | None]:
    """The presented credential, its CLP key, and the refusal it earns on its own (if any)."""
    if via == "tag":
        tag = presented_tag(user)
        if tag is None:
            return "", None, LockVerdict(False, "no_credential", "", None, None)
        key = site_key(world, member.id, "tag", tag.number) if member else None
        if tag.state != "assigned":
            return tag.number, key, _refuse("tag_lost", tag.number, key, "blocked")
        if key is None:
            return tag.number, key, _refuse("tag_unknown", tag.number, key, "no_access")
        return tag.number, key, None
    mkey = latest_mobile_key(world, user.id)
    if mkey is None:
        return "", None, LockVerdict(False, "no_credential", "", None, None)
    key = site_key(world, member.id, "mkey", mkey.id) if member else None
    refusal: tuple[str, EntryDetail] | None = None
    if mkey.last_error == "generation_failed":
        refusal = ("mkey_generation_failed", "no_access")
    elif mkey.state == "revoked":
        refusal = ("mkey_revoked", "blocked")
    elif mkey.state == "corrupted":
        refusal = ("mkey_corrupted", "no_access")
    elif key is None:
        refusal = ("no_access", "no_access")
    if refusal is not None:
        return mkey.id, key, _refuse(refusal[0], mkey.id, key, refusal[1])
    return mkey.id, key, None


def decide_at_lock(world: WorldState, user: User, lock: Lock, via: Via) -> LockVerdict:
    """The lock's own decision: privacy mode, the credential, the site user, what the IQ holds."""
    if lock.privacy_mode:
        return LockVerdict(False, "privacy_mode", "", None, None)
    member = site_user(world, lock.site_id, user.clp_user_id)
    credential, key, refusal = _credential(world, user, member, via)
    if refusal is not None:
        return refusal
    if key is None or member is None:
        return _refuse("no_access", credential, key, "no_access")
    if key.blocked:
        return _refuse("key_blocked", credential, key, "blocked")
    if member.blocked:
        return _refuse("blocked", credential, key, "blocked")
    if member.subscription_state == "suspended":
        return _refuse("suspended", credential, key, "suspended")
    if (user.clp_user_id, lock.id) not in world.iqs[lock.iq_id].held:
        return _refuse("no_access", credential, key, "no_access")
    return LockVerdict(True, "granted", credential, key.id, None)
