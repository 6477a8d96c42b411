"""A remedy that does not hold is not repeated for ever.

A sticky fault (the user's Access Matrix changes never reach CLP) is driven for simulated
days on the injectable clock, the person trying every half hour as the demo's people do:
the toggle is tried ``max_attempts_not_held`` times, then the incident is escalated once,
with the attempts, and stays so; the person's later refusals join that escalation.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from support.demo import Demo

USER, LOCK = "u-12", "l-12"
KEY_CAUSE = "aca.clp_out_of_sync"


async def test_a_toggle_that_never_reaches_clp_is_tried_twice_then_escalated_once(
    demo: Demo,
) -> None:
    world = demo.state.world
    world.inject(KEY_CAUSE, user_id=USER, lock_id=LOCK, sticky=True)
    assert not world.present_at_lock(USER, LOCK, "tag").granted

    outcomes: Counter[str] = Counter()
    for _ in range(24):  # two simulated days, a run every two hours
        report = await demo.run("aca-rejections")
        for incident in report.incidents:
            if incident.subject.get("user_id") == USER and incident.cause == KEY_CAUSE:
                outcomes[incident.outcome] += 1
        demo.clock.advance(timedelta(hours=2))
        world.present_at_lock(USER, LOCK, "tag")

    disables = [
        m
        for m in demo.state.mutations.since(0)
        if m.operation == "access_matrix"
        and m.targets.get("user_id") == USER
        and m.params.get("enabled") is False
    ]
    assert len(disables) == 2  # [guards] max_attempts_not_held
    journal = demo.agent.journal
    rows = journal.incidents(subject={"user_id": USER, "lock_id": LOCK}, limit=100)
    escalated = [r for r in rows if r.evidence.get("attempts_exhausted")]
    assert len(escalated) == 1  # escalated once, not at every refusal
    (once,) = escalated
    assert (once.open, once.outcome) == (False, "needs_human")
    assert len(once.evidence["attempts_not_held"]) == 2
    assert "did not hold" in once.steps[-1]["text"]
    assert once.occurrences > 1  # the later refusals joined it
    assert outcomes["needs_human"] == 3  # two attempts that did not hold, one escalation


async def test_a_sync_access_that_never_lands_is_tried_twice_then_escalated_once(
    demo: Demo,
) -> None:
    world = demo.state.world
    user, lock = "u-13", "l-13"
    world.inject("aca.iq_out_of_sync", user_id=user, lock_id=lock, sticky=True)

    for _ in range(30):  # two and a half simulated days, a run every two hours
        world.present_at_lock(user, lock, "mkey")
        await demo.run("aca-rejections")
        demo.clock.advance(timedelta(hours=2))

    collection = world.locks[lock].collection_id
    syncs = [
        m
        for m in demo.state.mutations.since(0)
        if m.operation == "sync_access" and m.targets.get("collection_id") == collection
    ]
    assert len(syncs) == 2  # not pending -> needs_human -> pending for ever
    rows = demo.agent.journal.incidents(subject={"user_id": user, "lock_id": lock}, limit=100)
    escalated = [r for r in rows if r.evidence.get("attempts_exhausted")]
    assert len(escalated) == 1
    assert escalated[0].outcome == "needs_human"
    assert world.present_at_lock(user, lock, "mkey").granted is False  # the fault is sticky
