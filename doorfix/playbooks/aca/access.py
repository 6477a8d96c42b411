"""What ACA says about a user x lock: the rejection events, the lock's inventories, the grant.

ACA grants a lock through an active row of the Access Matrix or an active booking of an
inventory that holds it. Inventories are related by room label (``714`` and
``714ResCo-work01``), which is how a booking of the wrong inventory is told apart (A a3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from doorfix.connectors.models.aca import Event, Inventory, User
from doorfix.playbooks.facts import LockFacts
from doorfix.playbooks.schedules import booking_active

_LABEL = re.compile(r"\s*([a-z]*\d+)")


def room_label(name: str) -> str | None:
    """The room label an inventory name starts with: ``714`` for ``714ResCo-work01``.

    Letters then digits, up to the first non-digit (``A714-2`` -> ``a714``); a name that does
    not start that way has no label. Case is ignored.
    """
    match = _LABEL.match(name.casefold())
    return match.group(1) if match else None


def same_room(a: str, b: str) -> bool:
    """Whether two inventory names share a room label (``714`` and ``714ResCo-work01``)."""
    label = room_label(a)
    return label is not None and label == room_label(b)


def rejection_events(facts: LockFacts) -> list[Event]:
    """The rejection events of the facts' lock, oldest first."""
    return rejections_at(facts.events, facts.lock_id)


def rejections_at(events: Iterable[Event], lock_id: str) -> list[Event]:
    """The rejection events among ``events`` at ``lock_id``, oldest first.

    Non-empty: the event path (:data:`~doorfix.playbooks.aca.checks.EVENT_CHAIN`) decides;
    empty: the ticket path. The newest one's type says which credential was presented.
    """
    rows = [e for e in events if e.type.endswith("_rejected") and e.lock_id == lock_id]
    return sorted(rows, key=lambda e: (e.occurred_at, e.id))


def lock_inventories(facts: LockFacts) -> list[Inventory]:
    """The inventories that hold the facts' lock, by id."""
    return sorted(
        (inv for inv in facts.inventories if facts.lock_id in inv.lock_ids), key=lambda i: i.id
    )


def aca_state(facts: LockFacts, now: datetime) -> tuple[str, str | None]:
    """ACA's access to the lock: ``active``, ``disabled`` (with by whom) or ``none``."""
    rows = [a for a in facts.accesses if a.lock_id == facts.lock_id]
    if any(a.state == "active" for a in rows):
        return "active", None
    if any(a.disabled_by == "access_matrix" for a in rows):
        return "disabled", "access_matrix"
    # a booking that gives the lock is ACA's grant even when its access row is missing
    if bookings_giving(facts, now):
        return "active", None
    if rows:
        return "disabled", rows[0].disabled_by
    return "none", None


def bookings_giving(facts: LockFacts, now: datetime) -> list[str]:
    """The company's active bookings (ids) of an inventory that holds the lock."""
    holding = {inv.id for inv in lock_inventories(facts)}
    return sorted(
        b.id
        for b in facts.bookings
        if b.company_id == facts.user.company_id
        and b.inventory_id in holding
        and booking_active(b, now)
    )


def mismatched_inventories(facts: LockFacts, now: datetime) -> list[Inventory]:
    """Booked inventories of the company that share the lock's room label but lack the lock."""
    labels = {room_label(inv.name) for inv in lock_inventories(facts)}
    if not labels and facts.lock is not None:
        # a lock in no inventory: its CLP reference ("714 main door") is the only room hint
        labels = {room_label(facts.lock.customer_reference)}
    labels.discard(None)
    by_id = {inv.id: inv for inv in facts.inventories}
    found: dict[str, Inventory] = {}
    for booking in facts.bookings:
        inv = by_id.get(booking.inventory_id)
        if (
            inv is not None
            and booking.company_id == facts.user.company_id
            and booking.center_id == facts.center.id
            and booking_active(booking, now)
            and facts.lock_id not in inv.lock_ids
            and room_label(inv.name) in labels
        ):
            found[inv.id] = inv
    return [found[k] for k in sorted(found)]


def tag_state(user: User, number: str) -> str:
    """ACA's state of a tag number as this user's tag: ``assigned``, ``lost`` or ``not_the_users``.

    ``not_the_users``: the number is no tag of this user (unknown to ACA, or another user's).
    """
    return next((t.state for t in user.tags if t.number == number), "not_the_users")


def unassigned_tag_events(user: User, events: Iterable[Event]) -> dict[str, list[Event]]:
    """The tag rejections whose tag is not an assigned tag of ``user``, by tag number.

    Each such tag is its own incident (a security finding, DESIGN.md "Incident identity"),
    never folded into the user's other refusals at the lock, nor resolved by their grants.
    """
    found: dict[str, list[Event]] = {}
    for event in events:
        if event.type == "tag_rejected" and tag_state(user, event.credential) != "assigned":
            found.setdefault(event.credential, []).append(event)
    return found
