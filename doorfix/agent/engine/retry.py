"""Deferred incidents worked again once they fall due, without waiting for a new refusal.

An incident is ``deferred`` by a guard (in cool-down, a cap or the circuit breaker reached,
a budget spent) or by its plan (too early after a center's release). Its events are decided,
so no feed delivers them again; if the person does not try again, nothing would. So each run
of ``door-logs`` and ``aca-rejections`` diagnoses again every deferral of its own that fell
due (``not_before`` passed, or none given) and that is recent (``max_event_age_days``):
an ACA one for its user at its lock, a door-log one by replaying its refusal as if presented
now. The fresh diagnosis regroups into the deferred incident when the cause is the same (the
engine then acts, if the guards now allow), or supersedes it when the cause has changed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from doorfix.agent.config import GuardsSection
from doorfix.agent.engine.candidates import Batch, Candidate, incident_key
from doorfix.agent.engine.collect_aca import UnresolvedError, lock_candidate, lock_facts
from doorfix.agent.engine.collect_cloud import door_log_facts, unresolved_log
from doorfix.agent.engine.fetch import RunFetcher
from doorfix.agent.engine.worklist import reach
from doorfix.agent.journal.store import IncidentRow, Journal
from doorfix.connectors._http import waiting_since
from doorfix.connectors.models import epoch_seconds
from doorfix.connectors.models.cloud import DoorLog
from doorfix.playbooks.door_logs import playbook as door_logs
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Outcome

log = structlog.get_logger("doorfix.engine")


async def add_retries(
    batch: Batch,
    playbook: str,
    fetcher: RunFetcher,
    journal: Journal,
    *,
    policy: PlanPolicy,
    guards: GuardsSection,
) -> None:
    """Add to ``batch`` a fresh diagnosis of each of the playbook's deferrals that fell due.

    A deferral whose key a new refusal in this batch already carries is not diagnosed twice.
    """
    if playbook not in ("door-logs", "aca-rejections"):
        return  # license-renewal lists every door afresh on each run
    rows = [
        row
        for row in due_deferrals(
            journal, fetcher.now, max_age=timedelta(days=guards.max_event_age_days)
        )
        if fetcher.owns_subject(row.subject)  # a shard's run retries its own
    ]
    if playbook == "aca-rejections":
        window = timedelta(hours=guards.lookback_hours)
        found = await aca_retries(fetcher, rows, policy, window=window)
    else:
        found = await door_log_retries(fetcher, rows, policy)
    present = {incident_key(c) for c in (*batch.candidates, *batch.streamed)}
    for candidate in found:
        key = incident_key(candidate)
        other = journal.latest_incident(key)
        waiting = (Outcome.DEFERRED.value, Outcome.AWAITING_APPROVAL.value)
        if key in present or (other is not None and other.open and other.outcome not in waiting):
            continue  # a new refusal carries it, or an open incident already does (pending)
        batch.candidates.append(candidate)


def due_reach(
    playbook: str, fetcher: RunFetcher, journal: Journal, *, guards: GuardsSection
) -> set[str]:
    """What the deferrals this run of ``playbook`` retries touch (their subjects' ids and
    places): the run keeps a cohort touching any of it for last, beside the retries, so a
    retried Sync Access still comes before a toggle at its site (see :mod:`worklist`)."""
    if playbook != "aca-rejections":
        return set()  # only the aca-rejections collector hands cohorts over early
    rows = due_deferrals(journal, fetcher.now, max_age=timedelta(days=guards.max_event_age_days))
    return {
        touched
        for row in rows
        if row.cause.startswith("aca.") and fetcher.owns_subject(row.subject)
        for touched in reach(row.subject)
    }


def due_deferrals(journal: Journal, now: datetime, *, max_age: timedelta) -> list[IncidentRow]:
    """Open deferred incidents whose ``not_before`` has passed, last seen within ``max_age``,
    and incidents awaiting approval once a person decided (or the request expired)."""
    due: list[IncidentRow] = []
    for row in journal.open_incidents(outcome=Outcome.AWAITING_APPROVAL):
        approvals = journal.incident_approvals(row.incident_id)
        decided = any(a.status in ("approved", "refused") for a in approvals)
        expired = any(a.status == "awaiting_approval" and a.expired(now) for a in approvals)
        if decided or expired:
            due.append(row)
    for row in journal.open_incidents(outcome=Outcome.DEFERRED):
        not_before = row.evidence.get("not_before")
        if isinstance(not_before, str) and datetime.fromisoformat(not_before) > now:
            continue
        if now - row.last_seen_at <= max_age:
            due.append(row)
    return due


async def aca_retries(
    fetcher: RunFetcher,
    rows: list[IncidentRow],
    policy: PlanPolicy,
    *,
    window: timedelta,
) -> list[Candidate]:
    """A fresh diagnosis of each due ACA deferral's user at its lock."""
    out: list[Candidate] = []
    for row in rows:
        user_id, lock_id = row.subject.get("user_id"), row.subject.get("lock_id")
        if not row.cause.startswith("aca.") or user_id is None or lock_id is None:
            continue
        try:
            # its reads queue by the person's wait, like a new refusal's
            with waiting_since(row.first_seen_at):
                facts = await lock_facts(
                    fetcher,
                    user_id,
                    lock_id,
                    (),
                    window=window,
                    center_id=row.subject.get("center_id"),
                )
        except UnresolvedError as exc:
            log.info("retry_skipped", incident_id=row.incident_id, reason=str(exc))
            continue
        out.append(_retry(lock_candidate(facts, policy, fetcher.now), row))
    return out


async def door_log_retries(
    fetcher: RunFetcher, rows: list[IncidentRow], policy: PlanPolicy
) -> list[Candidate]:
    """A fresh diagnosis of each due door-log deferral: its refusal replayed as of now."""
    out: list[Candidate] = []
    for row in rows:
        probe = _replayed(row, fetcher.now)
        center = await fetcher.center(row.subject.get("center_id", ""))
        if probe is None or center is None or not center.cloud_project_id:
            continue
        project_id = center.cloud_project_id
        with waiting_since(row.first_seen_at):
            unresolved = await unresolved_log(fetcher, project_id, probe)
            if unresolved is not None:
                log.info("retry_skipped", incident_id=row.incident_id, reason=unresolved[1])
                continue
            facts = await door_log_facts(fetcher, project_id, (probe,), (probe,))
        diagnosis = door_logs.diagnose(facts, fetcher.now)
        plan = door_logs.plan(diagnosis, facts, policy, fetcher.now)
        out.append(_retry(Candidate(diagnosis, plan), row))
    return out


def _replayed(row: IncidentRow, now: datetime) -> DoorLog | None:
    """The incident's refusal as a log captured now, from its evidence (None if it has none)."""
    e = row.evidence
    if not row.cause.startswith("cloud.") or not e.get("log_ids"):
        return None  # license-renewal's own incidents are listed afresh by every run
    try:
        return DoorLog(
            log_id=int(e["log_ids"][-1]),
            capture_time=epoch_seconds(now),
            door_id=e["door_id"],
            door_name=e.get("door_name", ""),
            device_model=e.get("device_model", ""),
            firmware=e.get("firmware", ""),
            result="failure",
            detail=e.get("detail", ""),
            credential_type=e["credential_type"],
            credential_value=e.get("credential_value", ""),
            # a door's license incident is keyed by the door: who was refused is evidence
            personnel_id=row.subject.get("personnel_id") or e.get("personnel_id"),
            visitor_id=row.subject.get("visitor_id") or e.get("visitor_id"),
            initiator="doorfix retry",
        )
    except (KeyError, TypeError, ValueError):
        log.info("retry_skipped", incident_id=row.incident_id, reason="evidence incomplete")
        return None


def _retry(candidate: Candidate, row: IncidentRow) -> Candidate:
    log.info("deferral_retried", incident_id=row.incident_id, cause=candidate.diagnosis.cause)
    return replace(candidate, event_ids=(), retry=True, waiting_since=row.first_seen_at)
