"""Fault kinds of ACA, CLP, the IQs and the locks (runbook "why was the tag rejected")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from doorfix.sandbox.faults.base import (
    FaultSpec,
    Injected,
    Subject,
    aca_active,
    get,
    larry_granted,
    lock_subject,
    pair,
)
from doorfix.sandbox.world import rules
from doorfix.sandbox.world.model import MatrixCell, MobileKey, MobileKeyState, User, WorldError
from doorfix.sandbox.world.state import WorldState

# --------------------------------------------------------------------------- the tag itself


def _tag_not_assigned(
    w: WorldState, now: datetime, *, user_id: str, lock_id: str, larry_denied: bool = False
) -> Injected:
    """The user's tag is marked lost in ACA (its CLP key blocked) and still presented.

    ``larry_denied``: CLP also stopped granting the user the lock, so a sync remedy looks
    tempting; the runbook's premise (a properly assigned tag) fails first, and no sync helps.
    """
    user, lock = get(w.users, user_id, "user"), get(w.locks, lock_id, "lock")
    tag = rules.presented_tag(user)
    if tag is None or tag.state != "assigned" or len(user.tags) != 1:
        raise WorldError("invalid", "the user needs exactly one tag, assigned, to lose")
    tag.state = "lost"
    member = rules.site_user(w, lock.site_id, user.clp_user_id)
    key = rules.site_key(w, member.id, "tag", tag.number) if member else None
    if key is not None:
        key.blocked = True
    uid = user.clp_user_id
    groups = []
    if larry_denied:
        groups = [g for g in rules.groups_listing(w, lock.site_id, lock_id) if uid in g.user_ids]
        for group in groups:
            group.user_ids.discard(uid)

    def undo() -> None:
        tag.state = "assigned"
        if key is not None:
            key.blocked = False
        for group in groups:
            group.user_ids.add(uid)

    return Injected(lock_subject(w, user, lock) | {"credential": tag.number}, undo)


def _present_tag_not_assigned(w: WorldState, s: Subject, now: datetime) -> bool:
    user = w.users[s["user_id"]]
    return any(t.number == s["credential"] and t.state == "lost" for t in user.tags)


# --------------------------------------------------------------------------- ACA <-> CLP <-> IQ


def _clp_out_of_sync(
    w: WorldState, now: datetime, *, user_id: str, lock_id: str, sticky: bool = False
) -> Injected:
    user, lock = get(w.users, user_id, "user"), get(w.locks, lock_id, "lock")
    if not aca_active(w, user, lock_id, now):
        raise WorldError("invalid", "ACA must grant the lock for ACA and CLP to disagree")
    uid = user.clp_user_id
    groups = [g for g in rules.groups_listing(w, lock.site_id, lock_id) if uid in g.user_ids]
    iq = w.iqs[lock.iq_id]
    held = (uid, lock_id) in iq.held
    for group in groups:
        group.user_ids.discard(uid)
    iq.held.discard((uid, lock_id))
    if sticky:
        w.push_broken.add(user_id)

    def undo() -> None:
        for group in groups:
            group.user_ids.add(uid)
        if held:
            iq.held.add((uid, lock_id))
        w.push_broken.discard(user_id)

    return Injected(lock_subject(w, user, lock), undo, outcome="needs_human" if sticky else None)


def _present_clp_out_of_sync(w: WorldState, s: Subject, now: datetime) -> bool:
    user, lock = pair(w, s)
    return aca_active(w, user, lock.id, now) and not larry_granted(w, user, lock, now)


def _iq_out_of_sync(w: WorldState, now: datetime, *, user_id: str, lock_id: str) -> Injected:
    user, lock = get(w.users, user_id, "user"), get(w.locks, lock_id, "lock")
    if not (aca_active(w, user, lock_id, now) and larry_granted(w, user, lock, now)):
        raise WorldError("invalid", "ACA and CLP must grant the lock for the IQ to lag behind")
    iq = w.iqs[lock.iq_id]
    held_pair = (user.clp_user_id, lock_id)
    held = held_pair in iq.held
    iq.held.discard(held_pair)

    def undo() -> None:
        if held:
            iq.held.add(held_pair)

    return Injected(lock_subject(w, user, lock), undo)


def _present_iq_out_of_sync(w: WorldState, s: Subject, now: datetime) -> bool:
    user, lock = pair(w, s)
    return (
        aca_active(w, user, lock.id, now)
        and larry_granted(w, user, lock, now)
        and (user.clp_user_id, lock.id) not in w.iqs[lock.iq_id].held
    )


# --------------------------------------------------------------------------- hardware


def _lock_offline(
    w: WorldState,
    now: datetime,
    *,
    lock_id: str,
    variant: str = "iq_offline",
    user_id: str | None = None,
) -> Injected:
    lock = get(w.locks, lock_id, "lock")
    iq = w.iqs[lock.iq_id]
    if variant not in ("iq_offline", "half_connected"):
        raise WorldError("invalid", "variant is iq_offline or half_connected")
    if variant == "half_connected" and iq.revision != 1:
        raise WorldError("invalid", "only a revision-1 IQ half-connects a lock")
    user = get(w.users, user_id, "user") if user_id else None
    held_pair = (user.clp_user_id, lock_id) if user else None
    held = held_pair is not None and held_pair in iq.held
    if held_pair is not None:
        # the user's access was granted while the lock could not hear about it
        iq.held.discard(held_pair)
    if variant == "iq_offline":
        w.set_iq_online(iq.id, False)
    else:
        lock.iq_link_state = "attached_pending"
        lock.online = True

    def undo() -> None:
        if variant == "iq_offline":
            w.set_iq_online(iq.id, True)
        else:
            lock.iq_link_state = "attached"
        if held and held_pair is not None:
            iq.held.add(held_pair)

    return Injected(lock_subject(w, user, lock), undo)


def _present_lock_offline(w: WorldState, s: Subject, now: datetime) -> bool:
    return not rules.lock_connected(w, w.locks[s["lock_id"]])


def _privacy_mode(
    w: WorldState, now: datetime, *, lock_id: str, user_id: str | None = None
) -> Injected:
    lock = get(w.locks, lock_id, "lock")
    if lock.lock_type != "escutcheon":
        raise WorldError("invalid", "only an escutcheon lock has a privacy mode")
    user = get(w.users, user_id, "user") if user_id else None
    lock.privacy_mode = True

    def undo() -> None:
        lock.privacy_mode = False

    return Injected(lock_subject(w, user, lock), undo)


def _present_privacy_mode(w: WorldState, s: Subject, now: datetime) -> bool:
    return w.locks[s["lock_id"]].privacy_mode


# --------------------------------------------------------------------------- ACA access


def _company_users(w: WorldState, company_id: str) -> list[User]:
    return [u for u in w.users.values() if u.company_id == company_id]


def _booking_mismatch(
    w: WorldState, now: datetime, *, user_id: str, lock_id: str, inventory_id: str | None = None
) -> Injected:
    user, lock = get(w.users, user_id, "user"), get(w.locks, lock_id, "lock")
    bookings = rules.active_bookings_giving(w, user, lock_id, now)
    if not bookings:
        raise WorldError("invalid", "the company must book the lock's inventory first")
    booking = bookings[0]
    labels = {rules.room_label(inv.name) for inv in rules.inventories_of_lock(w, lock_id)}
    candidates = [
        inv
        for inv in w.inventories.values()
        if inv.center_id == booking.center_id
        and lock_id not in inv.lock_ids
        and rules.room_label(inv.name) in labels - {None}
        and (inventory_id is None or inv.id == inventory_id)
    ]
    if not candidates:
        raise WorldError("invalid", "no inventory shares the lock's room label")
    previous = booking.inventory_id
    booking.inventory_id = candidates[0].id
    # ACA pushed the move to CLP long ago: CLP and the IQs agree with the wrong booking
    for member in _company_users(w, user.company_id):
        w.align_clp(member)

    def undo() -> None:
        booking.inventory_id = previous
        for member in _company_users(w, user.company_id):
            w.align_clp(member)

    subject = lock_subject(w, user, lock) | {
        "booking_id": booking.id,
        "inventory_id": previous,
        "booked_inventory_id": candidates[0].id,
    }
    return Injected(subject, undo)


def _present_booking_mismatch(w: WorldState, s: Subject, now: datetime) -> bool:
    user, lock = pair(w, s)
    return not rules.active_bookings_giving(w, user, lock.id, now) and (
        rules.booking_mismatch(w, user, lock.id, now) is not None
    )


def _access_disabled(w: WorldState, now: datetime, *, user_id: str, lock_id: str) -> Injected:
    user, lock = get(w.users, user_id, "user"), get(w.locks, lock_id, "lock")
    if not aca_active(w, user, lock_id, now):
        raise WorldError("invalid", "the user must have the lock's access to disable it")
    previous = w.matrix.get((user_id, lock_id))
    w.matrix[(user_id, lock_id)] = MatrixCell(enabled=False, changed_at=now - timedelta(days=2))
    w.align_clp(user)

    def undo() -> None:
        if previous is None:
            w.matrix.pop((user_id, lock_id), None)
        else:
            w.matrix[(user_id, lock_id)] = previous
        w.align_clp(user)

    return Injected(lock_subject(w, user, lock), undo)


def _present_access_disabled(w: WorldState, s: Subject, now: datetime) -> bool:
    cell = w.matrix.get((s["user_id"], s["lock_id"]))
    return cell is not None and not cell.enabled


def _no_booking(w: WorldState, now: datetime, *, user_id: str, lock_id: str) -> Injected:
    user, lock = get(w.users, user_id, "user"), get(w.locks, lock_id, "lock")
    ended = rules.active_bookings_giving(w, user, lock_id, now)
    saved = [(b, b.status, b.starts_at, b.ends_at) for b in ended]
    for booking in ended:
        booking.status = "ended"
        booking.ends_at = now - timedelta(days=2)
        booking.starts_at = min(booking.starts_at, booking.ends_at - timedelta(days=30))

    def restore() -> None:
        for booking, status, starts, ends in saved:
            booking.status, booking.starts_at, booking.ends_at = status, starts, ends

    if rules.booking_mismatch(w, user, lock_id, now) is not None:
        restore()
        raise WorldError("invalid", "a booking mismatch would explain this: use that kind")
    for member in _company_users(w, user.company_id):
        w.align_clp(member)

    def undo() -> None:
        restore()
        for member in _company_users(w, user.company_id):
            w.align_clp(member)

    return Injected(lock_subject(w, user, lock), undo)


def _present_no_booking(w: WorldState, s: Subject, now: datetime) -> bool:
    user, lock = pair(w, s)
    return not rules.active_bookings_giving(w, user, lock.id, now) and (
        rules.booking_mismatch(w, user, lock.id, now) is None
    )


def _too_early(
    w: WorldState,
    now: datetime,
    *,
    center_id: str,
    hours: float = 2.0,
    user_id: str | None = None,
    lock_id: str | None = None,
) -> Injected:
    center = get(w.centers, center_id, "center")
    if not 0 <= hours < w.settings.release_grace_h:
        raise WorldError("invalid", "hours must be inside the grace period")
    previous = center.released_at
    center.released_at = now - timedelta(hours=hours)
    iqs = w.iqs.where("site_id", center.clp_site_id)
    saved = {iq.id: set(iq.held) for iq in iqs}
    for iq in iqs:
        # a new center's IQs have not received their first access yet
        iq.held.clear()

    def initial_propagation(at: datetime) -> None:
        for iq in iqs:
            if iq.online:
                w.sync_iq(iq)

    due = center.released_at + timedelta(hours=w.settings.initial_propagation_h)
    w.schedule(due, f"initial_propagation {center_id}", initial_propagation)

    def undo() -> None:
        center.released_at = previous
        for iq in iqs:
            iq.held = set(saved[iq.id])

    subject = {"center_id": center_id, "site_id": center.clp_site_id}
    if user_id and lock_id:
        subject = lock_subject(w, get(w.users, user_id, "user"), get(w.locks, lock_id, "lock"))
    return Injected(subject, undo)


def _present_too_early(w: WorldState, s: Subject, now: datetime) -> bool:
    return rules.center_too_early(w, s["center_id"], now)


def _mkey(state: MobileKeyState | None, failed: bool) -> Callable[..., Injected]:
    def inject(
        w: WorldState, now: datetime, *, user_id: str, lock_id: str | None = None
    ) -> Injected:
        user = get(w.users, user_id, "user")
        key = rules.latest_mobile_key(w, user_id)
        if key is None:
            raise WorldError("invalid", "the user has no mobile key")
        saved = replace(key)
        if state is not None:
            key.state = state
        if failed:
            key.last_error = "generation_failed"

        def undo() -> None:
            key.state, key.last_error = saved.state, saved.last_error

        subject = {
            "user_id": user_id,
            "center_id": user.center_id,
            "mobile_key_id": key.id,
            "via": "mkey",
        }
        if lock_id:
            subject = lock_subject(w, user, get(w.locks, lock_id, "lock"), "mkey") | {
                "mobile_key_id": key.id
            }
        return Injected(subject, undo)

    return inject


def _mkey_replaced_long_ago(
    w: WorldState, now: datetime, *, user_id: str, days_ago: int = 400
) -> Injected:
    """History, not a fault: the user's key was revoked and replaced ``days_ago`` days ago.

    The key in use is healthy; whatever refuses it now is no "new key that still fails".
    """
    user = get(w.users, user_id, "user")
    key = rules.latest_mobile_key(w, user_id)
    if key is None or key.state != "active" or days_ago < 1:
        raise WorldError("invalid", "the user needs an active mobile key; days_ago >= 1")
    issued = key.issued_at
    replaced_at = now - timedelta(days=days_ago)
    old = MobileKey(w.new_id("mk"), user.id, "revoked", replaced_at - timedelta(days=1))
    w.mobile_keys[old.id] = old
    with w.mobile_keys.editing(key.id) as current:
        current.issued_at = replaced_at

    def undo() -> None:
        w.mobile_keys.pop(old.id, None)
        with w.mobile_keys.editing(key.id) as current:
            current.issued_at = issued

    subject = {
        "user_id": user_id,
        "center_id": user.center_id,
        "mobile_key_id": key.id,
        "replaced_key_id": old.id,
    }
    return Injected(subject, undo)


def _present_mkey_replaced(w: WorldState, s: Subject, now: datetime) -> bool:
    old = w.mobile_keys.get(s["replaced_key_id"])
    return old is not None and old.state != "active"


def _present_mkey(state: MobileKeyState | None) -> Callable[[WorldState, Subject, datetime], bool]:
    def present(w: WorldState, s: Subject, now: datetime) -> bool:
        key = rules.latest_mobile_key(w, s["user_id"])
        if key is None:
            return False
        if state is None:
            return key.last_error == "generation_failed"
        return key.state == state

    return present


#: ACA, CLP and lock fault kinds.
SPECS: tuple[FaultSpec, ...] = (
    FaultSpec(
        "aca.tag_not_assigned",
        "aca.tag_not_assigned",
        None,
        "needs_human",
        _tag_not_assigned,
        _present_tag_not_assigned,
    ),
    FaultSpec(
        "aca.clp_out_of_sync",
        "aca.clp_out_of_sync",
        "toggle_access_matrix",
        "fixed",
        _clp_out_of_sync,
        _present_clp_out_of_sync,
    ),
    FaultSpec(
        "aca.iq_out_of_sync",
        "aca.iq_out_of_sync",
        "sync_access",
        "pending_verification",
        _iq_out_of_sync,
        _present_iq_out_of_sync,
    ),
    FaultSpec(
        "aca.lock_offline",
        "aca.lock_offline",
        None,
        "needs_human",
        _lock_offline,
        _present_lock_offline,
    ),
    FaultSpec(
        "aca.privacy_mode",
        "aca.privacy_mode",
        None,
        "needs_human",
        _privacy_mode,
        _present_privacy_mode,
    ),
    FaultSpec(
        "aca.booking_mismatch",
        "aca.booking_mismatch",
        None,
        "needs_human",
        _booking_mismatch,
        _present_booking_mismatch,
    ),
    FaultSpec(
        "aca.access_disabled",
        "aca.access_disabled",
        None,
        "no_fault",
        _access_disabled,
        _present_access_disabled,
    ),
    FaultSpec(
        "aca.no_booking", "aca.no_booking", None, "no_fault", _no_booking, _present_no_booking
    ),
    FaultSpec("aca.too_early", "aca.too_early", None, "deferred", _too_early, _present_too_early),
    FaultSpec(
        "aca.mkey_revoked",
        "aca.mkey_revoked",
        "escalate",
        "needs_human",
        _mkey("revoked", failed=False),
        _present_mkey("revoked"),
    ),
    FaultSpec(
        "aca.mkey_corrupted",
        "aca.mkey_corrupted",
        "escalate",
        "needs_human",
        _mkey("corrupted", failed=False),
        _present_mkey("corrupted"),
    ),
    FaultSpec(
        "aca.mkey_replaced_long_ago",
        None,
        None,
        None,
        _mkey_replaced_long_ago,
        _present_mkey_replaced,
    ),
    FaultSpec(
        "aca.mkey_generation_failed",
        "aca.mkey_generation_failed",
        "escalate",
        "needs_human",
        _mkey(None, failed=True),
        _present_mkey(None),
    ),
)
