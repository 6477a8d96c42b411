"""The ticket path: "user A cannot open lock X (or door Y)", when no event exists.

Every check of both runbooks runs for the pair, through the same run machinery as a playbook
(journal, guards, report), read-only unless ``fix`` is asked for.
"""

from __future__ import annotations

from datetime import timedelta

from doorfix.agent.engine.candidates import Batch, Candidate
from doorfix.agent.engine.collect_aca import UnresolvedError, lock_candidate, lock_facts
from doorfix.agent.engine.collect_cloud import door_log_facts
from doorfix.agent.engine.fetch import RunFetcher
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import execute_run
from doorfix.agent.engine.state import Agent, RunState
from doorfix.connectors.models import epoch_seconds
from doorfix.connectors.models.cloud import DoorLog
from doorfix.playbooks.door_logs import playbook as door_logs


async def diagnose_ticket(
    agent: Agent,
    user_id: str,
    *,
    lock_id: str | None = None,
    door_id: str | None = None,
    fix: bool = False,
) -> RunReport:
    """Diagnose one user at one lock or door; act only when ``fix`` is true."""
    if (lock_id is None) == (door_id is None):
        raise ValueError("give exactly one of lock_id and door_id")
    window = timedelta(hours=agent.settings.guards.lookback_hours)

    async def collect(run: RunState, fetcher: RunFetcher) -> Batch:
        if lock_id is not None:
            facts = await lock_facts(fetcher, user_id, lock_id, (), window=window)
            return Batch(candidates=[lock_candidate(facts, agent.policy, fetcher.now)])
        assert door_id is not None  # noqa: S101 - checked above
        return Batch(candidates=[await _door_candidate(run, fetcher, user_id, door_id)])

    return await execute_run(agent, "diagnose", collect, dry_run=not fix)


async def _door_candidate(
    run: RunState, fetcher: RunFetcher, user_id: str, door_id: str
) -> Candidate:
    user = await fetcher.user(user_id)
    if user is None:
        raise UnresolvedError(f"ACA user {user_id} does not exist")
    center = await fetcher.center(user.center_id)
    if center is None or not center.cloud_project_id:
        raise UnresolvedError(f"the center of user {user_id} has no cloud project")
    project = await fetcher.project(center.cloud_project_id)
    door = project.doors.get(door_id)
    if door is None:
        raise UnresolvedError(f"door {door_id} is not in cloud project {project.project_id}")
    tag = next((t.number for t in user.tags if t.state == "assigned"), "")
    # no log exists: an empty Detail makes the playbook run every check of the runbook
    probe = DoorLog(
        log_id=0,
        capture_time=epoch_seconds(fetcher.now),
        door_id=door.door_id,
        door_name=door.name,
        device_model=door.device.model,
        firmware=door.device.firmware,
        result="failure",
        detail="",
        credential_type="card",
        credential_value=tag,
        personnel_id=user.cloud_personnel_id,
        visitor_id=None,
        initiator="doorfix diagnose",
    )
    facts = await door_log_facts(fetcher, project.project_id, (probe,), (probe,))
    diagnosis = door_logs.diagnose(facts, fetcher.now)
    return Candidate(diagnosis, door_logs.plan(diagnosis, facts, run.agent.policy, fetcher.now))
