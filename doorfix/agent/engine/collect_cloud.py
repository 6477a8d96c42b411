"""Collectors of the cloud playbooks: door-logs (failures in the door logs) and license-renewal.

Door logs stream page by page; only failures are kept, grouped by door, person (or visitor or
credential) and Detail, so a person refused ten times makes one incident. The feed position
per project is the newest ``(capture_time, log_id)`` read; the next run re-reads an overlap
window before it (devices upload late) and drops the failures already seen.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from doorfix.agent.engine.candidates import (
    FUTURE_TOLERANCE,
    Batch,
    Candidate,
    FeedCommit,
    Ready,
    merge_by_key,
)
from doorfix.agent.engine.fetch import RunFetcher, gather_all
from doorfix.agent.journal.store import Journal
from doorfix.connectors._http import waiting_since
from doorfix.connectors._paging import SkipHandler
from doorfix.connectors.models import epoch_seconds, from_epoch, iso_z
from doorfix.connectors.models.cloud import DoorLog
from doorfix.errors import ContractError
from doorfix.playbooks import license_renewal
from doorfix.playbooks.door_logs import playbook as door_logs
from doorfix.playbooks.facts import DoorLogFacts, latest_log
from doorfix.playbooks.policy import PlanPolicy

#: Door logs re-read before the stored position, for devices that upload late.
OVERLAP = timedelta(hours=1)
MASKED = "****"


def door_log_feed(project_id: str) -> str:
    """The journal's feed name for a project's door logs."""
    return f"door-logs:{project_id}"


def event_id(project_id: str, log: DoorLog) -> str:
    """A door log's event id (log ids are unique per cloud, projects keep them apart)."""
    return f"{project_id}:{log.log_id}"


@dataclass(frozen=True)
class Needs:
    """Which of a failure group's optional facts its decision reads."""

    #: the project's access groups, user groups and holidays, the center's inventories and the
    #: ACA user's bookings: the permission and holiday rows, and the checks of an empty Detail
    permissions: bool = True
    #: who holds the presented value (the cloud's people, ACA's users by tag) and the ACA user's
    #: cloud person: the credential row, and the checks of an empty Detail
    credential: bool = True


#: everything: the ticket path, the retries, and the rows that may read any fact
EVERYTHING = Needs()


def needed_facts(log: DoorLog) -> Needs:
    """What the decision of a group whose latest row is ``log`` reads (door_logs/playbook.py).

    The Detail row decides the cause of three rows on its own: ``Invalid <Credential Type>``
    is always ``cloud.credential_unassigned``, whose plan reads who holds the value, never
    groups, holidays or bookings; the license row is ``cloud.license_inactive``, whose
    plan reads the door's license and the project's payment permission only; ``Not within
    the valid period`` is ``cloud.visitor_expired``, whose plan reads the visitor the log
    names and their ACA visit only. Any other row (an empty Detail runs every check) reads
    everything.
    """
    row = door_logs.classify(log.detail)
    if row is door_logs.Detail.INVALID_CREDENTIAL:
        return Needs(permissions=False)
    if row in (door_logs.Detail.LICENSE, door_logs.Detail.NOT_VALID):
        return Needs(permissions=False, credential=False)
    return EVERYTHING


def _group_key(log: DoorLog) -> tuple[str, str, str]:
    who = log.personnel_id or (f"visitor:{log.visitor_id}" if log.visitor_id else None)
    return log.door_id, who or f"credential:{log.credential_value}", log.detail


async def door_log_facts(
    fetcher: RunFetcher,
    project_id: str,
    logs: tuple[DoorLog, ...],
    presentations: tuple[DoorLog, ...],
    needs: Needs = EVERYTHING,
) -> DoorLogFacts:
    """Assemble the facts of one failure group (each lookup fetched once per run).

    Only the facts ``needs`` names are read (:func:`needed_facts`); the others are left empty.
    """
    project = await fetcher.project(project_id, permissions=needs.permissions)
    log = latest_log(logs)
    center = project.center
    personnel = await fetcher.personnel(project_id, log.personnel_id) if log.personnel_id else None
    value = log.credential_value
    probe_credential = needs.credential and value and value != MASKED and log.visitor_id is None
    holders = await fetcher.holders(project_id, value) if probe_credential else ()
    aca_user = None
    if probe_credential:
        tagged = await fetcher.users_by_tag(value)
        aca_user = tagged[0] if tagged else None
    if (
        aca_user is None
        and (needs.credential or needs.permissions)
        and personnel is not None
        and personnel.external_id
    ):
        aca_user = await fetcher.user(personnel.external_id)
    aca_personnel = None
    if needs.credential and aca_user is not None and aca_user.cloud_personnel_id:
        aca_personnel = await fetcher.personnel(project_id, aca_user.cloud_personnel_id)
    bookings = (
        await fetcher.bookings(aca_user.company_id, center.id)
        if needs.permissions and aca_user is not None and center is not None
        else ()
    )
    visitor = await fetcher.visitor(project_id, log.visitor_id) if log.visitor_id else None
    visit = None
    if visitor is not None and visitor.aca_visit_id:
        visit = await fetcher.visit(
            center.id if center else None, visitor.aca_visit_id, visitor.visitor_id
        )
    return DoorLogFacts(
        logs=logs,
        project=project,
        personnel=personnel,
        credential_owners=holders,
        aca_user=aca_user,
        aca_personnel=aca_personnel,
        bookings=bookings,
        visitor=visitor,
        visit=visit,
        presentations=presentations,
    )


def _cursor(raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    data = json.loads(raw)
    return int(data["capture_time"]), int(data["log_id"])


def _diagnosed(
    facts: DoorLogFacts, project_id: str, policy: PlanPolicy, now: datetime
) -> Candidate:
    diagnosis = door_logs.diagnose(facts, now)
    plan = door_logs.plan(diagnosis, facts, policy, now)
    newest = max(row.capture_time for row in facts.logs)
    return Candidate(
        diagnosis,
        plan,
        tuple(event_id(project_id, row) for row in facts.logs),
        occurred_at=from_epoch(newest),
        waiting_since=from_epoch(min(row.capture_time for row in facts.logs)),
    )


async def collect_door_logs(
    fetcher: RunFetcher,
    journal: Journal,
    *,
    policy: PlanPolicy,
    lookback: timedelta,
    since: datetime | None,
    ready: Ready | None = None,
) -> Batch:
    """Read every project's new door logs and turn failure groups into candidates.

    The projects are read at the same time; their candidates, feed positions and skipped
    records are put together in the centers' order, as a read one after the other would.
    ``ready``: handed each project's candidates (merged by incident key) as soon as its
    failures' facts are read; those are in the batch's ``streamed``.
    """
    batch = Batch()
    projects = [c.cloud_project_id for c in await fetcher.own_centers() if c.cloud_project_id]
    skipped: list[list[ContractError]] = [[] for _ in projects]
    try:
        found = await gather_all(
            *(
                _project_logs(
                    fetcher,
                    journal,
                    project_id,
                    on_skip=skips.append,
                    policy=policy,
                    lookback=lookback,
                    since=since,
                    ready=ready,
                )
                for project_id, skips in zip(projects, skipped, strict=True)
            )
        )
    finally:
        for skips in skipped:
            for record in skips:
                fetcher.on_skip(record)
    for candidates, commit in found:
        (batch.candidates if ready is None else batch.streamed).extend(candidates)
        batch.commits.append(commit)
    return batch


async def _project_logs(
    fetcher: RunFetcher,
    journal: Journal,
    project_id: str,
    *,
    on_skip: SkipHandler,
    policy: PlanPolicy,
    lookback: timedelta,
    since: datetime | None,
    ready: Ready | None = None,
) -> tuple[list[Candidate], FeedCommit]:
    """One project's new door logs: its candidates and the feed position to store.

    With ``ready`` the candidates (merged by incident key) are handed to it at once.
    """
    now = fetcher.now
    latest = epoch_seconds(now + FUTURE_TOLERANCE)
    feed = door_log_feed(project_id)
    read = journal.cursor(feed)
    stored = _cursor(read)
    start = since or (from_epoch(stored[0]) - OVERLAP if stored else now - lookback)
    newest = stored
    failures: list[DoorLog] = []
    logs = fetcher.clients.cloud.iter_door_logs(project_id, start, on_skip=on_skip)
    async for log in logs:
        if log.capture_time > latest:
            # a device clock ahead: kept out of the position, or the feed would skip ahead
            when = iso_z(from_epoch(log.capture_time))
            on_skip(_unusable(log, "capture_time", f"captured in the future ({when})"))
            continue
        if newest is None or (log.capture_time, log.log_id) > newest:
            newest = (log.capture_time, log.log_id)
        if log.result == "failure":
            failures.append(log)
    fresh = journal.unseen(feed, (event_id(project_id, log) for log in failures))
    failures = [log for log in failures if event_id(project_id, log) in fresh]
    found, undecided = await _candidates(
        fetcher, project_id, failures, policy, now, on_skip=on_skip
    )
    if ready is not None and found:
        # a person refused at this project's doors waits for no other project's reads
        found = merge_by_key(found)
        ready(found, feed)
    # no failure is marked seen without a decision: one that could not be decided stays
    # unseen, and the position stays before it so the next run reads it again (within
    # the look-back: an older one is past what any run reads)
    held = [
        (log.capture_time, log.log_id - 1)
        for log in undecided
        if log.capture_time >= epoch_seconds(now - lookback)
    ]
    if held and newest is not None:
        newest = min(newest, *held)
    cursor = json.dumps({"capture_time": newest[0], "log_id": newest[1]}) if newest else None
    skipped = {event_id(project_id, log) for log in undecided}
    commit = FeedCommit(
        feed,
        cursor,
        tuple(e for log in failures if (e := event_id(project_id, log)) not in skipped),
        read,
    )
    return found, commit


async def _candidates(
    fetcher: RunFetcher,
    project_id: str,
    failures: Iterable[DoorLog],
    policy: PlanPolicy,
    now: datetime,
    *,
    on_skip: SkipHandler,
) -> tuple[list[Candidate], list[DoorLog]]:
    """The groups' candidates, and the failures no candidate could be made of (undecided)."""
    groups: dict[tuple[str, str, str], list[DoorLog]] = defaultdict(list)
    by_value: dict[str, list[DoorLog]] = defaultdict(list)
    for log in failures:
        groups[_group_key(log)].append(log)
        by_value[log.credential_value].append(log)

    undecided: list[DoorLog] = []
    # the project's failures are handed over together: their reads queue at its earliest
    # failure's time (the longest-waiting project's people first, read together)
    times = [log.capture_time for rows in groups.values() for log in rows]
    earliest = from_epoch(min(times)) if times else None

    async def one(rows: list[DoorLog]) -> Candidate | None:
        logs = tuple(sorted(rows, key=lambda row: row.log_id))
        with waiting_since(earliest):
            unresolved = await unresolved_log(fetcher, project_id, logs[-1])
            if unresolved is not None:
                field, why = unresolved
                why = f"{why} ({len(logs)} failure(s)): not decided, read again by the next run"
                on_skip(_unusable(logs[-1], field, why))
                undecided.extend(logs)
                return None
            value = logs[-1].credential_value
            shown = tuple(by_value[value]) if value and value != MASKED else logs
            facts = await door_log_facts(
                fetcher, project_id, logs, shown, needed_facts(latest_log(logs))
            )
        return _diagnosed(facts, project_id, policy, now)

    # the groups' lookups overlap (the layer caps requests in flight; the fetcher shares facts)
    found = await asyncio.gather(*(one(rows) for rows in groups.values()))
    return [candidate for candidate in found if candidate is not None], undecided


async def unresolved_log(
    fetcher: RunFetcher, project_id: str, log: DoorLog
) -> tuple[str, str] | None:
    """``(field, why)`` when the log names a door, person or visitor that does not exist."""
    project = await fetcher.project(project_id, permissions=False)
    if log.door_id not in project.doors:
        return "door_id", f"door {log.door_id} is not a door of project {project_id}"
    if log.personnel_id and await fetcher.personnel(project_id, log.personnel_id) is None:
        return "personnel_id", f"person {log.personnel_id} does not exist"
    if log.visitor_id and await fetcher.visitor(project_id, log.visitor_id) is None:
        return "visitor_id", f"visitor {log.visitor_id} does not exist"
    return None


def _unusable(log: DoorLog, field: str, why: str) -> ContractError:
    """A door log the run skips, as the error the run's report lists."""
    return ContractError(
        f"door log {log.log_id} skipped: {why}",
        system="cloud",
        endpoint="get_door_log",
        field=field,
    )


async def collect_licenses(fetcher: RunFetcher, *, policy: PlanPolicy) -> Batch:
    """Every door whose license is expired, inactive or expiring soon, in every project."""
    batch = Batch()
    for center in await fetcher.own_centers():
        if not center.cloud_project_id:
            continue
        info, doors = await fetcher.door_licenses(center.cloud_project_id)
        for diagnosis, plan in license_renewal.diagnose_licenses(
            doors, info, policy, fetcher.now, center_id=center.id
        ):
            batch.candidates.append(Candidate(diagnosis, plan))
    return batch
