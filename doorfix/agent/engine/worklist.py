"""The run's incidents being worked: lanes at once, bounded, and cohorts started while the run
still reads the others' facts.

A person at a door waits only for their own facts. The aca-rejections collector hands over
each *cohort* (the refusals that share a person, a lock or a CLP site) as soon as its facts
are read (:meth:`Worklist.ready`); the cohort's incidents start at once, in its own phases
(Sync Access first, read back, then the rest: a collection belongs to one site, so no
other cohort's change can race a cohort's Sync Access), while the run reads the other
cohorts' facts; the door-logs collector hands over each project's failures the same way. A
cohort sharing anything with one already started (:func:`touches`) starts once that one's
writes are sent, as the next incident of a lane does. What the run found last (the retried
deferrals, and the cohorts touching a deferral due this run, kept back so a retried Sync
Access still comes before a toggle at its site) is worked once every cohort handed over
has sent its writes, in phases of its own (:meth:`Worklist.rest`). Each lane of a cohort
works its incidents in order (see :mod:`lanes`), at most
``[engine] max_concurrent_incidents`` incidents sending writes at once across the run.

    async with Worklist(run, progress, process).open() as work:
        batch = await collect(...)               # calls work.ready(cohort, feed) meanwhile
        await work.rest(others, order=found)     # the rest; every incident ends
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from doorfix.agent.engine.candidates import Candidate
from doorfix.agent.engine.execute import on_verifying
from doorfix.agent.engine.lanes import is_sync, plan_lanes, resources
from doorfix.agent.engine.progress import Progress
from doorfix.agent.engine.report import IncidentReport
from doorfix.agent.engine.state import RunState
from doorfix.clock import stopped
from doorfix.connectors._http import waiting_since
from doorfix.errors import ConnectorError, Interrupted

#: works one candidate: its incident's report (None: it joined another incident)
Process = Callable[[Candidate], Awaitable[IncidentReport | None]]

#: subject fields naming where an incident is: two cohorts at one center (or site) never run
#: at once, whatever their subjects' other ids
_PLACES = ("center_id", "site_id")


def reach(subject: Mapping[str, Any]) -> set[str]:
    """What an incident of this subject touches, places included (see :func:`touches`)."""
    return {f"{kind}={value}" for kind, value in subject.items() if value is not None}


def touches(candidate: Candidate) -> set[str]:
    """A candidate's resources (:func:`lanes.resources`), its center and its CLP site."""
    subject = candidate.diagnosis.subject.as_dict()
    touched = resources(candidate)
    touched.update(f"{kind}={subject[kind]}" for kind in _PLACES if subject.get(kind))
    site = candidate.verify.get("site_id")
    if site:
        touched.add(f"site_id={site}")
    return touched


class _Turn:
    """One incident's hold on the run's scheduling: a slot, until its writes are sent.

    ``sent`` is set, and the slot given back, when the incident's remedy starts verifying
    (its writes are out; only re-reads are left) or when the incident ends, whichever is
    first: the next incident of its lane, and the next phase, wait for that, never for a
    verification.
    """

    def __init__(self, limit: asyncio.Semaphore) -> None:
        self._limit = limit
        self._held = False
        self.sent = asyncio.Event()

    async def take(self) -> None:
        await self._limit.acquire()
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._limit.release()
        self.sent.set()


async def phase_ready(run: RunState, first: Candidate) -> bool:
    """Whether the phase is the Sync Access one; if so, once it may start.

    A Sync Access never starts while an earlier run's change is still on its way to the IQs:
    it waits for the runs in their verifications' tail (see doorfix.agent.journal.live).
    """
    sync = is_sync(first)
    if sync and not run.dry_run:
        await run.journal.live.wait_for_earlier(run.report.run_id)
    return sync


class Worklist:
    """The incidents of one run, worked concurrently by lane, bounded; see the module doc.

    Verification is off the critical path: an incident whose remedy is verifying (re-reading
    until the change shows) gives its slot back, the next incident of its lane starts (it
    sees the first one's action in the journal: a Sync Access to join, a cool-down to
    respect). Only a Sync Access phase is waited for whole: every Sync Access job is read
    back before any other remedy of its cohort changes access (a change while a job runs
    could race its push to the IQs). The run ends when the last verification ends, so a
    toggle that never lands costs the run one ``verify_timeout_seconds``, not one per
    incident behind it.

    The report lists incidents in the order the run found them (Sync Access first), however
    they finished. When a system becomes unreachable (while an incident acts, or while the
    run still reads), no lane starts another incident, the incidents in flight finish (a
    call already sent is answered and recorded), and the run fails with that error.
    """

    def __init__(
        self,
        run: RunState,
        progress: Progress,
        process: Process,
        *,
        held: Iterable[str] = (),
    ) -> None:
        self._run = run
        self._progress = progress
        self._process = process
        self._limit = asyncio.Semaphore(run.agent.settings.engine.max_concurrent_incidents)
        self._group: asyncio.TaskGroup | None = None
        #: every candidate started, in the order started (a task's index into it)
        self._candidates: list[Candidate] = []
        self._results: dict[int, IncidentReport | None] = {}
        self._failure: list[BaseException] = []
        #: each started cohort's scheduling: done once its writes are all sent
        self._cohorts: list[asyncio.Task[None]] = []
        #: every incident's task (done once it is recorded, verification included)
        self._incidents: list[asyncio.Task[None]] = []
        #: what each cohort started touches (:func:`touches`), with its scheduling task
        self._started: list[tuple[set[str], asyncio.Task[None]]] = []
        #: what the cohorts kept back touch, and what a deferral due this run touches
        #: (:func:`reach`): a cohort touching any of it is kept for :meth:`rest` too
        self._held: set[str] = set(held)
        #: cohorts handed over but kept for :meth:`rest`
        self.kept: list[Candidate] = []
        self._done = 0
        self._counting = False
        self._reported = False

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Worklist]:
        """The run's task group; an error while the run reads stops new incidents, lets the
        ones in flight finish, and is raised as itself."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    yield self
                except Exception as exc:
                    # the run's reading (or its bookkeeping) failed: the incidents already
                    # acting finish and are recorded before the run fails with it
                    self._failure.append(exc)
                    await self._drain()
                    self._report()
                    raise
        except BaseExceptionGroup as errors:
            # an unexpected error (a bug, a cancellation) surfaces as itself, not as a group:
            # the caller's handling is the same whether incidents ran together
            raise errors.exceptions[0] from None
        finally:
            self._group = None

    def ready(self, cohort: Sequence[Candidate], feed: str) -> None:
        """Start a cohort whose facts are read (its events came from ``feed``).

        A cohort touching what a started one touches starts once that one's writes are sent
        (as the next incident of a lane does); one touching what a kept cohort or a due
        deferral touches is kept for :meth:`rest`.
        """
        touched = set().union(*(touches(c) for c in cohort))
        if not self._run.dry_run:
            # its decisions mark its events seen, as the run's commit will list them
            self._run.feeds.update({e: feed for c in cohort for e in c.event_ids})
        if self._failure or touched & self._held:
            self.kept.extend(cohort)
            self._held |= touched
            return
        after = [task for other, task in self._started if other & touched]
        self._started.append((touched, self._start(cohort, after=after)))

    async def rest(
        self,
        candidates: Sequence[Candidate],
        *,
        order: Sequence[Candidate],
        tell_sent: bool,
        stage: str = "working incidents",
    ) -> None:
        """Work ``candidates`` once every cohort started has sent its writes, then wait for
        every incident to end; list them in the report in ``order`` (Sync Access first).

        ``tell_sent``: call the run's ``writes_sent`` once every write of the run is sent.
        """
        self._progress.stage(
            f"{self._run.report.playbook}: {stage}",
            total=len(self._candidates) + len(candidates),
        )
        self._progress.advance(self._done)
        self._counting = True
        try:
            await self._sent()
            if candidates and not self._failure:
                self._start(candidates)
                await self._sent()
            if not self._failure and tell_sent:
                # every write is sent: the next run of these scopes may start beside the
                # verifications still going (see doorfix.agent.journal.live)
                self._run.writes_sent()
            await self._drain()
        finally:
            self._report(order)
        if self._failure:
            raise self._failure[0]

    def _report(self, order: Sequence[Candidate] = ()) -> None:
        """List the incidents worked in the run's report, in ``order`` (Sync Access first,
        then as found; what ``order`` lacks as started), once."""
        if self._reported:
            return
        self._reported = True
        rank = {id(c): i for i, c in reversed(list(enumerate(order)))}
        found = sorted(
            range(len(self._candidates)),
            key=lambda i: (
                not is_sync(self._candidates[i]),
                rank.get(id(self._candidates[i]), len(order)),
                i,
            ),
        )
        self._run.report.incidents.extend(
            incident for i in found if (incident := self._results.get(i)) is not None
        )

    def _start(
        self, cohort: Sequence[Candidate], *, after: Sequence[asyncio.Task[None]] = ()
    ) -> asyncio.Task[None]:
        base = len(self._candidates)
        self._candidates.extend(cohort)
        run = self._run
        run.journal.live.candidates(run.report.run_id, (e for c in cohort for e in c.event_ids))
        indexes = list(range(base, len(self._candidates)))
        task = self._tasks.create_task(self._phases(indexes, after))
        self._cohorts.append(task)
        return task

    @property
    def _tasks(self) -> asyncio.TaskGroup:
        if self._group is None:
            raise RuntimeError("a Worklist starts incidents only inside open()")
        return self._group

    async def _sent(self) -> None:
        """Every cohort started so far has sent its writes (its Sync Access read back)."""
        while pending := [t for t in self._cohorts if not t.done()]:
            await asyncio.wait(pending)

    async def _drain(self) -> None:
        """Every incident started has ended (its verification included)."""
        await self._sent()
        while pending := [t for t in self._incidents if not t.done()]:
            await asyncio.wait(pending)

    def _stop(self) -> bool:
        if self._failure:
            return True
        if stopped(self._run.agent.clock):  # a stop: no new incident starts
            self._failure.append(Interrupted("stopping: no new incident starts"))
            return True
        return False

    async def _phases(self, indexes: list[int], after: Sequence[asyncio.Task[None]]) -> None:
        """A cohort's phases (once the cohorts it shares with have sent their writes): Sync
        Access first, read back, then the rest, lane by lane."""
        if after:
            await asyncio.wait(after)
        cohort = [self._candidates[i] for i in indexes]
        for phase in plan_lanes(cohort):
            sync = await phase_ready(self._run, cohort[phase[0][0]])
            started: list[asyncio.Task[None]] = []
            await asyncio.gather(
                *(self._lane([indexes[j] for j in lane], started) for lane in phase)
            )
            if self._failure:
                return
            if started and sync:
                # every Sync Access ends (its job read back) before any other remedy
                # starts: a change while a Sync Access runs could race its push to the IQs
                await asyncio.wait(started)
            # the other phase ends once all its writes are sent; its verifications go on

    async def _lane(self, indexes: list[int], started: list[asyncio.Task[None]]) -> None:
        for i in indexes:
            if self._stop():
                return
            turn = _Turn(self._limit)
            await turn.take()
            if self._stop():
                turn.give_back()
                return
            task = self._tasks.create_task(self._work(i, turn))
            started.append(task)
            self._incidents.append(task)
            await turn.sent.wait()

    async def _work(self, i: int, turn: _Turn) -> None:
        candidate = self._candidates[i]
        try:
            with on_verifying(turn.give_back), waiting_since(candidate.waiting_since):
                self._results[i] = await self._process(candidate)
        except (ConnectorError, OSError, Interrupted) as exc:
            self._failure.append(exc)
            return
        except BaseException as exc:
            # a bug, a cancellation, a kill: no lane starts another incident while it
            # propagates (the slot is free again before the group cancels)
            self._failure.append(exc)
            raise
        finally:
            turn.give_back()
        self._done += 1
        if self._counting:
            self._progress.advance()
