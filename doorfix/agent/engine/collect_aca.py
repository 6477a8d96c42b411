"""Collector of the aca-rejections playbook, and the ticket path's fact gathering.

ACA's event feed is read from the stored cursor (events are deduplicated by id, since the feed
may repeat one). Events are grouped per user x lock. A group whose newest event is a grant
resolved itself; rejections that happened before a fix doorfix already made (delivered late,
or re-read after a crash) are not diagnosed again. Incidents waiting for verification after a
Sync Access are settled from the new events and CLP entries instead of being diagnosed anew.
Besides events, the locks' CLP state is scanned for the hardware rows of the runbook (A):
at most ``[engine] hardware_scan_centers`` centers a run, in turn (:func:`_scan_hardware`).
A person at a door never waits for work nobody waits for: the scan starts once the
refusals' facts are read, its reads queue behind every other request, and the run works
the refusals' incidents meanwhile, the scan's findings after them (``AcaBatch.scan``, which
the engine starts).

The groups' facts and the pending incidents' settling are read at the same
time (shared through the run's :class:`~doorfix.agent.engine.fetch.RunFetcher`, paced by the
clients' rate limits) and put together in the groups' sorted order, so the batch is the same
as a read one after the other. Each group is read on its own (its user, its unassigned tags
taken out, then its facts), its reads queued at its cohort's earliest refusal, and each
cohort (the groups sharing a user, a lock or a CLP site) is handed to the engine as soon as
its facts are read (:func:`_hand_over`): a person at a door waits only for their own facts,
and a Sync Access and a toggle at one site are still planned together, the Sync Access
first. A group reads only what its decision needs
(:func:`needed_facts`): on the event path no CLP entries or incidents, and a tag's refusals no
mobile keys; the ticket path and the retries (no event) read everything.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from doorfix.agent.engine.candidates import (
    FUTURE_TOLERANCE,
    Batch,
    Candidate,
    FeedCommit,
    Ready,
    incident_key,
    merge_by_key,
)
from doorfix.agent.engine.fetch import Concurrently, RunFetcher, gather_all
from doorfix.agent.engine.lanes import connected
from doorfix.agent.journal.live import current_run
from doorfix.agent.journal.rows import IncidentRow
from doorfix.agent.journal.store import Journal
from doorfix.connectors._http import in_background, waiting_since
from doorfix.connectors.models import iso_z
from doorfix.connectors.models.aca import Center, Event, User
from doorfix.connectors.models.clp import Iq
from doorfix.playbooks.aca import playbook as aca_rejections
from doorfix.playbooks.aca.access import rejections_at
from doorfix.playbooks.facts import LockFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Outcome

FEED = "aca-events"
#: the row whose cursor is the hardware scan's place among the centers (the last scanned)
SCAN = "clp-hardware-scan"
#: what a hardware scan found, and its place to store (None: it scanned every center)
Scanned = tuple[list[Candidate], FeedCommit | None]
GRANTS = frozenset({"tag_granted", "mkey_granted"})
REJECTIONS = frozenset({"tag_rejected", "mkey_rejected"})


@dataclass
class FollowUp:
    """New evidence about an incident waiting for verification."""

    incident_id: str
    acted_at: datetime
    granted: bool = False
    rejections: int = 0
    event_ids: list[str] = field(default_factory=list)


@dataclass
class AcaBatch(Batch):
    """The aca-rejections batch: candidates plus follow-ups of pending incidents."""

    follow_ups: list[FollowUp] = field(default_factory=list)
    #: user x lock pairs whose newest event is a grant: what was deferred for them resolved
    resolved: list[dict[str, str]] = field(default_factory=list)
    #: refusals from before doorfix's fix of their user x lock (or within the propagation
    #: grace after it): they join the fix's incident, never diagnosed again
    joins: list[FixJoin] = field(default_factory=list)
    #: the hardware scan, for the engine to start once the refusals' facts are read and to
    #: read while it works their incidents: its findings, and the scan's place to store
    #: (see :func:`_scan_hardware`)
    scan: Callable[[], Coroutine[Any, Any, Scanned]] | None = None


@dataclass(frozen=True)
class FixJoin:
    """Refusals that belong to an incident doorfix fixed (see :attr:`AcaBatch.joins`)."""

    incident: IncidentRow
    event_ids: tuple[str, ...]
    #: the incident is another live run's, still being fixed (see doorfix.agent.journal.live)
    decided_elsewhere: bool = False


class UnresolvedError(LookupError):
    """A fact the event names does not exist (an unknown user, center or lock)."""

    def __init__(self, message: str, *, field: str = "user_id") -> None:
        #: the event's field whose id resolves to nothing
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Needs:
    """Which of a user x lock's optional facts its decision reads."""

    #: the user's mobile keys: check D (a mobile key presented), and the ticket path's report
    mobile_keys: bool = True
    #: the site's recent CLP entries and incidents: the ticket path's checks (A a1's quiet
    #: lock and incidents, D's presented credential, c2's last opening)
    clp_history: bool = True


#: everything: the ticket path and the retries (no rejection event)
EVERYTHING = Needs()


def needed_facts(events: Sequence[Event], lock_id: str) -> Needs:
    """What the decision of these events at ``lock_id`` reads (checks.py, plans.py).

    With a rejection event the event chain decides: none of its checks, nor a plan, reads
    CLP entries or incidents, and only check D (the newest rejection a mobile key's) reads
    the mobile keys. Without one the ticket chain may read every fact.
    """
    rejections = rejections_at(events, lock_id)
    if not rejections:
        return EVERYTHING
    return Needs(mobile_keys=rejections[-1].type == "mkey_rejected", clp_history=False)


async def lock_facts(
    fetcher: RunFetcher,
    user_id: str,
    lock_id: str,
    events: Sequence[Event],
    *,
    window: timedelta,
    center_id: str | None = None,
) -> LockFacts:
    """Assemble the facts of one user x lock (each lookup fetched once per run, at once).

    Only the facts :func:`needed_facts` names are read; the others are left empty.
    """
    user = await fetcher.user(user_id)
    if user is None:
        raise UnresolvedError(f"ACA user {user_id} does not exist")
    center = await fetcher.center(center_id or user.center_id)
    if center is None:
        raise UnresolvedError(
            f"ACA center {center_id or user.center_id} does not exist", field="center_id"
        )
    site = center.clp_site_id
    since = fetcher.now - window
    needs = needed_facts(events, lock_id)
    async with Concurrently() as reads:
        accesses = reads.start(fetcher.accesses(user.id))
        bookings = reads.start(fetcher.bookings(user.company_id, center.id))
        inventories = reads.start(fetcher.inventories(center.id))
        keys = reads.start(fetcher.mobile_keys(user.id)) if needs.mobile_keys else None
        locks = reads.start(fetcher.locks(site))
        entries = reads.start(fetcher.entries(site, since)) if needs.clp_history else None
        incidents = reads.start(fetcher.incidents(site, since)) if needs.clp_history else None
        larry = reads.start(fetcher.larry(site, user.clp_user_id, lock_id))
    lock = locks.result().get(lock_id)
    if lock is None and not any(lock_id in inv.lock_ids for inv in inventories.result()):
        raise UnresolvedError(
            f"lock {lock_id} is known neither to CLP site {site} nor to ACA center {center.id}",
            field="lock_id",
        )
    iq: Iq | None = await fetcher.iq(site, lock.iq.id) if lock is not None else None
    iq_id = lock.iq.id if lock is not None else None
    return LockFacts(
        center=center,
        user=user,
        lock_id=lock_id,
        events=tuple(events),
        accesses=accesses.result(),
        bookings=bookings.result(),
        inventories=inventories.result(),
        mobile_keys=keys.result() if keys is not None else (),
        lock=lock,
        iq=iq,
        larry=larry.result(),
        entries=tuple(e for e in (entries.result() if entries else ()) if e.lock_id == lock_id),
        incidents=tuple(
            i
            for i in (incidents.result() if incidents else ())
            if (i.lock is not None and i.lock.id == lock_id)
            or (i.iq is not None and i.iq.id == iq_id)
        ),
    )


def lock_candidate(
    facts: LockFacts, policy: PlanPolicy, now: datetime, event_ids: tuple[str, ...] = ()
) -> Candidate:
    """Diagnose and plan one user x lock."""
    diagnosis = aca_rejections.diagnose(facts, now, policy)
    plan = aca_rejections.plan(diagnosis, facts, policy, now)
    newest = max((e.occurred_at for e in facts.events), default=None)
    return Candidate(
        diagnosis,
        plan,
        event_ids,
        occurred_at=newest,
        waiting_since=min(
            (e.occurred_at for e in facts.events if e.type in REJECTIONS), default=None
        ),
        verify={"site_id": facts.center.clp_site_id, "clp_user_id": facts.user.clp_user_id},
    )


def _last_fix(journal: Journal, user_id: str, lock_id: str) -> tuple[datetime, IncidentRow] | None:
    """When doorfix last fixed (or synced for) this user x lock, and that incident, if it did."""
    latest: tuple[datetime, IncidentRow] | None = None
    for incident in journal.incidents(subject={"user_id": user_id, "lock_id": lock_id}, limit=20):
        for row in journal.history(incident.incident_id):
            if row.outcome in (Outcome.FIXED, Outcome.PENDING_VERIFICATION) and (
                latest is None or row.at > latest[0]
            ):
                latest = (row.at, incident)
    return latest


def _pending(journal: Journal, fetcher: RunFetcher) -> dict[tuple[str, str], FollowUp]:
    """The incidents of the run's centers waiting for verification, by user x lock."""
    out: dict[tuple[str, str], FollowUp] = {}
    for incident in journal.open_incidents(outcome=Outcome.PENDING_VERIFICATION):
        user, lock = incident.subject.get("user_id"), incident.subject.get("lock_id")
        if user is None or lock is None or not fetcher.owns_subject(incident.subject):
            continue
        done = [a for a in journal.actions(incident_id=incident.incident_id) if a.finished_at]
        acted = max((a.finished_at for a in done if a.finished_at), default=incident.last_seen_at)
        out[(user, lock)] = FollowUp(incident.incident_id, acted)
    return out


@dataclass
class _FeedRead:
    """One read of the events feed: the events, and where to read each again from."""

    events: dict[str, Event]
    #: the cursor the feed was read past (what to store when every event is decided)
    cursor: str | None
    #: event id -> the cursor of the page it came on (to read it again)
    page_of: dict[str, str | None]
    #: the feed's order of the events (page by page)
    order: list[str]
    #: the stored cursor this read started from (the commit is a compare-and-set on it)
    start: str | None = None
    #: the feed row whose cursor this read moves (a shard's own, see :func:`cursor_feed`)
    position: str = FEED

    def commit(self, undecided: set[str]) -> FeedCommit:
        """The feed position to store: every decided event seen, the undecided ones kept.

        No event is marked seen without a decision: one that could not be decided is left
        unseen and the stored cursor stays at its page, so the next run reads it again.
        """
        held = next((self.page_of[i] for i in self.order if i in undecided), self.cursor)
        seen = tuple(sorted(i for i in self.events if i not in undecided))
        return FeedCommit(FEED, held, seen, self.start, position=self.position)


def cursor_feed(fetcher: RunFetcher, feed: str = FEED) -> str:
    """The feed row whose cursor a run's read of the events (or its scan) moves.

    A shard's run reads the whole feed and decides only its centers' events (the others
    are another shard's, left unseen for it), so each shard keeps its own position. Events
    are marked seen under the one feed name whatever the shard. The hardware scan's place
    among a shard's centers is the shard's own too.
    """
    return feed if fetcher.shard is None else f"{feed}@{fetcher.shard}"


async def _read_feed(fetcher: RunFetcher, journal: Journal) -> _FeedRead:
    position = cursor_feed(fetcher)
    stored = journal.cursor(position)
    start = stored
    if stored is None and position != FEED:
        # a shard's first read goes on from where the feed was read before the centers were
        # divided (the events before it are decided); a new journal starts at the oldest kept
        start = journal.cursor(FEED)
    # the commit is a compare-and-set on the shard's own row, as stored (None: a first one)
    read = _FeedRead({}, start, {}, [], stored, position)
    feed = fetcher.clients.aca.event_pages(start, on_skip=fetcher.on_skip)
    before = start
    async for page in feed:
        for event in page.data:
            if not fetcher.owns(event.center_id):
                continue  # another shard's center: its run decides it
            if event.id not in read.events:  # the feed may repeat an event
                read.events[event.id] = event
                read.page_of[event.id] = before
                read.order.append(event.id)
        before = feed.cursor
    read.cursor = feed.cursor
    return read


async def collect_rejections(
    fetcher: RunFetcher,
    journal: Journal,
    *,
    policy: PlanPolicy,
    lookback: timedelta,
    since: datetime | None,
    on_unresolved: Callable[[str, str, str], None],
    scan_centers: int = 0,
    ready: Ready | None = None,
) -> AcaBatch:
    """Read the new ACA events, settle pending incidents, diagnose the rest, scan hardware.

    ``on_unresolved(message, event_ids, field)`` is told about events that cannot be used: an
    id that resolves to nothing, or a time in the future. ``scan_centers``: the most centers
    whose hardware the run scans (0: every center), see :func:`_scan_hardware`. ``ready``:
    handed each cohort as soon as its facts are read (:func:`_hand_over`); what it was
    handed is in the batch's ``streamed``, the rest in its ``candidates``.
    """
    batch = AcaBatch()
    now = fetcher.now
    floor = since or now - lookback
    read = await _read_feed(fetcher, journal)
    fresh = journal.unseen(FEED, read.events)
    #: events no decision holds (an id resolving to nothing, a time ahead): never marked seen
    undecided: set[str] = set()
    events: list[Event] = []
    for event_id in sorted(fresh, key=lambda i: (read.events[i].recorded_at, i)):
        event = read.events[event_id]
        if event.occurred_at > now + FUTURE_TOLERANCE:
            on_unresolved(
                f"event occurred in the future ({iso_z(event.occurred_at)}): not decided, "
                "read again by the next run",
                event.id,
                "occurred_at",
            )
            undecided.add(event.id)
        elif event.occurred_at >= floor:
            events.append(event)
    groups: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in events:
        groups[(event.user_id, event.lock_id)].append(event)
    pending = _pending(journal, fetcher)
    keys = sorted(groups)
    waits, cohorts = await _cohorts(fetcher, groups)
    handed: list[tuple[Place, Candidate]] = []
    #: the groups whose candidates were handed over (merged into what ``handed`` holds)
    taken: set[tuple[str, str]] = set()
    # each group read and diagnosed on its own, the longest-waiting cohort's first (so a
    # fact two groups share is read at the earlier one's turn); each fact once per run
    async with Concurrently() as reads:
        chains = {
            key: reads.start(
                _work_group(
                    fetcher,
                    journal,
                    key,
                    groups[key],
                    pending,
                    policy=policy,
                    window=lookback,
                    wait=waits[key],
                )
            )
            for key in sorted(keys, key=lambda k: (_wait_order(waits[k]), k))
        }
        reads.start(_settle_after(fetcher, pending, groups, chains, lookback))
        if ready is not None:
            for cohort in cohorts:
                reads.start(_hand_over(cohort, chains, ready, handed, taken))
    undecided.update(
        _put_together(
            batch, [chains[key].result() for key in keys], taken, on_unresolved=on_unresolved
        )
    )
    batch.follow_ups.extend(pending.values())
    batch.streamed.extend(c for _, c in sorted(handed, key=lambda found: found[0]))
    batch.commits.append(read.commit(undecided))
    # started by the engine once the refusals' facts are read: none of them queues behind
    # the scan's reads, and none waits on a read the scan made first
    batch.scan = partial(_scan_hardware, fetcher, journal, scan_centers)
    return batch


def _put_together(
    batch: AcaBatch,
    worked: list[_Worked],
    taken: set[tuple[str, str]],
    *,
    on_unresolved: Callable[[str, str, str], None],
) -> set[str]:
    """Add the groups' findings to ``batch`` in the order of a read one after the other:
    each group's tags (a tag that is not the user's is its own incident), then each group's
    refusals; leave out the groups handed over (``taken``). The events left undecided."""
    undecided: set[str] = set()
    for group in worked:
        batch.resolved.extend(group.found.resolved)
        batch.joins.extend(group.found.joins)
        for (_, _, rows), tag_candidate in zip(group.tags, group.tag_found, strict=True):
            if isinstance(tag_candidate, UnresolvedError):
                on_unresolved(str(tag_candidate), ",".join(e.id for e in rows), tag_candidate.field)
            elif group.key not in taken:
                batch.candidates.append(tag_candidate)
    for group in worked:
        for (_, _, rejected), candidate in zip(group.work, group.work_found, strict=True):
            if isinstance(candidate, UnresolvedError):
                on_unresolved(
                    f"{candidate}: not decided, read again by the next run",
                    ",".join(e.id for e in rejected),
                    candidate.field,
                )
                undecided.update(e.id for e in rejected)
            elif group.key not in taken:
                batch.candidates.append(candidate)
    return undecided


def _to_diagnose(
    journal: Journal,
    groups: dict[tuple[str, str], list[Event]],
    pending: dict[tuple[str, str], FollowUp],
    batch: AcaBatch,
    *,
    grace: timedelta,
) -> list[tuple[str, str, list[Event]]]:
    """(user, lock, its rejections) to diagnose, in the groups' sorted order.

    A group waiting for verification is settled instead; one whose newest event is a grant
    is resolved (noted in ``batch``); rejections before doorfix's last fix, or within
    ``grace`` after it (the fix still reaching the lock's IQ), are not diagnosed: they join
    the fix's incident (``batch.joins``).
    """
    work: list[tuple[str, str, list[Event]]] = []
    for (user_id, lock_id), whole in sorted(groups.items()):
        if (user_id, lock_id) in pending:
            continue
        whole.sort(key=lambda e: (e.occurred_at, e.id))
        if whole[-1].type in GRANTS:
            # the person got in after all: nothing left to fix
            batch.resolved.append({"user_id": user_id, "lock_id": lock_id})
            continue
        fixing = journal.live.fixing(user_id=user_id, lock_id=lock_id, run_id=current_run())
        live = journal.incident(fixing) if fixing is not None else None
        if live is not None:
            # another live run is fixing this person at this lock: its fix is on its way,
            # and these refusals are that fix's to prove, not a new problem
            refused_now = tuple(e.id for e in whole if e.type in REJECTIONS)
            if refused_now:
                batch.joins.append(FixJoin(live, refused_now, decided_elsewhere=True))
            continue
        last = _last_fix(journal, user_id, lock_id)
        # a tag and a mobile key fail for their own reasons (a revoked key is no IQ out of
        # sync): each credential kind is diagnosed on its own events, and a grant with one
        # kind resolves only that kind
        for group in _by_credential_kind(whole):
            if group[-1].type in GRANTS:
                continue
            refused = [e for e in group if e.type in REJECTIONS]
            settled_by = (
                [] if last is None else [e for e in refused if e.occurred_at <= last[0] + grace]
            )
            rejected = [e for e in refused if e not in settled_by]
            if settled_by and last is not None:
                held = set(last[1].event_ids)
                new = tuple(e.id for e in settled_by if e.id not in held)
                if new:
                    batch.joins.append(FixJoin(last[1], new))
            if rejected:
                work.append((user_id, lock_id, rejected))
    return work


async def _diagnosed(
    fetcher: RunFetcher,
    user_id: str,
    lock_id: str,
    rejected: list[Event],
    *,
    policy: PlanPolicy,
    window: timedelta,
) -> Candidate | UnresolvedError:
    """One user x lock's rejections diagnosed and planned (an id resolving to nothing: why)."""
    try:
        facts = await lock_facts(
            fetcher, user_id, lock_id, rejected, window=window, center_id=rejected[-1].center_id
        )
    except UnresolvedError as exc:
        return exc
    return lock_candidate(facts, policy, fetcher.now, tuple(e.id for e in rejected))


async def _hand_over(
    cohort: list[tuple[str, str]],
    chains: dict[tuple[str, str], asyncio.Task[_Worked]],
    ready: Ready,
    handed: list[tuple[Place, Candidate]],
    taken: set[tuple[str, str]],
) -> None:
    """Hand a cohort (see :func:`_cohorts`) to ``ready`` once all its groups are diagnosed.

    Its candidates, merged by incident key, are noted in ``handed`` with the place of
    their first (so the batch keeps the order found), and its groups in ``taken``. An
    unresolved group's events are not handed over (the batch reports them).
    """
    await asyncio.wait([chains[key] for key in cohort])
    found = sorted(
        (c for key in cohort for c in chains[key].result().candidates()),
        key=lambda placed: placed[0],
    )
    if not found:
        return
    merged = merge_by_key([c for _, c in found])
    first: dict[str, Place] = {}
    for place, c in found:
        first.setdefault(incident_key(c), place)
    handed.extend((first[incident_key(c)], c) for c in merged)
    taken.update(cohort)
    ready(merged, FEED)


def _by_credential_kind(events: list[Event]) -> list[list[Event]]:
    """The events split by what was presented (tag, then mobile key), each in time order."""
    kinds: dict[str, list[Event]] = {}
    for event in events:
        kinds.setdefault(event.type.partition("_")[0], []).append(event)
    return [kinds[k] for k in ("tag", "mkey") if k in kinds]


def _split_tags(
    user: User | None, user_id: str, lock_id: str, group: list[Event]
) -> list[tuple[str, str, list[Event]]]:
    """Take each presented tag that is not an assigned tag of its user out of ``group``.

    One (user, lock, its rejections) per presented tag, by tag number: the playbook decides
    it (``aca.tag_not_assigned``, unless the center is still in its grace period), and the
    user's other events at the lock are diagnosed without it.
    """
    if user is None:
        return []  # reported as unresolved with the rest of the group
    found = aca_rejections.unassigned_tag_events(user, group)
    taken = {e.id for rows in found.values() for e in rows}
    group[:] = [e for e in group if e.id not in taken]
    out: list[tuple[str, str, list[Event]]] = []
    for rows in (found[number] for number in sorted(found)):
        rows.sort(key=lambda e: (e.occurred_at, e.id))
        out.append((user_id, lock_id, rows))
    return out


#: where a candidate was found: (0: a tag's, 1: a refusal's; its user x lock; its place)
Place = tuple[int, tuple[str, str], int]


@dataclass
class _Worked:
    """One user x lock's events worked through: its tags' incidents, then its refusals'."""

    key: tuple[str, str]
    tags: list[tuple[str, str, list[Event]]]
    tag_found: list[Candidate | UnresolvedError]
    work: list[tuple[str, str, list[Event]]]
    work_found: list[Candidate | UnresolvedError]
    #: what the group resolved or joined (see :func:`_to_diagnose`)
    found: AcaBatch

    def candidates(self) -> list[tuple[Place, Candidate]]:
        """Its candidates, each with its place (the unresolved left out)."""
        return [
            ((kind, self.key, i), c)
            for kind, results in enumerate((self.tag_found, self.work_found))
            for i, c in enumerate(results)
            if isinstance(c, Candidate)
        ]


async def _work_group(
    fetcher: RunFetcher,
    journal: Journal,
    key: tuple[str, str],
    group: list[Event],
    pending: dict[tuple[str, str], FollowUp],
    *,
    policy: PlanPolicy,
    window: timedelta,
    wait: datetime | None,
) -> _Worked:
    """Read one user x lock's user, take its unassigned tags out, diagnose the rest.

    Its reads queue at ``wait`` (its cohort's earliest refusal): the longest-waiting
    person's facts are read first. A group waiting for verification is only split (its
    settling reads CLP entries, :func:`_settle_after`).
    """
    user_id, lock_id = key
    with waiting_since(wait):
        tags = _split_tags(await fetcher.user(user_id), user_id, lock_id, group)
        found = AcaBatch()
        work = (
            _to_diagnose(journal, {key: group}, pending, found, grace=policy.propagation_grace)
            if group
            else []
        )
        results = await gather_all(
            *(
                _diagnosed(fetcher, u, lock, rows, policy=policy, window=window)
                for u, lock, rows in (*tags, *work)
            )
        )
    return _Worked(key, tags, results[: len(tags)], work, results[len(tags) :], found)


async def _settle_after(
    fetcher: RunFetcher,
    pending: dict[tuple[str, str], FollowUp],
    groups: dict[tuple[str, str], list[Event]],
    chains: dict[tuple[str, str], asyncio.Task[_Worked]],
    window: timedelta,
) -> None:
    """Settle the pending incidents once their groups' tags are taken out."""
    waiting = [chains[key] for key in pending if key in chains]
    if waiting:
        await asyncio.wait(waiting)
    await _settle_pending(fetcher, pending, {k: v for k, v in groups.items() if v}, window)


def _wait_order(wait: datetime | None) -> float:
    return math.inf if wait is None else wait.timestamp()


async def _cohorts(
    fetcher: RunFetcher, groups: dict[tuple[str, str], list[Event]]
) -> tuple[dict[tuple[str, str], datetime | None], list[list[tuple[str, str]]]]:
    """Each group's wait (its cohort's earliest refusal), and the cohorts.

    A cohort is the groups that share a user, a lock or a CLP site (a Sync Access and a
    toggle on one collection are in one cohort, so its Sync Access still comes first); its
    groups are read at one turn, its earliest refusal's. The sites come from the centers'
    list, which every group's facts read anyway.
    """
    if not groups:
        return {}, []
    own = {
        key: min((e.occurred_at for e in rows if e.type in REJECTIONS), default=None)
        for key, rows in groups.items()
    }
    centers = sorted({rows[-1].center_id for rows in groups.values()})
    earliest = min((w for w in own.values() if w is not None), default=None)
    with waiting_since(earliest):  # every group needs it: the earliest refusal's turn
        found = await gather_all(*(fetcher.center(c) for c in centers))
    site_of = {
        center_id: center.clp_site_id if center is not None else f"center {center_id}"
        for center_id, center in zip(centers, found, strict=True)
    }
    cohorts = connected(
        {
            (user, lock): {f"user={user}", f"lock={lock}", f"site={site_of[rows[-1].center_id]}"}
            for (user, lock), rows in sorted(groups.items())
        }
    )
    waits: dict[tuple[str, str], datetime | None] = {}
    for cohort in cohorts:
        wait = min((w for k in cohort if (w := own[k]) is not None), default=None)
        waits.update(dict.fromkeys(cohort, wait))
    return waits, cohorts


async def _settle_pending(
    fetcher: RunFetcher,
    pending: dict[tuple[str, str], FollowUp],
    groups: dict[tuple[str, str], list[Event]],
    window: timedelta,
) -> None:
    unsettled: list[tuple[str, str, FollowUp]] = []
    for (user_id, lock_id), follow in pending.items():
        for event in groups.get((user_id, lock_id), ()):
            if event.occurred_at <= follow.acted_at:
                continue
            follow.event_ids.append(event.id)
            if event.type in GRANTS:
                follow.granted = True
            else:
                follow.rejections += 1
        if not follow.granted:
            unsettled.append((user_id, lock_id, follow))
    await gather_all(*(_entry_grants(fetcher, u, lock, f, window) for u, lock, f in unsettled))


async def _entry_grants(
    fetcher: RunFetcher, user_id: str, lock_id: str, follow: FollowUp, window: timedelta
) -> None:
    """The next granted entry at the lock proves the IQ holds the access."""
    user = await fetcher.user(user_id)
    center = await fetcher.center(user.center_id) if user else None
    if user is None or center is None:
        return
    for entry in await fetcher.entries(center.clp_site_id, fetcher.now - window):
        if (
            entry.lock_id == lock_id
            and entry.user_id == user.clp_user_id
            and entry.event_category == "lock_opened"
            and entry.utc_date_time > follow.acted_at
        ):
            follow.granted = True
            return


async def _scan_hardware(fetcher: RunFetcher, journal: Journal, most: int) -> Scanned:
    """The hardware of at most ``most`` of the run's centers (0: all), and where it stopped.

    The centers are taken in turn, in id order, after the last one the previous run scanned
    (the cursor of :data:`SCAN`, a shard's own) and round again, so every center is scanned
    once in each ``ceil(centers / most)`` runs; the commit stores the last one scanned once
    the run's incidents are recorded (a dry-run, or a run that failed, moves nothing). The
    scan finds what nobody at a door reported (a lock offline, privacy mode on): a refusal's
    run never waits for a scan of every center, and the scan's reads queue behind every
    other request of their system (:func:`~doorfix.connectors._http.in_background`).
    """
    centers = await fetcher.own_centers()
    commit = None
    if 0 < most < len(centers):
        position = cursor_feed(fetcher, SCAN)
        stored = journal.cursor(position)
        turn = scan_turn([c.id for c in centers], stored, most)
        centers = tuple(c for c in centers if c.id in turn)
        commit = FeedCommit(SCAN, turn[-1], (), stored, position=position)
    with in_background():  # behind every read and write a person at a door waits for
        found = await gather_all(*(_scan_center(fetcher, center) for center in centers))
    return [candidate for per_center in found for candidate in per_center], commit


def scan_turn(center_ids: Sequence[str], after: str | None, most: int) -> list[str]:
    """The next ``most`` center ids in id order after ``after`` (the last one scanned),
    round again: the turn of a run's hardware scan, the last one its new place.

    A center added or removed meanwhile takes or leaves its place in the order, so every
    center is in one of each ``ceil(centers / most)`` consecutive turns.
    """
    ids = sorted(set(center_ids))
    if not 0 < most < len(ids):
        return ids
    start = next((i for i, c in enumerate(ids) if after is None or c > after), 0)
    return [ids[(start + i) % len(ids)] for i in range(most)]


async def _scan_center(fetcher: RunFetcher, center: Center) -> list[Candidate]:
    locks = (await fetcher.locks(center.clp_site_id)).values()
    iq_ids = sorted({lock.iq.id for lock in locks})
    iqs = [
        iq
        for iq in await gather_all(*(fetcher.iq(center.clp_site_id, i) for i in iq_ids))
        if iq is not None
    ]
    return [
        Candidate(diagnosis, aca_rejections.plan_hardware(diagnosis))
        for diagnosis in aca_rejections.scan_hardware(locks, iqs, fetcher.now, center_id=center.id)
    ]
