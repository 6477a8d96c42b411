"""The journal: doorfix's memory of runs, feed positions, incidents and actions.

A SQLite file in WAL mode with ``synchronous=FULL``, or a PostgreSQL database shared by a
fleet (see :mod:`~doorfix.agent.journal.postgres`). The engine writes an action's intent
(committed and fsynced) before the API call and its result after, so a crash leaves the
action ``started``: on start-up the engine re-reads the target of each ``in_flight()`` action
and calls ``reconcile()`` instead of firing it again. A feed's cursor and the ids of the
events it delivered are committed together, so a crash never loses or doubles an event.

Every SQL statement lives in :mod:`doorfix.agent.journal.schema` and
:mod:`doorfix.agent.journal.sql`; every ``sqlite3`` error leaves the journal as
:class:`~doorfix.errors.JournalError` naming the operation and file. One connection per
journal, guarded by a lock, so the scheduler thread and the health endpoint may share it;
each call is short enough to make from the event loop.

:class:`Journal` holds runs and feeds itself and combines the connection
(:mod:`~doorfix.agent.journal.base`), incidents and their history
(:mod:`~doorfix.agent.journal.incidents`), actions and retention
(:mod:`~doorfix.agent.journal.actions`), and a fleet's one message per tick
(:mod:`~doorfix.agent.journal.ticks`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from doorfix.agent.journal import rows, sql
from doorfix.agent.journal.actions import JournalActions
from doorfix.agent.journal.incidents import (
    FINAL_OUTCOMES,
    OPEN_OUTCOMES,
    OUTCOMES,
    JournalIncidents,
)
from doorfix.agent.journal.live import current_run
from doorfix.agent.journal.marks import ApprovalRow, JournalApprovals, JournalMarks, MarkRow
from doorfix.agent.journal.rows import ActionRow, HistoryRow, IncidentRow, RunRow
from doorfix.agent.journal.ticks import JournalTicks
from doorfix.errors import JournalError

__all__ = [
    "FINAL_OUTCOMES",
    "OPEN_OUTCOMES",
    "OUTCOMES",
    "ActionRow",
    "ApprovalRow",
    "HistoryRow",
    "IncidentRow",
    "Journal",
    "MarkRow",
    "RunRow",
    "RunStatus",
]

RunStatus = Literal["completed", "failed", "interrupted"]


class _Any:
    """The cursor :meth:`Journal.advance_feed` stores whatever it finds (no compare-and-set)."""


ANY_CURSOR = _Any()


class Journal(JournalIncidents, JournalActions, JournalMarks, JournalApprovals, JournalTicks):
    """The journal, on SQLite or PostgreSQL; safe to share between threads."""

    # runs --------------------------------------------------------------------------------

    def start_run(
        self,
        playbook: str,
        *,
        dry_run: bool,
        run_id: str | None = None,
        shard: str | None = None,
    ) -> str:
        """Record a run as running and return its id (``run_id``, or a new one).

        ``shard``: the shard of centers it works (``2/8``), None for every center.
        """
        run_id = run_id or uuid.uuid4().hex
        with self._write("start_run") as conn:
            conn.execute(
                sql.INSERT_RUN,
                {
                    "run_id": run_id,
                    "playbook": playbook,
                    "dry_run": int(dry_run),
                    "started_at": self._now(),
                    "shard": shard,
                },
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        counts: Mapping[str, int],
        error: str | None = None,
        report: Mapping[str, Any] | None = None,
    ) -> None:
        """Record how a running run ended; a dry-run keeps its ``report`` (see below)."""
        with self._write("finish_run") as conn:
            updated = conn.execute(
                sql.FINISH_RUN,
                {
                    "run_id": run_id,
                    "status": status,
                    "finished_at": self._now(),
                    "counts": rows.to_json(dict(counts)),
                    "error": error,
                    "report": None if report is None else rows.to_json(dict(report)),
                },
            ).rowcount
            if updated != 1:
                row = conn.execute(sql.RUN_STATUS, {"run_id": run_id}).fetchone()
                state = "unknown" if row is None else f"already {row[0]}"
                raise JournalError(f"finish_run: run {run_id} is {state} in {self._path}")

    def runs(
        self,
        *,
        playbook: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        status: str | None = None,
    ) -> list[RunRow]:
        """Runs newest first, optionally of one playbook, started since a time, in a status."""
        query = sql.select_runs(
            playbook=playbook is not None, since=since is not None, status=status is not None
        )
        params: dict[str, Any] = {"limit": limit, "playbook": playbook, "status": status}
        if since is not None:
            params["since"] = rows.to_text(since)
        with self._read("runs") as conn:
            return [rows.run_row(row) for row in conn.execute(query, params)]

    def run(self, run_id: str) -> RunRow | None:
        """One run by id."""
        with self._read("run") as conn:
            row = conn.execute(sql.RUN_BY_ID, {"run_id": run_id}).fetchone()
        return None if row is None else rows.run_row(row)

    def newest_at(self) -> datetime | None:
        """The newest time written: a run's or an action's end or start, an incident's last
        sighting, a history row (None: an empty journal). A clock ahead of the reader's (the
        embedded sandbox's accelerated one, a replica's) may have written it in the reader's
        future."""
        with self._read("newest_at") as conn:
            row = conn.execute(sql.NEWEST_AT).fetchone()
        return None if row is None or row[0] is None else rows.from_text(row[0])

    def last_successful_run(self, playbook: str) -> RunRow | None:
        """The newest completed run of a playbook."""
        with self._read("last_successful_run") as conn:
            row = conn.execute(sql.LAST_SUCCESSFUL_RUN, {"playbook": playbook}).fetchone()
        return None if row is None else rows.run_row(row)

    def dry_run_incidents(
        self,
        *,
        since: datetime,
        subject: Mapping[str, str] | None = None,
        limit: int = 1000,
    ) -> list[tuple[IncidentRow, HistoryRow]]:
        """What the dry-runs started since ``since`` would have fixed, newest run first.

        A dry-run writes nothing a later run reads: it works on a scratch copy of the journal
        (:meth:`scratch_copy`), and only its report stays, on its run row. Each ``would_fix``
        incident of those reports comes back as a closed row (its key prefixed ``dry-run|``,
        so it never groups with a real incident) with one history entry; ``subject`` keeps
        those whose subject holds all of its ids. For ``report`` and ``history`` only.
        """
        with self._read("dry_run_incidents") as conn:
            found = conn.execute(
                sql.DRY_RUN_REPORTS, {"since": rows.to_text(since), "limit": limit}
            ).fetchall()
        out: list[tuple[IncidentRow, HistoryRow]] = []
        for run_id, started_text, text in found:
            started = rows.from_text(started_text)
            for item in rows.from_json_list(text, "incidents"):
                found_subject = {str(k): str(v) for k, v in item.get("subject", {}).items()}
                if item.get("outcome") != "would_fix" or any(
                    found_subject.get(k) != v for k, v in (subject or {}).items()
                ):
                    continue
                incident = IncidentRow(
                    incident_id=str(item.get("incident_id", "")),
                    key="dry-run|" + str(item.get("cause", "")) + "|" + rows.to_json(found_subject),
                    cause=str(item.get("cause", "")),
                    subject=found_subject,
                    outcome="would_fix",
                    open=False,
                    event_ids=[str(e) for e in item.get("event_ids", [])],
                    evidence=dict(item.get("evidence", {})),
                    steps=list(item.get("steps", [])),
                    first_seen_at=started,
                    last_seen_at=started,
                    occurrences=max(1, len(item.get("event_ids", []))),
                    run_id=run_id,
                )
                note = "dry-run: " + "; ".join(
                    f"{a.get('remedy')} {a.get('target')}" for a in item.get("actions", [])
                )
                out.append(
                    (incident, HistoryRow(incident.incident_id, started, "would_fix", run_id, note))
                )
        return out

    # feeds -------------------------------------------------------------------------------

    def cursor(self, feed: str) -> str | None:
        """The stored cursor of a feed, or None before its first advance."""
        with self._read("cursor") as conn:
            row = conn.execute(sql.FEED_CURSOR, {"feed": feed}).fetchone()
        return None if row is None else row[0]

    def advance_feed(
        self,
        feed: str,
        *,
        cursor: str | None,
        event_ids: Iterable[str],
        run_id: str,
        expected: str | _Any | None = ANY_CURSOR,
        position: str | None = None,
    ) -> bool:
        """Mark events seen and store the cursor in one transaction (None keeps the cursor).

        ``expected``: the cursor the run read; the new one is stored only if the stored one
        is still that (compare-and-set: a replica that moved the feed meanwhile keeps its
        position). The events are marked seen either way. False when the cursor stayed.
        ``position``: the feed row whose cursor is stored, when not ``feed`` (a shard's).
        """
        now = self._now()
        marks = [
            {"feed": feed, "event_id": event_id, "run_id": run_id, "seen_at": now}
            for event_id in event_ids
        ]
        params = {
            "feed": position or feed,
            "cursor": cursor,
            "run_id": run_id,
            "updated_at": now,
        }
        with self._write("advance_feed") as conn:
            conn.executemany(sql.MARK_SEEN, marks)
            if isinstance(expected, _Any):
                conn.execute(sql.STORE_CURSOR, params)
                return True
            if expected is None and conn.execute(sql.FIRST_CURSOR, params).rowcount == 1:
                return True
            return conn.execute(sql.CAS_CURSOR, {**params, "expected": expected}).rowcount == 1

    # fleet-wide budgets ------------------------------------------------------------------

    def spend_budget(self, counter: str, *, period: str, cap: int, already: int = 0) -> bool:
        """Spend one unit of a budget (the month's renewals) if any is left; False if spent.

        One conditional increment of a row, so replicas sharing the journal together never
        spend more than ``cap``. ``already``: what was spent before the counter existed (the
        renewals this month recorded as actions), its starting value.
        """
        now = self._now()
        with self._write("spend_budget") as conn:
            conn.execute(
                sql.OPEN_COUNTER,
                {
                    "counter": counter,
                    "period": period,
                    "used": max(0, min(already, cap)),
                    "cap": cap,
                    "now": now,
                },
            )
            params = {"counter": counter, "period": period, "cap": cap, "now": now}
            return conn.execute(sql.SPEND_COUNTER, params).rowcount == 1

    def budget_used(self, counter: str, *, period: str) -> int:
        """How much of a budget is spent in a period (0 before its first spend)."""
        with self._read("budget_used") as conn:
            row = conn.execute(sql.COUNTER_USED, {"counter": counter, "period": period}).fetchone()
        return 0 if row is None else int(row[0])

    # replicas of a fleet -----------------------------------------------------------------

    def replica_beat(
        self, replica_id: str, *, host: str, pid: int, working: str, shards: int = 1
    ) -> None:
        """Record a replica alive now, what it is working (``""``: idle) and its shards."""
        with self._write("replica_beat") as conn:
            conn.execute(
                sql.BEAT_REPLICA,
                {
                    "replica_id": replica_id,
                    "host": host,
                    "pid": pid,
                    "now": self._now(),
                    "working": working,
                    "shards": shards,
                },
            )

    def drop_replica(self, replica_id: str) -> None:
        """A replica that stopped cleanly leaves the fleet's list."""
        with self._write("drop_replica") as conn:
            conn.execute(sql.DROP_REPLICA, {"replica_id": replica_id})

    def replicas(self, *, forget_before: datetime | None = None) -> list[dict[str, Any]]:
        """The fleet's replicas, oldest first (those silent since ``forget_before`` dropped)."""
        if forget_before is not None:
            with self._write("replicas") as conn:
                conn.execute(sql.FORGET_REPLICAS, {"before": rows.to_text(forget_before)})
        with self._read("replicas") as conn:
            return [
                {
                    "replica_id": r["replica_id"],
                    "host": r["host"],
                    "pid": int(r["pid"]),
                    "started_at": r["started_at"],
                    "heartbeat_at": r["heartbeat_at"],
                    "working": r["working"],
                    "shards": int(r["shards"]),
                }
                for r in conn.execute(sql.REPLICAS)
            ]

    def unseen(self, feed: str, event_ids: Iterable[str]) -> set[str]:
        """The ids among ``event_ids`` that this feed never delivered before.

        An event another live run of this process is deciding is not among them (see
        :mod:`~doorfix.agent.journal.live`): its decision is that run's.
        """
        wanted = list(dict.fromkeys(event_ids))
        held = self.live.held(current_run(), feed, wanted)
        wanted = [e for e in wanted if e not in held]
        seen: set[str] = set()
        with self._read("unseen") as conn:
            for start in range(0, len(wanted), sql.IN_CHUNK):
                names, values = sql.in_list("e", wanted[start : start + sql.IN_CHUNK])
                cur = conn.execute(sql.select_seen(names), {"feed": feed, **values})
                seen.update(row[0] for row in cur)
        return set(wanted) - seen
