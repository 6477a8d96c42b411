"""A fleet's tick, told in one message: the parts each shard's run leaves, and their claim.

On a fleet each tick of a playbook is one run per shard of centers (``2/8``), on whichever
replicas take them. A person should get one message about the tick, as the single daemon
sends one about its run, not one per shard. So a shard's run, when it ends, leaves the parts
of its message in ``tick_messages`` (:meth:`JournalTicks.tell_tick`; no parts when it has
nothing to tell: the row still says the shard is done), and then tries to claim the tick
(:meth:`JournalTicks.claim_ticks`):

* a tick is **done** when every shard has ended a run of that tick or of a later one. A shard
  whose job of the tick was coalesced into an earlier one (it was still queued), or whose
  run died with its replica, ends a later tick's run instead, and that settles it;
* a tick :data:`BEHIND` ticks older than the newest any shard ended is done too, whatever
  its shards: a shard that stopped running (every replica down but one that cannot reach a
  vendor) must not keep the others' fixes untold;
* the claim marks every untold row of a done tick sent, in one statement that a second
  replica claiming at once finds nothing left in: each row is told once, by one replica.
  A row that comes after its tick was claimed (a shard's run that took longer than
  :data:`BEHIND` ticks) is claimed with the next done tick, never lost;
* the sent rows behind the newest done tick are forgotten at once, so the table holds about
  a tick per shard and playbook.

A replica that dies between the claim and the send loses that message, as the single daemon
loses the message of a run it dies after: messages are at most once, the journal at least
once (the digest and ``doorfix report`` read the incidents, not these rows).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from doorfix.agent.journal import rows
from doorfix.agent.journal.base import JournalBase

__all__ = ["BEHIND", "JournalTicks", "TickMessage"]

#: a tick this many ticks older than the newest any shard ended is told whatever its shards
BEHIND = 2

_TELL = (
    "INSERT INTO tick_messages (run_id, playbook, shard, tick, message, ended_at) "
    "VALUES (:run_id, :playbook, :shard, :tick, :message, :now) "
    "ON CONFLICT (run_id) DO NOTHING"
)
_SHARDS_DONE = (
    "SELECT shard, MAX(tick) AS tick FROM tick_messages WHERE playbook = :playbook GROUP BY shard"
)
_NEWEST_TICKS = (
    "SELECT DISTINCT tick FROM tick_messages WHERE playbook = :playbook "
    "ORDER BY tick DESC LIMIT :limit"
)
# the condition on sent_at makes the claim once: a replica claiming at the same moment waits
# for this row's lock, then finds it sent and skips it (PostgreSQL re-checks the WHERE)
_CLAIM = (
    "UPDATE tick_messages SET sent_at = :now "
    "WHERE playbook = :playbook AND tick <= :done AND sent_at IS NULL "
    "RETURNING run_id, shard, tick, message"
)
_FORGET = (
    "DELETE FROM tick_messages WHERE playbook = :playbook AND tick < :done AND sent_at IS NOT NULL"
)


@dataclass(frozen=True, slots=True)
class TickMessage:
    """One shard's run of a tick and the parts of its message (None: nothing to tell)."""

    run_id: str
    shard: str
    tick: int
    message: dict[str, Any] | None


class JournalTicks(JournalBase):
    """A fleet's per-tick messages (see the module)."""

    def tell_tick(
        self,
        run_id: str,
        *,
        playbook: str,
        shard: str,
        tick: int,
        message: Mapping[str, Any] | None,
    ) -> None:
        """Record that ``run_id``, the run of ``shard`` at ``tick``, ended with ``message``."""
        with self._write("tell_tick") as conn:
            conn.execute(
                _TELL,
                {
                    "run_id": run_id,
                    "playbook": playbook,
                    "shard": shard,
                    "tick": int(tick),
                    "message": None if message is None else rows.to_json(dict(message)),
                    "now": self._now(),
                },
            )

    def claim_ticks(self, playbook: str, *, shards: Sequence[str]) -> list[TickMessage]:
        """Claim the untold rows of every done tick of ``playbook``, oldest tick first, each
        tick's in the order of ``shards``.

        ``shards``: every shard the fleet divides the centers in now. Empty when no tick is
        done yet, or another replica claimed it first.
        """
        with self._write("claim_ticks") as conn:
            params: dict[str, Any] = {"playbook": playbook}
            ended = {str(r[0]): int(r[1]) for r in conn.execute(_SHARDS_DONE, params)}
            newest = [
                int(r[0]) for r in conn.execute(_NEWEST_TICKS, {**params, "limit": BEHIND + 1})
            ]
            every = [ended[s] for s in shards if s in ended]
            candidates = [min(every)] if shards and len(every) == len(shards) else []
            if len(newest) > BEHIND:
                candidates.append(newest[BEHIND])
            if not candidates:
                return []
            params.update(done=max(candidates), now=self._now())
            claimed = [
                TickMessage(
                    run_id=str(r[0]),
                    shard=str(r[1]),
                    tick=int(r[2]),
                    message=None if r[3] is None else dict(json.loads(r[3])),
                )
                for r in conn.execute(_CLAIM, params)
            ]
            conn.execute(_FORGET, params)
        # in the order of ``shards``; a shard the fleet no longer has after them
        place = {shard: n for n, shard in enumerate(shards)}
        return sorted(claimed, key=lambda m: (m.tick, place.get(m.shard, len(place)), m.shard))
