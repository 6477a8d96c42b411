"""One run of each playbook against the demo: what a support team would see happen."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from support.demo import REMEDIABLE, Demo

from doorfix.agent.engine.report import RunReport

#: each demo fault -> (cause reported, outcome of the first run of its playbook)
EXPECTED = {
    "cloud.credential_unassigned": ("cloud.credential_unassigned", "fixed"),
    "cloud.unknown_credential": ("cloud.credential_unassigned", "needs_human"),
    "cloud.no_access_group": ("cloud.no_access_group", "fixed"),
    "cloud.inherited_group": ("cloud.inherited_group", "needs_human"),
    "cloud.visitor_expired": ("cloud.visitor_expired", "fixed"),
    "cloud.holiday_restriction": ("cloud.holiday_restriction", "fixed"),
    "cloud.license_inactive": ("cloud.license_inactive", "fixed"),
    "cloud.no_payment": ("cloud.license_inactive", "needs_human"),
    "aca.clp_out_of_sync": ("aca.clp_out_of_sync", "fixed"),
    "aca.iq_out_of_sync": ("aca.iq_out_of_sync", "pending_verification"),
    "aca.lock_offline": ("aca.lock_offline", "needs_human"),
    "aca.privacy_mode": ("aca.privacy_mode", "needs_human"),
    "aca.booking_mismatch": ("aca.booking_mismatch", "needs_human"),
    "aca.access_disabled": ("aca.access_disabled", "no_fault"),
    "aca.no_booking": ("aca.no_booking", "no_fault"),
    "aca.too_early": ("aca.too_early", "deferred"),
    # a lost tag presented while CLP denies: the security finding, not a toggle
    "aca.tag_not_assigned": ("aca.tag_not_assigned", "needs_human"),
    "aca.mkey_revoked": ("aca.mkey_revoked", "needs_human"),
    "aca.mkey_corrupted": ("aca.mkey_corrupted", "needs_human"),
    "aca.mkey_generation_failed": ("aca.mkey_generation_failed", "needs_human"),
}


def _outcomes(demo: Demo, reports: list[RunReport]) -> dict[str, tuple[str, str]]:
    """Fault kind -> (cause, outcome) of the incident about that fault's subject."""
    found: dict[str, tuple[str, str]] = {}
    for kind, ids in demo.manifest.items():
        if kind not in EXPECTED:
            continue
        for report in reports:
            for inc in report.incidents:
                subject = inc.subject
                same_lock = "lock_id" in ids and subject.get("lock_id") == ids["lock_id"]
                same_door = "door_id" in ids and subject.get("door_id") == ids["door_id"]
                if (same_lock and kind.startswith("aca.")) or (
                    same_door and kind.startswith("cloud.")
                ):
                    found.setdefault(kind, (inc.cause, inc.outcome))
    return found


async def test_each_fault_gets_its_cause_and_outcome(demo: Demo) -> None:
    reports = await demo.run_all()
    assert _outcomes(demo, reports) == EXPECTED


async def test_every_remediable_fault_is_cleared_and_the_rest_remain(demo: Demo) -> None:
    await demo.run_all()
    present = demo.present()
    assert {k for k in REMEDIABLE if present[k]} == set()
    others = set(EXPECTED) - REMEDIABLE
    assert {k for k in others if not present[k]} == set()


async def test_the_mutating_calls_are_exactly_the_remedies(demo: Demo) -> None:
    await demo.run_all()
    m = demo.manifest
    site, col = m["aca.iq_out_of_sync"]["site_id"], m["aca.iq_out_of_sync"]["collection_id"]
    calls = Counter(
        (
            system,
            op,
            dict(args).get("door_id")
            or dict(args).get("user_id")
            or dict(args).get("collection_id")
            or dict(args).get("visitor_id")
            or dict(args).get("personnel_id")
            or dict(args).get("holiday_id"),
        )
        for system, op, args in demo.mutations()
    )
    assert calls == Counter(
        {
            (
                "cloud",
                "add_personnel_credential",
                m["cloud.credential_unassigned"]["personnel_id"],
            ): 1,
            ("cloud", "add_access_group_member", m["cloud.no_access_group"]["personnel_id"]): 1,
            ("cloud", "create_visitor_temp_key", m["cloud.visitor_expired"]["visitor_id"]): 1,
            ("cloud", "set_holiday_working_hours", m["cloud.holiday_restriction"]["holiday_id"]): 1,
            ("cloud", "renew_door_license", m["cloud.license_inactive"]["door_id"]): 1,
            ("cloud", "renew_door_license", m["license.expiring_soon"]["door_id"]): 1,
            ("aca", "access_matrix", m["aca.clp_out_of_sync"]["user_id"]): 2,
            ("clp", "sync_access", col): 1,
        }
    )
    assert site  # the sync went to the lock's own site (checked by the sandbox's routing)
    toggles = [dict(args)["enabled"] for s, op, args in demo.mutations() if op == "access_matrix"]
    assert toggles == [False, True]  # disabled, then enabled again: never left disabled


async def test_the_access_group_added_opens_only_booked_doors(demo: Demo) -> None:
    await demo.run("door-logs")
    world = demo.state.world
    (added,) = [dict(a) for s, op, a in demo.mutations() if op == "add_access_group_member"]
    group = world.cloud_access_groups[added["access_group_id"]]
    person = world.personnel[added["personnel_id"]]
    assert person.external_id is not None
    user = world.users[person.external_id]
    booked = {
        door
        for b in world.bookings.values()
        if b.company_id == user.company_id and b.status == "active"
        for door in world.inventories[b.inventory_id].door_ids
    }
    assert set(group.door_ids) <= booked


async def test_a_second_run_right_after_makes_no_mutating_call(demo: Demo) -> None:
    await demo.run_all()
    before = len(demo.mutations())
    second = await demo.run_all()
    assert len(demo.mutations()) == before
    assert not [
        i for r in second for i in r.incidents if i.actions and i.actions[0].status == "succeeded"
    ]


async def test_dry_run_mutates_nothing_and_plans_the_same_fixes(demo: Demo) -> None:
    dry = await demo.run_all(dry_run=True)
    assert demo.mutations() == []
    planned = {
        (i.cause, a.remedy, a.target)
        for r in dry
        for i in r.incidents
        if i.outcome == "would_fix"
        for a in i.actions
    }
    assert all(
        a.status == "planned"
        for r in dry
        for i in r.incidents
        if i.outcome == "would_fix"
        for a in i.actions
    )
    real = await demo.run_all()
    done = {
        (i.cause, a.remedy, a.target)
        for r in real
        for i in r.incidents
        for a in i.actions
        if a.status == "succeeded" and a.remedy != "escalate"
    }
    assert planned - {p for p in planned if p[1] == "escalate"} == done


async def test_sync_access_is_verified_by_the_next_granted_presentation(demo: Demo) -> None:
    first = await demo.run("aca-rejections")
    (pending,) = [i for i in first.incidents if i.outcome == "pending_verification"]
    # the demo's people retry every 10 minutes: the next try opens the lock
    demo.clock.advance(timedelta(minutes=15))
    second = await demo.run("aca-rejections")
    closed = [i for i in second.incidents if i.incident_id == pending.incident_id]
    assert [i.outcome for i in closed] == ["fixed"]
    row = demo.agent.journal.incident(pending.incident_id)
    assert row is not None
    assert row.outcome == "fixed"


async def test_too_early_is_retried_after_the_grace(demo: Demo) -> None:
    first = await demo.run("aca-rejections")
    (early,) = [i for i in first.incidents if i.cause == "aca.too_early"]
    assert early.outcome == "deferred"
    demo.clock.advance(timedelta(hours=25))
    later = await demo.run("aca-rejections")
    assert not [i for i in later.incidents if i.cause == "aca.too_early"]
    assert demo.present()["aca.too_early"] is False


async def test_a_repeat_within_the_cool_down_keeps_its_events_without_a_new_report(
    demo: Demo,
) -> None:
    first = await demo.run("aca-rejections")
    (disabled,) = [i for i in first.incidents if i.cause == "aca.access_disabled"]
    before = demo.agent.journal.incident(disabled.incident_id)
    assert before is not None
    demo.clock.advance(timedelta(minutes=25))  # the refused person tries twice more
    second = await demo.run("aca-rejections")
    assert not [i for i in second.incidents if i.cause == "aca.access_disabled"]
    after = demo.agent.journal.incident(disabled.incident_id)
    assert after is not None
    assert len(after.event_ids) > len(before.event_ids)  # nothing lost: the new tries are kept
    assert after.outcome == "no_fault"


async def test_a_toggle_that_does_not_hold_is_escalated_and_not_looped(demo: Demo) -> None:
    world = demo.state.world
    user, lock = demo.manifest["normal.tag"]["user_id"], demo.manifest["normal.tag"]["lock_id"]
    world.inject("aca.clp_out_of_sync", user_id=user, lock_id=lock, sticky=True)
    world.present_at_lock(user, lock, "tag")
    first = await demo.run("aca-rejections")
    (broken,) = [i for i in first.incidents if i.subject.get("user_id") == user]
    assert (broken.cause, broken.outcome) == ("aca.clp_out_of_sync", "needs_human")
    assert [a.status for a in broken.actions] == ["succeeded"]  # the calls worked...
    assert any(s["who"] == "vendor_support" for s in broken.steps)  # ...the fix did not hold
    toggles = [
        m for m in demo.mutations() if m[1] == "access_matrix" and dict(m[2])["user_id"] == user
    ]
    assert len(toggles) == 2  # one disable, one enable

    for _ in range(3):  # the person keeps trying; doorfix keeps watching
        demo.clock.advance(timedelta(minutes=10))
        world.present_at_lock(user, lock, "tag")
        await demo.run("aca-rejections")
    toggles = [
        m for m in demo.mutations() if m[1] == "access_matrix" and dict(m[2])["user_id"] == user
    ]
    assert len(toggles) == 2  # within the cool-down: never toggled again


async def test_an_escalation_is_not_repeated_at_every_rejection(demo: Demo) -> None:
    first = await demo.run("aca-rejections")
    (escalated,) = [i for i in first.incidents if i.cause == "aca.mkey_generation_failed"]
    demo.clock.advance(timedelta(minutes=25))  # the user keeps trying with the broken key
    second = await demo.run("aca-rejections")
    assert not [i for i in second.incidents if i.cause == "aca.mkey_generation_failed"]
    kept = demo.agent.journal.incident(escalated.incident_id)
    assert kept is not None
    assert len(kept.event_ids) > len(escalated.event_ids)
