"""The /sandbox/ control API: truth, presentations, clock, world faults, reset, mutation log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sandbox_calls import active_pair, cloud_call, pick

from doorfix.clock import ManualClock, SystemClock
from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.scenarios.registry import build_scenario


async def _json(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_truth_summary(sandbox: InProcessSandbox, clock: ManualClock) -> None:
    body = await _json(await sandbox.control.get("/truth"))
    assert body["now"] == "2026-11-16T08:00:00Z"
    assert body["scenario"] == "demo"
    assert body["seed"] == 0
    assert isinstance(body["faults"], list)
    for fault in body["faults"]:
        assert isinstance(fault["present"], bool)
        assert isinstance(fault["fault_id"], str)
    assert isinstance(body["renewals"], dict)


async def test_truth_of_a_lock_and_of_a_door(sandbox: InProcessSandbox) -> None:
    world = sandbox.world
    user_id, lock_id = active_pair(sandbox.world)
    lock_truth = await _json(
        await sandbox.control.get("/truth/lock", params={"user_id": user_id, "lock_id": lock_id})
    )
    assert isinstance(lock_truth, dict)
    assert lock_truth
    person = pick(world.personnel.values())
    door = pick(world.doors.values(), lambda d: d.project_id == person.project_id)
    door_truth = await _json(
        await sandbox.control.get(
            "/truth/door", params={"door_id": door.door_id, "personnel_id": person.personnel_id}
        )
    )
    assert isinstance(door_truth, dict)
    await _json(
        await sandbox.control.get("/truth/lock", params={"user_id": "nope", "lock_id": lock_id}),
        404,
    )
    await _json(await sandbox.control.get("/truth/door", params={"door_id": door.door_id}), 400)


async def test_present_at_a_lock_reaches_the_feeds(sandbox: InProcessSandbox) -> None:
    world = sandbox.world
    user_id, lock_id = active_pair(world)
    before = len(world.aca_feed)
    decision = await _json(
        await sandbox.control.post(
            "/present", json={"user_id": user_id, "lock_id": lock_id, "via": "tag"}
        )
    )
    assert isinstance(decision["granted"], bool)
    if decision["event_recorded"] == "now":
        assert len(world.aca_feed) == before + 1
    await _json(
        await sandbox.control.post(
            "/present", json={"user_id": user_id, "lock_id": lock_id, "via": "x"}
        ),
        400,
    )


async def test_present_at_a_door_writes_a_door_log(sandbox: InProcessSandbox) -> None:
    person = pick(sandbox.world.personnel.values(), lambda p: bool(p.credentials))
    door = pick(sandbox.world.doors.values(), lambda d: d.project_id == person.project_id)
    cred = person.credentials[0]
    decision = await _json(
        await sandbox.control.post(
            "/present",
            json={
                "door_id": door.door_id,
                "credential_type": cred.type,
                "credential_value": cred.value,
            },
        )
    )
    assert isinstance(decision["log_id"], int)
    token = await sandbox.cloud_token()
    start = int(sandbox.state.now().timestamp())
    page = (
        await cloud_call(
            sandbox, token, "get_door_log", project_id=door.project_id, start_time=start
        )
    ).json()
    assert decision["log_id"] in [x["log_id"] for x in page["result"]["items"]]


async def test_present_the_maintenance_card(sandbox: InProcessSandbox) -> None:
    lock = pick(sandbox.world.locks.values())
    body = await _json(await sandbox.control.post("/present", json={"maintenance_card": lock.id}))
    assert body["maintenance_card"] == lock.id
    assert body["recorded"] in ("now", "late", "never")
    await _json(await sandbox.control.post("/present", json={"maintenance_card": "nope"}), 404)
    await _json(await sandbox.control.post("/present", json={}), 400)


async def test_clock_steps_a_manual_clock(sandbox: InProcessSandbox, clock: ManualClock) -> None:
    body = await _json(await sandbox.control.post("/clock", json={"advance_seconds": 90}))
    assert body == {"now": "2026-11-16T08:01:30Z"}
    body = await _json(await sandbox.control.post("/clock", json={"set": "2026-11-17T00:00:00Z"}))
    assert body == {"now": "2026-11-17T00:00:00Z"}
    assert clock.now() == datetime(2026, 11, 17, tzinfo=UTC)
    await _json(
        await sandbox.control.post("/clock", json={"set": "2026-11-16T00:00:00Z"}), 400
    )  # backwards
    await _json(await sandbox.control.post("/clock", json={"advance_seconds": "soon"}), 400)


async def test_clock_of_real_time_is_409() -> None:
    world = build_scenario("demo", seed=0, clock=SystemClock())
    async with InProcessSandbox.create(world) as box:
        await _json(await box.control.post("/clock", json={"advance_seconds": 1}), 409)


async def test_world_faults_inject_list_clear(sandbox: InProcessSandbox) -> None:
    user_id, lock_id = active_pair(sandbox.world)
    before = await _json(await sandbox.control.get("/faults"))
    created = await _json(
        await sandbox.control.post(
            "/faults",
            json={
                "kind": "aca.access_disabled",
                "params": {"user_id": user_id, "lock_id": lock_id},
            },
        ),
        201,
    )
    fault_id = created["fault_id"]
    after = await _json(await sandbox.control.get("/faults"))
    assert len(after["faults"]) == len(before["faults"]) + 1
    assert any(f["fault_id"] == fault_id and f["present"] is True for f in after["faults"])
    assert (await sandbox.control.delete(f"/faults/{fault_id}")).status_code == 204
    await _json(await sandbox.control.delete("/faults/nope"), 404)
    await _json(
        await sandbox.control.post("/faults", json={"kind": "no.such.kind", "params": {}}), 400
    )


async def test_reset_rebuilds_and_clears(sandbox: InProcessSandbox, clock: ManualClock) -> None:
    user_id, lock_id = active_pair(sandbox.world)
    await sandbox.aca.put(
        f"/api/v1/access_matrix/{user_id}/{lock_id}",
        json={"enabled": False},
        headers=sandbox.aca_headers(),
    )
    sandbox.faults.add("503", system="aca")
    clock.advance(3600)
    old_world = sandbox.world
    body = await _json(await sandbox.control.post("/reset", json={"scenario": "demo", "seed": 3}))
    assert body["seed"] == 3
    assert body["now"] == "2026-11-16T09:00:00Z"
    assert sandbox.world is not old_world
    assert sandbox.world.clock is clock
    assert (await _json(await sandbox.control.get("/mutations")))["mutations"] == []
    assert sandbox.faults.rules() == []
    assert (
        await sandbox.aca.get("/api/v1/centers", headers=sandbox.aca_headers())
    ).status_code == 200
    await _json(await sandbox.control.post("/reset", json={"scenario": "no-such-scenario"}), 400)


@pytest.mark.parametrize("path", ["/truth", "/faults", "/api-faults", "/mutations"])
async def test_control_reads_need_no_credentials(sandbox: InProcessSandbox, path: str) -> None:
    assert (await sandbox.control.get(path)).status_code == 200
