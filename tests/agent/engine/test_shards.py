"""A fleet's tick is one run per shard of centers: together they do what one run would.

With ``[fleet] shards = 3``, each run of a tick reads, decides and fixes only its shard's
centers, and the shards' runs go at the same time (their locks are their own). Against the
same world, the three runs together must find and fix exactly what one run over every
center does, each event decided once by the shard of its center, and a run cut off mid-way
is settled by its own shard's next run, never by another shard's. Both worlds run on a
:class:`SkipClock`: the runs' waits overlap as in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette
from support.scale import agent_on, booked

from doorfix.agent.engine.collect_aca import FEED
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import run_once
from doorfix.agent.engine.scopes import scopes_of
from doorfix.agent.engine.shards import Shard, all_shards, shard_of
from doorfix.clock import SkipClock
from doorfix.sandbox.api.app import create_app, sandbox_state
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario
from doorfix.sandbox.world.world import World

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
SHARDS = 3
PLAYBOOKS = ("aca-rejections", "door-logs")


def test_a_center_keeps_its_shard_and_the_shards_name_their_scopes() -> None:
    ids = [f"c-{n}" for n in range(200)]
    spread = Counter(shard_of(c, 4) for c in ids)
    assert set(spread) == {0, 1, 2, 3}
    assert min(spread.values()) >= 30  # a hash, not a run of one shard
    assert [shard_of(c, 4) for c in ids] == [shard_of(c, 4) for c in ids]
    assert shard_of(None, 4) == 0  # no center: shard 0's
    assert all(Shard(shard_of(c, 4), 4).holds(c) for c in ids)
    assert scopes_of("door-logs", shard=Shard(2, 8)) == ("cloud@2/8",)
    # a run over every center holds every shard's locks; one shard keeps the plain names
    assert scopes_of("aca-rejections", shards=2) == ("aca-clp@0/2", "aca-clp@1/2")
    assert scopes_of("diagnose", shards=1) == ("aca-clp", "cloud")
    assert Shard.parse("2/8") == Shard(2, 8)
    with pytest.raises(ValueError, match="not one of"):
        Shard.parse("8/8")


def _center_of(world: World, lock_id: str) -> str:
    return next(i.center_id for i in world.inventories.values() if lock_id in i.lock_ids)


def _refused(world: World, synced: list[tuple[str, str]]) -> dict[str, str]:
    """People refused at every center: two toggles at locks, a Sync Access, two cards at doors.

    The ACA refusals' event ids, each with its center; ``synced`` gets the (user, lock) of
    each refusal fixed by a Sync Access (only the next presentation proves it).
    """
    events: dict[str, str] = {}
    used: set[str] = set()
    at: Counter[tuple[str, str]] = Counter()
    for user_id in sorted(world.users):
        user = world.users[user_id]
        locks, doors = booked(world, user_id)
        free = [lock for lock in locks if lock not in used]
        if free and at[(user.center_id, "lock")] < 2:
            world.inject("aca.clp_out_of_sync", user_id=user_id, lock_id=free[0])
            event = world.present_at_lock(user_id, free[0], "tag").event_id
            assert event is not None
            events[event] = _center_of(world, free[0])
            used.add(free[0])
            at[(user.center_id, "lock")] += 1
        elif free and not at[(user.center_id, "iq")]:
            world.inject("aca.iq_out_of_sync", user_id=user_id, lock_id=free[0])
            event = world.present_at_lock(user_id, free[0], "tag").event_id
            assert event is not None
            events[event] = _center_of(world, free[0])
            used.add(free[0])
            synced.append((user_id, free[0]))
            at[(user.center_id, "iq")] += 1
        free_doors = [door for door in doors if door not in used]
        carded = bool(user.tags and user.cloud_personnel_id)
        if free_doors and carded and at[(user.center_id, "door")] < 2:
            world.inject("cloud.credential_unassigned", user_id=user_id, door_id=free_doors[0])
            world.present_at_door(free_doors[0], "card", user.tags[0].number)
            used.add(free_doors[0])
            at[(user.center_id, "door")] += 1
    return events


@contextlib.contextmanager
def _world(
    synced: list[tuple[str, str]] | None = None,
) -> Iterator[tuple[SkipClock, World, Starlette, dict[str, str]]]:
    clock = SkipClock(START)
    world = build_scenario("scale", seed=0, clock=clock, centers=6, door_logs=0)
    events = _refused(world, [] if synced is None else synced)
    yield clock, world, create_app(world, api_faults=ApiFaults(0)), events


def _found(reports: list[RunReport]) -> Counter[tuple[str, str, str]]:
    return Counter(
        (i.cause, i.outcome, ",".join(f"{k}={v}" for k, v in sorted(i.subject.items())))
        for r in reports
        for i in r.incidents
    )


def _calls(app: Starlette) -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
    return Counter(
        (m.operation, tuple(sorted(m.targets.items())))
        for m in sandbox_state(app).mutations.since(0)
    )


async def test_the_shards_runs_together_fix_what_one_run_over_every_center_fixes() -> None:
    with _world() as (clock, _, app, _):
        agent = agent_on(app, clock, {})
        try:
            whole = [await run_once(agent, playbook) for playbook in PLAYBOOKS]
        finally:
            await agent.clients.aclose()
            agent.journal.close()
        whole_calls = _calls(app)

    synced: list[tuple[str, str]] = []
    with _world(synced) as (clock, world, app, events):
        agent = agent_on(app, clock, {"fleet": {"shards": SHARDS}})
        try:
            parts: list[RunReport] = []
            for playbook in PLAYBOOKS:
                parts += await asyncio.gather(
                    *(run_once(agent, playbook, shard=s) for s in all_shards(SHARDS))
                )
            unseen = agent.journal.unseen(FEED, events)
            # the people fixed by a Sync Access get in now: the next tick proves each fix
            for user_id, lock_id in synced:
                world.present_at_lock(user_id, lock_id, "tag")
            again = await asyncio.gather(
                *(run_once(agent, p, shard=s) for p in PLAYBOOKS for s in all_shards(SHARDS))
            )
            last = await asyncio.gather(
                *(run_once(agent, p, shard=s) for p in PLAYBOOKS for s in all_shards(SHARDS))
            )
            cursors = {s: agent.journal.cursor(f"{FEED}@{s}") for s in all_shards(SHARDS)}
            proved = {
                i.incident_id: [
                    (h.outcome, agent.journal.run(h.run_id))
                    for h in agent.journal.history(i.incident_id)
                ]
                for r in parts
                for i in r.incidents
                if i.outcome == "pending_verification"
            }
        finally:
            await agent.clients.aclose()
            agent.journal.close()
        calls = _calls(app)

    found = _found(parts)
    assert found == _found(whole)
    assert found[next(k for k in found if k[0] == "aca.clp_out_of_sync")] == 1
    assert sum(n for (_, outcome, _), n in found.items() if outcome == "fixed") >= 16
    # each run worked its own shard's centers, and the work was spread over the shards
    worked = set()
    for report in parts:
        shard = Shard.parse(report.shard or "")
        assert all(shard.holds(i.subject.get("center_id")) for i in report.incidents), report.shard
        if report.incidents:
            worked.add(report.shard)
    assert len(worked) == SHARDS
    # the same calls, each once: no shard acted on another's center
    assert calls == whole_calls
    assert max(calls.values()) <= 2  # a toggle is off then on, one call each
    # every refusal decided once, by one shard: none in two incidents, none left unseen
    decided = [e for r in parts for i in r.incidents for e in i.event_ids]
    assert len(decided) == len(set(decided))
    assert unseen == set()
    # the shards' runs went at the same time: each ACA run was still verifying its toggles
    # when the last of them started
    aca = [r for r in parts if r.playbook == "aca-rejections"]
    assert max(r.started_at for r in aca) < min(r.finished_at for r in aca if r.finished_at)
    # each Sync Access was proved by the next presentation, once, by its own shard's run
    assert len(proved) == len(synced) >= SHARDS
    for incident_id, history in proved.items():
        fixed = [run for outcome, run in history if outcome == "fixed"]
        assert len(fixed) == 1, (incident_id, history)
        center = next(
            i.subject.get("center_id")
            for r in parts
            for i in r.incidents
            if i.incident_id == incident_id
        )
        assert fixed[0] is not None
        assert Shard.parse(fixed[0].shard or "").holds(center)
    assert Counter(i.outcome for r in again for i in r.incidents) == {"fixed": len(synced)}
    # each shard reads the feed on from its own position; the next tick finds nothing new
    assert all(cursors.values()), cursors
    assert [(r.incidents, r.repeats) for r in last] == [([], [])] * len(last)


async def test_a_shards_run_cut_off_is_settled_by_its_own_shards_next_run_only() -> None:
    """Shard A's run is cut off while its toggle's push is on its way (a crash, to the
    journal); shard B's run beside it leaves that action in flight and that run row alone;
    A's next run settles it by re-reading, without calling again."""
    with _world() as (clock, world, app, events):
        world.settings.push_delay_s = 60
        agent = agent_on(app, clock, {"fleet": {"shards": SHARDS}})
        try:
            shard_a, shard_b = _two_shards_with_refusals(events.values())
            sent = asyncio.Event()
            cut = asyncio.create_task(
                run_once(agent, "aca-rejections", shard=shard_a, on_writes_sent=sent.set)
            )
            await sent.wait()  # its toggles are sent, their pushes on their way
            cut.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cut
            left = {a.action_id for a in agent.journal.in_flight()}
            (cut_run,) = [r for r in agent.journal.runs() if r.status == "running"]
            world.settings.push_delay_s = 5
            other = await run_once(agent, "aca-rejections", shard=shard_b)
            still = {a.action_id for a in agent.journal.in_flight()}
            cut_after_other = agent.journal.run(cut_run.run_id)
            own = await run_once(agent, "aca-rejections", shard=shard_a)
            settled = [a for a in agent.journal.actions() if a.action_id in left]
            cut_after_own = agent.journal.run(cut_run.run_id)
        finally:
            await agent.clients.aclose()
            agent.journal.close()
        calls = _calls(app)

    assert left, "the cut-off run left its toggle in flight"
    assert other.shard == str(shard_b)
    assert other.incidents, "shard B had its own refusals to fix"
    assert left <= still, "another shard's run settled an action of shard A"
    assert cut_after_other is not None
    assert cut_after_other.status == "running"
    assert cut_after_other.shard == str(shard_a)
    assert own.shard == str(shard_a)
    assert len(settled) == len(left)
    assert all(a.status != "started" for a in settled)
    assert not any((a.detail or {}).get("sent_again") for a in settled)
    assert cut_after_own is not None
    assert cut_after_own.status == "interrupted"
    assert max(calls.values()) <= 2  # nothing called twice


async def test_the_shards_of_one_tick_share_its_caps() -> None:
    """``max_actions_per_run`` is the tick's: its shards' runs together act at most that
    often, the rest deferred, as one run over every center would."""
    cap = 4
    with _world() as (clock, _, app, _):
        agent = agent_on(
            app, clock, {"fleet": {"shards": SHARDS}, "guards": {"max_actions_per_run": cap}}
        )
        try:
            reports = await asyncio.gather(
                *(run_once(agent, "aca-rejections", shard=s, tick=1) for s in all_shards(SHARDS))
            )
            acted = [a for a in agent.journal.actions() if a.remedy != "escalate"]
        finally:
            await agent.clients.aclose()
            agent.journal.close()
    outcomes = Counter(i.outcome for r in reports for i in r.incidents)
    assert len(acted) == cap
    assert outcomes["deferred"] >= SHARDS, outcomes
    deferred = [i.reason for r in reports for i in r.incidents if i.outcome == "deferred"]
    assert all("max_actions_per_run reached" in reason for reason in deferred), deferred
    # more than one shard acted: the cap was shared, not spent by the first run alone
    assert (
        sum(1 for r in reports if r.counts.get("fixed") or r.counts.get("pending_verification")) > 1
    )


def _two_shards_with_refusals(centers: Iterable[str]) -> tuple[Shard, Shard]:
    """Two shards with ACA refusals in them: the first, in order, and another."""
    shards = sorted(
        {Shard(shard_of(center, SHARDS), SHARDS) for center in centers}, key=lambda s: s.index
    )
    assert len(shards) >= 2, "the refusals spread over two shards at least"
    return shards[0], shards[1]
