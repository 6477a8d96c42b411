"""Decisions a support lead would sign, against the demo world through its APIs, on a manual clock.

Hours a person set on a holiday are never replaced (in the plan, and again just before the
call); "a new mobile key still fails" is bounded in time, so a key replaced long ago goes
through the normal checks.
"""

from __future__ import annotations

from datetime import timedelta

from support.demo import Demo

from doorfix.agent.engine.execute import Executor
from doorfix.agent.journal.rows import ActionRow
from doorfix.playbooks.types import Outcome, PlannedAction, Remedy
from doorfix.sandbox.world.model import WorkingHours
from doorfix.sandbox.world.world import LockPresentation


def _holiday_calls(demo: Demo, holiday_id: str) -> list[object]:
    return [
        m
        for m in demo.state.mutations.since(0)
        if m.operation == "set_holiday_working_hours" and m.targets.get("holiday_id") == holiday_id
    ]


async def test_hours_a_person_set_on_a_holiday_are_never_replaced(demo: Demo) -> None:
    world = demo.state.world
    door = demo.manifest["normal.door"]["door_id"]
    # a "Public holiday" (doorfix may open it 08:00-18:00) on which a person enabled 07:00-08:30
    fault = world.inject("cloud.holiday_restriction", door_id=door, hours="07:00-08:30")
    holiday_id = fault.subject["holiday_id"]
    demo.clock.advance(timedelta(minutes=40))  # Lars is refused at the door, at 09:xx local

    report = await demo.run("door-logs")

    found = [
        i
        for i in report.incidents
        if i.cause == "cloud.holiday_restriction" and i.subject.get("door_id") == door
    ]
    assert found
    for incident in found:
        assert incident.outcome == "needs_human"
        assert incident.actions == []
        text = " ".join(s["text"] for s in incident.steps)
        assert "already has working hours 07:00-08:30 enabled, set by a person" in text
    holiday = world.holidays[holiday_id]
    assert holiday.working_hours_enabled
    assert (holiday.working_hours.start_time, holiday.working_hours.end_time) == ("07:00", "08:30")
    assert _holiday_calls(demo, holiday_id) == []
    # the demo's holiday without hours is still opened with the configured hours
    assert _holiday_calls(demo, demo.manifest["cloud.holiday_restriction"]["holiday_id"])


async def test_the_call_re_reads_the_holiday_and_leaves_hours_set_since_the_plan(
    demo: Demo,
) -> None:
    world = demo.state.world
    holiday_id = demo.manifest["cloud.holiday_restriction"]["holiday_id"]
    holiday = world.holidays[holiday_id]
    project = holiday.project_id
    # planned while the holiday had no hours...
    action = PlannedAction(
        Remedy.SET_HOLIDAY_HOURS,
        "cloud",
        f"{project}/{holiday_id}",
        {
            "project_id": project,
            "holiday_id": holiday_id,
            "enabled": True,
            "start_time": "08:00",
            "end_time": "18:00",
        },
    )
    # ...then a person enables 07:00-22:00 before doorfix calls
    holiday.working_hours_enabled = True
    holiday.working_hours = WorkingHours("07:00", "22:00")

    executor = Executor(demo.agent.clients, demo.clock, verify_timeout=5)
    result = await executor.run(action, {})

    assert result.outcome is Outcome.NEEDS_HUMAN
    assert result.status == "skipped"
    assert result.detail["working_hours_found"] == "07:00-22:00"
    assert "never shortens or replaces" in " ".join(s.text for s in result.steps)
    assert (holiday.working_hours.start_time, holiday.working_hours.end_time) == ("07:00", "22:00")
    assert _holiday_calls(demo, holiday_id) == []


async def test_a_key_replaced_long_ago_is_no_vendor_bug_and_the_iq_is_synced(demo: Demo) -> None:
    # Mila's key was revoked and replaced 400 days ago (the demo's history); now her lock's IQ
    # loses her access: the runbook's C c2, not "a new key still fails"
    mila = demo.manifest["normal.mkey"]
    assert demo.manifest["aca.mkey_replaced_long_ago"]["user_id"] == mila["user_id"]
    world = demo.state.world
    world.inject("aca.iq_out_of_sync", user_id=mila["user_id"], lock_id=mila["lock_id"])
    demo.clock.advance(timedelta(minutes=31))  # she tries again, with her phone

    report = await demo.run("aca-rejections")

    (incident,) = [
        i
        for i in report.incidents
        if i.subject.get("user_id") == mila["user_id"]
        and i.subject.get("lock_id") == mila["lock_id"]
    ]
    assert incident.evidence["event_type"] == "mkey_rejected"
    assert (incident.cause, incident.outcome) == ("aca.iq_out_of_sync", "pending_verification")
    assert [a.remedy for a in incident.actions] == ["sync_access"]


async def test_a_tag_and_a_mobile_key_failing_at_one_lock_are_two_incidents(demo: Demo) -> None:
    # Ivy's mobile key is revoked (the demo); now her lock's IQ also loses her, and she tries
    # her tag too: the key is hers to reinstall, the tag needs a Sync Access
    ivy = demo.manifest["aca.mkey_revoked"]
    user, lock = ivy["user_id"], ivy["lock_id"]
    world = demo.state.world
    world.inject("aca.iq_out_of_sync", user_id=user, lock_id=lock)
    first = demo.clock.now() + timedelta(minutes=1)
    until = first + timedelta(minutes=24)
    world.schedule_presentations(LockPresentation(user, lock, "tag"), first, 600, until)
    demo.clock.advance(timedelta(minutes=31))

    report = await demo.run("aca-rejections")

    found = {
        i.cause: i
        for i in report.incidents
        if i.subject.get("user_id") == user and i.subject.get("lock_id") == lock
    }
    assert set(found) == {"aca.mkey_revoked", "aca.iq_out_of_sync"}
    assert found["aca.mkey_revoked"].outcome == "needs_human"
    assert found["aca.mkey_revoked"].evidence["event_type"] == "mkey_rejected"
    synced = found["aca.iq_out_of_sync"]
    assert (synced.outcome, [a.remedy for a in synced.actions]) == (
        "pending_verification",
        ["sync_access"],
    )
    assert synced.evidence["event_type"] == "tag_rejected"
    # every refusal is held by one of the two
    held = set(found["aca.mkey_revoked"].event_ids) | set(synced.event_ids)
    assert not set(found["aca.mkey_revoked"].event_ids) & set(synced.event_ids)
    assert len(held) >= 4


async def test_after_a_crash_hours_a_person_set_meanwhile_are_not_claimed_as_doorfixs(
    demo: Demo,
) -> None:
    # a set_holiday_hours left in flight by a crash; meanwhile a person enabled 07:00-22:00
    world = demo.state.world
    holiday_id = demo.manifest["cloud.holiday_restriction"]["holiday_id"]
    holiday = world.holidays[holiday_id]
    call = {
        "project_id": holiday.project_id,
        "holiday_id": holiday_id,
        "enabled": True,
        "start_time": "08:00",
        "end_time": "18:00",
    }
    row = ActionRow(
        action_id="a-1",
        run_id="r-1",
        incident_id="i-1",
        remedy="set_holiday_hours",
        target=f"{holiday.project_id}/{holiday_id}",
        system="cloud",
        params={"call": call, "verify": {}},
        status="started",
        detail=None,
        idempotency_key="i-1:set_holiday_hours:x:0",
        started_at=demo.clock.now(),
        finished_at=None,
    )
    holiday.working_hours_enabled = True
    holiday.working_hours = WorkingHours("07:00", "22:00")

    executor = Executor(demo.agent.clients, demo.clock, verify_timeout=5)
    settled, detail = await executor.reconcile(
        row, subject={"center_id": "c-1"}, landed_by=demo.clock.now()
    )

    assert settled == "skipped"  # not doorfix's change: never claimed as fixed
    assert detail == {"working_hours": False, "working_hours_found": "07:00-22:00"}
    assert _holiday_calls(demo, holiday_id) == []
