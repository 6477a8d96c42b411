"""Writes whose answer is lost (the connection dropped after the write took effect), and writes
refused half-way: each is settled without doing it twice, and never leaves a user locked out.
"""

from __future__ import annotations

import httpx
import respx
from faultkit import COMMANDS, Forward, World, duplicates, every, make_world, toggles

#: the cloud writes of the demo's remedies, and the cause each one fixes
CLOUD_WRITES = {
    "renew_door_license": "cloud.license_inactive",
    "add_personnel_credential": "cloud.credential_unassigned",
    "create_visitor_temp_key": "cloud.visitor_expired",
    "add_access_group_member": "cloud.no_access_group",
    "set_holiday_working_hours": "cloud.holiday_restriction",
}
MATRIX = r"^/aca/api/v1/access_matrix/[^/]+/[^/]+$"


def clp_pair(w: World) -> tuple[str, str]:
    ids = w.manifest["aca.clp_out_of_sync"]
    return ids["user_id"], ids["lock_id"]


async def test_cloud_writes_whose_answers_are_lost_land_once_and_are_fixed(world: World) -> None:
    for endpoint in CLOUD_WRITES:
        world.faults.add("drop", system="cloud", endpoint=endpoint, after=True)
    report = await world.run("door-logs")

    fixed = {i.cause for i in report.incidents if i.outcome == "fixed"}
    assert fixed == set(CLOUD_WRITES.values())
    assert {m.operation for m in world.mutations() if m.dropped} == set(CLOUD_WRITES)
    assert duplicates(world.mutations()) == []
    # the next runs see the doors open: nothing is sent again
    before = len(world.mutations())
    world.clock.advance(every(10))
    await world.run("door-logs")
    assert len(world.mutations()) == before


async def test_a_disable_whose_answer_is_lost_then_refused_still_ends_enabled(
    world: World,
) -> None:
    # the toggle's disable lands but its answer is lost, and every repeat is rate limited:
    # the user must not be left without access, and the toggle must still finish
    world.faults.add("drop", system="aca", endpoint="access_matrix", after=True)
    world.faults.add("429", system="aca", endpoint="access_matrix", count=4, retry_after=1)
    report = await world.run("aca-rejections")

    user, lock = clp_pair(world)
    assert toggles(world.mutations())[(user, lock)] == [False, True]
    (incident,) = [i for i in report.incidents if i.cause == "aca.clp_out_of_sync"]
    assert incident.outcome == "fixed"
    assert world.present()["aca.clp_out_of_sync"] is False
    # the next presentations are not refused as "access disabled"
    world.clock.advance(every(30))
    later = await world.run("aca-rejections")
    assert [i.cause for i in later.incidents if i.subject.get("user_id") == user] == []


async def test_an_enable_that_keeps_failing_tells_support_to_switch_the_access_back_on() -> None:
    def refuse_enables(router: respx.Router, forward: Forward) -> None:
        router.put(path__regex=MATRIX, json__enabled=True).respond(503, text="unavailable")

    w = make_world(routes=refuse_enables)
    try:
        report = await w.run("aca-rejections")
        user, lock = clp_pair(w)
        (incident,) = [i for i in report.incidents if i.cause == "aca.clp_out_of_sync"]
        assert incident.outcome == "failed"
        assert [a.status for a in incident.actions] == ["failed"]
        assert toggles(w.mutations())[(user, lock)] == [False]  # the one enable never landed
        support = [s["text"] for s in incident.steps if s["who"] == "support"]
        assert any(user in text and lock in text and "back on" in text for text in support)
    finally:
        await w.aclose()


async def test_a_sync_access_whose_answer_is_lost_is_proved_by_the_next_presentation(
    world: World,
) -> None:
    world.faults.add("drop", system="clp", endpoint="sync_access", after=True)
    first = await world.run("aca-rejections")
    (pending,) = [i for i in first.incidents if i.cause == "aca.iq_out_of_sync"]
    assert pending.outcome == "pending_verification"
    assert "sync_access" in pending.actions[0].detail

    world.clock.advance(every(15))  # the person tries again and gets in
    second = await world.run("aca-rejections")
    assert [i.outcome for i in second.incidents if i.incident_id == pending.incident_id] == [
        "fixed"
    ]
    assert [m.operation for m in world.landed() if m.operation == "sync_access"] == ["sync_access"]


async def test_an_unknown_write_whose_reread_fails_stays_in_flight_and_is_settled_later() -> None:
    # the credential lands, its answer is lost, and re-reading the person then fails too:
    # doorfix cannot know, so it must neither claim a fix nor assign the card a second time;
    # the action stays in flight and the next run's re-read finds the card: fixed
    refusals = [0]  # re-reads still to refuse: every attempt of the one re-read

    def routes(router: respx.Router, forward: Forward) -> None:
        async def write(request: httpx.Request) -> httpx.Response:
            refusals[0] = 5
            return await forward(request)

        async def reread(request: httpx.Request) -> httpx.Response:
            if refusals[0]:
                refusals[0] -= 1
                return httpx.Response(503, text="unavailable")
            return await forward(request)

        cloud = "/cloud" + COMMANDS
        router.post(path=cloud, json__command="add_personnel_credential").mock(side_effect=write)
        router.post(path=cloud, json__command="get_personnel_detail").mock(side_effect=reread)

    # one incident at a time: the refused re-reads are counted across every incident's calls
    w = make_world(routes=routes, engine={"max_concurrent_incidents": 1})
    try:
        w.faults.add("drop", system="cloud", endpoint="add_personnel_credential", after=True)
        report = await w.run("door-logs")
        (incident,) = [
            i for i in report.incidents if i.cause == "cloud.credential_unassigned" and i.actions
        ]
        assert incident.outcome == "deferred"
        (action,) = incident.actions
        assert action.status == "unknown"
        assert "add_personnel_credential" in action.detail
        assert "left in flight" in action.detail
        [flying] = w.agent.journal.in_flight()
        assert flying.remedy == "assign_credential"

        await w.run("door-logs")  # the re-read now answers: the card is there
        assert w.agent.journal.in_flight() == []
        settled = w.agent.journal.incident(incident.incident_id)
        assert settled is not None
        assert (settled.open, settled.outcome) == (False, "fixed")
        landed = [m for m in w.landed() if m.operation == "add_personnel_credential"]
        assert len(landed) == 1
    finally:
        await w.aclose()


async def test_a_write_that_landed_but_cannot_be_read_back_waits_and_is_settled_next_run() -> None:
    # the credential is assigned and answered; only the verification's re-read fails (every
    # attempt): the change was made, so the incident is neither failed nor claimed fixed
    refusing = [False]

    def routes(router: respx.Router, forward: Forward) -> None:
        async def write(request: httpx.Request) -> httpx.Response:
            refusing[0] = True
            return await forward(request)

        async def reread(request: httpx.Request) -> httpx.Response:
            if refusing[0]:
                return httpx.Response(503, text="unavailable")
            return await forward(request)

        cloud = "/cloud" + COMMANDS
        router.post(path=cloud, json__command="add_personnel_credential").mock(side_effect=write)
        router.post(path=cloud, json__command="get_personnel_detail").mock(side_effect=reread)

    w = make_world(routes=routes, engine={"max_concurrent_incidents": 1})
    try:
        report = await w.run("door-logs")
        (incident,) = [
            i for i in report.incidents if i.cause == "cloud.credential_unassigned" and i.actions
        ]
        assert incident.outcome == "pending_verification"
        (action,) = incident.actions
        assert action.status == "unknown"
        assert "get_personnel_detail" in action.detail
        assert "left in flight" in action.detail
        # the group membership's re-read is the same person read: it waits the same way
        flying = sorted(a.remedy for a in w.agent.journal.in_flight())
        assert flying == ["add_to_access_group", "assign_credential"]

        refusing[0] = False
        w.clock.advance(every(10))
        await w.run("door-logs")  # the re-read answers now: the card is there
        assert w.agent.journal.in_flight() == []
        settled = w.agent.journal.incident(incident.incident_id)
        assert settled is not None
        assert (settled.open, settled.outcome) == (False, "fixed")
        notes = [h.note or "" for h in w.agent.journal.history(incident.incident_id)]
        assert "could not read back" in notes[-1]
        assert len([m for m in w.landed() if m.operation == "add_personnel_credential"]) == 1
    finally:
        await w.aclose()


async def test_a_write_answered_with_server_errors_after_it_landed_is_settled_not_failed() -> None:
    # every attempt to add the member lands, and every answer is a 500: the server may have
    # acted, so doorfix neither reports a failure nor claims a fix; the next run re-reads
    answering = [True]

    def routes(router: respx.Router, forward: Forward) -> None:
        async def write(request: httpx.Request) -> httpx.Response:
            landed = await forward(request)
            if not answering[0]:
                return landed
            return httpx.Response(
                500, json={"code": "internal_error", "message": "Internal server error"}
            )

        cloud = "/cloud" + COMMANDS
        router.post(path=cloud, json__command="add_access_group_member").mock(side_effect=write)

    w = make_world(routes=routes)
    try:
        report = await w.run("door-logs")
        (incident,) = [i for i in report.incidents if i.cause == "cloud.no_access_group"]
        assert incident.outcome == "deferred"
        assert [a.status for a in incident.actions] == ["unknown"]
        assert [a.remedy for a in w.agent.journal.in_flight()] == ["add_to_access_group"]
        assert w.present()["cloud.no_access_group"] is False  # it did land

        answering[0] = False
        w.clock.advance(every(10))
        await w.run("door-logs")
        settled = w.agent.journal.incident(incident.incident_id)
        assert settled is not None
        assert (settled.open, settled.outcome) == (False, "fixed")
        assert w.agent.journal.in_flight() == []
    finally:
        await w.aclose()


async def test_cloud_writes_answered_with_garbage_after_they_landed_are_settled_not_failed() -> (
    None
):
    # every cloud write takes effect and is answered 200 with a body that is not the contract:
    # the write may have landed, so no remedy is reported failed or sent again; the next run's
    # re-reads find each change and settle it fixed
    garbling = [True]

    def routes(router: respx.Router, forward: Forward) -> None:
        async def write(request: httpx.Request) -> httpx.Response:
            landed = await forward(request)
            return httpx.Response(200, text="<html>gateway</html>") if garbling[0] else landed

        for command in CLOUD_WRITES:
            router.post(path="/cloud" + COMMANDS, json__command=command).mock(side_effect=write)

    w = make_world(routes=routes)
    try:
        report = await w.run("door-logs")
        ours = [i for i in report.incidents if i.cause in CLOUD_WRITES.values() and i.actions]
        assert {i.cause for i in ours} == set(CLOUD_WRITES.values())
        assert {i.outcome for i in ours} == {"deferred"}
        assert {a.status for i in ours for a in i.actions} == {"unknown"}

        garbling[0] = False
        w.clock.advance(every(10))
        await w.run("door-logs")
        assert w.agent.journal.in_flight() == []
        for incident in ours:
            settled = w.agent.journal.incident(incident.incident_id)
            assert settled is not None
            assert (settled.open, settled.outcome) == (False, "fixed"), incident.cause
        assert duplicates(w.mutations()) == []
        assert not any(w.present()[cause] for cause in CLOUD_WRITES.values())
    finally:
        await w.aclose()
