"""The journal's marks by people: an incident marked ``handled`` (who, when, a note).

A ``needs_human`` incident is closed by doorfix when it writes the checklist; the person who
then does what it says marks it handled in the supervisors' console. The mark is one row,
written once: a second mark of the same incident is refused, never overwritten.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from doorfix.agent.journal import rows
from doorfix.agent.journal.base import JournalBase
from doorfix.errors import StateConflict, UnknownRecord

__all__ = ["JournalMarks", "MarkRow"]

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
