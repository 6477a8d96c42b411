"""The period report: what doorfix found and did over a time window, read from the journal.

A *problem* is one incident key (a cause on a subject). The journal opens a new incident each
time a closed problem comes back, so a week holds several incidents of the same problem; the
report lists each problem once, as its newest incident left it, with how many incidents it
had in the period. The chart counts incidents (not problems) per day, because that is the
load the team saw. Every string that reaches the report is scrubbed of the given secrets.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from doorfix.agent.engine.report import Target
from doorfix.agent.journal.store import ActionRow, HistoryRow, IncidentRow, Journal
from doorfix.agent.words import (
    ALREADY_RESOLVED,
    REASON_TITLES,
    REFUSED_AS_DESIGNED,
    SUPERSEDED,
    detail_text,
    reason_code,
    runbook_step,
    sentence,
    subject_names,
    value_text,
)
from doorfix.agent.words import subject_text as words_subject_text
from doorfix.clock import utc
from doorfix.connectors.models import iso_z
from doorfix.durations import format_duration
from doorfix.log import Redactor

#: what scrubs secrets out of a value (strings, and strings inside lists and dicts)
Scrub = Callable[[Any], Any]

#: The report's sections, in reading order (DESIGN.md "Outcomes").
SECTIONS: tuple[str, ...] = (
    "fixed",
    "pending_verification",
    "would_fix",
    "awaiting_approval",
    "needs_human",
    "failed",
    "deferred",
    "no_fault",
)
#: The text, markdown and HTML reports split ``no_fault`` by its ``reason_code``: an
#: incident whose fault was already gone is never listed as refused as designed.
LISTED_SECTIONS: tuple[str, ...] = (
    *SECTIONS[:-1],
    ALREADY_RESOLVED,
    SUPERSEDED,
    REFUSED_AS_DESIGNED,
    "no_fault",
)
#: How each section is titled for a person.
SECTION_TITLES: Mapping[str, str] = {
    "fixed": "Fixed and verified",
    "pending_verification": "Fixed, pending verification",
    "would_fix": "Would fix (dry-run)",
    "awaiting_approval": "Awaiting approval",
    "needs_human": "Needs a person",
    "failed": "Failed",
    "deferred": "Deferred",
    "no_fault": "No fault",
    **REASON_TITLES,
}
#: an incident whose outcome was never recorded (a run interrupted mid-incident)
OPEN = "open"
#: the chart covers at most this many days (the newest ones)
MAX_CHART_DAYS = 92
#: incidents read for one report; a period beyond this reports the newest ones only
MAX_INCIDENTS = 100_000
#: how long after an incident was last seen its outcome may still change (a pending fix is
#: verified or escalated within ``pending_escalate_hours``, 24 h by default)
CHANGE_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True)
class ActionEntry:
    """One action the journal recorded for an incident."""

    remedy: str
    target: str
    system: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "remedy": self.remedy,
            "target": self.target,
            "system": self.system,
            "status": self.status,
            "started_at": iso_z(self.started_at, whole_seconds=True),
            "finished_at": _opt_iso(self.finished_at),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ProblemEntry:
    """One problem of the period, as its newest incident left it."""

    incident_id: str
    cause: str
    outcome: str
    subject: Mapping[str, str]
    #: the person's checklist (``who``, ``text``) for needs_human
    steps: tuple[Mapping[str, str], ...]
    #: why the outcome is what it is (the newest history note)
    note: str
    first_seen_at: datetime
    last_seen_at: datetime
    #: incidents of this problem in the period (1 unless it came back)
    incidents: int
    #: events grouped into those incidents
    occurrences: int
    actions: tuple[ActionEntry, ...] = ()
    fixed_at: datetime | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: the journal's ``reason_code`` of the newest incident (None before migration 8 wrote it)
    recorded_reason: str | None = None

    @property
    def reason_code(self) -> str | None:
        """Why a ``no_fault`` problem needs nothing (docs/causes.md); None for other outcomes."""
        if self.outcome != "no_fault":
            return None
        return self.recorded_reason or reason_code(self.outcome, self.note)

    @property
    def section(self) -> str:
        """The report section it is listed in: its outcome, no_fault split by reason."""
        return (self.reason_code or self.outcome) if self.outcome == "no_fault" else self.outcome

    @property
    def who(self) -> tuple[str, ...]:
        """Who must act, in checklist order, each once."""
        return tuple(dict.fromkeys(s.get("who", "") for s in self.steps if s.get("who")))

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "incident_id": self.incident_id,
            "cause": self.cause,
            "outcome": self.outcome,
            "subject": dict(self.subject),
            "names": subject_names(self.subject, self.evidence),
            "reason_code": self.reason_code,
            "runbook_step": runbook_step(self.cause),
            "who": list(self.who),
            "steps": [dict(s) for s in self.steps],
            "note": sentence(self.note) if self.note else "",
            "first_seen_at": iso_z(self.first_seen_at, whole_seconds=True),
            "last_seen_at": iso_z(self.last_seen_at, whole_seconds=True),
            "fixed_at": _opt_iso(self.fixed_at),
            "incidents": self.incidents,
            "occurrences": self.occurrences,
            "actions": [a.as_dict() for a in self.actions],
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class DayCount:
    """Incidents first seen on one UTC day, per outcome."""

    day: date
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        """Incidents of the day."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class TimeToFix:
    """Mean time from an incident's first event to its verified fix."""

    fixes: int
    mean: timedelta | None

    def text(self) -> str:
        """``1 h 05 min over 3 fixes``, or a dash when nothing was fixed."""
        if self.mean is None:
            return "no verified fix in the period"
        return f"{format_duration(self.mean)} over {self.fixes} verified fix(es)"


@dataclass(frozen=True)
class ApprovalEntry:
    """One supervised action and what a person decided about it."""

    approval_id: str
    remedy: str
    target: str
    status: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str

    def text(self) -> str:
        """One line: the action, its state, who decided and when, the note."""
        line = f"{self.remedy} {self.target}: {self.status}"
        if self.decided_by:
            line += f" by {self.decided_by}" if self.status == "refused" else ""
            line += f", approved by {self.decided_by}" if self.status != "refused" else ""
        if self.decided_at:
            line += f" at {iso_z(self.decided_at, whole_seconds=True)}"
        return line + (f" ({self.note})" if self.note else "")

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "approval_id": self.approval_id,
            "remedy": self.remedy,
            "target": self.target,
            "status": self.status,
            "requested_at": iso_z(self.requested_at, whole_seconds=True),
            "decided_by": self.decided_by,
            "decided_at": _opt_iso(self.decided_at),
            "note": self.note,
        }


@dataclass(frozen=True)
class PeriodReport:
    """What doorfix found and did between ``since`` and ``until``."""

    title: str
    since: datetime
    until: datetime
    journal: str
    problems: tuple[ProblemEntry, ...]
    #: problems per current outcome
    by_outcome: Mapping[str, int]
    #: cause -> outcome -> problems
    by_cause: Mapping[str, Mapping[str, int]]
    #: remedy -> action status -> actions
    by_remedy: Mapping[str, Mapping[str, int]]
    time_to_fix: TimeToFix
    per_day: tuple[DayCount, ...]
    #: playbook -> run status -> runs
    runs: Mapping[str, Mapping[str, int]]
    #: incidents (not problems) in the period
    incident_count: int
    #: ``sandbox`` when the journal is the embedded sandbox's (every rendering says so)
    target: Target = "live"
    #: supervised mode: the approvals requested or decided in the period, oldest first
    approvals: tuple[ApprovalEntry, ...] = ()

    def section(self, outcome: str) -> list[ProblemEntry]:
        """The problems whose current outcome is ``outcome``."""
        return [p for p in self.problems if p.outcome == outcome]

    def listed(self, section: str) -> list[ProblemEntry]:
        """The problems listed under ``section`` (:data:`LISTED_SECTIONS`)."""
        return [p for p in self.problems if p.section == section]

    @property
    def by_section(self) -> dict[str, int]:
        """Problems per listed section, in reading order (no_fault split by reason)."""
        counts = Counter(p.section for p in self.problems)
        order = [*LISTED_SECTIONS, *sorted(set(counts) - set(LISTED_SECTIONS))]
        return {s: counts[s] for s in order if counts[s]}

    @property
    def actions(self) -> list[tuple[ProblemEntry, ActionEntry]]:
        """Every action of the listed problems, oldest first."""
        pairs = [(p, a) for p in self.problems for a in p.actions]
        return sorted(pairs, key=lambda pair: pair[1].started_at)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: one object, sections keyed by outcome."""
        return {
            "title": self.title,
            "target": self.target,
            "since": iso_z(self.since, whole_seconds=True),
            "until": iso_z(self.until, whole_seconds=True),
            "journal": self.journal,
            "counts": dict(self.by_outcome),
            "counts_by_reason": {
                code: n for code, n in self.by_section.items() if code in REASON_TITLES
            },
            "incident_count": self.incident_count,
            "by_cause": {k: dict(v) for k, v in self.by_cause.items()},
            "by_remedy": {k: dict(v) for k, v in self.by_remedy.items()},
            "mean_time_to_fix_seconds": (
                None
                if self.time_to_fix.mean is None
                else round(self.time_to_fix.mean.total_seconds())
            ),
            "verified_fixes": self.time_to_fix.fixes,
            "per_day": [{"day": d.day.isoformat(), "counts": dict(d.counts)} for d in self.per_day],
            "runs": {k: dict(v) for k, v in self.runs.items()},
            "sections": {o: [p.as_dict() for p in self.section(o)] for o in _present(self)},
            "approvals": [a.as_dict() for a in self.approvals],
        }


def build_report(
    journal: Journal,
    *,
    since: datetime,
    until: datetime,
    title: str = "doorfix",
    redact: Iterable[str] = (),
    target: Target = "live",
) -> PeriodReport:
    """Read the journal and build the report of incidents seen between ``since`` and ``until``."""
    since, until = utc(since), utc(until)
    scrub = Redactor(redact).scrub
    history = _Histories(journal)
    rows = _rows(journal, history, since, until)
    actions = _actions_by_incident(journal, rows, until)
    fixed_at = {r.incident_id: _fixed_at(history, r) for r in rows if r.outcome == "fixed"}
    groups: dict[str, list[IncidentRow]] = defaultdict(list)
    for row in rows:  # newest first, so each group's first row is its newest incident
        groups[row.key].append(row)
    problems = [_problem(history, group, actions, fixed_at, scrub) for group in groups.values()]
    problems.sort(key=lambda p: (_section_rank(p.outcome), -p.last_seen_at.timestamp()))
    return PeriodReport(
        title=title,
        since=since,
        until=until,
        journal=journal.path,
        problems=tuple(problems),
        by_outcome=_ordered(Counter(p.outcome for p in problems)),
        by_cause=_by_cause(problems),
        by_remedy=_by_remedy(a for group in actions.values() for a in group),
        time_to_fix=_time_to_fix(rows, fixed_at, since, until),
        per_day=_per_day(rows, since, until),
        runs=_runs(journal, since, until),
        incident_count=len(rows),
        target=target,
        approvals=_approvals(journal, since, until, scrub),
    )


def _approvals(
    journal: Journal, since: datetime, until: datetime, scrub: Scrub
) -> tuple[ApprovalEntry, ...]:
    """The approvals requested or decided between ``since`` and ``until``, oldest first."""
    out = []
    for a in reversed(journal.approvals(limit=10_000)):
        moments = [a.requested_at] + ([a.decided_at] if a.decided_at else [])
        if not any(since <= m <= until for m in moments):
            continue
        out.append(
            ApprovalEntry(
                approval_id=a.approval_id,
                remedy=a.remedy,
                target=scrub(a.target),
                status=a.status,
                requested_at=a.requested_at,
                decided_by=scrub(a.decided_by),
                decided_at=a.decided_at,
                note=scrub(a.note or ""),
            )
        )
    return tuple(out)


def first_event_at(row: IncidentRow) -> datetime:
    """When the problem was first seen: the first event's time if recorded, else the journal's."""
    raw = row.evidence.get("first_seen")
    if isinstance(raw, str):
        try:
            seen = utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        except ValueError:
            return row.first_seen_at
        return min(seen, row.first_seen_at)
    return row.first_seen_at


def subject_text(subject: Mapping[str, str], evidence: Mapping[str, Any] | None = None) -> str:
    """``user u-7, lock 701 (l-3)``: see :func:`doorfix.agent.words.subject_text`."""
    return words_subject_text(subject, evidence)


# building blocks ---------------------------------------------------------------------------


def _opt_iso(when: datetime | None) -> str | None:
    return None if when is None else iso_z(when, whole_seconds=True)


def _section_rank(outcome: str) -> int:
    return SECTIONS.index(outcome) if outcome in SECTIONS else len(SECTIONS)


def _present(report: PeriodReport) -> list[str]:
    extra = sorted({p.outcome for p in report.problems} - set(SECTIONS))
    return [*SECTIONS, *extra]


def _ordered(counts: Mapping[str, int]) -> dict[str, int]:
    return {k: counts[k] for k in sorted(counts, key=lambda o: (_section_rank(o), o))}


class _Histories:
    """Each incident's history, read from the journal once."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._read: dict[str, list[HistoryRow]] = {}

    def add(self, incident_id: str, entries: list[HistoryRow]) -> None:
        """Give an incident the journal does not hold (a dry-run's) its history."""
        self._read[incident_id] = entries

    def __call__(self, incident_id: str) -> list[HistoryRow]:
        if incident_id not in self._read:
            self._read[incident_id] = self._journal.history(incident_id)
        return self._read[incident_id]


def _rows(
    journal: Journal, history: _Histories, since: datetime, until: datetime
) -> list[IncidentRow]:
    """Incidents seen in the period, and older ones whose outcome changed in it (verified)."""
    rows = []
    for row in journal.incidents(since=since - CHANGE_LOOKBACK, limit=MAX_INCIDENTS):
        if row.first_seen_at > until:
            continue
        if row.last_seen_at >= since or any(
            since <= h.at <= until for h in history(row.incident_id)
        ):
            rows.append(row)
    # what the dry-runs would have fixed: kept only in their runs' reports
    for row, entry in journal.dry_run_incidents(since=since, limit=MAX_INCIDENTS):
        if row.first_seen_at <= until:
            history.add(row.incident_id, [entry])
            rows.append(row)
    return rows


def _actions_by_incident(
    journal: Journal, rows: Sequence[IncidentRow], until: datetime
) -> dict[str, list[ActionRow]]:
    """One read: every action since the oldest incident's first sight, grouped by incident."""
    wanted = {r.incident_id for r in rows}
    out: dict[str, list[ActionRow]] = defaultdict(list)
    if not rows:
        return out
    oldest = min(r.first_seen_at for r in rows)
    for action in journal.actions(since=oldest):
        if action.incident_id in wanted and action.started_at <= until:
            out[action.incident_id].append(action)
    return out


def _fixed_at(history: _Histories, row: IncidentRow) -> datetime | None:
    for entry in history(row.incident_id):
        if entry.outcome == "fixed":
            return entry.at
    return None


def _note(history: _Histories, row: IncidentRow) -> str:
    for entry in reversed(history(row.incident_id)):
        if entry.note:
            return entry.note
    return ""


def _action_entry(action: ActionRow, scrub: Scrub) -> ActionEntry:
    detail = ""
    if action.detail:
        error = action.detail.get("error")
        detail = value_text(error) if error else detail_text(action.detail)
    return ActionEntry(
        remedy=action.remedy,
        target=scrub(action.target),
        system=action.system,
        status=action.status,
        started_at=action.started_at,
        finished_at=action.finished_at,
        detail=scrub(detail),
    )


def _problem(
    history: _Histories,
    group: Sequence[IncidentRow],
    actions: Mapping[str, Sequence[ActionRow]],
    fixed_at: Mapping[str, datetime | None],
    scrub: Scrub,
) -> ProblemEntry:
    newest = group[0]
    own = sorted(
        (a for row in group for a in actions.get(row.incident_id, ())),
        key=lambda a: a.started_at,
    )
    return ProblemEntry(
        incident_id=newest.incident_id,
        cause=newest.cause,
        outcome=newest.outcome or OPEN,
        subject=scrub(dict(newest.subject)),
        steps=tuple(scrub([dict(s) for s in newest.steps])),
        note=scrub(_note(history, newest)),
        first_seen_at=min(first_event_at(r) for r in group),
        last_seen_at=max(r.last_seen_at for r in group),
        incidents=len(group),
        occurrences=sum(r.occurrences for r in group),
        actions=tuple(_action_entry(a, scrub) for a in own),
        fixed_at=fixed_at.get(newest.incident_id),
        evidence=scrub(dict(newest.evidence)),
        recorded_reason=newest.reason_code,
    )


def _by_cause(problems: Iterable[ProblemEntry]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for p in problems:
        table[p.cause][p.outcome] += 1
    return {cause: _ordered(table[cause]) for cause in sorted(table)}


def _by_remedy(actions: Iterable[ActionRow]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for a in actions:
        table[a.remedy][a.status] += 1
    return {remedy: dict(sorted(table[remedy].items())) for remedy in sorted(table)}


def _time_to_fix(
    rows: Iterable[IncidentRow],
    fixed_at: Mapping[str, datetime | None],
    since: datetime,
    until: datetime,
) -> TimeToFix:
    spans = []
    for row in rows:
        fixed = fixed_at.get(row.incident_id)
        if fixed is not None and since <= fixed <= until:
            spans.append(max(timedelta(0), fixed - first_event_at(row)))
    if not spans:
        return TimeToFix(0, None)
    return TimeToFix(len(spans), sum(spans, timedelta(0)) / len(spans))


def _per_day(rows: Iterable[IncidentRow], since: datetime, until: datetime) -> tuple[DayCount, ...]:
    first = max(since.date(), until.date() - timedelta(days=MAX_CHART_DAYS - 1))
    last = until.date()
    counts: dict[date, Counter[str]] = {}
    day = first
    while day <= last:
        counts[day] = Counter()
        day += timedelta(days=1)
    for row in rows:
        seen = row.first_seen_at.astimezone(UTC).date()
        if seen in counts:
            counts[seen][row.outcome or OPEN] += 1
    return tuple(DayCount(d, _ordered(c)) for d, c in counts.items())


def _runs(journal: Journal, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for run in journal.runs(since=since, limit=MAX_INCIDENTS):
        if run.started_at <= until:
            table[run.playbook][run.status] += 1
    return {playbook: dict(sorted(table[playbook].items())) for playbook in sorted(table)}
