"""What people on site (and users with their phones) do to the hardware: the control API's verbs.

None of these is reachable through the vendors' APIs: they are the steps the runbooks give to
a person (power cycle an IQ, present the maintenance card, repair a privacy connector,
reinstall the app), and the connection losses that make those steps necessary.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from doorfix.sandbox.world import rules
from doorfix.sandbox.world.events import Pending, WorldWithEvents
from doorfix.sandbox.world.model import IQ, EventRecorded, Incident, Key, Lock, MobileKey, User

#: how often an online IQ reports to CLP
HEARTBEAT = timedelta(seconds=60)


def start_heartbeats(w: WorldWithEvents, first: datetime) -> None:
    """Online IQs report every minute; after a jump of the clock, one beat catches up."""

    def beat(at: datetime) -> None:
        for iq in w.iqs.values():
            if iq.online:
                iq.last_heartbeat_utc = at
        w.schedule(max(at + HEARTBEAT, w.clock.now()), "iq_heartbeat", beat)

    w.schedule(first, "iq_heartbeat", beat)


def set_iq_online(w: WorldWithEvents, iq: IQ, online: bool, now: datetime) -> IQ:
    """An IQ loses or regains its connection; regaining delivers its held-back events."""
    if iq.online == online:
        return iq
    iq.online = online
    kind = "iq_connection_restored" if online else "iq_connection_lost"
    w.events.incident(iq.site_id, Incident(w.new_id("inc"), kind, now, None, iq.id))
    if online:
        iq.last_heartbeat_utc = now
        for lock_id in iq.lock_ids:
            w.events.flush(w.locks[lock_id], now)
    return iq


def power_cycle_iq(w: WorldWithEvents, iq: IQ, now: datetime) -> IQ:
    """Power cycle an IQ (runbook A a1.1): it reconnects, half-connected locks re-attach."""
    set_iq_online(w, iq, False, now)
    for lock_id in iq.lock_ids:
        lock = w.locks[lock_id]
        if lock.iq_link_state == "attached_pending":
            lock.iq_link_state = "attached"
    return set_iq_online(w, iq, True, now)


def set_lock_online(w: WorldWithEvents, lock: Lock, online: bool, now: datetime) -> Lock:
    """A lock loses or regains its link to its IQ."""
    if lock.online == online:
        return lock
    lock.online = online
    kind = "lock_connection_restored" if online else "lock_connection_lost"
    w.events.incident(lock.site_id, Incident(w.new_id("inc"), kind, now, lock.id, lock.iq_id))
    if online:
        w.events.flush(lock, now)
    return lock


def present_maintenance_card(w: WorldWithEvents, lock: Lock, now: datetime) -> EventRecorded:
    """The lock sets its time: a ``lock_time_set`` incident, if its events can get out."""
    incident = Incident(w.new_id("inc"), "lock_time_set", now, lock.id, lock.iq_id)
    return w.events.emit(Pending(lock.id, lock.site_id, now, incident=incident), now)


def reinstall_app(w: WorldWithEvents, user: User, now: datetime) -> MobileKey:
    """A new mobile key for the user; it fails again when generation itself is broken (D)."""
    old = rules.latest_mobile_key(w, user.id)
    broken = old is not None and old.last_error == "generation_failed"
    key = MobileKey(w.new_id("mk"), user.id, "active", now, "generation_failed" if broken else None)
    w.mobile_keys[key.id] = key
    member = rules.site_user(w, w.centers[user.center_id].clp_site_id, user.clp_user_id)
    if member is not None and not broken:
        clp_key = Key(w.new_id("k"), member.id, "mkey", key.id)
        w.keys[clp_key.id] = clp_key
    return key
