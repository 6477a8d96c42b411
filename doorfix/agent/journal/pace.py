"""One pace per vendor system for the whole fleet: each request's slot, taken in the journal.

Replicas sharing a PostgreSQL journal run playbooks at the same time (one per scope, see
:mod:`doorfix.agent.journal.lock`), and several of them may read one system (``door-logs``
reads ACA beside ``aca-rejections``). A limiter per process would let N replicas send N
times ``[cloud|aca|clp] requests_per_second``; instead each request takes the next free slot
of its system from one row of ``rate_slots``, in one statement: the row's ``next_at`` moves
on by ``1/limit`` from the later of itself and now, and the request waits until its slot.
The rows hold seconds since the epoch on the replicas' clocks, so replicas must keep their
clocks in step (NTP); a wait is capped at :data:`MAX_WAIT_SECONDS`, so a replica whose clock
ran far ahead cannot stall the others for longer than that per request.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from doorfix.agent.journal.connection import Database

log = structlog.get_logger("doorfix.journal")

#: the longest one request waits for its slot (a row pushed ahead by a skewed clock)
MAX_WAIT_SECONDS = 5.0

_TAKE_SLOT = (
    "INSERT INTO rate_slots (system, next_at) VALUES (:system, :now + :interval) "
    "ON CONFLICT (system) DO UPDATE SET next_at = "
    "CASE WHEN rate_slots.next_at > :now THEN rate_slots.next_at ELSE :now END + :interval "
    "RETURNING next_at"
)


class FleetPace:
    """Takes each system's request slots from the shared journal (see the module)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._skew_said = False

    def slot(self, system: str, now: datetime, interval: float) -> datetime:
        """The time this request of ``system`` may go, ``interval`` after the fleet's last."""
        stamp = now.timestamp()
        params = {"system": system, "now": stamp, "interval": interval}
        with self._db.write("rate_slot") as conn:
            row = conn.execute(_TAKE_SLOT, params).fetchone()
        start = float(row[0]) - interval if row is not None else stamp
        if start - stamp > MAX_WAIT_SECONDS:
            if not self._skew_said:
                log.warning(
                    "fleet_pace_ahead",
                    system=system,
                    ahead_seconds=round(start - stamp, 3),
                    hint="another replica's clock may be ahead of this one's; check NTP",
                )
                self._skew_said = True
            start = stamp + MAX_WAIT_SECONDS
        return datetime.fromtimestamp(start, UTC) if start > stamp else now

    async def turn(self, system: str, now: datetime, interval: float) -> datetime:
        """:meth:`slot` off the event loop (the statement is a round trip to the database)."""
        return await asyncio.to_thread(self.slot, system, now, interval)
