"""Supervised mode: a planned action of a remedy in ``[remedies] approve`` waits for a person.

The run records the action as an approval request (``awaiting_approval``) instead of running
it, and the incident stays open with that outcome. A person approves or refuses it (the
console, ``doorfix approve``/``refuse``). The incident is worked again by a later run (as a
deferral that fell due: diagnosed afresh from the systems), and only then does the decision
apply, to the plan of that fresh diagnosis:

- approved, and the fresh plan is the very same call (remedy, target, parameters): it runs,
  through every guard, and the approval records the action it became (``ran``);
- approved, but the plan changed (the facts moved) or the approval's time-to-live passed:
  the approval **lapses** with a note saying why, and a new request waits;
- refused: nothing runs; the incident needs a person, its checklist naming who refused and
  their note;
- still waiting: it keeps waiting; past its time-to-live it lapses and a new request waits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import structlog

from doorfix.agent.engine.state import RunState
from doorfix.agent.journal.store import ApprovalRow
from doorfix.playbooks.types import PlannedAction, Step, Who

log = structlog.get_logger("doorfix.engine")

Verdict = Literal["run", "wait", "refused"]


@dataclass(frozen=True)
class Supervision:
    """What supervised mode says about one planned action."""

    verdict: Verdict
    approval: ApprovalRow
    #: for ``refused``: the checklist step saying who refused and why
    step: Step | None = None


def supervised(run: RunState, action: PlannedAction) -> bool:
    """True when this action's remedy waits for approval (never in a dry-run)."""
    return not run.dry_run and action.remedy.value in run.agent.settings.remedies.approve


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return json.dumps(dict(a), sort_keys=True, default=str) == json.dumps(
        dict(b), sort_keys=True, default=str
    )


def _holding_refusal(run: RunState, action: PlannedAction) -> ApprovalRow | None:
    """A refusal of this very call on this target within the approval's time to live."""
    ttl = timedelta(hours=run.agent.settings.remedies.approval_ttl_hours)
    since = run.agent.clock.now() - ttl
    refusal = run.journal.latest_refusal(action.remedy.value, action.target, since=since)
    return refusal if refusal is not None and _same(refusal.params, action.params) else None


def refusal_holds(run: RunState, action: PlannedAction) -> bool:
    """True when a person refused this very call lately: doorfix will not ask again."""
    return supervised(run, action) and _holding_refusal(run, action) is not None


def supervise(run: RunState, action: PlannedAction, incident_id: str) -> Supervision:
    """Decide, from the journal's approvals, whether this freshly planned action may run."""
    journal, now = run.journal, run.agent.clock.now()
    remedy, params = action.remedy.value, dict(action.params)
    latest = journal.latest_approval(incident_id, remedy, action.target)
    if latest is not None and latest.status in ("awaiting_approval", "approved"):
        lapse = None
        if latest.expired(now):
            state = "approved" if latest.status == "approved" else "unanswered"
            lapse = f"expired {state} after {run.agent.settings.remedies.approval_ttl_hours:g} h"
        elif not _same(latest.params, params):
            lapse = (
                "the plan changed when the incident was diagnosed again: it was "
                f"{json.dumps(latest.params, sort_keys=True)}, it is now "
                f"{json.dumps(params, sort_keys=True, default=str)}"
            )
        if lapse is not None:
            journal.settle_approval(latest.approval_id, status="lapsed", note=lapse)
            log.info("approval_lapsed", approval_id=latest.approval_id, reason=lapse)
        elif latest.status == "approved":
            return Supervision("run", latest)
        else:
            return Supervision("wait", latest)
    # a refusal holds for the same call on the same target for the approval's time to
    # live, whichever incident asks: a person who said no is not asked again at each run
    elif latest is None or latest.status != "refused":
        latest = _holding_refusal(run, action) or latest
    if latest is not None and latest.status == "refused":
        note = f": {latest.note}" if latest.note else ""
        step = Step(
            Who.SUPPORT,
            f"{latest.decided_by or 'A person'} refused doorfix's {remedy} on {action.target}"
            f"{note}. doorfix will not do it; act by hand if it must be done.",
        )
        return Supervision("refused", latest, step)
    request = journal.request_approval(
        incident_id=incident_id,
        run_id=run.report.run_id,
        remedy=remedy,
        target=action.target,
        system=action.system or "none",
        params=params,
        ttl=timedelta(hours=run.agent.settings.remedies.approval_ttl_hours),
    )
    log.info("approval_requested", approval_id=request.approval_id, remedy=remedy)
    return Supervision("wait", request)


def lapse_unplanned(run: RunState, incident_id: str, outcome: str) -> list[str]:
    """Lapse the incident's approvals that no longer wait for anything: it was decided
    without them (the fresh diagnosis found no fault, or planned something else)."""
    if run.dry_run or outcome == "awaiting_approval":
        return []
    lapsed = []
    for approval in run.journal.incident_approvals(incident_id):
        if approval.status in ("awaiting_approval", "approved"):
            note = f"no longer planned: the incident was diagnosed again and is {outcome}"
            run.journal.settle_approval(approval.approval_id, status="lapsed", note=note)
            log.info("approval_lapsed", approval_id=approval.approval_id, reason=note)
            lapsed.append(approval.approval_id)
    return lapsed
