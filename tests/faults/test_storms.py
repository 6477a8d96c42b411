"""API storms: 5xx, 429 bursts, dropped connections and lost answers, expiring tokens, feeds
that repeat and deliver late. After the storm, everything doorfix can fix is fixed, once.

Every test runs the demo in process on a manual clock, so retries and Retry-After waits cost
no real time. People retry every 10 minutes; doorfix runs every 10 minutes too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from faultkit import (
    COMMANDS,
    Forward,
    World,
    duplicates,
    every,
    make_world,
    toggles,
)
from support.demo import REMEDIABLE

from doorfix.errors import System

#: the cloud writes of the demo's remedies
CLOUD_WRITES = (
    "renew_door_license",
    "add_personnel_credential",
    "create_visitor_temp_key",
    "add_access_group_member",
    "set_holiday_working_hours",
)


#: a CLP read of aca-rejections' event path (its CLP entries are read only to settle an
#: incident awaiting verification)
CLP_LOCKS = r"^/clp/v1\.2/sites/[^/]+/locks$"


def expire_tokens_mid_run(
    world: list[World], *, clp_path: str = r"^/clp/v1\.1/sites/[^/]+/entries$"
) -> Callable[[respx.Router, Forward], None]:
    """Routes that revoke every cloud and CLP token in the middle of a run, once each.

    The CLP tokens go at the first request to ``clp_path`` (CLP entries by default).
    """
    done: set[str] = set()

    def routes(router: respx.Router, forward: Forward) -> None:
        def revoking(system: System) -> Callable[[httpx.Request], Any]:
            async def side_effect(request: httpx.Request) -> httpx.Response:
                if system not in done:
                    done.add(system)
                    world[0].faults.expire_tokens(system)  # this very request's token too
                return await forward(request)

            return side_effect

        router.post(path="/cloud" + COMMANDS, json__command="get_door_list").mock(
            side_effect=revoking("cloud")
        )
        router.get(path__regex=clp_path).mock(side_effect=revoking("clp"))

    return routes


async def run_storm(seed: int) -> World:
    """An hour of runs through a storm on every system, then calm until all is quiet."""
    random.seed(seed)  # the agent's retry jitter: same seed, same waits, same world
    holder: list[World] = []
    w = make_world(seed=seed, routes=expire_tokens_mid_run(holder))
    holder.append(w)
    world = w.state.world
    clp = w.manifest["aca.clp_out_of_sync"]
    world.inject("feed.late_events", lock_id=clp["lock_id"], hours=2.0)
    world.inject("feed.duplicate_events", every=3, count=2)
    w.storm(p_5xx=0.3, p_429=0.05, retry_after=2, p_drop=0.03, p_slow=0.02, slow_seconds=0.001)
    for endpoint in CLOUD_WRITES:
        w.faults.add("drop", system="cloud", endpoint=endpoint, after=True)
    w.faults.add("drop", system="aca", endpoint="access_matrix", after=True, count=2)
    w.faults.add("drop", system="clp", endpoint="sync_access", after=True)
    w.faults.add("429", system="aca", endpoint="events", count=2, retry_after=5)
    w.faults.add("duplicate_events", system="aca", endpoint="events", count=3)
    for n in range(6):
        if n == 3:  # tokens also expire between runs
            w.faults.expire_tokens("cloud")
            w.faults.expire_tokens("clp")
        await w.attempt_all()
        w.clock.advance(every(10))
    w.calm()
    for _ in range(2):  # the storm has passed: one or two more runs
        for outcome in await w.attempt_all():
            assert outcome.failed is None, outcome.failed
        w.clock.advance(every(10))
    return w


def subject_of(manifest: dict[str, dict[str, Any]], kind: str) -> dict[str, str]:
    """The ids an incident about the fault ``kind`` names in its subject."""
    ids = manifest[kind]
    keys = ("user_id", "lock_id") if kind.startswith("aca.") else ("door_id",)
    return {k: ids[k] for k in keys}


#: seeds 2, 5 and 7 once found a write whose re-read failed left ``failed`` (it landed) and a
#: refusal read after the license-renewal playbook fixed its door left a new ``no_fault``
@pytest.mark.parametrize("seed", [0, 2, 5, 7])
async def test_after_a_storm_every_fault_with_a_remedy_is_fixed_and_nothing_twice(
    seed: int,
) -> None:
    w = await run_storm(seed=seed)
    try:
        # the storm was real: calls failed and were retried (whether a run failed as a whole
        # depends on where the seed's failures fall: a read's retries often absorb them)
        clients = (w.agent.clients.cloud, w.agent.clients.aca, w.agent.clients.clp)
        assert sum(c.stats.errors for c in clients) > 10
        assert sum(c.stats.retries for c in clients) > 20
        # the world: every fault a remedy clears is gone
        present = w.present()
        assert sorted(k for k in REMEDIABLE if present[k]) == []
        # the journal: the latest incident about each such fault ended fixed; none is left
        # failed, waiting or open
        journal = w.agent.journal
        for kind in sorted(REMEDIABLE):
            latest = journal.incidents(subject=subject_of(w.manifest, kind), limit=1)
            assert [(i.cause, i.outcome) for i in latest] == [(kind, "fixed")], kind
        assert [i.cause for i in journal.open_incidents() if i.cause in REMEDIABLE] == []
        # the mutation log: nothing done twice, no user left disabled
        assert duplicates(w.mutations()) == []
        clp = w.manifest["aca.clp_out_of_sync"]
        assert toggles(w.mutations())[(clp["user_id"], clp["lock_id"])] == [False, True]
        syncs = [m for m in w.landed() if m.operation == "sync_access"]
        assert len(syncs) == 1
        renewed = [m.targets["door_id"] for m in w.landed() if m.operation == "renew_door_license"]
        assert sorted(renewed) == sorted(
            {
                w.manifest["cloud.license_inactive"]["door_id"],
                w.manifest["license.expiring_soon"]["door_id"],
            }
        )
    finally:
        await w.aclose()


async def test_same_seed_same_storm_same_result() -> None:
    def fingerprint(w: World) -> tuple[Any, ...]:
        mutations = [
            (m.at, m.operation, sorted(m.targets.items()), m.outcome, m.dropped)
            for m in w.mutations()
        ]
        runs = [(o.playbook, o.at, o.result.counts, str(o.failed)) for o in w.history]
        return mutations, runs

    first, second = await run_storm(seed=7), await run_storm(seed=7)
    try:
        assert fingerprint(first) == fingerprint(second)
        other = await run_storm(seed=8)
        try:
            assert fingerprint(other) != fingerprint(first)  # the seed does pick the faults
        finally:
            await other.aclose()
    finally:
        await first.aclose()
        await second.aclose()


async def test_tokens_revoked_in_the_middle_of_a_run_cost_one_new_token_each() -> None:
    holder: list[World] = []
    w = make_world(routes=expire_tokens_mid_run(holder, clp_path=CLP_LOCKS))
    holder.append(w)
    try:
        reports = [await w.run(p) for p in ("door-logs", "aca-rejections")]
        assert [r.error for r in reports] == [None, None]
        assert {i.cause for i in reports[0].incidents if i.outcome == "fixed"} >= {
            "cloud.credential_unassigned",
            "cloud.license_inactive",
        }
        # one token at the start, one more after the revocation: no loop of refreshes
        assert w.agent.clients.cloud.stats.token_fetches == 2
        assert w.agent.clients.clp.stats.token_fetches == 2
    finally:
        await w.aclose()


async def test_a_429_burst_is_waited_out_as_the_server_asks(world: World) -> None:
    world.faults.add("429", system="aca", endpoint="events", count=3, retry_after=15)
    started = world.clock.now()
    report = await world.run("aca-rejections")
    assert report.error is None
    assert world.agent.clients.aca.stats.by_endpoint["events"] >= 4
    # three refusals, each answered with Retry-After: 15 s, each honoured before the repeat
    assert (world.clock.now() - started).total_seconds() >= 45


async def test_repeated_and_hours_late_events_never_fix_twice(world: World) -> None:
    user, lock = (world.manifest["aca.clp_out_of_sync"][k] for k in ("user_id", "lock_id"))
    world.state.world.inject("feed.late_events", lock_id=lock, hours=2.0)
    world.state.world.inject("feed.duplicate_events", every=2, count=3)
    world.faults.add("duplicate_events", system="aca", endpoint="events", count=20)
    # the person's refusals of the next half hour reach ACA only two hours later
    world.clock.advance(every(30))
    first = await world.run("aca-rejections")
    (fixed,) = [i for i in first.incidents if i.subject.get("user_id") == user]
    assert fixed.outcome == "fixed"
    for _ in range(18):  # three hours: the late refusals arrive, the feed keeps repeating
        world.clock.advance(every(10))
        later = await world.run("aca-rejections")
        assert [i for i in later.incidents if i.subject.get("user_id") == user] == []

    fixed_at = first.started_at
    late = [
        e
        for e in world.state.world.aca_feed
        if e.user_id == user
        and e.type == "tag_rejected"
        and e.occurred_at < fixed_at
        and e.recorded_at - e.occurred_at >= timedelta(hours=2)
    ]
    assert len(late) >= 2  # refusals from before the fix did arrive, hours late...
    assert toggles(world.mutations())[(user, lock)] == [False, True]  # ...and changed nothing
    assert duplicates(world.mutations()) == []
    incident = world.agent.journal.incident(fixed.incident_id)
    assert incident is not None
    assert len(set(incident.event_ids)) == len(incident.event_ids)  # each event once
    # ...and the late refusals are kept with the fix they came before
    assert {e.id for e in late} <= set(incident.event_ids)


async def test_refusals_read_after_another_playbook_fixed_their_door_join_that_fix(
    world: World,
) -> None:
    # the license-renewal playbook renews the door before door-logs reads its refusals (a feed
    # late, or a storm that kept door-logs failing): the refusals are that fix's, not a new
    # "no fault" incident that would hide who fixed the door
    door = world.manifest["cloud.license_inactive"]["door_id"]
    renewal = await world.run("license-renewal")
    (fixed,) = [i for i in renewal.incidents if i.subject.get("door_id") == door]
    assert fixed.outcome == "fixed"

    world.clock.advance(every(10))
    logs = await world.run("door-logs")
    assert [i for i in logs.incidents if i.subject.get("door_id") == door] == []
    (joined,) = [r for r in logs.repeats if r.subject.get("door_id") == door]
    assert (joined.joined_incident_id, joined.outcome) == (fixed.incident_id, "fixed")
    incident = world.agent.journal.incident(fixed.incident_id)
    assert incident is not None
    assert incident.outcome == "fixed"
    assert set(joined.event_ids) <= set(incident.event_ids)
    assert [m.operation for m in world.landed()].count("renew_door_license") == 2  # both doors
