"""Collector of the aca-rejections playbook, and the ticket path's fact gathering.

ACA's event feed is read from the stored cursor (events are deduplicated by id, since the feed
may repeat one). Events are grouped per user x lock. A group whose newest event is a grant
resolved itself; rejections that happened before a fix doorfix already made (delivered late,
or re-read after a crash) are not diagnosed again. Incidents waiting for verification after a
Sync Access are settled from the new events and CLP entries instead of being diagnosed anew.
Besides events, the locks' CLP state is scanned for the hardware rows of the runbook (A).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from doorfix.agent.engine.candidates import FUTURE_TOLERANCE, Batch, Candidate, FeedCommit
from doorfix.agent.engine.fetch import RunFetcher
from doorfix.agent.journal.store import Journal
from doorfix.connectors.models import iso_z
from doorfix.connectors.models.aca import Event
from doorfix.connectors.models.clp import Iq
from doorfix.playbooks.aca import playbook as aca_rejections
from doorfix.playbooks.facts import LockFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Outcome

FEED = "aca-events"
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


class UnresolvedError(LookupError):
    """A fact the event names does not exist (an unknown user, center or lock)."""

    def __init__(self, message: str, *, field: str = "user_id") -> None:
        #: the event's field whose id resolves to nothing
        self.field = field
        super().__init__(message)


async def lock_facts(
    fetcher: RunFetcher,
    user_id: str,
    lock_id: str,
    events: Sequence[Event],
    *,
    window: timedelta,
    center_id: str | None = None,
) -> LockFacts:
    """Assemble the facts of one user x lock (each lookup fetched once per run)."""
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
    accesses, bookings, inventories, keys = await asyncio.gather(
        fetcher.accesses(user.id),
        fetcher.bookings(user.company_id, center.id),
        fetcher.inventories(center.id),
        fetcher.mobile_keys(user.id),
    )
    locks, entries, incidents, larry = await asyncio.gather(
        fetcher.locks(site),
        fetcher.entries(site, since),
        fetcher.incidents(site, since),
        fetcher.larry(site, user.clp_user_id, lock_id),
    )
    lock = locks.get(lock_id)
    if lock is None and not any(lock_id in inventory.lock_ids for inventory in inventories):
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
        accesses=accesses,
        bookings=bookings,
        inventories=inventories,
        mobile_keys=keys,
        lock=lock,
        iq=iq,
        larry=larry,
        entries=tuple(e for e in entries if e.lock_id == lock_id),
        incidents=tuple(
            i
            for i in incidents
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
        verify={"site_id": facts.center.clp_site_id, "clp_user_id": facts.user.clp_user_id},
    )


def _fix_time(journal: Journal, user_id: str, lock_id: str) -> datetime | None:
    """When doorfix last fixed (or synced for) this user x lock, if it did."""
    latest: datetime | None = None
    for incident in journal.incidents(subject={"user_id": user_id, "lock_id": lock_id}, limit=20):
        for row in journal.history(incident.incident_id):
            if row.outcome in (Outcome.FIXED, Outcome.PENDING_VERIFICATION) and (
                latest is None or row.at > latest
            ):
                latest = row.at
    return latest


def _pending(journal: Journal) -> dict[tuple[str, str], FollowUp]:
    out: dict[tuple[str, str], FollowUp] = {}
    for incident in journal.open_incidents(outcome=Outcome.PENDING_VERIFICATION):
        user, lock = incident.subject.get("user_id"), incident.subject.get("lock_id")
        if user is None or lock is None:
            continue
        done = [a for a in journal.actions(incident_id=incident.incident_id) if a.finished_at]
        acted = max((a.finished_at for a in done if a.finished_at), default=incident.last_seen_at)
        out[(user, lock)] = FollowUp(incident.incident_id, acted)
    return out


async def _read_feed(fetcher: RunFetcher, journal: Journal, batch: AcaBatch) -> list[Event]:
    feed = fetcher.clients.aca.event_pages(journal.cursor(FEED), on_skip=fetcher.on_skip)
    events: dict[str, Event] = {}
    async for page in feed:
        for event in page.data:
            events.setdefault(event.id, event)  # the feed may repeat an event
    fresh = journal.unseen(FEED, events)
    batch.commits.append(FeedCommit(FEED, feed.cursor, tuple(sorted(events))))
    return [events[i] for i in sorted(fresh, key=lambda i: (events[i].recorded_at, i))]


async def collect_rejections(
    fetcher: RunFetcher,
    journal: Journal,
    *,
    policy: PlanPolicy,
    lookback: timedelta,
    since: datetime | None,
    on_unresolved: Callable[[str, str, str], None],
) -> AcaBatch:
    """Read the new ACA events, settle pending incidents, diagnose the rest, scan hardware.

    ``on_unresolved(message, event_ids, field)`` is told about events that cannot be used: an
    id that resolves to nothing, or a time in the future.
    """
    batch = AcaBatch()
    now = fetcher.now
    floor = since or now - lookback
    events: list[Event] = []
    for event in await _read_feed(fetcher, journal, batch):
        if event.occurred_at > now + FUTURE_TOLERANCE:
            on_unresolved(
                f"event occurred in the future ({iso_z(event.occurred_at)})",
                event.id,
                "occurred_at",
            )
        elif event.occurred_at >= floor:
            events.append(event)
    groups: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in events:
        groups[(event.user_id, event.lock_id)].append(event)
    # a tag that is not the user's is its own incident, before anything else looks at the
    # group: no grant resolves it, no pending Sync Access counts it, no sync is planned for it
    for finding in await _tag_findings(fetcher, groups, policy, lookback, on_unresolved):
        batch.candidates.append(finding)
    pending = _pending(journal)
    await _settle_pending(fetcher, pending, groups, lookback)
    batch.follow_ups.extend(pending.values())
    for (user_id, lock_id), group in sorted(groups.items()):
        if (user_id, lock_id) in pending:
            continue
        group.sort(key=lambda e: (e.occurred_at, e.id))
        if group[-1].type in GRANTS:
            # the person got in after all: nothing left to fix
            batch.resolved.append({"user_id": user_id, "lock_id": lock_id})
            continue
        fixed_at = _fix_time(journal, user_id, lock_id)
        rejected = [
            e
            for e in group
            if e.type in REJECTIONS and (fixed_at is None or e.occurred_at > fixed_at)
        ]
        if not rejected:
            continue
        try:
            facts = await lock_facts(
                fetcher,
                user_id,
                lock_id,
                rejected,
                window=lookback,
                center_id=rejected[-1].center_id,
            )
        except UnresolvedError as exc:
            on_unresolved(str(exc), ",".join(e.id for e in rejected), exc.field)
            continue
        batch.candidates.append(lock_candidate(facts, policy, now, tuple(e.id for e in rejected)))
    batch.candidates.extend(await _scan_hardware(fetcher, policy))
    return batch


async def _tag_findings(
    fetcher: RunFetcher,
    groups: dict[tuple[str, str], list[Event]],
    policy: PlanPolicy,
    window: timedelta,
    on_unresolved: Callable[[str, str, str], None],
) -> list[Candidate]:
    """Take each presented tag that is not an assigned tag of its user out of ``groups``.

    One candidate per (user, lock, tag): the playbook decides it (``aca.tag_not_assigned``,
    unless the center is still in its grace period), and the user's other events at the lock
    are diagnosed without it.
    """
    out: list[Candidate] = []
    for (user_id, lock_id), group in sorted(groups.items()):
        user = await fetcher.user(user_id)
        if user is None:
            continue  # reported as unresolved with the rest of the group
        found = aca_rejections.unassigned_tag_events(user, group)
        if not found:
            continue
        taken = {e.id for rows in found.values() for e in rows}
        group[:] = [e for e in group if e.id not in taken]
        for rows in (found[number] for number in sorted(found)):
            rows.sort(key=lambda e: (e.occurred_at, e.id))
            try:
                facts = await lock_facts(
                    fetcher, user_id, lock_id, rows, window=window, center_id=rows[-1].center_id
                )
            except UnresolvedError as exc:
                on_unresolved(str(exc), ",".join(e.id for e in rows), exc.field)
                continue
            out.append(lock_candidate(facts, policy, fetcher.now, tuple(e.id for e in rows)))
    for key in [k for k, rows in groups.items() if not rows]:
        del groups[key]
    return out


async def _settle_pending(
    fetcher: RunFetcher,
    pending: dict[tuple[str, str], FollowUp],
    groups: dict[tuple[str, str], list[Event]],
    window: timedelta,
) -> None:
    for (user_id, lock_id), follow in pending.items():
        for event in groups.get((user_id, lock_id), ()):
            if event.occurred_at <= follow.acted_at:
                continue
            follow.event_ids.append(event.id)
            if event.type in GRANTS:
                follow.granted = True
            else:
                follow.rejections += 1
        if follow.granted:
            continue
        # the next granted entry at the lock proves the IQ holds the access
        user = await fetcher.user(user_id)
        center = await fetcher.center(user.center_id) if user else None
        if user is None or center is None:
            continue
        for entry in await fetcher.entries(center.clp_site_id, fetcher.now - window):
            if (
                entry.lock_id == lock_id
                and entry.user_id == user.clp_user_id
                and entry.event_category == "lock_opened"
                and entry.utc_date_time > follow.acted_at
            ):
                follow.granted = True
                break


async def _scan_hardware(fetcher: RunFetcher, policy: PlanPolicy) -> list[Candidate]:
    out: list[Candidate] = []
    for center in await fetcher.centers():
        locks = (await fetcher.locks(center.clp_site_id)).values()
        iq_ids = sorted({lock.iq.id for lock in locks})
        iqs = [
            iq
            for iq in await asyncio.gather(*(fetcher.iq(center.clp_site_id, i) for i in iq_ids))
            if iq is not None
        ]
        for diagnosis in aca_rejections.scan_hardware(locks, iqs, fetcher.now, center_id=center.id):
            out.append(Candidate(diagnosis, aca_rejections.plan_hardware(diagnosis)))
    return out
