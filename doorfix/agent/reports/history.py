"""A subject's history: every incident and action the journal holds for a user, lock, door,
person or visitor, in the order they happened.

The journal's timestamps are whole seconds, so an incident opened, acted on and closed in one
second is ordered the way the engine writes it: seen, then its actions, then its outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape

from doorfix.agent.journal.store import (
    ActionRow,
    ApprovalRow,
    HistoryRow,
    IncidentRow,
    Journal,
    MarkRow,
)
from doorfix.agent.words import (
    REASON_TITLES,
    reason_code,
    runbook_step,
    sentence,
    subject_names,
    subject_text,
    value_text,
)
from doorfix.connectors.models import iso_z
from doorfix.log import Redactor
from doorfix.text import printable

#: The subject keys a history can be asked for (DESIGN.md "Run report", ``subject``).
SUBJECT_KEYS: tuple[str, ...] = (
    "user_id",
    "lock_id",
    "door_id",
    "personnel_id",
    "visitor_id",
    "center_id",
)
#: incidents read for one subject; the newest ones win past this
MAX_INCIDENTS = 1000

EntryKind = Literal["seen", "approval", "action", "outcome", "mark"]
_RANK: Mapping[str, int] = {"seen": 0, "approval": 1, "action": 2, "outcome": 3, "mark": 4}


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a subject's history."""

    at: datetime
    kind: EntryKind
    incident_id: str
    cause: str
    text: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form."""
        return {
            "at": iso_z(self.at, whole_seconds=True),
            "kind": self.kind,
            "incident_id": self.incident_id,
            "cause": self.cause,
            "text": self.text,
        }


@dataclass(frozen=True)
class IncidentHistory:
    """One incident with its outcome history and its actions, each oldest first."""

    incident: IncidentRow
    history: tuple[HistoryRow, ...]
    actions: tuple[ActionRow, ...]
    #: supervised mode's approvals of its actions, and people's marks (handled)
    approvals: tuple[ApprovalRow, ...] = ()
    marks: tuple[MarkRow, ...] = ()

    def entries(self, scrub: Any) -> list[TimelineEntry]:
        """The incident's lines: seen, each action, each outcome."""
        inc = self.incident
        events = f"{inc.occurrences} event(s)" if inc.event_ids else "no event (ticket or scan)"
        out = [
            TimelineEntry(
                inc.first_seen_at,
                "seen",
                inc.incident_id,
                inc.cause,
                scrub(f"{inc.cause} seen on {subject_text(inc.subject, inc.evidence)}: {events}"),
            )
        ]
        for action in self.actions:
            text = f"{action.remedy} on {action.target} ({action.system}): {action.status}"
            if action.detail and action.detail.get("error"):
                text += f": {value_text(action.detail['error'])}"
            out.append(
                TimelineEntry(action.started_at, "action", inc.incident_id, inc.cause, scrub(text))
            )
        for entry in self.history:
            code = reason_code(entry.outcome, entry.note)
            label = REASON_TITLES[code].lower() if code else ""
            said = (entry.note or "").lower().startswith(label.split(" ")[0]) if label else True
            why = "" if said else f" ({label})"
            note = f": {sentence(entry.note)}" if entry.note else ""
            text = f"outcome {entry.outcome or '-'}{why}{note}"
            out.append(TimelineEntry(entry.at, "outcome", inc.incident_id, inc.cause, scrub(text)))
        for approval in self.approvals:
            out.append(
                TimelineEntry(
                    approval.decided_at or approval.requested_at,
                    "approval",
                    inc.incident_id,
                    inc.cause,
                    scrub(approval_text(approval)),
                )
            )
        for mark in self.marks:
            text = f"marked {mark.mark} by {mark.by}: {mark.note}"
            out.append(TimelineEntry(mark.at, "mark", inc.incident_id, inc.cause, scrub(text)))
        return out

    def as_dict(self, scrub: Any) -> dict[str, Any]:
        """The JSON form."""
        inc = self.incident
        return {
            "incident_id": inc.incident_id,
            "cause": inc.cause,
            "outcome": inc.outcome,
            "open": inc.open,
            "subject": dict(inc.subject),
            "names": subject_names(inc.subject, inc.evidence),
            "reason_code": reason_code(
                inc.outcome, self.history[-1].note if self.history else None
            ),
            "runbook_step": runbook_step(inc.cause),
            "first_seen_at": iso_z(inc.first_seen_at, whole_seconds=True),
            "last_seen_at": iso_z(inc.last_seen_at, whole_seconds=True),
            "occurrences": inc.occurrences,
            "steps": scrub([dict(s) for s in inc.steps]),
            "history": [
                {
                    "at": iso_z(h.at, whole_seconds=True),
                    "outcome": h.outcome,
                    "reason_code": reason_code(h.outcome, h.note),
                    "note": scrub(h.note),
                }
                for h in self.history
            ],
            "approvals": [scrub(a.as_dict()) for a in self.approvals],
            "marks": [
                {
                    "mark": m.mark,
                    "by": scrub(m.by),
                    "note": scrub(m.note),
                    "at": iso_z(m.at, whole_seconds=True),
                }
                for m in self.marks
            ],
            "actions": [
                {
                    "remedy": a.remedy,
                    "target": scrub(a.target),
                    "system": a.system,
                    "status": a.status,
                    "started_at": iso_z(a.started_at, whole_seconds=True),
                    "finished_at": None
                    if a.finished_at is None
                    else iso_z(a.finished_at, whole_seconds=True),
                    "detail": scrub(a.detail),
                }
                for a in self.actions
            ],
        }


@dataclass(frozen=True)
class SubjectHistory:
    """Everything the journal holds for one subject, oldest incident first."""

    subject: Mapping[str, str]
    incidents: tuple[IncidentHistory, ...]
    redact: tuple[str, ...] = ()

    def scrub(self, value: Any) -> Any:
        """``value`` with the history's secrets removed (strings, lists and dicts)."""
        return Redactor(self.redact).scrub(value)

    def timeline(self) -> list[TimelineEntry]:
        """Every line of every incident, in the order it happened."""
        keyed = [
            ((entry.at, order, _RANK[entry.kind], n), entry)
            for order, item in enumerate(self.incidents)
            for n, entry in enumerate(item.entries(self.scrub))
        ]
        return [entry for _, entry in sorted(keyed, key=lambda pair: pair[0])]

    @property
    def action_count(self) -> int:
        """Actions over all incidents."""
        return sum(len(i.actions) for i in self.incidents)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: the incidents with their history and actions, and the timeline."""
        return {
            "subject": dict(self.subject),
            "incidents": [i.as_dict(self.scrub) for i in self.incidents],
            "timeline": [e.as_dict() for e in self.timeline()],
        }


def approval_text(approval: ApprovalRow) -> str:
    """One line about an approval: the action, its state, who decided, when, the note."""
    text = f"{approval.remedy} on {approval.target} {approval.status}"
    text += f" (approval {approval.approval_id})"
    if approval.decided_by:
        text += f" by {approval.decided_by}"
    if approval.decided_at:
        text += f" at {iso_z(approval.decided_at, whole_seconds=True)}"
    if approval.note:
        text += f": {approval.note}"
    return text


def subject_history(
    journal: Journal,
    subject: Mapping[str, str],
    *,
    redact: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> SubjectHistory:
    """Every incident whose subject has all of ``subject``'s ids, with its history and actions.

    ``since``/``until``: only incidents seen in that window (last seen at or after ``since``,
    first seen at or before ``until``).
    """
    unknown = sorted(set(subject) - set(SUBJECT_KEYS))
    if unknown:
        raise ValueError(f"unknown subject key(s) {unknown}; expected {list(SUBJECT_KEYS)}")
    if not subject:
        raise ValueError("a history needs at least one subject id")
    rows = [
        row
        for row in reversed(journal.incidents(subject=subject, limit=MAX_INCIDENTS))
        if (since is None or row.last_seen_at >= since)
        and (until is None or row.first_seen_at <= until)
    ]
    # what dry-runs would have fixed is kept only in their runs' reports
    dry = dict(
        (row.incident_id, (row, entry))
        for row, entry in journal.dry_run_incidents(
            since=since or datetime.min.replace(tzinfo=UTC), subject=subject, limit=MAX_INCIDENTS
        )
    )
    rows.extend(
        row
        for row, _ in reversed(list(dry.values()))
        if until is None or row.first_seen_at <= until
    )
    rows.sort(key=lambda r: r.first_seen_at)  # stable: same-second incidents keep their order
    items = tuple(
        IncidentHistory(row, (dry[row.incident_id][1],), ())
        if row.incident_id in dry
        else IncidentHistory(
            row,
            tuple(journal.history(row.incident_id)),
            tuple(journal.actions(incident_id=row.incident_id)),
            tuple(journal.incident_approvals(row.incident_id)),
            tuple(journal.marks(row.incident_id)),
        )
        for row in rows
    )
    return SubjectHistory(dict(subject), items, tuple(redact))


def render_history_json(history: SubjectHistory) -> str:
    """The history as one JSON object."""
    return json.dumps(history.as_dict(), indent=2)


def render_history_text(history: SubjectHistory, console: Console) -> None:
    """Print the history for a person: one block per incident, its lines in time order."""
    newest = history.incidents[-1].incident.evidence if history.incidents else None
    who = escape(printable(subject_text(history.subject, newest)))
    console.print(
        f"[bold]History of {who}[/bold]: {len(history.incidents)} incident(s), "
        f"{history.action_count} action(s)"
    )
    if not history.incidents:
        console.print("Nothing in the journal for this subject.")
        return
    by_incident: dict[str, list[TimelineEntry]] = {}
    for entry in history.timeline():
        by_incident.setdefault(entry.incident_id, []).append(entry)
    for item in history.incidents:
        inc = item.incident
        state = inc.outcome or "open"
        console.print()
        console.print(
            f"[bold]{escape(printable(inc.cause))}[/bold] {escape(f'[{state}]')} "
            f"{escape(printable(subject_text(inc.subject, inc.evidence)))} "
            f"(incident {inc.incident_id}; runbook: {escape(printable(runbook_step(inc.cause)))})",
            highlight=False,
        )
        for entry in by_incident.get(inc.incident_id, []):
            when = iso_z(entry.at, whole_seconds=True)
            console.print(f"  {when}  {printable(entry.text)}", markup=False)
        for n, step in enumerate(inc.steps, 1):
            text = history.scrub(step.get("text", ""))
            line = f"  step {n} ({step.get('who', '?')}): {text}"
            console.print(printable(line), markup=False)
