"""The journal's records of people's decisions: marks and approvals.

An incident marked ``handled`` (who, when, a note), and supervised mode's approvals.

A ``needs_human`` incident is closed by doorfix when it writes the checklist; the person who
then does what it says marks it handled in the supervisors' console. The mark is one row,
written once: a second mark of the same incident is refused, never overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from doorfix.agent.journal import rows
from doorfix.agent.journal.base import JournalBase
from doorfix.errors import StateConflict, UnknownRecord

__all__ = ["APPROVAL_STATES", "ApprovalRow", "JournalApprovals", "JournalMarks", "MarkRow"]

_INSERT_MARK = (
    "INSERT INTO incident_marks (incident_id, mark, marked_by, note, marked_at) "
    "VALUES (:incident_id, :mark, :marked_by, :note, :marked_at)"
)
_SELECT_MARKS = (
    "SELECT incident_id, mark, marked_by, note, marked_at FROM incident_marks "
    "WHERE incident_id = :incident_id ORDER BY seq"
)
_HANDLED_IDS = "SELECT incident_id FROM incident_marks WHERE mark = 'handled'"
_INCIDENT_EXISTS = "SELECT 1 FROM incidents WHERE incident_id = :incident_id"
_MARK_EXISTS = (
    "SELECT marked_by, marked_at FROM incident_marks "
    "WHERE incident_id = :incident_id AND mark = :mark"
)


@dataclass(frozen=True, slots=True)
class MarkRow:
    """A person's mark on an incident."""

    incident_id: str
    mark: str
    by: str
    note: str
    at: datetime


def _mark_row(row: sqlite3.Row) -> MarkRow:
    return MarkRow(
        incident_id=row["incident_id"],
        mark=row["mark"],
        by=row["marked_by"],
        note=row["note"],
        at=rows.from_text(row["marked_at"]),
    )


class JournalMarks(JournalBase):
    """Marks people put on incidents."""

    def mark_handled(self, incident_id: str, *, by: str, note: str) -> MarkRow:
        """Record that a person handled an incident; refuse an unknown or handled one."""
        now = self._now()
        with self._write("mark_handled") as conn:
            if conn.execute(_INCIDENT_EXISTS, {"incident_id": incident_id}).fetchone() is None:
                raise UnknownRecord(f"no incident {incident_id}")
            prior = conn.execute(
                _MARK_EXISTS, {"incident_id": incident_id, "mark": "handled"}
            ).fetchone()
            if prior is not None:
                raise StateConflict(
                    f"incident {incident_id} was already marked handled by "
                    f"{prior['marked_by']} at {prior['marked_at']}"
                )
            conn.execute(
                _INSERT_MARK,
                {
                    "incident_id": incident_id,
                    "mark": "handled",
                    "marked_by": by,
                    "note": note,
                    "marked_at": now,
                },
            )
        return MarkRow(incident_id, "handled", by, note, rows.from_text(now))

    def marks(self, incident_id: str) -> list[MarkRow]:
        """An incident's marks, oldest first."""
        with self._read("marks") as conn:
            found = conn.execute(_SELECT_MARKS, {"incident_id": incident_id}).fetchall()
        return [_mark_row(row) for row in found]

    def handled_ids(self, incident_ids: Sequence[str] | None = None) -> set[str]:
        """The ids of incidents marked handled (among ``incident_ids`` when given)."""
        with self._read("handled_ids") as conn:
            found = {row[0] for row in conn.execute(_HANDLED_IDS)}
        return found if incident_ids is None else found & set(incident_ids)


# approvals (supervised mode) --------------------------------------------------------------

#: an approval's states: waiting, then approved or refused by a person, then ran or lapsed
APPROVAL_STATES = ("awaiting_approval", "approved", "refused", "lapsed", "ran")

_INSERT_APPROVAL = (
    "INSERT INTO approvals (approval_id, incident_id, run_id, remedy, target, system, params, "
    "status, requested_at, expires_at) VALUES (:approval_id, :incident_id, :run_id, :remedy, "
    ":target, :system, :params, 'awaiting_approval', :requested_at, :expires_at)"
)
_SELECT_APPROVALS = (
    "SELECT approval_id, incident_id, run_id, remedy, target, system, params, status, "
    "requested_at, expires_at, decided_by, decided_at, note, action_id FROM approvals"
)
_APPROVAL_BY_ID = _SELECT_APPROVALS + " WHERE approval_id = :approval_id"
_LATEST_APPROVAL = (
    _SELECT_APPROVALS + " WHERE incident_id = :incident_id AND remedy = :remedy "
    "AND target = :target ORDER BY seq DESC LIMIT 1"
)
_APPROVALS_OF_INCIDENT = _SELECT_APPROVALS + " WHERE incident_id = :incident_id ORDER BY seq"
_APPROVALS_BY_STATUS = _SELECT_APPROVALS + " WHERE status = :status ORDER BY seq LIMIT :limit"
_APPROVALS_ALL = _SELECT_APPROVALS + " ORDER BY seq DESC LIMIT :limit"
_LATEST_REFUSAL = (
    _SELECT_APPROVALS + " WHERE remedy = :remedy AND target = :target AND status = 'refused' "
    "AND decided_at >= :since ORDER BY seq DESC LIMIT 1"
)
_DECIDE = (
    "UPDATE approvals SET status = :status, decided_by = :by, decided_at = :at, note = :note "
    "WHERE approval_id = :approval_id AND status = :expected"
)
_SETTLE = (
    "UPDATE approvals SET status = :status, note = COALESCE(:note, note), "
    "action_id = COALESCE(:action_id, action_id) "
    "WHERE approval_id = :approval_id AND status IN ('awaiting_approval', 'approved', 'refused')"
)


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """One planned action of a supervised remedy and what people decided about it."""

    approval_id: str
    incident_id: str
    run_id: str
    remedy: str
    target: str
    system: str
    params: dict[str, Any]
    status: str
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    action_id: str | None

    def expired(self, now: datetime) -> bool:
        """True once the approval's time-to-live has passed (it can no longer run)."""
        return now >= self.expires_at

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "approval_id": self.approval_id,
            "incident_id": self.incident_id,
            "remedy": self.remedy,
            "target": self.target,
            "system": self.system,
            "params": self.params,
            "status": self.status,
            "requested_at": rows.to_text(self.requested_at),
            "expires_at": rows.to_text(self.expires_at),
            "decided_by": self.decided_by,
            "decided_at": None if self.decided_at is None else rows.to_text(self.decided_at),
            "note": self.note,
            "action_id": self.action_id,
        }


def _approval_row(row: sqlite3.Row) -> ApprovalRow:
    decided = row["decided_at"]
    return ApprovalRow(
        approval_id=row["approval_id"],
        incident_id=row["incident_id"],
        run_id=row["run_id"],
        remedy=row["remedy"],
        target=row["target"],
        system=row["system"],
        params=json.loads(row["params"]),
        status=row["status"],
        requested_at=rows.from_text(row["requested_at"]),
        expires_at=rows.from_text(row["expires_at"]),
        decided_by=row["decided_by"],
        decided_at=None if decided is None else rows.from_text(decided),
        note=row["note"],
        action_id=row["action_id"],
    )


class JournalApprovals(JournalBase):
    """Supervised mode's approvals: requested by a run, decided by a person, then settled."""

    def request_approval(
        self,
        *,
        incident_id: str,
        run_id: str,
        remedy: str,
        target: str,
        system: str,
        params: Mapping[str, Any],
        ttl: timedelta,
    ) -> ApprovalRow:
        """Record that a planned action waits for a person; return its approval."""
        approval_id = uuid.uuid4().hex
        now = self._clock.now()
        with self._write("request_approval") as conn:
            conn.execute(
                _INSERT_APPROVAL,
                {
                    "approval_id": approval_id,
                    "incident_id": incident_id,
                    "run_id": run_id,
                    "remedy": remedy,
                    "target": target,
                    "system": system,
                    "params": rows.to_json(dict(params)),
                    "requested_at": rows.to_text(now),
                    "expires_at": rows.to_text(now + ttl),
                },
            )
            found = conn.execute(_APPROVAL_BY_ID, {"approval_id": approval_id}).fetchone()
        return _approval_row(found)

    def approval(self, approval_id: str) -> ApprovalRow | None:
        """One approval by id."""
        with self._read("approval") as conn:
            found = conn.execute(_APPROVAL_BY_ID, {"approval_id": approval_id}).fetchone()
        return None if found is None else _approval_row(found)

    def latest_approval(self, incident_id: str, remedy: str, target: str) -> ApprovalRow | None:
        """The newest approval of this incident's action on ``target``."""
        params = {"incident_id": incident_id, "remedy": remedy, "target": target}
        with self._read("latest_approval") as conn:
            found = conn.execute(_LATEST_APPROVAL, params).fetchone()
        return None if found is None else _approval_row(found)

    def latest_refusal(self, remedy: str, target: str, *, since: datetime) -> ApprovalRow | None:
        """The newest refusal of ``remedy`` on ``target`` (any incident) decided since then."""
        params = {"remedy": remedy, "target": target, "since": rows.to_text(since)}
        with self._read("latest_refusal") as conn:
            found = conn.execute(_LATEST_REFUSAL, params).fetchone()
        return None if found is None else _approval_row(found)

    def incident_approvals(self, incident_id: str) -> list[ApprovalRow]:
        """An incident's approvals, oldest first."""
        with self._read("incident_approvals") as conn:
            found = conn.execute(_APPROVALS_OF_INCIDENT, {"incident_id": incident_id}).fetchall()
        return [_approval_row(row) for row in found]

    def approvals(self, *, status: str | None = None, limit: int = 500) -> list[ApprovalRow]:
        """Approvals in one state oldest first, or all of them newest first."""
        with self._read("approvals") as conn:
            if status is None:
                found = conn.execute(_APPROVALS_ALL, {"limit": limit}).fetchall()
            else:
                query = _APPROVALS_BY_STATUS
                found = conn.execute(query, {"status": status, "limit": limit}).fetchall()
        return [_approval_row(row) for row in found]

    def decide_approval(
        self, approval_id: str, *, approve: bool, by: str, note: str | None
    ) -> ApprovalRow:
        """A person approves or refuses a waiting action, in one transaction.

        Refused with :class:`UnknownRecord` for an unknown id, and :class:`StateConflict`
        (saying what happened to it) for one already decided, run or lapsed. A request past
        its time-to-live lapses here, and that is the answer.
        """
        now = self._clock.now()
        with self._write("decide_approval") as conn:
            found = conn.execute(_APPROVAL_BY_ID, {"approval_id": approval_id}).fetchone()
            if found is None:
                raise UnknownRecord(f"no action {approval_id} waits for approval")
            current = _approval_row(found)
            if current.status != "awaiting_approval":
                raise StateConflict(_settled_text(current))
            if current.expired(now):
                # recorded, then refused: the lapse must not roll back with the refusal
                conn.execute(
                    _SETTLE,
                    {
                        "approval_id": approval_id,
                        "status": "lapsed",
                        "note": f"expired at {rows.to_text(current.expires_at)} unanswered",
                        "action_id": None,
                    },
                )
                expired = current
            else:
                expired = None
                conn.execute(
                    _DECIDE,
                    {
                        "approval_id": approval_id,
                        "status": "approved" if approve else "refused",
                        "by": by,
                        "at": rows.to_text(now),
                        "note": note,
                        "expected": "awaiting_approval",
                    },
                )
            done = conn.execute(_APPROVAL_BY_ID, {"approval_id": approval_id}).fetchone()
        if expired is not None:
            raise StateConflict(
                f"action {approval_id} lapsed: it waited past "
                f"{rows.to_text(expired.expires_at)}; the next run asks again if it must"
            )
        return _approval_row(done)

    def settle_approval(
        self,
        approval_id: str,
        *,
        status: str,
        note: str | None = None,
        action_id: str | None = None,
    ) -> None:
        """The engine's last word on an approval: ``ran`` (with its action) or ``lapsed``."""
        if status not in ("ran", "lapsed"):
            raise ValueError(f"an approval settles as ran or lapsed, not {status!r}")
        with self._write("settle_approval") as conn:
            conn.execute(
                _SETTLE,
                {
                    "approval_id": approval_id,
                    "status": status,
                    "note": note,
                    "action_id": action_id,
                },
            )


def _settled_text(row: ApprovalRow) -> str:
    """What already happened to an approval, for a person who asks to decide it again."""
    who = f" by {row.decided_by}" if row.decided_by else ""
    when = f" at {rows.to_text(row.decided_at)}" if row.decided_at else ""
    if row.status == "ran":
        return f"action {row.approval_id} already ran (approved{who}{when}; action {row.action_id})"
    if row.status == "lapsed":
        return f"action {row.approval_id} lapsed: {row.note or 'no longer planned'}"
    return f"action {row.approval_id} was already {row.status}{who}{when}"
