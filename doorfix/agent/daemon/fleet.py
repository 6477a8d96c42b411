"""``doorfix daemon`` on a PostgreSQL journal: one replica of a fleet, a procrastinate worker.

Replicas share the journal's database and divide the work through procrastinate's queue (in
the same database, its own ``procrastinate_*`` tables). Each enabled playbook is a periodic
task: every replica's periodic deferrer offers each tick, and procrastinate's unique
constraint on (task, periodic id, tick) defers it once whatever the number of replicas. The
job's ``queueing_lock`` (one per playbook) makes a tick that finds the previous one still
queued a no-op, so missed ticks coalesce as in the single-node daemon. Its ``lock`` is its
*scope's* (:mod:`doorfix.agent.engine.scopes`): runs of one scope take turns across the
fleet, and runs of different scopes (``door-logs`` and ``aca-rejections``) go at the same
time on two replicas. A replica works one job at a time, so the jobs spread over the
replicas (a lone replica runs the scopes in turn). The run itself holds its scope's
run-lock row with a heartbeat (:class:`~doorfix.agent.journal.lock.DbRunLock`), and every
request takes its turn from the fleet's pace in the journal
(:class:`~doorfix.agent.journal.pace.FleetPace`), so replicas acting at once never exceed a
vendor's rate limit together.

A replica killed mid-run leaves its job ``doing`` and its run-lock row's heartbeat going
stale. Every replica sweeps for jobs whose worker stopped its heartbeat and marks them
``failed`` (never ``retry_job``: a known procrastinate issue makes a retry fail on a held
lock); the next tick's job runs on a live replica, takes the stale run lock over (fencing the
dead run) and settles the dead run's in-flight actions by re-reading them.

Each replica records itself in the journal's ``replicas`` table with a heartbeat and what it
is working, which ``doorfix fleet``, ``/healthz`` and ``/metrics`` show.

A tick is told in one message, as the single daemon tells a run: each shard's run leaves its
message's parts in the journal, and the run that finds every shard of the tick done sends
them together (:mod:`doorfix.agent.journal.ticks` says when a tick is done and why each
message goes once).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog
from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import ProcrastinateException
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager
from prometheus_client import Gauge

from doorfix.agent.daemon.access import ConsoleAccess
from doorfix.agent.daemon.endpoint import Health
from doorfix.agent.daemon.scheduler import Daemon, DaemonSummary
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.scopes import scopes_of
from doorfix.agent.engine.shards import Shard, all_shards
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal import rows
from doorfix.agent.journal.lock import DbRunLock, replica_id
from doorfix.agent.journal.store import Journal
from doorfix.agent.journal.ticks import TickMessage
from doorfix.agent.reports.notify import message_parts, notify_tick, should_notify
from doorfix.agent.sinks import Notifier
from doorfix.errors import ConfigError, JournalError
from doorfix.redact import SecretRedactor

log = structlog.get_logger("doorfix.fleet")

#: the procrastinate queue of doorfix's jobs
QUEUE = "doorfix"


def job_lock(playbook: str, shard: Shard | None = None) -> str:
    """The procrastinate ``lock`` of a playbook's jobs: its scope's at its shard of centers.

    One job per scope and shard goes at once: the playbooks of one center that write the
    same systems take turns, and those that write others go beside them. The run itself
    holds its scope's run-lock row (:class:`DbRunLock`); the job lock keeps a second job of
    the scope from taking a worker only to wait for that row.
    """
    shards = 1 if shard is None else shard.count
    return "doorfix-scope-" + "+".join(scopes_of(playbook, shard=shard, shards=shards))


def job_shards(shards: int) -> tuple[Shard | None, ...]:
    """The shards a tick of a playbook is divided in: one run per shard, or one over all."""
    return (None,) if shards <= 1 else all_shards(shards)


#: seconds between a replica's heartbeats (its ``replicas`` row and its worker's)
HEARTBEAT_SECONDS = 2.0
#: the advisory lock under which one replica installs procrastinate's schema
SCHEMA_LOCK = 0x70726F637261
QUEUE_DEPTH = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND status = 'todo'"
#: a replica silent this long is listed as silent (it may be dead)
SILENT_AFTER_SECONDS = HEARTBEAT_SECONDS * 5
#: and forgotten after this long
FORGET_AFTER_SECONDS = 3600.0


def queue_depth(conninfo: str) -> int:
    """Jobs waiting in doorfix's queue (0 before procrastinate's tables exist)."""
    with psycopg.connect(conninfo) as conn:
        found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if found is None or found[0] is None:
            return 0
        row = conn.execute(QUEUE_DEPTH, (QUEUE,)).fetchone()
    return 0 if row is None else int(row[0])


def fleet_status(journal: Journal, *, shards: int = 1) -> dict[str, Any]:
    """The fleet as ``doorfix fleet`` and ``/healthz`` show it.

    Each replica with its host, pid, last heartbeat, whether it is live (heard from within
    :data:`SILENT_AFTER_SECONDS`) and what it is working (each run's playbook, and its shard
    of centers when ``shards`` divide them); the holder of each run-lock row; the number of
    jobs waiting.
    """
    now = journal.clock.now()
    replicas = journal.replicas(forget_before=now - timedelta(seconds=FORGET_AFTER_SECONDS))
    silent_before = rows.to_text(now - timedelta(seconds=SILENT_AFTER_SECONDS))
    for replica in replicas:
        replica["live"] = replica["heartbeat_at"] >= silent_before
    lock = journal.run_lock
    holders: dict[str, dict[str, object]] = {}
    if isinstance(lock, DbRunLock):
        # every scope at every shard: what a run over every center holds
        for scope in scopes_of("", shards=shards):
            holder = lock.holder_of(lock.row(scope))
            if holder.get("holder"):
                holders[scope] = holder
    conninfo = journal.conninfo
    return {
        "journal": journal.path,
        "replicas": replicas,
        "live": sum(1 for r in replicas if r["live"]),
        "shards": shards,
        "run_locks": holders,
        "queue_depth": queue_depth(conninfo) if conninfo else 0,
    }


#: the journal counter that lets one replica send each digest
DIGEST_COUNTER = "digest"


def claim_digest(journal: Journal, due: datetime) -> bool:
    """Whether this replica sends the digest due at ``due``: the first to claim it does.

    Every replica's clock reaches each ``[report] digest_cron`` time; one journal counter per
    due time with a cap of one lets exactly one of them send it (a conditional increment,
    as the renewal budget is spent).
    """
    return journal.spend_budget(DIGEST_COUNTER, period=rows.to_text(due), cap=1)


def tick_messages(claimed: list[TickMessage]) -> list[tuple[int, list[dict[str, Any]]]]:
    """The claimed runs with something to tell, by tick (oldest first): one message each."""
    ticks: dict[int, list[dict[str, Any]]] = {}
    for row in claimed:
        if row.message is not None:
            ticks.setdefault(row.tick, []).append(row.message)
    return sorted(ticks.items())


def every_to_cron(every_seconds: int, speed: float = 1.0) -> str:
    """A procrastinate cron (6th field: seconds) firing about every ``every_seconds``.

    Cron steps divide a minute or an hour: an interval is rounded down to the nearest step
    that does (at least one second).
    """
    seconds = max(1, int(every_seconds / speed))
    if seconds < 60:
        step = max(d for d in range(1, 61) if 60 % d == 0 and d <= seconds)
        return f"* * * * * */{step}"
    minutes = seconds // 60
    if minutes < 60:
        step = max(d for d in range(1, 61) if 60 % d == 0 and d <= minutes)
        return f"*/{step} * * * *"
    hours = min(seconds // 3600, 24)
    step = max(d for d in range(1, 25) if 24 % d == 0 and d <= hours)
    return f"0 */{step} * * *"


def install_queue_schema(conninfo: str) -> bool:
    """Install procrastinate's tables once (replicas starting together wait on a lock)."""
    with psycopg.connect(conninfo, autocommit=False) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if row is not None and row[0] is not None:
            return False
        conn.execute(SchemaManager.get_schema())  # procrastinate's own SQL, no parameters
    return True


class FleetDaemon(Daemon):
    """One replica: the single-node daemon's runs, health and metrics, on procrastinate."""

    #: a replica's run keeps its scope's lock row to its end (another replica taking the row
    #: would settle a live verification as a crash's leftover): its job ends with the run
    overlap_tails = False
    sharded = True

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
        super().__init__(
            agent,
            dry_run=dry_run,
            on_report=on_report,
            speed=speed,
            notifier=notifier,
            access=access,
            redact=redact,
        )
        conninfo = agent.journal.conninfo
        if conninfo is None:
            raise JournalError("a fleet needs a PostgreSQL journal ([journal] url)")
        self._conninfo = conninfo
        lock = agent.journal.run_lock
        self.replica = lock.holder if isinstance(lock, DbRunLock) else replica_id()
        if isinstance(lock, DbRunLock):
            # another replica takes a run over once its heartbeat is older than the longest
            # API timeout plus the heartbeat interval: a call still in the air has landed
            settings = agent.settings
            longest = max(s.timeout_seconds for s in (settings.cloud, settings.aca, settings.clp))
            lock.heartbeat_seconds = HEARTBEAT_SECONDS
            # in the journal's clock seconds (an accelerated sandbox clock runs ``speed`` faster)
            lock.stale_after = (longest + HEARTBEAT_SECONDS * 2) * speed
        self._app = App(connector=PsycopgConnector(conninfo=conninfo))
        self._worker: asyncio.Task[None] | None = None
        self._chores: list[asyncio.Task[None]] = []
        self._running = False
        self._fleet: dict[str, Any] = {}
        registry = self.metrics.registry
        self._replicas_gauge = Gauge(
            "doorfix_fleet_replicas", "Live replicas sharing the journal.", registry=registry
        )
        self._queue_gauge = Gauge(
            "doorfix_fleet_queue_depth", "Jobs waiting in the fleet's queue.", registry=registry
        )
        self._working_gauge = Gauge(
            "doorfix_fleet_working",
            "1 while this replica works a playbook's run on a shard of centers.",
            ["replica", "playbook", "shard"],
            registry=registry,
        )
        #: the (playbook, shard) series set so far: each goes back to 0 when its run ends
        self._worked: set[tuple[str, str]] = set()
        self._register_tasks()

    # ------------------------------------------------------------------ tasks

    def _register_tasks(self) -> None:
        schedule = self.agent.settings.schedule
        tasks: dict[str, tuple[Any, str]] = {}
        for playbook in self.playbooks:
            plan = schedule.for_playbook(playbook)
            if plan.every_seconds is not None:
                cron = every_to_cron(plan.every_seconds, self._speed)
            else:
                cron = str(plan.cron)

            async def tick(
                timestamp: int, playbook: str = playbook, shard: str | None = None
            ) -> None:
                # the tick it was deferred for: its shards' runs count their caps together
                # (runs read from their cursors, not from the tick's time)
                part = None if shard is None else Shard.parse(shard)
                await self._job(playbook, part, timestamp)

            tasks[playbook] = (
                self._app.task(name=f"doorfix.run.{playbook}", queue=QUEUE)(tick),
                cron,
            )
        # one periodic job per playbook and shard of centers: each tick is deferred once per
        # shard (procrastinate's unique periodic constraint), and a tick whose shard's job is
        # still queued coalesces into it (its queueing lock). Registered shard by shard, so
        # ticks that coincide queue their jobs playbook after playbook (the deferrer follows
        # this order, the workers take the oldest job first): replicas then work cloud-bound
        # and CLP-bound runs side by side, not every door-logs shard first while CLP idles
        for shard in job_shards(self.agent.settings.shards):
            for playbook, (task, cron) in tasks.items():
                named = playbook if shard is None else f"{playbook}@{shard}"
                self._app.periodic(
                    cron=cron,
                    periodic_id=named,
                    lock=job_lock(playbook, shard),
                    queueing_lock=f"doorfix.run.{named}",
                    task_kwargs=None if shard is None else {"shard": str(shard)},
                )(task)

        async def retention(timestamp: int) -> None:
            del timestamp
            await self._retention()

        prune = self._app.task(
            name="doorfix.retention", queue=QUEUE, queueing_lock="doorfix.retention"
        )(retention)
        self._app.periodic(cron="17 3 * * *", periodic_id="retention")(prune)

    # ------------------------------------------------------------------ scheduling

    def scheduling(self) -> bool:
        worker = self._worker
        return self._running and worker is not None and not worker.done() and not self._stopping

    async def _begin(self) -> dict[str, str]:
        await asyncio.to_thread(self._join_fleet)
        await asyncio.to_thread(install_queue_schema, self._conninfo)
        await self._app.open_async()
        self._worker = asyncio.create_task(
            self._app.run_worker_async(
                queues=[QUEUE],
                name=self.replica,
                # one job at a time: procrastinate's worker takes its next job the moment a
                # slot frees, so a replica with a slot per scope would take every job and
                # leave the others idle; with one, the other scope's job is another
                # replica's, and a replica added takes its share at once
                concurrency=1,
                install_signal_handlers=False,
                update_heartbeat_interval=HEARTBEAT_SECONDS,
                stalled_worker_timeout=HEARTBEAT_SECONDS * 5,
                fetch_job_polling_interval=1.0,
                delete_jobs="successful",
            ),
            name="doorfix-fleet-worker",
        )
        self._chores = [
            asyncio.create_task(self._beat_forever(), name="doorfix-replica-heartbeat"),
            asyncio.create_task(self._sweep_forever(), name="doorfix-stalled-sweep"),
        ]
        self._running = True
        schedule = self.agent.settings.schedule
        timetable: dict[str, str] = {}
        for playbook in self.playbooks:
            plan = schedule.for_playbook(playbook)
            timetable[playbook] = (
                f"every {plan.every_seconds}s" if plan.every_seconds else f"cron {plan.cron}"
            )
        return timetable

    async def _notify(self, report: RunReport, tick: int | None = None) -> None:
        """Tell the tick this run was a shard of once every shard of it is done."""
        notifier = self.notifier
        if tick is None or report.shard is None or report.target == "sandbox":
            await super()._notify(report, tick)  # a run over every center: its own message
            return
        if notifier is None or not notifier.enabled:
            return
        try:
            told = await asyncio.to_thread(self._tell_tick, report, tick)
            for at, parts in told:
                runs = [str(p["run_id"]) for p in parts]
                log.info("tick_told", playbook=report.playbook, tick=at, runs=runs)
                await notify_tick(parts, self.agent.settings, notifier=notifier)
        except JournalError as exc:
            # the rows already left stay for the next run's claim; this run's own message is
            # lost only if its row could not be written
            log.warning("tick_message_failed", run_id=report.run_id, error=str(exc))
        except Exception:  # a sink never fails a run (the notifier logs its own failures)
            log.exception("notify_crashed", run_id=report.run_id)

    def _tell_tick(self, report: RunReport, tick: int) -> list[tuple[int, list[dict[str, Any]]]]:
        """Leave this run's parts; claim the done ticks; each tick's parts to tell."""
        settings = self.agent.settings
        notify_on = settings.report.notify_on
        parts = (
            message_parts(
                report, notify_on=notify_on, console_url=settings.report.console_url or None
            )
            if should_notify(report, notify_on)
            else None
        )
        journal = self.agent.journal
        journal.tell_tick(
            report.run_id,
            playbook=report.playbook,
            shard=str(report.shard),
            tick=tick,
            message=parts,
        )
        shards = [str(s) for s in all_shards(settings.shards)]
        claimed = journal.claim_ticks(report.playbook, shards=shards)
        return tick_messages(claimed)

    async def _claim_digest(self, due: datetime) -> bool:
        """One replica of the fleet sends each digest (see :func:`claim_digest`)."""
        try:
            claimed = await asyncio.to_thread(claim_digest, self.agent.journal, due)
        except JournalError as exc:
            log.warning("digest_claim_failed", until=due.isoformat(), error=str(exc))
            return False
        if not claimed:
            log.info("digest_sent_by_another_replica", until=due.isoformat())
        return claimed

    async def health(self) -> Health:
        """The single-node health, with the fleet: replicas, the run lock, the queue."""
        health = await super().health()
        details = {**health.details, "replica": self.replica, "fleet": self._fleet}
        return Health(health.reason, details)

    def _started_fields(self) -> dict[str, Any]:
        return {"fleet": True, "replica": self.replica}

    async def _wind_down(self) -> None:
        """Take no new job; let the run in flight finish; leave the fleet's list."""
        self._stopping = True
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()  # procrastinate stops taking jobs and awaits the one running
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while self._jobs:
            await asyncio.wait(set(self._jobs))
        await self._close()

    async def _abort(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
        await self._close()

    async def _close(self) -> None:
        for chore in self._chores:
            chore.cancel()
        for chore in self._chores:
            with contextlib.suppress(asyncio.CancelledError):
                await chore
        self._chores = []
        if self._running:
            self._running = False
            with contextlib.suppress(JournalError):
                await asyncio.to_thread(self.agent.journal.drop_replica, self.replica)
            await self._app.close_async()

    def _join_fleet(self) -> None:
        """Enter the fleet's list, unless a live replica divides the centers otherwise.

        Replicas dividing the centers in different shards would lock different rows for one
        center, and two runs could act on it at once: the replica refuses to start.
        """
        journal, shards = self.agent.journal, self.agent.settings.shards
        status = fleet_status(journal, shards=shards)
        others = [r for r in status["replicas"] if r["live"] and r["replica_id"] != self.replica]
        for other in others:
            if other["shards"] != shards:
                raise ConfigError(
                    f"is {shards}, but live replica {other['replica_id']} divides the centers "
                    f"in {other['shards']} shard(s); every replica of a fleet must use the "
                    "same number (stop them all to change it)",
                    key="[fleet] shards",
                )
        self._beat(socket.gethostname(), os.getpid())

    def _beat(self, host: str, pid: int) -> None:
        self.agent.journal.replica_beat(
            self.replica,
            host=host,
            pid=pid,
            working=self.working(),
            shards=self.agent.settings.shards,
        )

    # ------------------------------------------------------------------ chores

    def working(self) -> str:
        return "+".join(self.working_on())

    async def _beat_forever(self) -> None:
        host, pid = socket.gethostname(), os.getpid()
        while True:
            try:
                await asyncio.to_thread(self._beat, host, pid)
            except JournalError as exc:
                log.warning("replica_heartbeat_failed", error=str(exc))
            try:
                self._fleet = await asyncio.to_thread(
                    fleet_status, self.agent.journal, shards=self.agent.settings.shards
                )
            except (JournalError, psycopg.Error) as exc:
                log.warning("fleet_status_failed", error=str(exc))
            else:
                self._replicas_gauge.set(self._fleet["live"])
                self._queue_gauge.set(self._fleet["queue_depth"])
                now = self.runs_going()
                for playbook, shard in sorted(self._worked | now):
                    going = int((playbook, shard) in now)
                    self._working_gauge.labels(self.replica, playbook, shard).set(going)
                self._worked |= now
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _sweep_forever(self) -> None:
        """Mark failed the jobs of replicas whose worker stopped its heartbeat."""
        manager = self._app.job_manager
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                stalled = await manager.get_stalled_jobs(
                    queue=QUEUE, seconds_since_heartbeat=HEARTBEAT_SECONDS * 5
                )
                for job in stalled:
                    if job.id is None:
                        continue
                    await manager.finish_job_by_id_async(
                        job.id, status=Status.FAILED, delete_job=False
                    )
                    log.warning("stalled_job_failed", job_id=job.id, task=job.task_name)
            except (
                ProcrastinateException,
                psycopg.Error,
            ) as exc:  # housekeeping: the next sweep tries again
                log.warning("stalled_sweep_failed", error=str(exc))


async def run_fleet_daemon(
    agent: Agent,
    *,
    dry_run: bool = False,
    stop: asyncio.Event | None = None,
    on_report: Callable[[RunReport], None] | None = None,
    speed: float = 1.0,
    handle_signals: bool = True,
    notifier: Notifier | None = None,
    access: ConsoleAccess | None = None,
    redact: SecretRedactor | None = None,
) -> DaemonSummary:
    """Run one replica until ``stop`` is set or SIGTERM/SIGINT arrives; its summary."""
    daemon = FleetDaemon(
        agent,
        dry_run=dry_run,
        on_report=on_report,
        speed=speed,
        notifier=notifier,
        access=access,
        redact=redact,
    )
    return await daemon.run(stop or asyncio.Event(), handle_signals=handle_signals)
