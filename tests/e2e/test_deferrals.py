"""A deferred incident never lingers: it ends when a newer diagnosis of its subject ends, or
when the person gets in."""

from __future__ import annotations

from datetime import timedelta

from support.demo import Demo


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
