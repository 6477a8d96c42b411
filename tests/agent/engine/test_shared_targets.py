"""Concurrent incidents that share a target still make one call per action.

With sixteen incidents worked at once, pairs of incidents meet on one thing: two people
refused at locks of one collection (one Sync Access serves both), two people whose cards are
unassigned at one door, beside two others each toggled at their own lock. The sandbox's
mutation log and the journal must show exactly one call per action key, and every fault
fixed. (Incidents of one person share a lane: ``test_lanes``; the scale world books each
person one lock.)
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from support.scale import agent_on, booked, pick

from doorfix.agent.engine.run import run_once
from doorfix.clock import ManualClock
from doorfix.sandbox.api.app import create_app, sandbox_state
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


async def test_incidents_sharing_a_collection_person_or_door_make_one_call_per_action() -> None:
    clock = ManualClock(START)
    world = build_scenario("scale", seed=0, clock=clock, centers=4, door_logs=0)
    chosen = pick(world)
    assert len(chosen["collection"]) == 2, "the scale world has a collection with two locks"
    for user_id, lock_id in chosen["collection"]:
        world.inject("aca.iq_out_of_sync", user_id=user_id, lock_id=lock_id)
        world.present_at_lock(user_id, lock_id, "tag")
    for user_id, lock_id in chosen["person"]:
        world.inject("aca.clp_out_of_sync", user_id=user_id, lock_id=lock_id)
        world.present_at_lock(user_id, lock_id, "tag")
    for user_id, door_id in chosen["door"]:
        world.inject("cloud.credential_unassigned", user_id=user_id, door_id=door_id)
        world.present_at_door(door_id, "card", world.users[user_id].tags[0].number)
    app = create_app(world, api_faults=ApiFaults(0))
    agent = agent_on(app, clock, {"engine": {"max_concurrent_incidents": 16}})
    try:
        reports = [await run_once(agent, p) for p in ("aca-rejections", "door-logs")]
        journal_actions = agent.journal.actions()
    finally:
        await agent.clients.aclose()
        agent.journal.close()

    found = Counter((i.cause, i.outcome) for r in reports for i in r.incidents)
    assert found[("aca.clp_out_of_sync", "fixed")] == 2
    assert found[("cloud.credential_unassigned", "fixed")] == 2
    # the second refusal joins the first's Sync Access: both wait for their own user's grant
    assert found[("aca.iq_out_of_sync", "pending_verification")] == 2

    calls = Counter(
        (m.operation, tuple(sorted(m.targets.items())))
        for m in sandbox_state(app).mutations.since(0)
    )
    syncs = [k for k in calls if k[0] == "sync_access"]
    assert len(syncs) == 1
    assert calls[syncs[0]] == 1
    toggles = {k: n for k, n in calls.items() if "matrix" in k[0]}
    assert len(toggles) == 2
    assert set(toggles.values()) == {2}
    assigned = {k: n for k, n in calls.items() if "credential" in k[0] or "assign" in k[0]}
    assert len(assigned) == 2
    assert set(assigned.values()) == {1}
    # the journal: one action row per idempotency key, none repeated
    keys = Counter((a.remedy, a.target) for a in journal_actions)
    assert keys
    assert max(keys.values()) == 1, keys


async def test_a_verification_holds_up_neither_its_lane_nor_the_run() -> None:
    """Two people refused at one lock: the first one's toggle never lands (CLP keeps denying).

    The two incidents share the lock, so they take turns in one lane; the second toggle is
    sent as soon as the first one's writes are out, not after its verification gives up, and
    the run lasts about one ``verify_timeout_seconds``.
    """
    clock = ManualClock(START)
    world = build_scenario("scale", seed=0, clock=clock, centers=4, door_logs=0)
    by_lock: dict[str, list[str]] = {}
    for u in sorted(world.users):
        for lock_id in booked(world, u)[0]:
            by_lock.setdefault(lock_id, []).append(u)
    lock_id, (stuck, other, *_) = next((k, us) for k, us in by_lock.items() if len(us) >= 2)
    world.inject("aca.clp_out_of_sync", user_id=stuck, lock_id=lock_id, sticky=True)
    world.inject("aca.clp_out_of_sync", user_id=other, lock_id=lock_id)
    for user_id in (stuck, other):
        world.present_at_lock(user_id, lock_id, "tag")
    app = create_app(world, api_faults=ApiFaults(0))
    timeout = 120.0
    agent = agent_on(app, clock, {"guards": {"verify_timeout_seconds": timeout}})
    try:
        report = await run_once(agent, "aca-rejections")
        toggles = {a.target: a for a in agent.journal.actions(remedy="toggle_access_matrix")}
    finally:
        await agent.clients.aclose()
        agent.journal.close()

    outcomes = {i.subject["user_id"]: i.outcome for i in report.incidents}
    assert outcomes == {stuck: "needs_human", other: "fixed"}
    first, second = toggles[f"{stuck}/{lock_id}"], toggles[f"{other}/{lock_id}"]
    assert first.finished_at is not None
    assert second.finished_at is not None
    # the second toggle was sent and verified while the first was still being re-read
    assert second.started_at < first.finished_at - timedelta(seconds=timeout / 2)
    assert second.finished_at < first.finished_at
    took = (report.finished_at - report.started_at).total_seconds()
    assert timeout <= took <= timeout + 10
