"""The journal's incidents: opening and regrouping them, their outcomes and their history.

An incident groups the events that showed one cause on one subject under its key. Its
outcome is one of :data:`OUTCOMES`; a final one closes it, and every outcome is written to
its history and marks its events seen in their feeds in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from doorfix.agent.journal import rows, sql
from doorfix.agent.journal.base import JournalBase
from doorfix.agent.journal.connection import Conn, Row
from doorfix.agent.journal.reasons import reason_code
from doorfix.agent.journal.rows import HistoryRow, IncidentRow
from doorfix.errors import JournalError

__all__ = ["FINAL_OUTCOMES", "OPEN_OUTCOMES", "OUTCOMES", "JournalIncidents"]

#: outcomes that close an incident; a later event with the same key opens a new one
FINAL_OUTCOMES = frozenset({"fixed", "needs_human", "no_fault", "failed"})
#: outcomes that keep an incident open for a later run to pick up
OPEN_OUTCOMES = frozenset({"pending_verification", "deferred", "would_fix", "awaiting_approval"})
OUTCOMES = FINAL_OUTCOMES | OPEN_OUTCOMES


class JournalIncidents(JournalBase):
    """The journal's incidents and their history."""

    def open_incident(
        self,
        *,
        key: str,
        cause: str,
        subject: Mapping[str, str],
        run_id: str,
        event_ids: Sequence[str],
        evidence: Mapping[str, Any],
        feeds: Mapping[str, str] | None = None,
        occurrence: bool = True,
    ) -> IncidentRow:
        """Open an incident for ``key``, or add these events to the one already open.

        ``feeds`` names the feed of each event (event id -> feed); the incident's outcome,
        once set, marks those events seen in their feeds (see :meth:`set_outcome`).
        ``occurrence=False``: doorfix looked again (a deferral retried), nobody was refused
        again, so an open incident's occurrences and last-seen time stay as they are.
        """
        now = self._now()
        new_ids = list(dict.fromkeys(event_ids))
        with self._write("open_incident") as conn:
            row = conn.execute(sql.OPEN_INCIDENT_BY_KEY, {"key": key}).fetchone()
            if row is None:
                incident_id = uuid.uuid4().hex
                conn.execute(
                    sql.INSERT_INCIDENT,
                    {
                        "incident_id": incident_id,
                        "key": key,
                        "cause": cause,
                        "subject": rows.to_json(dict(subject)),
                        "event_ids": rows.to_json(new_ids),
                        "evidence": rows.to_json(dict(evidence)),
                        "now": now,
                        # a ticket with no event is still one occurrence
                        "occurrences": len(new_ids) or 1,
                        "run_id": run_id,
                    },
                )
                conn.executemany(
                    sql.INSERT_SUBJECT,
                    [
                        {"incident_id": incident_id, "subject_key": k, "subject_value": v}
                        for k, v in subject.items()
                    ],
                )
            else:
                incident_id = row["incident_id"]
                _regroup(conn, row, new_ids, evidence, now if occurrence else None)
            _link_events(conn, incident_id, new_ids, feeds or {})
            current = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
        return rows.incident_row(current)

    def latest_incident(self, key: str) -> IncidentRow | None:
        """The newest incident with this key, open or closed."""
        with self._read("latest_incident") as conn:
            row = conn.execute(sql.LATEST_INCIDENT_BY_KEY, {"key": key}).fetchone()
        return None if row is None else rows.incident_row(row)

    def add_events(
        self,
        incident_id: str,
        *,
        event_ids: Sequence[str],
        evidence: Mapping[str, Any],
        feeds: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> IncidentRow:
        """Add events to an incident, open or closed, without touching its outcome.

        For a repeat of an incident just reported (the same lock still offline, the same
        disabled user trying again): the events are kept with the incident they belong to.
        With ``run_id``, that is the decision: the events (of ``feeds``) are marked seen.
        """
        now = self._now()
        new_ids = list(dict.fromkeys(event_ids))
        with self._write("add_events") as conn:
            row = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
            if row is None:
                raise JournalError(f"add_events: no incident {incident_id} in {self.path}")
            _regroup(conn, row, new_ids, evidence, now)
            _link_events(conn, incident_id, new_ids, feeds or {})
            if run_id is not None:
                conn.execute(
                    sql.MARK_INCIDENT_SEEN,
                    {"incident_id": incident_id, "run_id": run_id, "seen_at": now},
                )
            current = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
        return rows.incident_row(current)

    def set_outcome(
        self,
        incident_id: str,
        *,
        outcome: str,
        run_id: str,
        steps: Sequence[Mapping[str, str]] = (),
        evidence: Mapping[str, Any] | None = None,
        note: str | None = None,
        seen: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Record an open incident's outcome; a final outcome closes it.

        In the same transaction the incident's events are marked seen in their feeds, and
        ``seen`` (feed -> event ids) too: a decided event is never diagnosed again, even if
        the run dies before it commits its feeds.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(OUTCOMES)}")
        now = self._now()
        final = outcome in FINAL_OUTCOMES
        with self._write("set_outcome") as conn:
            row = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
            if row is None or not row["is_open"]:
                state = "unknown" if row is None else f"closed as {row['outcome']}"
                raise JournalError(f"set_outcome: incident {incident_id} is {state}")
            merged = {**json.loads(row["evidence"]), **(evidence or {})}
            conn.execute(
                sql.SET_OUTCOME,
                {
                    "incident_id": incident_id,
                    "outcome": outcome,
                    "is_open": 0 if final else 1,
                    "closed_at": now if final else None,
                    "steps": rows.to_json([dict(step) for step in steps]),
                    "evidence": rows.to_json(merged),
                    "reason_code": reason_code(outcome, note),
                },
            )
            conn.execute(
                sql.INSERT_HISTORY,
                {
                    "incident_id": incident_id,
                    "at": now,
                    "outcome": outcome,
                    "run_id": run_id,
                    "note": note,
                },
            )
            conn.execute(
                sql.MARK_INCIDENT_SEEN,
                {"incident_id": incident_id, "run_id": run_id, "seen_at": now},
            )
            conn.executemany(
                sql.MARK_SEEN,
                [
                    {"feed": feed, "event_id": event_id, "run_id": run_id, "seen_at": now}
                    for feed, event_ids in (seen or {}).items()
                    for event_id in event_ids
                ],
            )

    def undecided(self) -> list[IncidentRow]:
        """Open incidents that never got an outcome: a crash came before their decision."""
        with self._read("undecided") as conn:
            return [rows.incident_row(row) for row in conn.execute(sql.UNDECIDED_INCIDENTS)]

    def incident(self, incident_id: str) -> IncidentRow | None:
        """One incident by id."""
        with self._read("incident") as conn:
            row = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
        return None if row is None else rows.incident_row(row)

    def open_incidents(self, *, outcome: str | None = None) -> list[IncidentRow]:
        """Open incidents oldest first, optionally only those with this outcome."""
        query = sql.select_incidents(
            open_only=True, outcome=outcome is not None, since=False, cause=False, subject_keys=0
        )
        with self._read("open_incidents") as conn:
            return [rows.incident_row(row) for row in conn.execute(query, {"outcome": outcome})]

    def incidents(
        self,
        *,
        since: datetime | None = None,
        subject: Mapping[str, str] | None = None,
        cause: str | None = None,
        limit: int = 1000,
    ) -> list[IncidentRow]:
        """Incidents seen since a time, newest first; every given subject key must match."""
        pairs = list((subject or {}).items())
        query = sql.select_incidents(
            open_only=False,
            outcome=False,
            since=since is not None,
            cause=cause is not None,
            subject_keys=len(pairs),
        )
        params: dict[str, Any] = {"cause": cause, "limit": limit}
        if since is not None:
            params["since"] = rows.to_text(since)
        for n, (name, value) in enumerate(pairs):
            params[f"sk{n}"] = name
            params[f"sv{n}"] = value
        with self._read("incidents") as conn:
            return [rows.incident_row(row) for row in conn.execute(query, params)]

    def history(self, incident_id: str) -> list[HistoryRow]:
        """An incident's history in the order it was written."""
        with self._read("history") as conn:
            found = conn.execute(sql.HISTORY, {"incident_id": incident_id}).fetchall()
        return [rows.history_row(row) for row in found]


def _link_events(
    conn: Conn,
    incident_id: str,
    event_ids: Sequence[str],
    feeds: Mapping[str, str],
) -> None:
    """Record the feed of each of an incident's events that came from one."""
    conn.executemany(
        sql.INSERT_INCIDENT_EVENT,
        [
            {"incident_id": incident_id, "event_id": event_id, "feed": feeds[event_id]}
            for event_id in event_ids
            if event_id in feeds
        ],
    )


def _regroup(
    conn: Conn,
    row: Row,
    event_ids: list[str],
    evidence: Mapping[str, Any],
    now: str | None,
) -> None:
    """Add new event ids and evidence to an incident row; bump its occurrences.

    ``now`` None: no new occurrence (a second look without a new refusal).
    """
    known: list[str] = json.loads(row["event_ids"])
    already = set(known)
    added = [e for e in event_ids if e not in already]
    conn.execute(
        sql.REGROUP_INCIDENT,
        {
            "incident_id": row["incident_id"],
            "event_ids": rows.to_json(known + added),
            "evidence": rows.to_json({**json.loads(row["evidence"]), **evidence}),
            "now": row["last_seen_at"] if now is None else now,
            # a repeat of events already grouped is no new occurrence
            "added": len(added) if event_ids else int(now is not None),
        },
    )
