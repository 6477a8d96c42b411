"""The engine: fetch -> diagnose -> plan -> guard -> act -> verify -> record, for every mode.

:func:`run_once` is the one entry point the one-shot command, the daemon and dry-run share.
Playbooks decide; this module only sequences: it opens incidents in the journal, asks the
guards, writes each action's intent before the call and its result after, and commits the
feeds' positions only once every incident of the run is recorded, so a crash re-reads events
instead of losing them, and reconciles actions instead of repeating them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog

from doorfix.agent.engine.candidates import Batch, Candidate, incident_key, merge_by_key
from doorfix.agent.engine.collect_aca import (
    SCAN,
    AcaBatch,
    FixJoin,
    Scanned,
    collect_rejections,
)
from doorfix.agent.engine.collect_cloud import collect_door_logs, collect_licenses
from doorfix.agent.engine.deferrals import close_resolved, supersede
from doorfix.agent.engine.escalate import escalate
from doorfix.agent.engine.execute import Executor, on_answered
from doorfix.agent.engine.fetch import RunFetcher
from doorfix.agent.engine.guards import GuardDecision, RunGuards
from doorfix.agent.engine.progress import NO_PROGRESS, Progress
from doorfix.agent.engine.reconcile import reconcile
from doorfix.agent.engine.report import (
    ActionReport,
    IncidentReport,
    RepeatReport,
    RunReport,
    SkippedRecord,
)
from doorfix.agent.engine.retry import add_retries, due_reach
from doorfix.agent.engine.scopes import scopes_of
from doorfix.agent.engine.shards import Shard
from doorfix.agent.engine.shared import shared_sync
from doorfix.agent.engine.state import Agent, RunState
from doorfix.agent.engine.supervise import (
    Supervision,
    lapse_unplanned,
    refusal_holds,
    supervise,
    supervised,
)
from doorfix.agent.engine.verification import settle
from doorfix.agent.engine.worklist import Worklist
from doorfix.agent.journal.rows import IncidentRow
from doorfix.agent.journal.store import Journal, RunStatus
from doorfix.errors import AuthError, ConnectorError, ContractError, DoorfixError, Interrupted
from doorfix.playbooks.types import Outcome, PlannedAction, Remedy, Step, Who

log = structlog.get_logger("doorfix.engine")

PLAYBOOKS = ("door-logs", "aca-rejections", "license-renewal")

#: Outcomes after which a repeat of the same incident within the cool-down is not reported.
_QUIET_REPEATS = frozenset({Outcome.NEEDS_HUMAN, Outcome.NO_FAULT})


class RunFailed(DoorfixError):
    """A run could not complete (an API unreachable after retries); exit code 1."""

    def __init__(self, report: RunReport, cause: Exception, *, message: str | None = None) -> None:
        self.report = report
        super().__init__(str(cause) if message is None else message)


class RunInterrupted(DoorfixError):
    """A stop (SIGTERM) cut the run short: recorded ``interrupted``; the next run goes on."""

    def __init__(self, report: RunReport, message: str) -> None:
        self.report = report
        super().__init__(message)


class RunDeadlineExceeded(DoorfixError):
    """A run went past ``[engine] max_run_seconds`` and was stopped."""


def _skip_recorder(
    report: RunReport, redact: Callable[[str], str]
) -> Callable[[ContractError], None]:
    def record(exc: ContractError) -> None:
        log.warning("record_skipped", system=exc.system, endpoint=exc.endpoint, field=exc.field)
        report.skipped.append(
            SkippedRecord(exc.system, exc.endpoint, exc.field, redact(exc.message))
        )

    return record


def _warning_recorder(report: RunReport, redact: Callable[[str], str]) -> Callable[[str], None]:
    def record(message: str) -> None:
        text = redact(message)
        log.warning("run_warning", message=text)
        report.warnings.append(text)

    return record


Collector = Callable[["RunState", RunFetcher], Awaitable[Batch]]


async def run_once(
    agent: Agent,
    playbook: str,
    *,
    dry_run: bool = False,
    since: datetime | None = None,
    progress: Progress = NO_PROGRESS,
    on_writes_sent: Callable[[], None] | None = None,
    shard: Shard | None = None,
    tick: int | None = None,
) -> RunReport:
    """Run one playbook once; raise RunFailed (with the partial report) if it cannot finish.

    ``shard``: work only the centers of this shard (a fleet's tick, see
    :mod:`~doorfix.agent.engine.shards`); None: every center. ``tick``: the fleet's tick
    the shard's run is part of (its timestamp): the per-run caps count across its shards.

    ``on_writes_sent`` is called once every incident's writes are sent, if the next run of
    the playbook's scopes may start then, beside this one's verifications (see
    :mod:`~doorfix.agent.journal.live`): the daemon starts its next tick's run there.
    """
    if playbook not in PLAYBOOKS:
        raise ValueError(f"unknown playbook {playbook!r}; choose one of {', '.join(PLAYBOOKS)}")

    async def collect(run: RunState, fetcher: RunFetcher) -> Batch:
        return await _collect(run, fetcher, playbook, since)

    return await execute_run(
        agent,
        playbook,
        collect,
        dry_run=dry_run,
        progress=progress,
        on_writes_sent=on_writes_sent,
        shard=shard,
        tick=tick,
    )


async def execute_run(
    agent: Agent,
    name: str,
    collect: Collector,
    *,
    dry_run: bool,
    progress: Progress = NO_PROGRESS,
    quiet_repeats: bool = True,
    on_writes_sent: Callable[[], None] | None = None,
    shard: Shard | None = None,
    tick: int | None = None,
) -> RunReport:
    """The run every mode shares: reconcile, collect, process each candidate, commit feeds.

    A run that may act holds the journal's run lock throughout, with a turn for each scope it
    writes (:mod:`~doorfix.agent.engine.scopes`): a run of another process waits for it, a run
    of this process that writes other systems goes beside it (see
    :mod:`doorfix.agent.journal.lock`).
    ``quiet_repeats``: a repeat of an incident reported within the cool-down joins it and is
    listed under the report's ``repeats`` instead of being reported again (the daemon's runs);
    the ticket path answers every time (False).
    """
    if dry_run:
        # a dry-run works on a scratch copy of the journal: it writes nothing a later run
        # reads (no incident, outcome, cool-down, seen event or cursor); only its run row,
        # with its report, goes to the journal, for `report` and `history`
        scratch = agent.journal.scratch_copy()
        try:
            return await _execute_run(
                replace(agent, journal=scratch),
                name,
                collect,
                dry_run=True,
                progress=progress,
                record=agent.journal,
                quiet_repeats=quiet_repeats,
                shard=shard,
                tick=tick,
            )
        finally:
            scratch.close()
    scopes = scopes_of(name, shard=shard, shards=agent.settings.shards)
    async with agent.journal.run_lock.held(name, scopes=scopes) as hold:

        def writes_sent() -> None:
            # the turns go back where the lock allows (one process on the journal): the
            # next run of these scopes may start beside this one's verifications
            if hold.writes_sent() and on_writes_sent is not None:
                on_writes_sent()

        return await _execute_run(
            agent,
            name,
            collect,
            dry_run=False,
            progress=progress,
            quiet_repeats=quiet_repeats,
            writes_sent=writes_sent,
            shard=shard,
            tick=tick,
        )


async def _execute_run(
    agent: Agent,
    name: str,
    collect: Collector,
    *,
    dry_run: bool,
    progress: Progress,
    quiet_repeats: bool,
    record: Journal | None = None,
    writes_sent: Callable[[], None] = lambda: None,
    shard: Shard | None = None,
    tick: int | None = None,
) -> RunReport:
    """One run; its run row goes to ``record`` too when that is not the agent's journal."""
    journal, clock = agent.journal, agent.clock
    redact = agent.clients.redactor.redact
    now = clock.now()
    part = None if shard is None else str(shard)
    run_id = journal.start_run(name, dry_run=dry_run, shard=part)
    rows = _RunRows(journal, record, run_id, name, dry_run=dry_run, shard=part)
    report = RunReport(
        run_id=run_id,
        playbook=name,
        dry_run=dry_run,
        started_at=now,
        target=agent.target,
        shard=part,
    )
    structlog.contextvars.bind_contextvars(run_id=run_id, playbook=name)
    if part is not None:
        structlog.contextvars.bind_contextvars(shard=part)
    scopes = scopes_of(name, shard=shard, shards=agent.settings.shards)
    limit = agent.settings.engine.max_run_seconds
    deadline = asyncio.timeout(limit)
    try:
        # real seconds, whatever the agent's clock: a run must not hold the daemon for ever
        async with deadline:
            with journal.live.running(run_id, name, scopes=scopes):
                run = await _work(
                    agent,
                    report,
                    collect,
                    dry_run=dry_run,
                    progress=progress,
                    quiet_repeats=quiet_repeats,
                    writes_sent=writes_sent,
                    shard=shard,
                    tick=tick,
                )
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        stop = RunDeadlineExceeded(
            f"stopped after max_run_seconds ({limit:g} s): the run went past its deadline; "
            "what it recorded stands, the rest is read again by the next run"
        )
        _failed(agent, report, stop, redact, rows)
        raise RunFailed(report, stop) from exc
    except (ConnectorError, OSError) as exc:
        text = _failed(agent, report, exc, redact, rows)
        raise RunFailed(report, exc, message=text) from exc
    except Interrupted as exc:
        raise _interrupted(agent, report, rows) from exc
    except Exception as exc:
        # a bug or a journal error: the run row must not stay `running` (a kill or a
        # cancellation leaves it, like a crash, for the next run's reconciliation)
        with contextlib.suppress(DoorfixError):
            rows.finish(report, status="failed", error=redact(f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        structlog.contextvars.unbind_contextvars("run_id", "playbook", "shard")
    report.finished_at = clock.now()
    report.breakers = run.guards.open_breakers()
    rows.finish(report, status="completed")
    log.info(
        "run_completed",
        run_id=run_id,
        playbook=name,
        dry_run=dry_run,
        counts=report.counts,
        skipped=len(report.skipped),
        breakers=report.breakers,
    )
    return report


def _interrupted(agent: Agent, report: RunReport, rows: _RunRows) -> RunInterrupted:
    """Record a run a stop cut short, and log what it leaves for the next run."""
    in_flight = [a for a in agent.journal.in_flight() if a.run_id == report.run_id]
    text = (
        f"interrupted by a stop after {len(report.incidents)} incident(s); "
        f"{len(in_flight)} action(s) in flight are re-read by the next run, and the events "
        "no decision holds are read again"
    )
    report.finished_at = agent.clock.now()
    report.error = text
    rows.finish(report, status="interrupted", error=text)
    log.warning(
        "run_interrupted",
        run_id=report.run_id,
        playbook=report.playbook,
        counts=report.counts,
        incidents_recorded=len(report.incidents),
        actions_in_flight=[f"{a.remedy} {a.target}" for a in in_flight],
        left="actions in flight are re-read, undecided events read again, by the next run",
    )
    return RunInterrupted(report, text)


class _RunRows:
    """A run's row in the journal, and in the journal that keeps the record of a dry-run."""

    def __init__(
        self,
        journal: Journal,
        record: Journal | None,
        run_id: str,
        name: str,
        *,
        dry_run: bool,
        shard: str | None,
    ) -> None:
        self._journals = [journal]
        self._run_id = run_id
        self._dry_run = dry_run
        if record is not None and record is not journal:
            record.start_run(name, dry_run=dry_run, run_id=run_id, shard=shard)
            self._journals.append(record)

    def finish(self, report: RunReport, *, status: RunStatus, error: str | None = None) -> None:
        """Record how the run ended (a dry-run's record keeps its report)."""
        kept = report.as_dict() if self._dry_run else None
        for journal in self._journals:
            journal.finish_run(
                self._run_id, status=status, counts=report.counts, error=error, report=kept
            )


def _failed(
    agent: Agent,
    report: RunReport,
    exc: Exception,
    redact: Callable[[str], str],
    rows: _RunRows,
) -> str:
    """Record a run that could not complete; the (redacted) error text."""
    text = redact(str(exc))
    report.finished_at = agent.clock.now()
    report.error = text
    rows.finish(report, status="failed", error=text)
    # the error names system, endpoint and status; a traceback would add only noise
    log.error("run_failed", error=text, auth=isinstance(exc, AuthError))
    return text


async def _work(
    agent: Agent,
    report: RunReport,
    collect: Collector,
    *,
    dry_run: bool,
    progress: Progress,
    quiet_repeats: bool = True,
    writes_sent: Callable[[], None] = lambda: None,
    shard: Shard | None = None,
    tick: int | None = None,
) -> RunState:
    """Reconcile, collect, process each candidate, commit the feeds; the run's state."""
    journal, name, run_id = agent.journal, report.playbook, report.run_id
    g = agent.settings.guards
    run = RunState(
        agent,
        report,
        RunGuards(
            g,
            enabled=frozenset(agent.settings.remedies.enabled),
            history=journal,
            now=report.started_at,
            # a shard's run of a fleet's tick: the caps are the tick's, across its shards
            tick=None if shard is None or tick is None else f"{name}@{tick}",
        ),
        Executor(agent.clients, agent.clock, verify_timeout=g.verify_timeout_seconds),
        dry_run,
        quiet_repeats=quiet_repeats,
        writes_sent=writes_sent,
    )
    if not dry_run:
        # what it settles is this run's to report, like what it diagnoses
        report.incidents.extend(
            await reconcile(
                agent, run_id, scopes=scopes_of(name, shard=shard, shards=agent.settings.shards)
            )
        )
    fetcher = RunFetcher(
        agent.clients,
        now=report.started_at,
        shard=shard,
        on_skip=_skip_recorder(report, agent.clients.redactor.redact),
        on_warning=_warning_recorder(report, agent.clients.redactor.redact),
    )
    progress.stage(f"{name}: reading the systems")
    held = set() if dry_run else due_reach(name, fetcher, journal, guards=g)
    async with Worklist(run, progress, partial(_process, run), held=held).open() as work:
        # a cohort whose facts are read is worked while the run reads the others'
        run.hand_over = work.ready
        try:
            batch = await collect(run, fetcher)
        finally:
            run.hand_over = None
        # the hardware scan reads (behind every other request) while the run works its
        # incidents
        scan = (
            asyncio.create_task(batch.scan())
            if isinstance(batch, AcaBatch) and batch.scan is not None
            else None
        )
        try:
            await _work_batch(run, batch, scan, progress, work)
        finally:
            if scan is not None and not scan.done():
                # the run failed or was stopped: the scan's reads are nobody's any more
                scan.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await scan
    return run


async def _work_batch(
    run: RunState,
    batch: Batch,
    scan: asyncio.Task[Scanned] | None,
    progress: Progress,
    work: Worklist,
) -> None:
    """Settle, work the candidates (beside those handed over), then the hardware scan's,
    commit the feeds."""
    journal, run_id, dry_run = run.journal, run.report.run_id, run.dry_run
    if not dry_run:
        run.feeds.update({e: c.feed for c in batch.commits for e in c.event_ids})
    if isinstance(batch, AcaBatch):
        for follow in batch.follow_ups:
            settle(run, follow)
        for join in batch.joins:
            _join_fix(run, join)
        if not dry_run:
            for subject in batch.resolved:
                close_resolved(journal, run_id=run_id, subject=subject)
    candidates = merge_by_key([*work.kept, *batch.candidates])
    await work.rest(candidates, order=[*batch.streamed, *candidates], tell_sent=True)
    if scan is not None:
        await _work_scan(run, batch, scan, [*batch.streamed, *candidates], progress)
    if not dry_run:
        # only now: every incident of these events is recorded (each decision marked its
        # own events seen), so a crash before this line re-reads only undecided events
        held_back = journal.live.held_back(run_id)
        for commit in batch.commits:
            if commit.feed in held_back:
                # events of it were another live run's to decide: the feed moves only past
                # what this run decided itself, so the next run reads them again
                log.info("feed_left_for_next_run", feed=commit.feed, run_id=run_id)
                continue
            moved = journal.advance_feed(
                commit.feed,
                cursor=commit.cursor,
                event_ids=commit.event_ids,
                run_id=run_id,
                expected=commit.read,
                position=commit.position,
            )
            if not moved and commit.feed == SCAN:
                # a run beside this one scanned the same centers and moved on first
                log.info("scan_moved_meanwhile", position=commit.position, run_id=run_id)
            elif not moved:
                log.warning("feed_moved_meanwhile", feed=commit.feed, run_id=run_id)


async def _work_scan(
    run: RunState,
    batch: Batch,
    scan: asyncio.Task[Scanned],
    worked: list[Candidate],
    progress: Progress,
) -> None:
    """The hardware scan's findings, once the refusals' incidents are worked.

    The scan read while they were worked (behind their requests): a person at a door never
    waits for it. A finding whose incident the run already worked (a lock a refusal found
    offline) is that incident's. The findings plan no write (needs_human with a checklist),
    so the run's writes were all sent with the refusals'.
    """
    found, commit = await scan
    taken = {incident_key(c) for c in worked}
    later = merge_by_key([c for c in found if incident_key(c) not in taken])
    if commit is not None:
        batch.commits.append(commit)
    async with Worklist(run, progress, partial(_process, run)).open() as findings:
        await findings.rest(later, order=later, tell_sent=False, stage="hardware findings")


async def _collect(
    run: RunState, fetcher: RunFetcher, playbook: str, since: datetime | None
) -> Batch:
    batch = await _collect_new(run, fetcher, playbook, since)
    if not run.dry_run:
        agent = run.agent
        await add_retries(
            batch, playbook, fetcher, run.journal, policy=agent.policy, guards=agent.settings.guards
        )
    return batch


async def _collect_new(
    run: RunState, fetcher: RunFetcher, playbook: str, since: datetime | None
) -> Batch:
    g = run.agent.settings.guards
    lookback = timedelta(hours=g.lookback_hours)
    policy = run.agent.policy
    if playbook == "door-logs":
        return await collect_door_logs(
            fetcher, run.journal, policy=policy, lookback=lookback, since=since, ready=run.hand_over
        )
    if playbook == "license-renewal":
        return await collect_licenses(fetcher, policy=policy)

    def unresolved(message: str, event_ids: str, field: str) -> None:
        log.warning("record_skipped", system="aca", endpoint="events", field=field)
        run.report.skipped.append(SkippedRecord("aca", "events", field, f"{message} ({event_ids})"))

    return await collect_rejections(
        fetcher,
        run.journal,
        policy=policy,
        lookback=lookback,
        since=since,
        on_unresolved=unresolved,
        scan_centers=run.agent.settings.engine.hardware_scan_centers,
        ready=run.hand_over,
    )


def _joined(run: RunState, key: str, candidate: Candidate) -> tuple[IncidentRow | None, bool]:
    """The incident a candidate joins instead of opening its own, and whether it is undecided.

    One another live run is deciding (it is verifying its fix: its decision marks the new
    events seen), else a recent repeat (:func:`_recent_repeat`).
    """
    deciding = run.journal.live.deciding_elsewhere(key, run_id=run.report.run_id)
    if deciding is not None and not run.dry_run:
        live = run.journal.incident(deciding)
        if live is not None:
            return live, True
    return _recent_repeat(run, key, candidate), False


def _recent_repeat(run: RunState, key: str, candidate: Candidate) -> IncidentRow | None:
    """The needs_human/no_fault incident with this key closed within the cool-down, if any.

    An escalation counts as needs_human: reporting the same vendor bug at every rejection
    would only bury it. Never on the ticket path (``quiet_repeats`` off): a person asking
    always gets the diagnosis.
    """
    if not run.quiet_repeats:
        return None
    plan = candidate.plan
    g = run.agent.settings.guards
    row = run.journal.latest_incident(key)
    if row is not None and plan.disposition == "no_fault" and _fixed_before(run, row, candidate):
        # refusals from before doorfix fixed their cause (read late, or by another playbook
        # than the one that fixed it) are that fix's: they join it, never a new "no fault"
        return row
    if (
        row is not None
        and not row.open
        and row.outcome == Outcome.NEEDS_HUMAN
        and row.evidence.get("attempts_exhausted")
        and row.last_seen_at >= run.report.started_at - timedelta(hours=g.attempt_window_hours)
    ):
        # escalated once because its remedy did not hold: the same problem again is that
        # escalation's, not a new one, until the facts change (another cause) or the window ends
        return row
    escalation = bool(plan.actions) and all(a.remedy is Remedy.ESCALATE for a in plan.actions)
    # a refused supervised action ends needs_human too: telling it again at each run is noise
    refused = bool(plan.actions) and all(refusal_holds(run, a) for a in plan.actions)
    if plan.disposition not in ("needs_human", "no_fault") and not (escalation or refused):
        return None
    cooldown = timedelta(minutes=g.cooldown_minutes)
    if (
        row is not None
        and not row.open
        and row.outcome in _QUIET_REPEATS
        and row.last_seen_at >= run.report.started_at - cooldown
    ):
        return row
    return None


def _join_fix(run: RunState, join: FixJoin) -> None:
    """Refusals from before a fix (or on its way to the IQ): kept with the fix's incident."""
    incident = join.incident
    _join(
        run,
        incident,
        join.event_ids,
        cause=incident.cause,
        subject=incident.subject,
        decided_elsewhere=join.decided_elsewhere,
    )


def _join(
    run: RunState,
    joined: IncidentRow,
    event_ids: Sequence[str],
    *,
    cause: str,
    subject: Mapping[str, str],
    evidence: Mapping[str, Any] | None = None,
    decided_elsewhere: bool = False,
) -> None:
    """Keep ``event_ids`` with the incident they repeat, listed in the run's ``repeats``.

    ``decided_elsewhere``: the incident is another live run's, not decided yet; its
    decision marks the events seen, and this run leaves their feeds where they are.
    """
    feeds = run.feeds_of(event_ids)
    marks = not (run.dry_run or decided_elsewhere)
    run.journal.add_events(
        joined.incident_id,
        event_ids=event_ids,
        evidence={},
        feeds=feeds,
        run_id=run.report.run_id if marks else None,
    )
    if decided_elsewhere:
        run.journal.live.hold_back(run.report.run_id, feeds.values())
    run.report.repeats.append(
        RepeatReport(
            cause=cause,
            subject=subject,
            joined_incident_id=joined.incident_id,
            evidence=evidence or {},
            outcome=joined.outcome or ("in progress" if decided_elsewhere else ""),
            event_ids=list(event_ids),
            first_seen_at=joined.first_seen_at,
        )
    )
    # a problem found again without a new refusal (a sweep, a known license) is told at each
    # run's report; the log says it only at debug, not once a run for every known problem
    say = log.info if event_ids else log.debug
    say("incident_repeated", incident_id=joined.incident_id, events=len(event_ids))


def _fixed_before(run: RunState, row: IncidentRow, candidate: Candidate) -> bool:
    """Whether ``row`` is a fix of this key made after the candidate's newest event."""
    if row.outcome != Outcome.FIXED or candidate.occurred_at is None:
        return False
    fixed = [h.at for h in run.journal.history(row.incident_id) if h.outcome == Outcome.FIXED]
    return bool(fixed) and candidate.occurred_at <= max(fixed)


async def _process(run: RunState, candidate: Candidate) -> IncidentReport | None:
    diagnosis, plan = candidate.diagnosis, candidate.plan
    key = incident_key(candidate)
    journal = run.journal
    run_id = run.report.run_id
    joined, elsewhere = _joined(run, key, candidate)
    if joined is not None:
        # being verified by another live run, or reported a moment ago: keep the events with
        # it, and list the repeat as a reference to the incident it joined instead of
        # reporting it again
        _join(
            run,
            joined,
            candidate.event_ids,
            cause=diagnosis.cause.value,
            subject=diagnosis.subject.as_dict(),
            evidence=diagnosis.evidence,
            decided_elsewhere=elsewhere,
        )
        return None
    row = journal.open_incident(
        key=key,
        cause=diagnosis.cause.value,
        subject=diagnosis.subject.as_dict(),
        run_id=run.report.run_id,
        event_ids=candidate.event_ids,
        evidence=_clean(run, diagnosis.evidence),
        feeds=run.feeds_of(candidate.event_ids),
        occurrence=not candidate.retry,
    )
    structlog.contextvars.bind_contextvars(incident_id=row.incident_id)
    journal.live.deciding(key, row.incident_id, run_id=run_id, subject=diagnosis.subject.as_dict())
    try:
        incident = IncidentReport(
            incident_id=row.incident_id,
            cause=diagnosis.cause.value,
            outcome="",
            subject=diagnosis.subject.as_dict(),
            event_ids=list(candidate.event_ids),
            evidence=_clean(run, diagnosis.evidence),
            reason=plan.reason,
        )
        outcome, steps = await _decide(run, candidate, row.incident_id, incident)
        incident.outcome = outcome.value
        incident.steps = [s.as_dict() for s in steps]
        journal.set_outcome(
            row.incident_id,
            outcome=outcome.value,
            run_id=run.report.run_id,
            steps=incident.steps,
            evidence=incident.evidence,
            note=incident.reason or None,
        )
        lapse_unplanned(run, row.incident_id, incident.outcome)
        _supersede(run, incident)
        log.info(
            "incident_recorded",
            cause=incident.cause,
            outcome=incident.outcome,
            subject=incident.subject,
            actions=[a.as_dict() for a in incident.actions],
        )
        return incident
    finally:
        journal.live.decided(key, run_id=run_id)
        structlog.contextvars.unbind_contextvars("incident_id")


async def _decide(
    run: RunState, candidate: Candidate, incident_id: str, incident: IncidentReport
) -> tuple[Outcome, tuple[Step, ...]]:
    plan = candidate.plan
    if plan.disposition == "no_fault":
        return Outcome.NO_FAULT, plan.steps
    if plan.disposition == "needs_human":
        return Outcome.NEEDS_HUMAN, plan.steps
    if plan.disposition == "deferred":
        if plan.not_before is not None:
            incident.evidence["not_before"] = plan.not_before.isoformat()
        return Outcome.DEFERRED, ()
    if candidate.occurred_at is not None and run.guards.event_too_old(candidate.occurred_at):
        incident.reason = (
            f"event older than {run.agent.settings.guards.max_event_age_days:g} days: "
            "not acted on; check whether the problem persists"
        )
        return Outcome.NEEDS_HUMAN, plan.steps
    return await _act(run, candidate, incident_id, incident)


async def _act(
    run: RunState, candidate: Candidate, incident_id: str, incident: IncidentReport
) -> tuple[Outcome, tuple[Step, ...]]:
    plan = candidate.plan
    outcome = Outcome.WOULD_FIX if run.dry_run else Outcome.FIXED
    steps: tuple[Step, ...] = ()
    for action in plan.actions:
        report = ActionReport(
            action.remedy.value, action.target, "planned", action.system, dict(action.params)
        )
        incident.actions.append(report)
        shared = shared_sync(
            run.journal,
            action,
            incident_id=incident_id,
            now=run.report.started_at,
            cooldown=timedelta(minutes=run.agent.settings.guards.cooldown_minutes),
        )
        if shared is not None:
            # the collection was synced for another user a moment ago: that job serves this
            # user too; only their own next presentation can prove it (no second call, so
            # nothing for supervised mode to ask a person about either)
            report.status = "planned" if run.dry_run else "succeeded"
            report.detail = shared.note()
            incident.evidence["joined_sync_action"] = shared.action_id
            if not run.dry_run:
                outcome = Outcome.PENDING_VERIFICATION
            continue
        watched = supervised(run, action)
        checked = run.dry_run or watched
        decision = run.guards.check(action) if checked else run.guards.admit(action)
        approval_id: str | None = None
        if decision.allowed and watched:
            # supervised: a person decides; the guards count it only if it runs now
            verdict = supervise(run, action, incident_id)
            if verdict.verdict != "run":
                return _not_approved(verdict, action, plan.steps, incident, report)
            approval_id = verdict.approval.approval_id
            decision = run.guards.admit(action)  # every guard still applies after approval
        if not decision.allowed:
            return _not_admitted(decision, action, plan.steps, incident, report)
        if run.dry_run:
            continue
        result_outcome, extra = await _execute(
            run, action, candidate, incident, report, approval_id=approval_id
        )
        if result_outcome is Outcome.FIXED:
            continue
        outcome = result_outcome
        steps = plan.steps + extra if result_outcome is not Outcome.PENDING_VERIFICATION else ()
        if result_outcome is not Outcome.PENDING_VERIFICATION:
            break
    if outcome is Outcome.FIXED and any(
        a.remedy == Remedy.ESCALATE.value for a in incident.actions
    ):
        return Outcome.NEEDS_HUMAN, plan.steps
    return outcome, steps


def _not_admitted(
    decision: GuardDecision,
    action: PlannedAction,
    plan_steps: tuple[Step, ...],
    incident: IncidentReport,
    report: ActionReport,
) -> tuple[Outcome, tuple[Step, ...]]:
    """An action a guard refused: deferred, or a person's (its attempts did not hold)."""
    report.status = "skipped"
    report.detail = decision.reason
    incident.reason = decision.reason
    if decision.not_before is not None:
        incident.evidence["not_before"] = decision.not_before.isoformat()
    if decision.attempts:
        incident.evidence["attempts_exhausted"] = True
        incident.evidence["attempts_not_held"] = list(decision.attempts)
        return Outcome.NEEDS_HUMAN, (*plan_steps, _not_held_step(action, decision))
    if decision.verdict == "needs_human":
        return Outcome.NEEDS_HUMAN, plan_steps
    return Outcome.DEFERRED, ()


def _not_approved(
    verdict: Supervision,
    action: PlannedAction,
    plan_steps: tuple[Step, ...],
    incident: IncidentReport,
    report: ActionReport,
) -> tuple[Outcome, tuple[Step, ...]]:
    """A supervised action that does not run now: it waits for a person, or was refused."""
    if verdict.verdict == "wait":
        report.status = "awaiting_approval"
        report.detail = f"approval {verdict.approval.approval_id}"
        incident.reason = (
            f"{action.remedy.value} on {action.target} waits for approval "
            f"{verdict.approval.approval_id} (until "
            f"{verdict.approval.expires_at:%Y-%m-%d %H:%M} UTC)"
        )
        return Outcome.AWAITING_APPROVAL, ()
    report.status = "skipped"
    report.detail = f"refused by {verdict.approval.decided_by}"
    incident.reason = report.detail + (
        f": {verdict.approval.note}" if verdict.approval.note else ""
    )
    steps = (verdict.step,) if verdict.step is not None else ()
    return Outcome.NEEDS_HUMAN, steps + plan_steps


def _not_held_step(action: PlannedAction, decision: GuardDecision) -> Step:
    """The one escalation of a remedy that did not hold, with its attempts."""
    return Step(
        Who.VENDOR_SUPPORT,
        f"{action.remedy.value} did not hold on {action.target} after "
        f"{len(decision.attempts)} attempt(s) ({'; '.join(decision.attempts)}): doorfix will not "
        "try it again on this target; escalate to vendor support with this incident.",
    )


async def _execute(
    run: RunState,
    action: PlannedAction,
    candidate: Candidate,
    incident: IncidentReport,
    report: ActionReport,
    *,
    approval_id: str | None = None,
) -> tuple[Outcome, tuple[Step, ...]]:
    journal = run.journal
    incident_id = incident.incident_id
    previous = journal.actions(
        incident_id=incident_id, target=action.target, remedy=action.remedy.value
    )
    action_id = journal.intent(
        run_id=run.report.run_id,
        incident_id=incident_id,
        remedy=action.remedy.value,
        target=action.target,
        system=action.system or "none",
        params={"call": dict(action.params), "verify": dict(candidate.verify)},
        idempotency_key=f"{incident_id}:{action.remedy.value}:{action.target}:{len(previous)}",
    )
    if approval_id is not None:
        # the approval is spent the moment its action is intended: it never runs twice
        journal.settle_approval(approval_id, status="ran", action_id=action_id)
    if action.remedy is Remedy.ESCALATE:
        reason = str(action.params.get("reason", ""))
        result = await escalate(run.agent, incident, candidate.plan.steps, reason=reason)
    else:
        # what an answer names (a Sync Access's job) is on the action before it is waited on
        with on_answered(partial(journal.note_in_flight, action_id)):
            result = await run.executor.run(action, candidate.verify)
    run.guards.record(action, write_error=result.write_error)
    report.status = result.status
    redact = run.agent.clients.redactor
    if result.detail.get("error"):
        report.detail = redact.redact(str(result.detail["error"]))
    elif result.detail.get("note"):
        report.detail = redact.redact(str(result.detail["note"]))
    if result.status == "unknown":
        # left started: the next run's reconciliation re-reads the target before anything
        report.detail = (
            f"{report.detail}; left in flight: the next run re-reads the target to settle it"
        )
        return result.outcome, result.steps
    # the outcome and steps go with the result, so a crash before the incident's outcome
    # is recorded can still decide the incident from them (see reconcile)
    detail = {
        **_clean(run, result.detail),
        "outcome": result.outcome.value,
        "steps": [s.as_dict() for s in result.steps],
    }
    journal.result(action_id, status=result.status, detail=detail)
    return result.outcome, result.steps


def _clean(run: RunState, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every vendor text in them passed through the redactor."""
    scrub = run.agent.clients.redactor.scrub
    return {key: scrub(value) for key, value in values.items()}


def _supersede(run: RunState, incident: IncidentReport) -> None:
    if run.dry_run:
        return  # a dry-run changes nothing, the journal's deferrals included
    supersede(
        run.journal,
        run_id=run.report.run_id,
        incident_id=incident.incident_id,
        cause=incident.cause,
        outcome=incident.outcome,
        subject=incident.subject,
    )
