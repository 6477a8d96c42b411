"""The journal's rows and values: frozen row types, and how times and JSON are stored.

Timestamps are ISO-8601 UTC text (``2026-11-16T08:00:00Z``), fixed width so that text order
is time order; JSON columns are TEXT with sorted keys; booleans are INTEGER 0/1. The row
types decode those columns back into aware datetimes, dicts and lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from doorfix.agent.journal.connection import Row
from doorfix.clock import utc

_TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run of a playbook."""

    run_id: str
    playbook: str
    dry_run: bool
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    error: str | None
    #: the shard of centers it worked (``2/8``), None for every center
    shard: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One incident: a cause on a subject, grouping the events that showed it."""

    incident_id: str
    key: str
    cause: str
    subject: dict[str, str]
    outcome: str | None
    open: bool
    event_ids: list[str]
    evidence: dict[str, Any]
    steps: list[dict[str, str]]
    first_seen_at: datetime
    last_seen_at: datetime
    occurrences: int
    run_id: str
    #: why a no_fault incident needs nothing (journal/reasons.py); None otherwise
    reason_code: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One entry of an incident's history: an outcome set, or an action reconciled."""

    incident_id: str
    at: datetime
    outcome: str | None
    run_id: str
    note: str | None


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One remedy applied (or planned) to one target."""

    action_id: str
    run_id: str
    incident_id: str
    remedy: str
    target: str
    system: str
    params: dict[str, Any]
    status: str
    detail: dict[str, Any] | None
    idempotency_key: str
    started_at: datetime
    finished_at: datetime | None


def to_text(when: datetime) -> str:
    """A time as stored: ISO-8601 UTC to the second, ``2026-11-16T08:00:00Z``."""
    return utc(when).strftime(_TS_FORMAT)


def from_text(text: str) -> datetime:
    """A stored time as an aware UTC datetime."""
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else from_text(text)


def to_json(value: object) -> str:
    """A JSON column's text: sorted keys, so equal values store equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def run_row(row: Row) -> RunRow:
    """Decode a row of ``runs``."""
    return RunRow(
        run_id=row["run_id"],
        playbook=row["playbook"],
        dry_run=bool(row["dry_run"]),
        status=row["status"],
        started_at=from_text(row["started_at"]),
        finished_at=_opt_time(row["finished_at"]),
        counts=json.loads(row["counts"]),
        error=row["error"],
        shard=row["shard"],
    )


def incident_row(row: Row) -> IncidentRow:
    """Decode a row of ``incidents``."""
    return IncidentRow(
        incident_id=row["incident_id"],
        key=row["incident_key"],
        cause=row["cause"],
        subject=json.loads(row["subject"]),
        outcome=row["outcome"],
        open=bool(row["is_open"]),
        event_ids=json.loads(row["event_ids"]),
        evidence=json.loads(row["evidence"]),
        steps=json.loads(row["steps"]),
        first_seen_at=from_text(row["first_seen_at"]),
        last_seen_at=from_text(row["last_seen_at"]),
        occurrences=row["occurrences"],
        run_id=row["run_id"],
        reason_code=row["reason_code"],
    )


def action_row(row: Row) -> ActionRow:
    """Decode a row of ``actions``."""
    return ActionRow(
        action_id=row["action_id"],
        run_id=row["run_id"],
        incident_id=row["incident_id"],
        remedy=row["remedy"],
        target=row["target"],
        system=row["system"],
        params=json.loads(row["params"]),
        status=row["status"],
        detail=None if row["detail"] is None else json.loads(row["detail"]),
        idempotency_key=row["idempotency_key"],
        started_at=from_text(row["started_at"]),
        finished_at=_opt_time(row["finished_at"]),
    )


def history_row(row: Row) -> HistoryRow:
    """Decode a row of ``incident_history``."""
    return HistoryRow(
        incident_id=row["incident_id"],
        at=from_text(row["recorded_at"]),
        outcome=row["outcome"],
        run_id=row["run_id"],
        note=row["note"],
    )


def from_json_list(text: str, name: str) -> list[dict[str, Any]]:
    """The list of objects under ``name`` in a stored JSON object (empty if it has none)."""
    value = json.loads(text)
    items = value.get(name, []) if isinstance(value, dict) else []
    return [item for item in items if isinstance(item, dict)]
