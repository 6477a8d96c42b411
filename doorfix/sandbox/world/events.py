"""How a lock's events travel: to CLP's entries and ACA's feed now, held back, or lost.

An event at a connected lock is recorded at once. A lock or IQ that lost its connection keeps
its events and hands them over when it reconnects, hours late but with their original time
(``recorded_at`` is the delivery, ``occurred_at`` the presentation). A half-connected lock
never hands them over. The feed faults bend the last step: a delay per lock, or every n-th
event delivered twice.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from doorfix.sandbox.world import rules
from doorfix.sandbox.world.model import AcaEvent, Entry, EventRecorded, Incident, Lock
from doorfix.sandbox.world.state import WorldState


@dataclass(slots=True)
class Pending:
    """An event on its way from a lock; any of the three records may be absent."""

    lock_id: str
    site_id: str
    occurred_at: datetime
    event: AcaEvent | None = None
    entry: Entry | None = None
    incident: Incident | None = None


class EventPipe:
    """The world's event delivery, with what disconnected locks hold back."""

    def __init__(self, world: WorldState) -> None:
        self._world = world
        self._held: dict[str, list[Pending]] = {}
        self._delivered = 0

    def emit(self, pending: Pending, at: datetime) -> EventRecorded:
        """Send a lock's event the way its connection allows."""
        w = self._world
        lock = w.locks[pending.lock_id]
        path = rules.event_path(w, lock)
        if path == "never":
            return "never"
        if path == "late":
            self._held.setdefault(lock.id, []).append(pending)
            return "late"
        delay_h = w.feed_delay_h.get(lock.id)
        if delay_h:
            w.schedule(
                at + timedelta(hours=delay_h),
                f"late_feed {lock.id}",
                lambda when: self.deliver(pending, when),
            )
            return "late"
        self.deliver(pending, at)
        return "now"

    def deliver(self, pending: Pending, at: datetime) -> None:
        """Record a delivered event in ACA's feed and CLP's entries or incidents."""
        w = self._world
        lock = w.locks[pending.lock_id]
        if pending.event is not None:
            pending.event.recorded_at = at
            w.aca_feed.append(pending.event)
            self._delivered += 1
            every = w.feed_duplicate_every
            if every and self._delivered % every == 0:
                w.aca_feed.append(pending.event)
        if pending.entry is not None:
            insort(
                w.entries.setdefault(pending.site_id, []),
                pending.entry,
                key=lambda e: e.utc_date_time,
            )
        if pending.incident is not None:
            self.incident(pending.site_id, pending.incident)
        if lock.last_event_utc is None or pending.occurred_at > lock.last_event_utc:
            lock.last_event_utc = pending.occurred_at

    def incident(self, site_id: str, incident: Incident) -> None:
        """Record an incident CLP noticed itself (connection lost or restored) or was sent."""
        insort(
            self._world.incidents.setdefault(site_id, []), incident, key=lambda i: i.utc_date_time
        )

    def flush(self, lock: Lock, at: datetime) -> None:
        """Deliver what a lock held back, once its events can flow again."""
        if rules.event_path(self._world, lock) != "now":
            return
        for pending in self._held.pop(lock.id, []):
            self.deliver(pending, at)

    def held_back(self, lock_id: str) -> int:
        """How many events a lock (or its IQ) holds back."""
        return len(self._held.get(lock_id, []))


class WorldWithEvents(WorldState, Protocol):
    """The world as the modules that emit events see it: its state and its event pipe."""

    events: EventPipe
