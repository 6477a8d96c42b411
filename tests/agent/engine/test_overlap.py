"""Runs of one playbook overlap in the first one's verifications' tail, and stay apart.

Once every write of a run is sent, the next run of its scopes may start (the daemon starts
its next tick's run there): a refusal that comes while a toggle's push is on its way to CLP is
fixed at once, not after that verification. The rules of :mod:`doorfix.agent.journal.live`
keep the two runs apart: the second run settles nothing of the first, a refusal of the
incident the first is verifying joins it, and the feed moves only past what a run decided
itself. Both worlds run on a :class:`SkipClock`: the runs' waits overlap as in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, pairwise

import pytest
from starlette.applications import Starlette
from support.scale import agent_on, pick

from doorfix.agent.engine.collect_aca import FEED
from doorfix.agent.engine.execute import poll_waits
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import run_once
from doorfix.agent.engine.state import Agent
from doorfix.clock import SkipClock
from doorfix.sandbox.api.app import create_app, sandbox_state
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


@dataclass
class Scene:
    """A's toggle on its way to CLP (about a minute), and what happened while it was."""

    clock: SkipClock
    app: Starlette
    agent: Agent
    a: str
    b: str
    lock_a: str
    #: the first run, still verifying A's toggle when the second one ended
    first: asyncio.Task[RunReport]
    #: the second run, started once the first's writes were sent
    second: RunReport
    #: A's refusal, A's second try while the toggle was on its way, B's refusal meanwhile
    first_event: str
    again: str
    b_event: str


def between_rereads(*, after: float) -> float:
    """A push delay landing halfway between two re-reads of a verification, ``after`` s on.

    So a moment exists where CLP grants while the verification has not yet re-read.
    """
    times = list(accumulate(poll_waits(120)))
    return next((t + u) / 2 for t, u in pairwise(times) if t >= after and u - t >= 2)


@contextlib.asynccontextmanager
async def a_toggle_on_its_way() -> AsyncIterator[Scene]:
    """A refused; the run toggles A (the push takes a minute); once its writes are sent, A
    tries again and B is refused at their own lock (pushes of 5 s now), and the next run goes."""
    clock = SkipClock(START)
    world = build_scenario("scale", seed=0, clock=clock, centers=4, door_logs=0)
    (a, lock_a), (b, lock_b) = pick(world)["person"]
    world.settings.push_delay_s = between_rereads(after=55)
    world.inject("aca.clp_out_of_sync", user_id=a, lock_id=lock_a)
    first_event = world.present_at_lock(a, lock_a, "tag").event_id
    app = create_app(world, api_faults=ApiFaults(0))
    agent = agent_on(app, clock, {"guards": {"verify_timeout_seconds": 120}})
    try:
        sent = asyncio.Event()
        first = asyncio.create_task(run_once(agent, "aca-rejections", on_writes_sent=sent.set))
        await sent.wait()
        assert not first.done()
        world.settings.push_delay_s = 5
        again = world.present_at_lock(a, lock_a, "tag").event_id
        world.inject("aca.clp_out_of_sync", user_id=b, lock_id=lock_b)
        b_event = world.present_at_lock(b, lock_b, "tag").event_id
        second = await run_once(agent, "aca-rejections")
        yield Scene(clock, app, agent, a, b, lock_a, first, second, first_event, again, b_event)
    finally:
        await agent.clients.aclose()
        agent.journal.close()


def matrix_calls(scene: Scene) -> Counter[tuple[str, str | None]]:
    """(operation, user) of every write the sandbox accepted."""
    return Counter(
        (m.operation, m.targets.get("user_id")) for m in sandbox_state(scene.app).mutations.since(0)
    )


async def test_a_refusal_during_a_verification_is_fixed_by_the_next_run_beside_it() -> None:
    async with a_toggle_on_its_way() as scene:
        second, first, journal, a, b = (
            scene.second,
            scene.first,
            scene.agent.journal,
            scene.a,
            scene.b,
        )
        assert not first.done(), "B waited for A's verification"
        report = await first
        third = await run_once(scene.agent, "aca-rejections")
        (toggle_a,) = journal.actions(remedy="toggle_access_matrix", target=f"{a}/{scene.lock_a}")
        incident_a = journal.incident(report.incidents[0].incident_id)
        history_a = journal.history(report.incidents[0].incident_id)
        unseen = journal.unseen(FEED, [scene.first_event, scene.again, scene.b_event])
        calls = matrix_calls(scene)

    # B is fixed by the second run, which ended before the first's verification did
    assert [(i.subject["user_id"], i.outcome) for i in second.incidents] == [(b, "fixed")]
    assert second.finished_at is not None
    assert report.finished_at is not None
    assert second.finished_at < report.finished_at
    # A's new refusal joined the incident being verified: listed, not planned again
    assert [(r.subject["user_id"], r.joined_incident_id) for r in second.repeats] == [
        (a, report.incidents[0].incident_id)
    ]
    assert second.repeats[0].outcome == "in progress"
    # only the new event: the one the first run is deciding was not read as new again
    assert second.repeats[0].event_ids == [scene.again]
    assert [(i.subject["user_id"], i.outcome) for i in report.incidents] == [(a, "fixed")]
    assert incident_a is not None
    assert sorted(incident_a.event_ids) == sorted([scene.first_event, scene.again])
    # the second run settled nothing of the first: one toggle, decided once, by its own run
    assert toggle_a.status == "succeeded"
    assert not (toggle_a.detail or {}).get("sent_again")
    assert [(h.outcome, h.run_id) for h in history_a] == [("fixed", report.run_id)]
    # every event decided, each once; the third run, reading again from where the first
    # left the feed, finds nothing new
    assert unseen == set()
    assert third.incidents == []
    assert third.repeats == []
    assert calls == Counter({("access_matrix", a): 2, ("access_matrix", b): 2})


async def test_a_refusal_before_the_iq_has_the_toggle_joins_the_fix_being_verified() -> None:
    """CLP has A's toggle, the lock's IQ not yet, and the first run is still re-reading it.

    A's try now is refused for what would be diagnosed as the IQ out of sync: the next run
    leaves it to the toggle being verified (a repeat, in progress), sends no Sync Access, and
    the IQ's propagation lets A in.
    """
    async with a_toggle_on_its_way() as scene:
        world, clock, journal = sandbox_state(scene.app).world, scene.clock, scene.agent.journal
        a, b, lock_a = scene.a, scene.b, scene.lock_a
        site, person = world.locks[lock_a].site_id, world.users[a].clp_user_id
        deadline = clock.now() + timedelta(seconds=120)
        while world.larry_access(site, person, lock_a).status != "granted":
            assert clock.now() < deadline, "ACA's push of A's toggle never reached CLP"
            await clock.sleep(0.5)
        retry = world.present_at_lock(a, lock_a, "tag")
        verifying = not scene.first.done()
        third = await run_once(scene.agent, "aca-rejections")
        report = await scene.first
        await clock.sleep(world.settings.propagation_delay_s)
        later = world.present_at_lock(a, lock_a, "tag")
        a_at_lock = journal.incidents(since=START, subject={"user_id": a, "lock_id": lock_a})
        syncs = journal.actions(remedy="sync_access")
        calls = matrix_calls(scene)

    # the moment: CLP grants A the lock, its IQ does not yet, the first run still verifying
    assert not retry.granted
    assert retry.layers["cause"] == "aca.iq_out_of_sync"
    assert verifying
    # the refusal joined the toggle's incident: nothing diagnosed or planned for it
    assert third.incidents == []
    (incident_a,) = report.incidents
    assert [(r.cause, r.joined_incident_id, r.outcome) for r in third.repeats] == [
        ("aca.clp_out_of_sync", incident_a.incident_id, "in progress")
    ]
    assert retry.event_id in third.repeats[0].event_ids
    assert syncs == []
    assert calls == Counter({("access_matrix", a): 2, ("access_matrix", b): 2})
    # one incident for A at the lock, the toggle's, fixed; and A gets in
    assert [(i.incident_id, i.outcome) for i in a_at_lock] == [(incident_a.incident_id, "fixed")]
    assert retry.event_id in a_at_lock[0].event_ids
    assert later.granted


@pytest.mark.parametrize("landed", [True, False], ids=["push-landed", "push-not-landed"])
async def test_a_run_cut_off_in_its_tail_leaves_its_refusals_to_the_next_runs(
    landed: bool,
) -> None:
    """The first run is cut off while A's toggle is being re-read (as a crash would leave it).

    The second run, which left A's events to it, did not move the feed past them. The runs
    after settle the toggle by re-reading it: if ACA's push has landed, the toggle held and
    A's incident is fixed from it; if not, the toggle never took effect, the incident stays
    undecided and A's events, read again, are diagnosed and fixed. Nothing lost, nothing in
    two incidents.
    """
    async with a_toggle_on_its_way() as scene:
        journal, a, b = scene.agent.journal, scene.a, scene.b
        scene.first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scene.first
        undecided = [i.subject.get("user_id") for i in journal.undecided()]
        if landed:
            await scene.clock.sleep(90)
        later = []
        for _ in range(16):  # five minutes apart: a toggle sent again waits for its cool-down
            later.append(await run_once(scene.agent, "aca-rejections"))
            if not journal.open_incidents():
                break
            await scene.clock.sleep(300)
        unseen = journal.unseen(FEED, [scene.first_event, scene.again, scene.b_event])
        incidents = journal.incidents(since=START)
        calls = matrix_calls(scene)

    assert [(i.subject["user_id"], i.outcome) for i in scene.second.incidents] == [(b, "fixed")]
    assert undecided == [a]
    assert unseen == set()
    # each event in exactly one incident, every incident decided
    owners = Counter(e for i in incidents for e in i.event_ids)
    assert owners == Counter({scene.first_event: 1, scene.again: 1, scene.b_event: 1})
    assert all(i.outcome for i in incidents), incidents
    assert calls[("access_matrix", b)] == 2
    if landed:
        # the toggle held: A's incident is fixed from it, nothing sent again
        a_incidents = [i for i in incidents if i.subject.get("user_id") == a]
        assert [i.outcome for i in a_incidents] == ["fixed"], later
        assert calls[("access_matrix", a)] == 2
