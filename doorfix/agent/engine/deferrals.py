"""Ending deferred incidents that nothing will retry: superseded, or resolved by themselves.

A deferred incident (too early, in cool-down, over a budget) waits for its subject's next
refusal or its retry (:mod:`doorfix.agent.engine.retry`). When the subject is diagnosed again and
the new incident reaches a final outcome or waits for verification, the deferral is over:
the new incident carries the problem, and the old one closes as ``no_fault`` with a note
naming its successor, so a fix is counted once. When the person is granted access instead
(an ACA grant newer than every refusal), whatever was deferred for them resolved itself.
Either way no deferred incident lingers open for ever.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from doorfix.agent.journal.store import FINAL_OUTCOMES, Journal
from doorfix.playbooks.types import Outcome

log = structlog.get_logger("doorfix.engine")

#: how many of a subject's newest incidents are looked at (deferrals are recent)
RECENT = 20
#: outcomes with which a newer incident takes over its subject's problem from a deferral
CARRIERS = FINAL_OUTCOMES | {Outcome.PENDING_VERIFICATION.value}


def _deferred(journal: Journal, subject: Mapping[str, str], *, but: str = "") -> list[str]:
    """Ids of the open, deferred incidents of ``subject`` (other than ``but``)."""
    return [
        other.incident_id
        for other in journal.incidents(subject=dict(subject), limit=RECENT)
        if other.open and other.outcome == Outcome.DEFERRED and other.incident_id != but
    ]


def supersede(
    journal: Journal,
    *,
    run_id: str,
    incident_id: str,
    cause: str,
    outcome: str,
    subject: Mapping[str, str],
) -> list[str]:
    """Close the subject's deferred incidents that a newer incident now carries.

    The newer one carries the problem once it is decided for good, or waits for the next
    presentation after a Sync Access (``pending_verification``).
    """
    if outcome not in CARRIERS or not subject:
        return []
    closed = _deferred(journal, subject, but=incident_id)
    for other in closed:
        journal.set_outcome(
            other,
            outcome=Outcome.NO_FAULT.value,
            run_id=run_id,
            note=f"superseded by incident {incident_id} ({cause}, {outcome})",
        )
        log.info("incident_superseded", incident_id=other, by=incident_id, cause=cause)
    return closed


def close_resolved(journal: Journal, *, run_id: str, subject: Mapping[str, str]) -> list[str]:
    """Close the subject's deferred incidents: the person has been granted access since."""
    closed = _deferred(journal, subject)
    for other in closed:
        journal.set_outcome(
            other,
            outcome=Outcome.NO_FAULT.value,
            run_id=run_id,
            note="resolved by itself: the person was granted access afterwards",
        )
        log.info("incident_resolved_by_itself", incident_id=other)
    return closed
