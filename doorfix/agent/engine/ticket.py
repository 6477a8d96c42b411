"""The ticket path: "user A cannot open lock X (or door Y)", when no event exists.

Every check of both runbooks runs for the pair, through the same run machinery as a playbook
(journal, guards, report), read-only unless ``fix`` is asked for. A person asking always gets
an answer, whatever the daemon reported before: the checks made and their results, the
diagnosis and its checklist, or "no fault found" when every check passes, and the journal's
incident that already covers the case (:class:`CoveredBy`), if any. Repeat-quietening is the
daemon's, never the ticket's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.text import Text

from doorfix.agent.engine.candidates import Batch, Candidate
from doorfix.agent.engine.collect_aca import UnresolvedError, lock_candidate, lock_facts
from doorfix.agent.engine.collect_cloud import door_log_facts
from doorfix.agent.engine.fetch import RunFetcher
from doorfix.agent.engine.report import RunReport, render_table
from doorfix.agent.engine.run import execute_run
from doorfix.agent.engine.state import Agent, RunState
from doorfix.agent.journal.store import Journal
from doorfix.connectors.models import epoch_seconds, iso_z
from doorfix.connectors.models.cloud import DoorLog
from doorfix.playbooks.door_logs import playbook as door_logs
from doorfix.playbooks.ticket import (
    CheckResult,
    all_pass,
    credential_check,
    door_checks,
    lock_checks,
    unassigned_tags,
)
from doorfix.playbooks.types import Cause, Diagnosis
from doorfix.text import printable

#: how many incidents of the subject the covering-incident lookup reads
_LOOKUP = 50


@dataclass(frozen=True)
class CoveredBy:
    """The journal's incident that already covers the ticket's diagnosis."""

    incident_id: str
    cause: str
    outcome: str | None
    open: bool
    first_seen_at: str
    last_seen_at: str
    #: when its outcome was recorded (None before it has one)
    decided_at: str | None

    def as_dict(self) -> dict[str, Any]:
        """The report's ``covered_by`` object."""
        return {
            "incident_id": self.incident_id,
            "cause": self.cause,
            "outcome": self.outcome,
            "open": self.open,
            "first_seen_at": self.first_seen_at,
            "last_seen_at": self.last_seen_at,
            "decided_at": self.decided_at,
        }


@dataclass
class TicketReport(RunReport):
    """A ticket's run report, with the checks made, the diagnosis and the covering incident."""

    #: what was asked: ``user_id`` and ``lock_id`` or ``door_id``
    ticket: dict[str, str] = field(default_factory=dict)
    #: the cause found (``None`` when no fault was found)
    cause: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    covered_by: CoveredBy | None = None

    @property
    def no_fault_found(self) -> bool:
        """Every check passed."""
        return self.cause is None

    def as_dict(self) -> dict[str, Any]:
        """The run report plus ``ticket, cause, no_fault_found, checks, covered_by``."""
        out = super().as_dict()
        out["ticket"] = dict(self.ticket)
        out["cause"] = self.cause
        out["no_fault_found"] = self.no_fault_found
        out["checks"] = [c.as_dict() for c in self.checks]
        out["covered_by"] = self.covered_by.as_dict() if self.covered_by else None
        return out


def render_ticket(report: TicketReport, console: Console) -> None:
    """Print a ticket for a person: the verdict, each check, the run's table, the coverage."""
    asked = " ".join(f"{k.removesuffix('_id')}={v}" for k, v in report.ticket.items())
    verdict = "no fault found" if report.no_fault_found else f"diagnosis {report.cause}"
    console.print(Text.assemble(("ticket ", "bold"), printable(f"{asked}: {verdict}")))
    console.print("checks:")
    for check in report.checks:
        style = {"pass": "green", "fail": "red"}.get(check.result, "dim")
        console.print(
            Text.assemble(
                "  ", (f"{check.result:<7}", style), printable(f" {check.name}: {check.detail}")
            )
        )
    covered = report.covered_by
    if covered is not None:
        state = covered.outcome or "undecided"
        when = covered.decided_at or covered.last_seen_at
        line = (
            f"already covered by incident {covered.incident_id} ({covered.cause}, {state}, "
            f"{when}; first seen {covered.first_seen_at})"
        )
        console.print(Text(printable(line), style="cyan"))
    render_table(report, console)


def covering_incident(journal: Journal, diagnosis: Diagnosis, run_id: str) -> CoveredBy | None:
    """The newest journal incident that covers ``diagnosis``: same cause, a subject within it.

    An incident about the lock alone (the hardware scan) or the door alone covers the ticket of
    any user there; one naming another person does not. What a dry-run (a read-only ticket
    included) recorded, a plan (``would_fix``) and this run's own incident are not coverage;
    where both name a presented credential they must agree.
    """
    subject = diagnosis.subject.as_dict()
    where: dict[str, str] = {k: subject[k] for k in ("lock_id", "door_id") if k in subject}
    credential = diagnosis.evidence.get("credential_value")
    for row in journal.incidents(
        cause=diagnosis.cause.value, subject=where or subject, limit=_LOOKUP
    ):
        if row.run_id == run_id or row.outcome in (None, "would_fix"):
            continue
        opened_by = journal.run(row.run_id)
        if opened_by is None or opened_by.dry_run:
            continue
        if any(subject.get(k) != v for k, v in row.subject.items()):
            continue
        shown = row.evidence.get("credential_value")
        if credential and shown and shown != credential:
            continue
        history = [h for h in journal.history(row.incident_id) if h.outcome is not None]
        return CoveredBy(
            incident_id=row.incident_id,
            cause=row.cause,
            outcome=row.outcome,
            open=row.open,
            first_seen_at=iso_z(row.first_seen_at, whole_seconds=True),
            last_seen_at=iso_z(row.last_seen_at, whole_seconds=True),
            decided_at=iso_z(history[-1].at, whole_seconds=True) if history else None,
        )
    return None


@dataclass
class _Found:
    """What the ticket's collector found, for the report."""

    checks: tuple[CheckResult, ...] = ()
    cause: Cause | None = None
    covered_by: CoveredBy | None = None


async def diagnose_ticket(
    agent: Agent,
    user_id: str,
    *,
    lock_id: str | None = None,
    door_id: str | None = None,
    fix: bool = False,
) -> TicketReport:
    """Diagnose one user at one lock or door; act only when ``fix`` is true.

    Raises :class:`UnresolvedError` (its ``field`` names the id) when the user, the lock or the
    door does not exist.
    """
    if (lock_id is None) == (door_id is None):
        raise ValueError("give exactly one of lock_id and door_id")
    window = timedelta(hours=agent.settings.guards.lookback_hours)
    found = _Found()

    async def collect(run: RunState, fetcher: RunFetcher) -> Batch:
        if lock_id is not None:
            facts = await lock_facts(fetcher, user_id, lock_id, (), window=window)
            candidate = lock_candidate(facts, agent.policy, fetcher.now)
            found.checks = lock_checks(facts, fetcher.now, agent.policy)
        else:
            assert door_id is not None  # noqa: S101 - checked above
            candidate, found.checks = await _door_candidate(run, fetcher, user_id, door_id)
        diagnosis = candidate.diagnosis
        if diagnosis.cause is Cause.UNKNOWN and all_pass(found.checks):
            return Batch()  # no fault found: nothing to record, nothing to fix
        found.cause = diagnosis.cause
        found.covered_by = covering_incident(run.journal, diagnosis, run.report.run_id)
        return Batch(candidates=[candidate])

    report = await execute_run(agent, "diagnose", collect, dry_run=not fix, quiet_repeats=False)
    ticket = {"user_id": user_id}
    ticket |= {"lock_id": lock_id} if lock_id is not None else {"door_id": door_id or ""}
    base = {f.name: getattr(report, f.name) for f in fields(RunReport)}
    return TicketReport(
        **base,
        ticket=ticket,
        cause=found.cause.value if found.cause is not None else None,
        # a check's detail quotes vendor text (inventory names): one redactor, like evidence
        checks=[replace(c, detail=agent.clients.redactor.redact(c.detail)) for c in found.checks],
        covered_by=found.covered_by,
    )


async def _door_candidate(
    run: RunState, fetcher: RunFetcher, user_id: str, door_id: str
) -> tuple[Candidate, tuple[CheckResult, ...]]:
    user = await fetcher.user(user_id)
    if user is None:
        raise UnresolvedError(f"ACA user {user_id} does not exist")
    center = await fetcher.center(user.center_id)
    if center is None or not center.cloud_project_id:
        raise UnresolvedError(
            f"the center of user {user_id} has no cloud project", field="center_id"
        )
    project = await fetcher.project(center.cloud_project_id)
    door = project.doors.get(door_id)
    if door is None:
        raise UnresolvedError(
            f"door {door_id} is not in cloud project {project.project_id}", field="door_id"
        )
    person = (
        await fetcher.personnel(project.project_id, user.cloud_personnel_id)
        if user.cloud_personnel_id
        else None
    )
    credential = credential_check(user, person)
    missing = unassigned_tags(user, person)
    held = [t.number for t in user.tags if t.state == "assigned" and t.number not in missing]
    # no log exists: a probe as the device would log it, with an empty Detail so the playbook
    # runs every check of the runbook. A card the cloud does not assign to the person is
    # logged with no person: that is what the credential check of the runbook sees.
    value = missing[0] if missing else (held[0] if held else "")
    probe = DoorLog(
        log_id=0,
        capture_time=epoch_seconds(fetcher.now),
        door_id=door.door_id,
        door_name=door.name,
        device_model=door.device.model,
        firmware=door.device.firmware,
        result="failure",
        detail="",
        credential_type="card",
        credential_value=value,
        personnel_id=None if missing or person is None else person.personnel_id,
        visitor_id=None,
        initiator="doorfix diagnose",
    )
    facts = await door_log_facts(fetcher, project.project_id, (probe,), (probe,))
    diagnosis = door_logs.diagnose(facts, fetcher.now)
    # the ticket is about this person: its incident names them (history --user finds it),
    # even when the probe's card names nobody in the cloud
    diagnosis = replace(
        diagnosis,
        subject=replace(
            diagnosis.subject,
            user_id=user.id,
            personnel_id=person.personnel_id if person is not None else None,
        ),
    )
    plan = door_logs.plan(diagnosis, facts, run.agent.policy, fetcher.now)
    checks = door_checks(facts, diagnosis.cause, diagnosis.evidence.get("checks", {}), credential)
    return Candidate(diagnosis, plan), checks
