"""The mutation log: every write request that reached the world, in order, and nothing else."""

from __future__ import annotations

from typing import Any

from sandbox_calls import active_pair, bearer, cloud_call, cloud_result, pick

from doorfix.clock import ManualClock
from doorfix.sandbox.api.transport import InProcessSandbox


async def _log(sb: InProcessSandbox, since: int = 0) -> list[dict[str, Any]]:
    response = await sb.control.get("/mutations", params={"since": since})
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()["mutations"]
    return rows


async def test_reads_and_tokens_are_not_mutations(sandbox: InProcessSandbox) -> None:
    token = await sandbox.cloud_token()
    await sandbox.clp_token()
    project_id = next(iter(sandbox.world.projects))
    await cloud_result(sandbox, token, "get_project_info", project_id=project_id)
    await sandbox.aca.get("/api/v1/centers", headers=sandbox.aca_headers())
    assert await _log(sandbox) == []


async def test_each_cloud_write_is_logged_with_targets_params_and_outcome(
    sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    token = await sandbox.cloud_token()
    world = sandbox.world
    holiday = pick(world.holidays.values())
    pid = holiday.project_id
    await cloud_result(
        sandbox,
        token,
        "set_holiday_working_hours",
        project_id=pid,
        holiday_id=holiday.holiday_id,
        enabled=True,
        start_time="08:00",
        end_time="18:00",
    )
    clock.advance(5)
    await cloud_call(
        sandbox, token, "renew_door_license", project_id=pid, door_id="no-such-door", months=1
    )
    rows = await _log(sandbox)
    assert [r["seq"] for r in rows] == [1, 2]
    first, second = rows
    assert first["system"] == "cloud"
    assert first["operation"] == "set_holiday_working_hours"
    assert first["targets"] == {"project_id": pid, "holiday_id": holiday.holiday_id}
    assert first["params"] == {"enabled": True, "start_time": "08:00", "end_time": "18:00"}
    assert first["outcome"] == "ok"
    assert first["status"] == 200
    assert first["at"] == "2026-11-16T08:00:00Z"
    assert second["operation"] == "renew_door_license"
    assert second["outcome"] == "not_found"
    assert second["at"] == "2026-11-16T08:00:05Z"
    assert second["dropped"] is False


async def test_aca_and_clp_writes_are_logged(sandbox: InProcessSandbox, clock: ManualClock) -> None:
    world = sandbox.world
    user_id, lock_id = active_pair(sandbox.world)
    await sandbox.aca.put(
        f"/api/v1/access_matrix/{user_id}/{lock_id}",
        json={"enabled": False},
        headers=sandbox.aca_headers(),
    )
    clock.advance(3600)  # past CLP's minute of blocking after an access change
    iq = pick(world.iqs.values(), lambda i: i.online)
    auth = bearer(await sandbox.clp_token())
    path = f"/larry/v1/sites/{iq.site_id}/collections/{iq.collection_id}/sync_access"
    first = await sandbox.clp.post(path, headers=auth)
    second = await sandbox.clp.post(path, headers=auth)
    assert (first.status_code, second.status_code) == (202, 409)
    rows = await _log(sandbox)
    assert [(r["system"], r["operation"], r["outcome"], r["status"]) for r in rows] == [
        ("aca", "access_matrix", "ok", 200),
        ("clp", "sync_access", "ok", 202),
        ("clp", "sync_access", "sync_running", 409),
    ]
    assert rows[0]["targets"] == {"user_id": user_id, "lock_id": lock_id}
    assert rows[0]["params"] == {"enabled": False}
    assert rows[1]["targets"] == {"site_id": iq.site_id, "collection_id": iq.collection_id}
    assert [r["seq"] for r in await _log(sandbox, since=rows[1]["seq"])] == [rows[2]["seq"]]


async def test_unauthenticated_writes_are_not_mutations(sandbox: InProcessSandbox) -> None:
    user_id, lock_id = active_pair(sandbox.world)
    response = await sandbox.aca.put(
        f"/api/v1/access_matrix/{user_id}/{lock_id}", json={"enabled": False}
    )
    assert response.status_code == 401
    assert await _log(sandbox) == []


async def test_a_renewal_sent_twice_is_logged_twice(sandbox: InProcessSandbox) -> None:
    token = await sandbox.cloud_token()
    project = pick(
        sandbox.world.projects.values(), lambda p: "payment" in p.permissions and p.funds
    )
    door = pick(sandbox.world.doors.values(), lambda d: d.project_id == project.project_id)
    for _ in range(2):
        await cloud_result(
            sandbox,
            token,
            "renew_door_license",
            project_id=project.project_id,
            door_id=door.door_id,
            months=1,
        )
    rows = await _log(sandbox)
    assert [r["operation"] for r in rows] == ["renew_door_license", "renew_door_license"]
    assert sandbox.world.renewals[door.door_id] >= 2
