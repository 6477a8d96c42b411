"""After a crash: settle the actions left in flight and the incidents left undecided.

Every non-dry run starts here (:func:`reconcile`), before it reads any feed. Nothing a crash
cut off is fired again blindly: each target is re-read, and what the re-read shows decides.

A run settles only what its own scopes left (:mod:`~doorfix.agent.engine.scopes`): an action
whose system its scopes write (an escalation, which calls no API, goes with its run's
scopes), an incident all of whose actions are such, a run left ``running`` whose scopes meet
its own. The run holds those scopes' locks, so each of these was left by a process that is
gone; a run of another scope may be working beside it, and what that run has in flight is
its own. So is what a run of this process still in its verifications' tail holds (see
:mod:`~doorfix.agent.journal.live`): a live run's actions, incidents and run row are never
settled here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import structlog

from doorfix.agent.engine.execute import Executor, on_answered
from doorfix.agent.engine.report import ActionReport, ActionStatus, IncidentReport
from doorfix.agent.engine.scopes import meets, scope_at, scope_of_system, scopes_of
from doorfix.agent.engine.shards import Shard
from doorfix.agent.journal.rows import RunRow
from doorfix.agent.journal.store import ActionRow, Journal
from doorfix.connectors._http import acting
from doorfix.errors import ConnectorError
from doorfix.playbooks.types import Outcome, Remedy

if TYPE_CHECKING:
    from doorfix.agent.engine.state import Agent

log = structlog.get_logger("doorfix.engine")


async def reconcile(agent: Agent, run_id: str, *, scopes: Iterable[str]) -> list[IncidentReport]:
    """Settle what a crash left half-done, by re-reading; never re-fire a call blindly.

    Actions left ``started`` are settled first: each target is re-read once the call could
    no longer land (:func:`_settle_wait`), and the action recorded ``succeeded``, ``failed``,
    or ``skipped`` when the change is not there (it never took effect, so it may run again).
    Then incidents left without an outcome are decided from the change their actions made;
    one whose actions changed nothing stays open, and its events, never marked seen, are
    read and diagnosed again by this run. Finally runs left ``running`` become
    ``interrupted``. Only what ``scopes`` (those the run holds) left is touched. Returns the
    incidents it decided, in order, each once, as the run reports them (see
    :func:`_settled_report`): counted, notified and shown like those the run diagnoses.
    """
    journal = agent.journal
    executor = Executor(agent.clients, agent.clock, verify_timeout=0)
    ours = _Ours(
        journal, scopes, live=journal.live.ids(besides=run_id), shards=agent.settings.shards
    )
    decided: dict[str, None] = {}
    for row in journal.in_flight():
        if not ours.action(row):
            continue  # another scope's: its own run settles it
        landed_by = await _settle_wait(agent, row)
        incident = journal.incident(row.incident_id)
        again = {**(row.detail or {}), "sent_again": True}
        try:
            # a call made again is recorded before it is sent, like any call, and what its
            # answer names (a Sync Access's job) as soon as it comes, like the run's own; a
            # completion's requests go ahead of queued reads, like any action's
            with on_answered(partial(_note_answer, journal, row.action_id, again)), acting():
                status, detail = await executor.reconcile(
                    row,
                    subject=incident.subject if incident else {},
                    landed_by=landed_by,
                    sending_again=partial(journal.note_in_flight, row.action_id, again),
                )
        except ConnectorError as exc:
            log.warning("reconcile_deferred", action_id=row.action_id, error=str(exc))
            continue
        detail = _keeping_notes(row, detail)
        journal.reconcile(row.action_id, status=status, detail=detail)
        recorded = detail.get("outcome")
        if incident is not None and incident.open and (status == "succeeded" or recorded):
            # a completion that re-checked its preconditions says what it decided; else a
            # change the re-read shows holds
            journal.set_outcome(
                row.incident_id,
                outcome=str(recorded or _held(row.remedy).value),
                run_id=run_id,
                steps=list(detail.get("steps", [])),
                note=_settled_note(journal, row)
                + (": left as a person changed it" if detail.get("left_alone") else ""),
            )
            decided[row.incident_id] = None
        log.info("action_reconciled", action_id=row.action_id, remedy=row.remedy, status=status)
    for incident in journal.undecided():
        actions = journal.actions(incident_id=incident.incident_id)
        if not all(ours.action(a) for a in actions):
            continue
        by_actions = _decided_by_actions(actions)
        if by_actions is None:
            continue
        outcome, steps = by_actions
        journal.set_outcome(
            incident.incident_id,
            outcome=outcome.value,
            run_id=run_id,
            steps=steps,
            note="decided after a crash, from the result of its action",
        )
        log.info("incident_reconciled", incident_id=incident.incident_id, outcome=outcome.value)
        decided[incident.incident_id] = None
    # every run left running (a fleet's tick starts one run per shard: a dead one's row may be
    # far from the newest)
    for run in journal.runs(status="running", limit=1000):
        if run.status != "running" or run.run_id == run_id or run.run_id in ours.live:
            continue
        if ours.run(run):
            journal.finish_run(run.run_id, status="interrupted", counts=run.counts)
    return [found for i in decided if (found := _settled_report(journal, i, run_id)) is not None]


def _settled_report(journal: Journal, incident_id: str, run_id: str) -> IncidentReport | None:
    """An incident :func:`reconcile` decided, as the run that decided it reports it.

    Its outcome, steps and the note of the run's history entry (why it was settled), with
    every action the incident holds: a fix or an escalation settled after a crash is counted,
    notified and shown like one the run diagnosed.
    """
    row = journal.incident(incident_id)
    if row is None or row.outcome is None:
        return None
    notes = [h.note for h in journal.history(incident_id) if h.run_id == run_id and h.note]
    return IncidentReport(
        incident_id=row.incident_id,
        cause=row.cause,
        outcome=row.outcome,
        subject=row.subject,
        event_ids=list(row.event_ids),
        actions=[
            ActionReport(
                remedy=a.remedy,
                target=a.target,
                status=cast(ActionStatus, a.status if a.status != "started" else "unknown"),
                system=a.system,
                params=a.params,
            )
            for a in journal.actions(incident_id=incident_id)
        ],
        evidence=dict(row.evidence),
        steps=[dict(s) for s in row.steps],
        reason=notes[-1] if notes else "",
    )


def _note_answer(
    journal: Journal, action_id: str, again: Mapping[str, Any], named: Mapping[str, Any]
) -> None:
    """Note on an action sent again what its answer named (see ``on_answered``)."""
    journal.note_in_flight(action_id, {**again, **named})


def _keeping_notes(row: ActionRow, detail: dict[str, Any]) -> dict[str, Any]:
    """The detail a settled action is recorded with, keeping what was noted before a call.

    A reconciliation that makes a call again notes ``sent_again`` first; a crash during that
    call leaves it for the next reconciliation, which settles the action from what it reads
    (a Sync Access's job, a toggle's cell). The journal still says the call was made twice,
    whichever reconciliation settles it.
    """
    if (row.detail or {}).get("sent_again") and not detail.get("sent_again"):
        return {**detail, "sent_again": True}
    return detail


class _Ours:
    """What a run holding ``scopes`` may settle: what only a run of those scopes could leave.

    With the centers divided in shards (:mod:`~doorfix.agent.engine.shards`), a scope is
    held per shard: an action is the scope's at the shard of its incident's center, a run
    left ``running`` holds the scopes of the shard it recorded.
    """

    def __init__(
        self, journal: Journal, scopes: Iterable[str], *, live: frozenset[str], shards: int
    ) -> None:
        self._journal = journal
        self._scopes = frozenset(scopes)
        self._shards = shards
        #: runs of this process still working: nothing of theirs is a leftover
        self.live = live

    def run(self, row: RunRow) -> bool:
        """A run left ``running`` is gone when it held one of our scopes."""
        return meets(
            scopes_of(row.playbook, shard=self._shard(row), shards=self._shards), self._scopes
        )

    def _shard(self, row: RunRow) -> Shard | None:
        """The shard a run recorded; None (every center) when the shards were others then."""
        if row.shard is None:
            return None
        try:
            shard = Shard.parse(row.shard)
        except ValueError:
            return None
        return shard if shard.count == self._shards else None

    def action(self, row: ActionRow) -> bool:
        """The action was intended by a run holding one of our scopes (so it is gone)."""
        if row.run_id in self.live:
            return False
        scope = scope_of_system(row.system)
        if scope is not None:
            incident = self._journal.incident(row.incident_id)
            center = incident.subject.get("center_id") if incident else None
            return scope_at(scope, center, self._shards) in self._scopes
        run = self._journal.run(row.run_id)  # an escalation: its run's scopes
        return run is None or self.run(run)


def _settled_note(journal: Journal, row: ActionRow) -> str:
    """Why the action was settled here: its run crashed, or could not read the change back."""
    run = journal.run(row.run_id)
    if run is not None and run.status not in ("running", "interrupted"):
        return "settled by re-reading the target, which the run that acted could not read back"
    return "reconciled after a crash"


async def _settle_wait(agent: Agent, row: ActionRow) -> datetime:
    """Wait until a call cut off by a crash can no longer land before re-reading its target.

    The crashed process waited at most its timeout for an answer; a re-read before then
    could miss a write the system is still applying and let the remedy run twice. Returns
    that time: a change to the target after it was made by someone else.
    """
    section = {
        "cloud": agent.settings.cloud,
        "aca": agent.settings.aca,
        "clp": agent.settings.clp,
    }.get(row.system)
    if section is None:
        return row.started_at
    # started_at is stored to the second: one more second covers the truncation
    until = row.started_at + timedelta(seconds=section.timeout_seconds + 1)
    wait = (until - agent.clock.now()).total_seconds()
    if wait > 0:
        log.info("reconcile_waiting", action_id=row.action_id, seconds=round(wait, 1))
        await agent.clock.sleep(wait)
    return until


def _decided_by_actions(actions: list[ActionRow]) -> tuple[Outcome, list[dict[str, str]]] | None:
    """An undecided incident's outcome from what its actions did, or None to diagnose again.

    Only a change that held decides: the last succeeded action other than an escalation (a
    report without an API effect, whose checklist a new diagnosis writes again), with the
    outcome and steps recorded beside its result.
    """
    if any(a.status == "started" for a in actions):
        return None  # still in flight: the next reconciliation re-reads it first
    last = actions[-1] if actions else None
    if (
        last is not None
        and last.remedy == Remedy.SYNC_ACCESS.value
        and last.status == "failed"
        and (last.detail or {}).get("outcome_unknown")
    ):
        # a Sync Access cut off by the crash leaves nothing to re-read: as after a lost
        # answer, the next presentation at the lock proves it (or escalates it)
        return Outcome.PENDING_VERIFICATION, []
    done = [a for a in actions if a.status == "succeeded" and a.remedy != Remedy.ESCALATE.value]
    if not done:
        return None
    last = done[-1]
    detail = last.detail or {}
    recorded = detail.get("outcome")
    if recorded in (Outcome.FIXED, Outcome.PENDING_VERIFICATION, Outcome.NEEDS_HUMAN):
        return Outcome(recorded), list(detail.get("steps", []))
    return _held(last.remedy), []


def _held(remedy: str) -> Outcome:
    """The outcome of a change the re-read shows: only a presentation proves a Sync Access."""
    return Outcome.PENDING_VERIFICATION if remedy == Remedy.SYNC_ACCESS.value else Outcome.FIXED
