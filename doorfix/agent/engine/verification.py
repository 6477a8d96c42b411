"""Settling an incident that waits for verification (after Sync Access), from new evidence.

Only the next presentation at the lock proves a Sync Access: a granted one (an ACA grant, or
a CLP entry that opened the lock) closes the incident ``fixed``; more rejections than the
config allows, or too long a wait, escalate it with the on-site and vendor steps.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from doorfix.agent.engine.collect_aca import FollowUp
from doorfix.agent.engine.deferrals import supersede
from doorfix.agent.engine.report import IncidentReport
from doorfix.durations import format_duration
from doorfix.playbooks.types import Outcome, Step, Who

if TYPE_CHECKING:
    from doorfix.agent.engine.state import RunState


def settle(run: RunState, follow: FollowUp) -> None:
    """Close or escalate an incident waiting for verification, from the new evidence."""
    journal = run.journal
    row = journal.incident(follow.incident_id)
    if row is None or not row.open:
        return
    g = run.agent.settings.guards
    seen = int(row.evidence.get("rejections_since_fix", 0)) + follow.rejections
    age = run.report.started_at - follow.acted_at
    evidence: dict[str, Any] = {"rejections_since_fix": seen}
    steps: tuple[Step, ...] = ()
    if follow.granted:
        outcome, note = Outcome.FIXED, "verified: the lock granted access after the sync"
    elif seen >= g.pending_escalate_rejections or age >= timedelta(hours=g.pending_escalate_hours):
        outcome = Outcome.NEEDS_HUMAN
        note = f"still rejected after the sync ({seen} rejections, {format_duration(age)} since)"
        steps = (
            Step(
                Who.ON_SITE,
                "Present the maintenance card on the lock and check the IQ's "
                "incidents in Larry for 'lock time set'; power-cycle the IQ.",
            ),
            Step(
                Who.VENDOR_SUPPORT,
                "Sync Access did not reach the lock: escalate to vendor "
                "support with this incident.",
            ),
        )
    elif follow.rejections:
        journal.set_outcome(
            follow.incident_id,
            outcome=Outcome.PENDING_VERIFICATION.value,
            run_id=run.report.run_id,
            evidence=evidence,
            note=f"{seen} rejection(s) since the sync; waiting",
            seen=run.seen_of(follow.event_ids),
        )
        return
    else:
        return
    journal.set_outcome(
        follow.incident_id,
        outcome=outcome.value,
        run_id=run.report.run_id,
        steps=[s.as_dict() for s in steps],
        evidence=evidence,
        note=note,
        seen=run.seen_of(follow.event_ids),
    )
    settled = IncidentReport(
        incident_id=row.incident_id,
        cause=row.cause,
        outcome=outcome.value,
        subject=row.subject,
        event_ids=follow.event_ids,
        evidence={**row.evidence, **evidence},
        steps=[s.as_dict() for s in steps],
        reason=note,
    )
    run.report.incidents.append(settled)
    if not run.dry_run:
        supersede(
            journal,
            run_id=run.report.run_id,
            incident_id=row.incident_id,
            cause=row.cause,
            outcome=outcome.value,
            subject=row.subject,
        )
