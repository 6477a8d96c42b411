"""A run killed at each step of an incident, then run again: nothing diagnosed twice, nothing
sent twice, nothing left waiting for a cool-down it never earned; and one acting run per journal.

The kill is a ``BaseException`` raised from inside the step (the engine catches only
connector and OS errors), so the journal is left exactly as a SIGKILL at that point would
leave it: the run still ``running``, the feeds not committed. ``tests/crash`` does the same
with real SIGKILLs of the daemon; these pin each step on its own, in process.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from faultkit import World, make_world, toggles

from doorfix.agent.engine.execute import ActionResult, Executor
from doorfix.agent.journal.store import ActionRow, IncidentRow, Journal
from doorfix.clock import SystemClock
from doorfix.playbooks.types import PlannedAction


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` while the event loop runs other tasks (bound it with a timeout)."""
    while not condition():  # noqa: ASYNC110 - a log line, not an event we could wait on
        await asyncio.sleep(0.01)


#: one incident at a time: these tests kill the run at one chosen call by raising there, in
#: one task, and check what that one cut leaves; a real kill stops every task at once, which
#: the SIGKILL crash loop (tests/crash, at the default concurrency) covers
SERIAL = {"engine": {"max_concurrent_incidents": 1}}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """The demo world with an agent working one incident at a time; closed afterwards."""
    harness = make_world(**SERIAL)
    try:
        yield harness
    finally:
        await harness.aclose()


class Killed(BaseException):
    """The process dies here."""


def once(original: Callable[..., Any], when: Callable[..., bool]) -> Callable[..., Any]:
    """``original``, except that the first call for which ``when(*args)`` holds dies."""
    fired = [False]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not fired[0] and when(*args, **kwargs):
            fired[0] = True
            raise Killed
        return original(*args, **kwargs)

    return wrapper


def killed_before_the_call(remedy: str) -> Callable[..., Any]:
    """``Executor.run`` that dies, the first time ``remedy`` runs, after its intent was
    written and before its call was sent."""
    real_run = Executor.run
    fired = [False]

    async def run(self: Executor, action: PlannedAction, verify: Any) -> ActionResult:
        if action.remedy.value == remedy and not fired[0]:
            fired[0] = True
            raise Killed
        return await real_run(self, action, verify)

    return run


async def kill_before_the_call(
    world: World, monkeypatch: pytest.MonkeyPatch, remedy: str, playbook: str
) -> ActionRow:
    """Run ``playbook`` and kill it before ``remedy``'s call; the action left in flight."""
    monkeypatch.setattr(Executor, "run", killed_before_the_call(remedy))
    await killed_run(world, playbook)
    [flying] = world.agent.journal.in_flight()
    assert flying.remedy == remedy
    return flying


async def killed_run(world: World, playbook: str) -> None:
    with pytest.raises(Killed):
        await world.run(playbook)


def settled(journal: Journal, flying: ActionRow) -> ActionRow:
    """The action a kill left in flight, as the journal holds it now."""
    [row] = [a for a in journal.actions() if a.action_id == flying.action_id]
    return row


def incidents(world: World) -> list[IncidentRow]:
    return world.agent.journal.incidents(limit=1000)


def events_in_two_incidents(world: World) -> list[str]:
    held = Counter(e for i in incidents(world) for e in i.event_ids)
    return sorted(e for e, n in held.items() if n > 1)


def writes(world: World, operation: str) -> int:
    return sum(1 for m in world.landed() if m.operation == operation)


async def test_failures_decided_before_a_kill_at_the_feed_commit_are_not_diagnosed_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = world.agent.journal
    monkeypatch.setattr(journal, "advance_feed", once(journal.advance_feed, lambda *a, **k: True))
    await killed_run(world, "door-logs")
    first = {i.incident_id: i.outcome for i in incidents(world)}
    assert "fixed" in first.values()
    [interrupted] = journal.runs(limit=1)
    assert interrupted.status == "running"  # as a SIGKILL leaves it

    second = await world.run("door-logs")

    assert second.incidents == []  # every failure read again was already decided
    assert {i.incident_id: i.outcome for i in incidents(world)} == first
    assert events_in_two_incidents(world) == []
    assert journal.runs(limit=2)[1].status == "interrupted"


async def test_a_fix_whose_outcome_a_kill_cut_off_is_decided_from_its_result(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = world.agent.journal

    def after_a_renewal(incident_id: str, **_: Any) -> bool:
        return any(a.remedy == "renew_license" for a in journal.actions(incident_id=incident_id))

    monkeypatch.setattr(journal, "set_outcome", once(journal.set_outcome, after_a_renewal))
    await killed_run(world, "door-logs")
    [undecided] = journal.undecided()
    assert undecided.cause == "cloud.license_inactive"

    await world.run("door-logs")

    renewed = journal.incident(undecided.incident_id)
    assert renewed is not None
    assert (renewed.open, renewed.outcome) == (False, "fixed")
    notes = [h.note for h in journal.history(undecided.incident_id)]
    assert "decided after a crash, from the result of its action" in notes
    # not re-diagnosed "already resolved" in a second incident, and renewed once
    assert events_in_two_incidents(world) == []
    assert not [
        i
        for i in incidents(world)
        if i.outcome == "no_fault" and i.cause.startswith("cloud.license")
    ]
    assert writes(world, "renew_door_license") == 1
    assert world.present()["cloud.license_inactive"] is False


#: every remedy whose target a re-read can show unchanged: (remedy, playbook, the write it
#: makes in the world, the fault it clears)
UNSENT = [
    ("renew_license", "door-logs", "renew_door_license", "cloud.license_inactive"),
    ("assign_credential", "door-logs", "add_personnel_credential", "cloud.credential_unassigned"),
    ("add_to_access_group", "door-logs", "add_access_group_member", "cloud.no_access_group"),
    ("create_temp_key", "door-logs", "create_visitor_temp_key", "cloud.visitor_expired"),
    ("set_holiday_hours", "door-logs", "set_holiday_working_hours", "cloud.holiday_restriction"),
    ("toggle_access_matrix", "aca-rejections", "access_matrix", "aca.clp_out_of_sync"),
]


@pytest.mark.parametrize("case", UNSENT, ids=[c[0] for c in UNSENT])
async def test_a_call_a_kill_cut_off_before_it_was_sent_is_made_once_on_the_next_run(
    world: World, monkeypatch: pytest.MonkeyPatch, case: tuple[str, str, str, str]
) -> None:
    remedy, playbook, operation, fault = case
    journal = world.agent.journal
    flying = await kill_before_the_call(world, monkeypatch, remedy, playbook)
    assert writes(world, operation) == 0
    before = world.clock.now()
    monkeypatch.undo()  # the next run's calls are sent

    await world.run(playbook)

    # the re-read waited out the client timeout, found nothing changed: skipped, so the
    # remedy ran again at once instead of waiting out a cool-down it never earned
    section = getattr(world.agent.settings, flying.system)
    assert (world.clock.now() - before).total_seconds() >= section.timeout_seconds
    reconciled = settled(journal, flying)
    assert reconciled.status == "skipped", reconciled.detail
    fixed = journal.incident(flying.incident_id)
    assert fixed is not None
    assert (fixed.open, fixed.outcome) == (False, "fixed"), journal.history(fixed.incident_id)
    assert writes(world, operation) == (2 if operation == "access_matrix" else 1)
    assert world.present()[fault] is False


def killed_after_the_call(remedy: str) -> Callable[..., Any]:
    """``Executor.run`` that, the first time ``remedy`` runs, makes its calls (and their
    verification) and dies before the journal records the result."""
    real_run = Executor.run
    fired = [False]

    async def run(self: Executor, action: PlannedAction, verify: Any) -> ActionResult:
        result = await real_run(self, action, verify)
        if action.remedy.value == remedy and not fired[0]:
            fired[0] = True
            raise Killed
        return result

    return run


@pytest.mark.parametrize("case", UNSENT, ids=[c[0] for c in UNSENT])
async def test_a_call_that_landed_before_a_kill_is_settled_by_its_re_read_never_made_again(
    world: World, monkeypatch: pytest.MonkeyPatch, case: tuple[str, str, str, str]
) -> None:
    remedy, playbook, operation, fault = case
    journal = world.agent.journal
    monkeypatch.setattr(Executor, "run", killed_after_the_call(remedy))
    await killed_run(world, playbook)
    # the kill may also cut off another incident's action, started while this one verified
    [flying] = [a for a in journal.in_flight() if a.remedy == remedy]
    made = writes(world, operation)
    assert made >= 1
    monkeypatch.undo()

    report = await world.run(playbook)

    # the re-read shows the change: succeeded, the incident fixed, nothing written again
    reconciled = settled(journal, flying)
    assert reconciled.status == "succeeded", reconciled.detail
    fixed = journal.incident(flying.incident_id)
    assert fixed is not None
    assert (fixed.open, fixed.outcome) == (False, "fixed"), journal.history(fixed.incident_id)
    assert writes(world, operation) == made
    assert world.present()[fault] is False
    assert events_in_two_incidents(world) == []
    assert journal.in_flight() == []
    # the run that settled it reports the fix, as it would one it made itself: counted in
    # its message, its metrics and its report, with the action and why it was settled
    [shown] = [i for i in report.incidents if i.incident_id == flying.incident_id]
    assert shown.outcome == "fixed"
    assert (remedy, "succeeded") in [(a.remedy, a.status) for a in shown.actions]
    assert "after a crash" in shown.reason
    assert report.counts["fixed"] >= 1


async def test_a_sync_access_a_kill_left_unknown_is_sent_again_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = world.agent.journal
    flying = await kill_before_the_call(world, monkeypatch, "sync_access", "aca-rejections")
    assert world.present()["aca.iq_out_of_sync"] is True

    await world.run("aca-rejections")

    # nothing tells whether the cut-off job ran, and repeating it is safe: ACA and CLP still
    # grant, so it is sent again now, not after a presentation that may never come
    reconciled = settled(journal, flying)
    assert reconciled.status == "succeeded"
    assert reconciled.detail is not None
    assert reconciled.detail["sent_again"] is True
    synced = journal.incident(flying.incident_id)
    assert synced is not None
    assert (synced.open, synced.outcome) == (True, "pending_verification")
    assert writes(world, "sync_access") == 1
    world.clock.advance(timedelta(minutes=5))
    assert world.present()["aca.iq_out_of_sync"] is False


@pytest.mark.parametrize("answered", [False, True])
async def test_a_sync_access_sent_again_is_noted_first_and_never_sent_a_third_time(
    world: World, monkeypatch: pytest.MonkeyPatch, answered: bool
) -> None:
    journal = world.agent.journal
    flying = await kill_before_the_call(world, monkeypatch, "sync_access", "aca-rejections")
    clp = world.agent.clients.clp
    real_call = clp.sync_access

    async def landed_then_killed(*args: Any, **kwargs: Any) -> Any:
        await real_call(*args, **kwargs)  # the job is sent again and runs...
        raise Killed  # ...and the process dies before CLP's answer reaches it

    real_sync = Executor._sync

    async def answered_then_killed(self: Executor, *args: Any) -> Any:
        await real_sync(self, *args)  # the job is sent again, answered and read back...
        raise Killed  # ...and the process dies before the journal records the result

    if answered:
        monkeypatch.setattr(Executor, "_sync", answered_then_killed)
    else:
        monkeypatch.setattr(clp, "sync_access", landed_then_killed)
    await killed_run(world, "aca-rejections")

    # the journal said what the reconciliation was about to do before it did it
    [still] = journal.in_flight()
    assert still.action_id == flying.action_id
    assert still.detail is not None
    assert still.detail["sent_again"] is True
    assert writes(world, "sync_access") == 1

    monkeypatch.undo()
    world.clock.advance(timedelta(minutes=1))
    await world.run("aca-rejections")

    # sent again once already: not a third time, and the journal still says it was sent
    # again, whichever reconciliation settled it (the crash loop counts it from there)
    assert writes(world, "sync_access") == 1
    reconciled = settled(journal, flying)
    assert reconciled.detail is not None
    assert reconciled.detail["sent_again"] is True
    if answered:
        # CLP named the job before the kill: that job is read back and decides
        assert reconciled.status == "succeeded"
        assert reconciled.detail["job_id"] == still.detail["job_id"]
        assert reconciled.detail["job_state"] == "succeeded"
    else:
        # no answer came: the next presentation proves it
        assert reconciled.status == "failed"
        assert reconciled.detail["outcome_unknown"] is True
    synced = journal.incident(flying.incident_id)
    assert synced is not None
    assert (synced.open, synced.outcome) == (True, "pending_verification")


def _subject(world: World, row: ActionRow) -> tuple[str, str]:
    incident = world.agent.journal.incident(row.incident_id)
    assert incident is not None
    return incident.subject["user_id"], incident.subject["lock_id"]


async def test_a_sync_access_a_kill_left_unknown_is_not_sent_once_a_person_disabled_the_access(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = world.agent.journal
    flying = await kill_before_the_call(world, monkeypatch, "sync_access", "aca-rejections")
    user, lock = _subject(world, flying)
    world.clock.advance(timedelta(hours=2))
    world.state.world.set_access_matrix(user, lock, False)  # an administrator, in ACA

    await world.run("aca-rejections")

    assert writes(world, "sync_access") == 0
    left = journal.incident(flying.incident_id)
    assert left is not None
    assert (left.open, left.outcome) == (False, "needs_human")
    assert "not sent again" in left.steps[0]["text"]


async def test_a_toggle_a_kill_cut_off_does_not_re_enable_access_an_administrator_disabled(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = world.agent.journal
    flying = await kill_before_the_call(
        world, monkeypatch, "toggle_access_matrix", "aca-rejections"
    )
    user, lock = _subject(world, flying)
    world.clock.advance(timedelta(days=2))
    world.state.world.set_access_matrix(user, lock, False)  # an administrator, days later

    await world.run("aca-rejections")

    # the cell is left as the person set it, and the incident says what was found
    assert toggles(world.landed()).get((user, lock)) is None
    assert world.state.world.matrix[(user, lock)].enabled is False
    reconciled = settled(journal, flying)
    assert reconciled.detail is not None
    assert reconciled.detail["left_alone"] is True
    left = journal.incident(flying.incident_id)
    assert left is not None
    assert (left.open, left.outcome) == (False, "needs_human")
    assert "did not switch it back on" in left.steps[0]["text"]


async def test_a_toggle_a_kill_cut_between_disable_and_enable_is_completed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = world.agent.journal
    aca = world.agent.clients.aca
    monkeypatch.setattr(
        aca,
        "set_access_matrix",
        once(aca.set_access_matrix, lambda *a, **k: k.get("enabled") is True),
    )
    await killed_run(world, "aca-rejections")
    [flying] = journal.in_flight()
    user, lock = _subject(world, flying)
    assert world.state.world.matrix[(user, lock)].enabled is False  # doorfix's own disable

    await world.run("aca-rejections")

    # doorfix's own disable (at the time its call could land) is switched back on
    assert toggles(world.landed())[(user, lock)] == [False, True]
    reconciled = settled(journal, flying)
    assert reconciled.detail is not None
    assert reconciled.detail["re_enabled"] is True


async def test_a_sync_access_answered_before_a_kill_is_read_back_never_sent_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CLP named the job, then the process died reading it back: the call landed, so the next
    # run reads that job, whatever it finds, and sends nothing
    journal = world.agent.journal
    clp = world.agent.clients.clp
    monkeypatch.setattr(clp, "get_sync_job", once(clp.get_sync_job, lambda *a, **k: True))
    await killed_run(world, "aca-rejections")
    [flying] = journal.in_flight()
    assert flying.remedy == "sync_access"
    assert flying.detail is not None
    assert flying.detail["job_id"]
    assert writes(world, "sync_access") == 1
    world.clock.advance(timedelta(minutes=1))  # the job has ended by the next run

    await world.run("aca-rejections")

    assert writes(world, "sync_access") == 1
    reconciled = settled(journal, flying)
    assert reconciled.status == "succeeded"
    assert reconciled.detail is not None
    assert reconciled.detail["job_id"] == flying.detail["job_id"]
    assert reconciled.detail["job_state"] == "succeeded"
    assert "sent_again" not in reconciled.detail


@pytest.mark.parametrize(
    ("remedy", "killed", "beside"),
    [
        ("toggle_access_matrix", "aca-rejections", "door-logs"),
        ("assign_credential", "door-logs", "aca-rejections"),
    ],
)
async def test_a_run_settles_only_what_its_own_scopes_left(
    world: World, monkeypatch: pytest.MonkeyPatch, remedy: str, killed: str, beside: str
) -> None:
    # runs of different scopes go at the same time, so a run of the other scope must take
    # what it finds in flight for a live run's: it neither settles the action nor marks the
    # run interrupted; the next run of the killed one's scope does both
    journal = world.agent.journal
    flying = await kill_before_the_call(world, monkeypatch, remedy, killed)
    monkeypatch.undo()

    await world.run(beside)

    assert [a.action_id for a in journal.in_flight()] == [flying.action_id]
    left = journal.incident(flying.incident_id)
    assert left is not None
    assert left.outcome is None
    statuses = {r.playbook: r.status for r in journal.runs()}
    assert statuses == {killed: "running", beside: "completed"}

    await world.run(killed)

    assert journal.in_flight() == []
    assert settled(journal, flying).status != "started"
    assert sorted(r.status for r in journal.runs(playbook=killed)) == ["completed", "interrupted"]


async def test_an_acting_run_waits_while_another_process_holds_the_journal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    world = make_world(journal=path, **SERIAL)
    other = Journal(path, clock=SystemClock())  # the daemon of another process, say
    try:
        with structlog.testing.capture_logs() as logs:
            async with other.run_lock.held("door-logs", scopes=("cloud",)):
                waiting = asyncio.create_task(world.run("aca-rejections"))
                # the second run says once that it waits for the journal
                async with asyncio.timeout(10):
                    await until(lambda: any(e["event"] == "journal_busy" for e in logs))
                assert not waiting.done()
                assert world.agent.journal.runs() == []  # it has not even started its run
                busy = next(e for e in logs if e["event"] == "journal_busy")
                assert busy["holder"]["run"] == "door-logs"
            report = await asyncio.wait_for(waiting, timeout=30)
        assert report.error is None
        assert [r.status for r in world.agent.journal.runs()] == ["completed"]
        # a dry-run never takes the lock: it changes nothing and reconciles nothing
        async with other.run_lock.held("door-logs", scopes=("cloud",)):
            dry = await asyncio.wait_for(world.run("door-logs", dry_run=True), timeout=30)
        assert dry.dry_run
    finally:
        other.close()
        await world.aclose()
