"""``doorfix daemon``: every playbook on its schedule, unattended, through the one ``run_once``.

APScheduler's :class:`AsyncIOScheduler` fires each enabled playbook on its interval or cron,
never two runs of one playbook at once: ticks that come while its previous run is still
running are coalesced into one more run as soon as that run ends. Runs that write the same
systems take turns (one turn per scope, :mod:`~doorfix.agent.engine.scopes`): ``door-logs``
and ``license-renewal`` (the cloud) one after the other, ``aca-rejections`` (ACA and CLP)
beside them, so a card assignment never waits for a toggle's verification. They share one
agent (one journal, one set of clients and their rate limits); a run's start-up reconciles
only what its own scopes left in flight, never another live run's action.

After each run (completed or failed) the daemon sends the run's message to the sinks of
``DOORFIX_NOTIFY_URLS`` when it has an outcome of ``[report] notify_on``, and at each
``[report] digest_cron`` (on the agent's clock, so an accelerated clock brings it sooner) the
day's digest with the HTML report attached. On the embedded sandbox it sends nothing.

SIGTERM and SIGINT stop the scheduling and stop the agent's clock (a
:class:`~doorfix.clock.StoppableClock`): the run in flight stops waiting at once (a retry
back-off, a rate-limit turn, a verification poll), starts no new incident, finishes only a
call already sent, and is recorded ``interrupted`` with what it leaves for the next run (it
is awaited, never cancelled); then one ``daemon_stopped`` line, and return. A run that
cannot reach a system logs ``upstream_down`` once and ``upstream_recovered`` once; the journal
keeps the feeds' cursors, so the first good run catches up. Nothing a run raises stops the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from doorfix.agent.daemon.access import ConsoleAccess
from doorfix.agent.daemon.console import Console, ConsoleContext, PlaybookState, playbook_runs
from doorfix.agent.daemon.endpoint import LOOPBACK, Endpoint, Health, build_endpoint
from doorfix.agent.daemon.metrics import Metrics
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import PLAYBOOKS, RunFailed, RunInterrupted, run_once
from doorfix.agent.engine.scopes import scopes_of
from doorfix.agent.engine.shards import Shard
from doorfix.agent.engine.state import Agent
from doorfix.agent.reports.notify import notify_run, send_digest
from doorfix.agent.sinks import Notifier
from doorfix.clock import StoppableClock
from doorfix.errors import AuthError, ConfigError, ConnectorError, Interrupted
from doorfix.log import Redactor
from doorfix.redact import SecretRedactor

log = structlog.get_logger("doorfix.daemon")

#: the journal retention job's id (it runs at start-up, then daily)
RETENTION_JOB = "journal-retention"
#: runs of one playbook going at once: the newest and those still in their verifications' tail
MAX_RUNS_PER_PLAYBOOK = 3
#: the shard of a run over every center (a single node's, a ticket's), as /metrics names it
ALL = "all"


@dataclass(frozen=True)
class DaemonReady:
    """What the daemon tells its caller once it schedules: where its endpoint listens."""

    port: int
    host: str = LOOPBACK

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (add ``/healthz`` or ``/metrics``; ``/`` is the console)."""
        return f"http://{self.host}:{self.port}"


@dataclass
class DaemonSummary:
    """What the daemon did in its life: the ``daemon_stopped`` line."""

    runs: int = 0
    failed: int = 0
    crashed: int = 0
    interrupted: int = 0
    incidents: Counter[str] = field(default_factory=Counter)
    uptime_seconds: float = 0.0

    def as_log(self) -> dict[str, Any]:
        """The summary's key/values."""
        return {
            "runs": self.runs,
            "failed_runs": self.failed,
            "crashed_runs": self.crashed,
            "interrupted_runs": self.interrupted,
            "incidents": dict(sorted(self.incidents.items())),
            "uptime_seconds": round(self.uptime_seconds, 3),
        }


def _trigger(
    every_seconds: int | None, cron: str | None, speed: float
) -> IntervalTrigger | CronTrigger:
    if every_seconds is not None:
        return IntervalTrigger(seconds=every_seconds / speed, timezone=UTC)
    if cron is None:  # the config refuses a schedule with neither
        raise ValueError("a schedule needs every_seconds or cron")
    return CronTrigger.from_crontab(cron, timezone=UTC)


@contextlib.contextmanager
def _quiet_scheduler_logs() -> Iterator[None]:
    """APScheduler's own warnings (skipped or missed runs) are logged by our listener."""
    logger = logging.getLogger("apscheduler")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class Daemon:
    """One daemon's scheduler, runs, health and metrics around a shared :class:`Agent`."""

    #: a run in its verifications' tail lets the playbook's next tick start (see :meth:`_run`)
    overlap_tails = True
    #: whether a tick is one run per shard of centers (a fleet's replica), not one run
    sharded = False

    def __init__(
        self,
        agent: Agent,
        *,
        dry_run: bool = False,
        on_report: Callable[[RunReport], None] | None = None,
        speed: float = 1.0,
        notifier: Notifier | None = None,
        access: ConsoleAccess | None = None,
        redact: SecretRedactor | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.agent = agent
        #: where run messages and digests go; never on the embedded sandbox
        self.notifier = notifier if agent.target == "live" else None
        self.dry_run = dry_run
        self._on_report = on_report
        self._speed = speed
        self.access = access if access is not None else ConsoleAccess.from_env()
        self._redact = redact if redact is not None else SecretRedactor()
        for token in self.access.secrets:
            self._redact.add(token)
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        schedule = agent.settings.schedule
        self.playbooks = tuple(p for p in PLAYBOOKS if schedule.for_playbook(p).enabled)
        self.metrics = Metrics(
            playbooks=self.playbooks, stats=agent.clients.stats, up=self.scheduling
        )
        self.summary = DaemonSummary()
        #: one turn per scope (per shard of centers in a fleet): runs of one scope take turns,
        #: of different scopes go together
        self._turns: dict[str, asyncio.Lock] = {}
        self._jobs: set[asyncio.Task[Any]] = set()
        self._down: dict[str, float] = {}
        #: playbooks whose tick came while their previous run was still running: each runs
        #: once more as soon as that run ends (the missed ticks coalesced into one)
        self._owed: set[str] = set()
        self._stopping = False
        self._started = time.monotonic()
        #: the runs going now: each one's playbook, its shard of centers in a fleet (None:
        #: every center) and when it started (monotonic), for the health check (a playbook's
        #: run in its verifications' tail beside its next one) and the fleet's list
        self._current: dict[int, tuple[str, Shard | None, float]] = {}
        self._run_numbers = itertools.count()

    # ------------------------------------------------------------------ state

    def scheduling(self) -> bool:
        """True while the scheduler runs and is not stopping."""
        return self._scheduler.state == STATE_RUNNING and not self._stopping

    async def health(self) -> Health:
        """Healthy while scheduling and the journal reads and writes."""
        details: dict[str, Any] = {
            "dry_run": self.dry_run,
            "uptime_seconds": round(time.monotonic() - self._started, 3),
            "runs": self.summary.runs,
            "upstream_down": sorted(self._down),
        }
        if not self.scheduling():
            return Health("the scheduler is not running", details)
        over = self._over_deadline()
        if over is not None:
            return Health(over, details)
        # an integrity check reads the whole file: keep it off the event loop
        reason = await asyncio.to_thread(self.agent.journal.check)
        return Health(reason, details)

    def status(self) -> list[PlaybookState]:
        """Each enabled playbook now: last and next run, upstream, circuit breakers."""
        out = []
        shards = self.agent.settings.shards if self.sharded else 1
        for playbook in self.playbooks:
            last, shard_runs = playbook_runs(self.agent.journal, playbook, shards)
            job = self._scheduler.get_job(playbook) if self.scheduling() else None
            out.append(
                PlaybookState(
                    playbook=playbook,
                    last_run=last,
                    next_run=None if job is None else job.next_run_time,
                    upstream_down=playbook in self._down,
                    breakers=self.metrics.breakers(playbook),
                    shard_runs=shard_runs,
                )
            )
        return out

    def console(self) -> Console:
        """The supervisors' console over this daemon's journal and state."""
        return Console(
            ConsoleContext(
                journal=self.agent.journal,
                clock=self.agent.clock,
                access=self.access,
                status=self.status,
                redact=Redactor(self._redact),
                dry_run=self.dry_run,
            )
        )

    def _over_deadline(self) -> str | None:
        limit = self.agent.settings.engine.max_run_seconds
        now = time.monotonic()
        for playbook, _, since in sorted(self._current.values(), key=lambda item: item[2]):
            held = now - since
            if held > limit:
                return (
                    f"run of {playbook} over its deadline: {held:.0f} s > max_run_seconds {limit:g}"
                )
        return None

    # ------------------------------------------------------------------ jobs

    def _schedule(self) -> dict[str, str]:
        """Add one job per enabled playbook and the retention job; return the timetable."""
        settings = self.agent.settings.schedule
        grace = max(1, round(settings.misfire_grace_seconds / self._speed))
        now = datetime.now(UTC)
        timetable: dict[str, str] = {}
        for index, playbook in enumerate(self.playbooks):
            plan = settings.for_playbook(playbook)
            self._scheduler.add_job(
                self._job,
                _trigger(plan.every_seconds, plan.cron, self._speed),
                args=[playbook],
                id=playbook,
                name=playbook,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=grace,
                # all start now, in the playbooks' order (the run lock is first come first served)
                next_run_time=now + timedelta(milliseconds=index),
            )
            timetable[playbook] = (
                f"every {plan.every_seconds}s" if plan.every_seconds else f"cron {plan.cron}"
            )
        self._scheduler.add_job(
            self._retention,
            IntervalTrigger(days=1, timezone=UTC),
            id=RETENTION_JOB,
            name=RETENTION_JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
            next_run_time=now,
        )
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        return timetable

    def _skipped(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.info("run_skipped", playbook=event.job_id, reason="missed")
            return
        # a refusal that came during a long run is read as soon as that run ends, not a whole
        # interval later
        self._owed.add(event.job_id)
        log.info(
            "run_skipped",
            playbook=event.job_id,
            reason="previous_run_still_running",
            runs_again_once_it_ends=True,
        )

    async def _job(
        self, playbook: str, shard: Shard | None = None, tick: int | None = None
    ) -> None:
        """One scheduled tick: wait for its scopes' turns, then run (unless stopping).

        ``shard``: a fleet's tick works the centers of one shard (None: every center);
        ``tick``: that tick's timestamp, shared by its shards' runs.
        """
        scopes = scopes_of(playbook, shard=shard, shards=self.agent.settings.shards)
        task = asyncio.current_task()
        if task is not None:
            self._jobs.add(task)
        try:
            self._owed.discard(playbook)
            while True:
                async with contextlib.AsyncExitStack() as turns:
                    for scope in scopes:
                        turn = self._turns.setdefault(scope, asyncio.Lock())
                        await turns.enter_async_context(turn)
                    if self._stopping:
                        return
                    await self._run(playbook, shard, tick)
                # a tick came meanwhile: run again at once, after any run of the same scope
                # that was waiting for its turn (the turns are first come, first served)
                if playbook not in self._owed:
                    break
                self._owed.discard(playbook)
        finally:
            if task is not None:
                self._jobs.discard(task)

    def running(self) -> list[str]:
        """The playbooks with a run going now (one may be in its verifications' tail)."""
        return sorted({playbook for playbook, _ in self.runs_going()})

    def runs_going(self) -> set[tuple[str, str]]:
        """The runs going now as (playbook, shard): ``2/8``, or :data:`ALL` for every center."""
        return {(p, ALL if shard is None else str(shard)) for p, shard, _ in self._current.values()}

    def working_on(self) -> list[str]:
        """The runs going now, each as its playbook and, in a fleet, its shard (``@2/8``)."""
        return sorted(p if shard == ALL else f"{p}@{shard}" for p, shard in self.runs_going())

    async def _run(
        self, playbook: str, shard: Shard | None = None, tick: int | None = None
    ) -> None:
        """Run the playbook; return once every write of the run is sent, or when it ends.

        The run goes on in a task of its own: once only its verifications are left (a
        toggle's re-reads of Larry access wait for ACA's push), the tick returns and the
        playbook's next tick may start a run beside it (see :mod:`doorfix.agent.journal.live`
        for what keeps the two apart); so a refusal that comes during a verification is
        fixed at the next tick. At most :data:`MAX_RUNS_PER_PLAYBOOK` runs of a playbook go
        at once; a fleet replica's run, whose lock row is kept to its end, always ends first.
        """
        sent = asyncio.Event()
        overlap = (
            self.overlap_tails
            and not self.dry_run
            and self.agent.journal.live.tails(playbook) < MAX_RUNS_PER_PLAYBOOK - 1
        )
        whole = asyncio.create_task(
            self._run_whole(playbook, shard, tick, on_writes_sent=sent.set if overlap else None),
            name=f"doorfix-run-{playbook}",
        )
        self._jobs.add(whole)
        whole.add_done_callback(self._jobs.discard)
        tail = asyncio.create_task(sent.wait())
        try:
            await asyncio.wait({whole, tail}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            whole.cancel()
            raise
        finally:
            tail.cancel()

    async def _run_whole(
        self,
        playbook: str,
        shard: Shard | None,
        tick: int | None,
        *,
        on_writes_sent: Callable[[], None] | None,
    ) -> None:
        number = next(self._run_numbers)
        started = time.monotonic()
        self._current[number] = (playbook, shard, started)
        self.metrics.going(playbook, started=True)
        try:
            await self._run_and_tell(playbook, shard, tick, started, on_writes_sent=on_writes_sent)
        finally:
            self._current.pop(number, None)
            self.metrics.going(playbook, started=False)

    async def _run_and_tell(
        self,
        playbook: str,
        shard: Shard | None,
        tick: int | None,
        started: float,
        *,
        on_writes_sent: Callable[[], None] | None,
    ) -> None:
        try:
            report = await run_once(
                self.agent,
                playbook,
                dry_run=self.dry_run,
                on_writes_sent=on_writes_sent,
                shard=shard,
                tick=tick,
            )
        except RunFailed as exc:
            self.summary.runs += 1
            self.summary.failed += 1
            self.summary.incidents.update(i.outcome for i in exc.report.incidents)
            self.metrics.observe(exc.report, status="failed", seconds=time.monotonic() - started)
            self._upstream_failed(playbook, exc)
            await self._notify(exc.report, tick)
            return
        except RunInterrupted as exc:  # a stop: the next run (after a restart) goes on
            self.summary.runs += 1
            self.summary.interrupted += 1
            self.summary.incidents.update(i.outcome for i in exc.report.incidents)
            self.metrics.observe(
                exc.report, status="interrupted", seconds=time.monotonic() - started
            )
            return
        except Exception:  # a bug in one run must not stop the daemon: log it, keep scheduling
            self.summary.runs += 1
            self.summary.crashed += 1
            self.metrics.crashed(playbook, seconds=time.monotonic() - started)
            log.exception("run_crashed", playbook=playbook)
            return
        self.summary.runs += 1
        self.summary.incidents.update(i.outcome for i in report.incidents)
        self.metrics.observe(report, status="completed", seconds=time.monotonic() - started)
        self._upstream_ok(playbook)
        await self._notify(report, tick)
        if self._on_report is not None:
            try:
                self._on_report(report)
            except Exception:  # a listener's bug must not stop the daemon either
                log.exception("report_listener_failed", playbook=playbook)

    async def _notify(self, report: RunReport, tick: int | None = None) -> None:
        """The run's message, when it has an outcome of ``[report] notify_on``.

        ``tick``: the fleet tick the run was one shard of (a fleet tells the tick at once).
        """
        del tick
        if self.notifier is None:
            return
        try:
            await notify_run(report, self.agent.settings, notifier=self.notifier)
        except Exception:  # a sink never fails a run (the notifier logs its own failures)
            log.exception("notify_crashed", run_id=report.run_id)

    async def _digests(self) -> None:
        """Send the digest at each ``[report] digest_cron``, on the agent's clock."""
        notifier = self.notifier
        if notifier is None or not notifier.enabled:
            return
        settings = self.agent.settings
        clock = self.agent.clock
        cron = CronTrigger.from_crontab(settings.report.digest_cron, timezone=UTC)
        previous: datetime | None = None
        while True:
            now = clock.now()
            due = cron.get_next_fire_time(previous, now)
            if due is None:
                return
            try:
                await clock.sleep((due - now).total_seconds())
            except Interrupted:
                return
            previous = due
            if not await self._claim_digest(due):
                continue
            try:
                delivery = await send_digest(
                    self.agent.journal, settings, now=due, notifier=notifier
                )
            except Exception:  # the next digest tries again
                log.exception("digest_failed", until=due.isoformat())
                continue
            log.info(
                "digest_sent",
                until=due.isoformat(),
                sent=list(delivery.sent) if delivery else [],
                failed=list(delivery.failed) if delivery else [],
            )

    async def _claim_digest(self, due: datetime) -> bool:
        """Whether this daemon sends the digest due at ``due`` (one node: always)."""
        del due
        return True

    def _upstream_failed(self, playbook: str, exc: RunFailed) -> None:
        if playbook in self._down:
            return
        self._down[playbook] = time.monotonic()
        self.metrics.upstream(playbook, down=True)
        cause = exc.__cause__
        log.error(
            "upstream_down",
            playbook=playbook,
            error=str(exc),
            system=cause.system if isinstance(cause, ConnectorError) else None,
            auth=isinstance(cause, AuthError),
        )

    def _upstream_ok(self, playbook: str) -> None:
        since = self._down.pop(playbook, None)
        if since is None:
            return
        self.metrics.upstream(playbook, down=False)
        log.info(
            "upstream_recovered", playbook=playbook, down_seconds=round(time.monotonic() - since, 3)
        )

    async def _retention(self) -> None:
        """Prune the journal of what is older than ``[journal] retention_days``."""
        days = self.agent.settings.journal.retention_days
        before = self.agent.clock.now() - timedelta(days=days)
        try:
            deleted = self.agent.journal.prune(before=before)
        except Exception:  # retention is housekeeping: the next day tries again
            log.exception("journal_prune_failed", before=before.isoformat())
            return
        log.info("journal_pruned", before=before.isoformat(), retention_days=days, deleted=deleted)

    # ------------------------------------------------------------------ life

    async def run(
        self,
        stop: asyncio.Event,
        *,
        on_ready: Callable[[DaemonReady], None] | None = None,
        handle_signals: bool = True,
    ) -> DaemonSummary:
        """Serve the endpoint, schedule until ``stop`` is set (or a signal), then wind down."""
        self._started = time.monotonic()
        for playbook in self.playbooks:
            last = self.agent.journal.last_successful_run(playbook)
            if last is not None and last.finished_at is not None:
                self.metrics.last_success(playbook, last.finished_at)
        host = self.agent.settings.daemon.host
        self.access.check_bind(host)
        app = build_endpoint(
            health=self.health, registry=self.metrics.registry, console=self.console()
        )
        wanted = self.agent.settings.daemon.port
        endpoint = Endpoint(app, port=wanted, host=host)
        try:
            port = await endpoint.start()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(
                f"cannot listen on {host}:{wanted}: {reason}", key="[daemon] port"
            ) from exc
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        try:
            with _quiet_scheduler_logs():
                timetable = await self._begin()
                for sig in signals:
                    loop.add_signal_handler(sig, self._on_signal, sig, stop)
                log.info(
                    "daemon_started",
                    port=port,
                    url=f"http://{host}:{port}",
                    console_writable=self.access.writable,
                    console_open_to_read=self.access.open_to_read,
                    pid=os.getpid(),
                    playbooks=timetable,
                    dry_run=self.dry_run,
                    journal=self.agent.journal.path,
                    target=self.agent.target,
                    notify=self.notifier is not None and self.notifier.enabled,
                    digest_cron=self.agent.settings.report.digest_cron,
                    **self._started_fields(),
                )
                if on_ready is not None:
                    on_ready(DaemonReady(port, host))
                digests = asyncio.create_task(self._digests(), name="doorfix-digest")
                try:
                    await stop.wait()
                finally:
                    digests.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Interrupted):
                        await digests
                await self._wind_down()
        finally:
            await self._abort()
            for sig in signals:
                loop.remove_signal_handler(sig)
            await endpoint.stop()
        self.summary.uptime_seconds = time.monotonic() - self._started
        log.info("daemon_stopped", **self.summary.as_log())
        return self.summary

    # the scheduling: APScheduler here; procrastinate for a fleet (daemon/fleet.py) -----------

    async def _begin(self) -> dict[str, str]:
        """Start scheduling; the timetable for the ``daemon_started`` line."""
        timetable = self._schedule()
        self._scheduler.start()
        return timetable

    def _started_fields(self) -> dict[str, Any]:
        """More of the ``daemon_started`` line."""
        return {}

    async def _abort(self) -> None:
        """Stop at once (the daemon was cancelled: no one waits for the runs any more)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _on_signal(self, sig: signal.Signals, stop: asyncio.Event) -> None:
        if not stop.is_set():
            log.info("daemon_stopping", signal=sig.name, runs_in_flight=self.running())
        stop.set()
        if isinstance(self.agent.clock, StoppableClock):
            # the run in flight stops waiting now: it finishes only a call already sent
            self.agent.clock.stop()

    async def _wind_down(self) -> None:
        """Schedule nothing more; let the run in flight finish; stop the scheduler."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.pause()
        # a job submitted just before the pause starts on the next loop iteration: let it
        # register, see ``_stopping`` and return without running
        await asyncio.sleep(0)
        while self._jobs:
            await asyncio.wait(set(self._jobs))
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn


async def run_daemon(
    agent: Agent,
    *,
    dry_run: bool = False,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[DaemonReady], None] | None = None,
    on_report: Callable[[RunReport], None] | None = None,
    speed: float = 1.0,
    handle_signals: bool = True,
    notifier: Notifier | None = None,
    access: ConsoleAccess | None = None,
    redact: SecretRedactor | None = None,
) -> DaemonSummary:
    """Run the daemon until ``stop`` is set or SIGTERM/SIGINT arrives; return its summary.

    ``speed`` is the agent's clock speed (clock seconds per real second): the schedule's
    intervals are clock seconds, so an accelerated demo runs them that much more often.
    """
    daemon = Daemon(
        agent,
        dry_run=dry_run,
        on_report=on_report,
        speed=speed,
        notifier=notifier,
        access=access,
        redact=redact,
    )
    return await daemon.run(
        stop or asyncio.Event(), on_ready=on_ready, handle_signals=handle_signals
    )
