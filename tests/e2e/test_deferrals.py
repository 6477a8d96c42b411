"""A deferred incident never lingers: it ends when a newer diagnosis of its subject ends, or
when the person gets in."""

from __future__ import annotations

from datetime import timedelta

from support.demo import DEMO_SETTINGS, REMEDIABLE, Demo, make_demo


async def test_a_too_early_deferral_ends_when_the_person_gets_in_after_the_grace(
    demo: Demo,
) -> None:
    first = await demo.run("aca-rejections")
    (early,) = [i for i in first.incidents if i.cause == "aca.too_early"]
    assert early.outcome == "deferred"
    demo.clock.advance(timedelta(hours=25))  # past the grace: CLP now holds the access
    user, lock = early.subject["user_id"], early.subject["lock_id"]
    assert demo.state.world.present_at_lock(user, lock, "tag").granted

    await demo.run("aca-rejections")

    closed = demo.agent.journal.incident(early.incident_id)
    assert closed is not None
    assert (closed.open, closed.outcome) == (False, "no_fault")
    notes = [h.note for h in demo.agent.journal.history(early.incident_id)]
    assert notes[-1] == "resolved by itself: the person was granted access afterwards"
    assert [i.incident_id for i in demo.agent.journal.open_incidents(outcome="deferred")] == []


async def test_a_dry_run_leaves_a_deferral_open(demo: Demo) -> None:
    first = await demo.run("aca-rejections")
    (early,) = [i for i in first.incidents if i.cause == "aca.too_early"]
    demo.clock.advance(timedelta(hours=25))
    demo.state.world.present_at_lock(early.subject["user_id"], early.subject["lock_id"], "tag")

    await demo.run("aca-rejections", dry_run=True)

    still = demo.agent.journal.incident(early.incident_id)
    assert still is not None
    assert (still.open, still.outcome) == (True, "deferred")


async def test_deferrals_over_the_run_cap_are_worked_by_the_next_runs_without_a_new_refusal() -> (
    None
):
    demo = make_demo(
        {**DEMO_SETTINGS, "guards": {"renewals_enabled": True, "max_actions_per_run": 2}}
    )
    try:
        first = await demo.run("door-logs")
        capped = [i for i in first.incidents if i.reason == "max_actions_per_run reached"]
        assert len(capped) >= 2
        before = {i.incident_id: demo.agent.journal.incident(i.incident_id) for i in capped}

        # the clock does not move: nobody is refused again, no event is new
        for _ in range(len(capped)):
            await demo.run("door-logs")

        for incident_id, was in before.items():
            now = demo.agent.journal.incident(incident_id)
            assert now is not None
            assert was is not None
            assert (now.open, now.outcome) == (False, "fixed"), now.cause
            # worked as the same incident: no occurrence added, no event added
            assert (now.occurrences, now.event_ids) == (was.occurrences, was.event_ids)
        present = demo.present()
        assert [k for k in REMEDIABLE if k.startswith("cloud.") and present.get(k)] == []
    finally:
        await demo.aclose()


async def test_a_too_early_deferral_is_diagnosed_again_when_the_grace_is_over(demo: Demo) -> None:
    first = await demo.run("aca-rejections")
    (early,) = [i for i in first.incidents if i.cause == "aca.too_early"]
    demo.clock.advance(timedelta(hours=25))  # the person does not come back

    await demo.run("aca-rejections")

    # CLP now holds the access but the IQ does not: the retry finds that, syncs, and the
    # deferral ends, superseded by the incident that carries the problem from here
    journal = demo.agent.journal
    after = journal.incident(early.incident_id)
    assert after is not None
    assert (after.open, after.outcome) == (False, "no_fault")
    [carrier] = [i for i in journal.open_incidents() if i.subject == early.subject]
    assert (carrier.cause, carrier.outcome) == ("aca.iq_out_of_sync", "pending_verification")
    note = journal.history(early.incident_id)[-1].note
    assert note == (
        f"superseded by incident {carrier.incident_id} (aca.iq_out_of_sync, pending_verification)"
    )
    # the next runs leave the pending incident to its verification: no second Sync Access
    await demo.run("aca-rejections")
    assert [a.remedy for a in journal.actions(incident_id=carrier.incident_id)] == ["sync_access"]
    assert journal.incident(carrier.incident_id).outcome == "pending_verification"  # type: ignore[union-attr]
