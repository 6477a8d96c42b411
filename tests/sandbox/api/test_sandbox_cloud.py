"""The cloud API of the sandbox against contract/cloud.md: every command, paging, errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from contract_shapes import (
    CLOUD_ACCESS_GROUP,
    CLOUD_DOOR,
    CLOUD_DOOR_LOG,
    CLOUD_FAILURE,
    CLOUD_HOLIDAY,
    CLOUD_PERSONNEL,
    CLOUD_PROJECT_INFO,
    CLOUD_SUCCESS,
    CLOUD_TEMP_KEY,
    CLOUD_USER_GROUP,
    CLOUD_VISITOR,
    assert_shape,
    cloud_page,
)
from sandbox_calls import COMMANDS_PATH, cloud_call, cloud_error, cloud_result, pick

from doorfix.clock import ManualClock
from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.world import model


@pytest.fixture
async def token(sandbox: InProcessSandbox) -> str:
    """A valid cloud token."""
    return await sandbox.cloud_token()


def _project(sb: InProcessSandbox) -> model.Project:
    return pick(
        sb.world.projects.values(),
        lambda p: any(d.project_id == p.project_id for d in sb.world.doors.values()),
    )


# --------------------------------------------------------------------------- envelope


async def test_success_envelope_echoes_request_id_and_stamps_clock_time(
    sandbox: InProcessSandbox, token: str, clock: ManualClock
) -> None:
    project = _project(sandbox)
    response = await cloud_call(
        sandbox, token, "get_project_info", "abc-123", project_id=project.project_id
    )
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "abc-123"
    body = response.json()
    assert_shape(body, CLOUD_SUCCESS)
    assert body["timestamp"] == int(clock.now().timestamp())
    assert_shape(body["result"], CLOUD_PROJECT_INFO)
    assert body["result"]["project_id"] == project.project_id


async def test_business_errors_are_http_200_success_false(
    sandbox: InProcessSandbox, token: str
) -> None:
    response = await cloud_call(
        sandbox, token, "get_project_info", "r-2", project_id="no-such-project"
    )
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "r-2"
    assert_shape(response.json(), CLOUD_FAILURE)
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("command", "param"),
    [
        ("no_such_command", {}),
        ("get_door_list", {"project_id": "<p>", "page_size": 0}),
        ("get_door_list", {"project_id": "<p>", "page_size": 501}),
        ("get_door_list", {"project_id": "<p>", "page_index": 0}),
        ("get_door_list", {"project_id": "<p>", "page_size": "10"}),
        ("get_door_log", {"project_id": "<p>"}),
        ("find_personnel", {"project_id": "<p>"}),
        ("find_personnel", {"project_id": "<p>", "email": "a@b.c", "external_id": "u"}),
        ("renew_door_license", {"project_id": "<p>", "door_id": "<d>", "months": 13}),
        ("get_project_info", {}),
    ],
)
async def test_bad_params_are_invalid_param(
    sandbox: InProcessSandbox, token: str, command: str, param: dict[str, Any]
) -> None:
    project = _project(sandbox)
    door = pick(sandbox.world.doors.values(), lambda d: d.project_id == project.project_id)
    filled = {
        k: (project.project_id if v == "<p>" else door.door_id if v == "<d>" else v)
        for k, v in param.items()
    }
    assert await cloud_error(sandbox, token, command, **filled) == "invalid_param"


async def test_a_body_without_param_object_is_invalid_param(
    sandbox: InProcessSandbox, token: str
) -> None:
    response = await sandbox.cloud.post(
        COMMANDS_PATH,
        json={"command": "get_door_list", "id": "x"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json()["error"]["code"] == "invalid_param"


# --------------------------------------------------------------------------- reads


async def test_door_list_pages_by_index(sandbox: InProcessSandbox, token: str) -> None:
    project = _project(sandbox)
    doors = [d for d in sandbox.world.doors.values() if d.project_id == project.project_id]
    seen: list[str] = []
    page_index = 1
    while True:
        result = await cloud_result(
            sandbox,
            token,
            "get_door_list",
            project_id=project.project_id,
            page_size=2,
            page_index=page_index,
        )
        assert_shape(result, cloud_page(CLOUD_DOOR))
        assert result["total"] == len(doors)
        assert result["page_index"] == page_index
        if not result["items"]:
            break
        assert len(result["items"]) <= 2
        seen += [d["door_id"] for d in result["items"]]
        page_index += 1
    assert sorted(seen) == sorted(d.door_id for d in doors)


async def test_door_detail_and_a_door_of_another_project(
    sandbox: InProcessSandbox, token: str
) -> None:
    project = _project(sandbox)
    door = pick(sandbox.world.doors.values(), lambda d: d.project_id == project.project_id)
    result = await cloud_result(
        sandbox, token, "get_door_detail", project_id=project.project_id, door_id=door.door_id
    )
    assert_shape(result, CLOUD_DOOR)
    assert result["door_id"] == door.door_id
    assert (
        await cloud_error(
            sandbox, token, "get_door_detail", project_id=project.project_id, door_id="nope"
        )
        == "not_found"
    )


async def test_door_log_pages_from_start_time(sandbox: InProcessSandbox, token: str) -> None:
    project = pick(
        sandbox.world.projects.values(),
        lambda p: sandbox.world.door_log_page(p.project_id, 0, 1, 1)[0] > 0,
    )
    first = await cloud_result(
        sandbox,
        token,
        "get_door_log",
        project_id=project.project_id,
        start_time=0,
        page_size=500,
        page_index=1,
    )
    assert_shape(first, cloud_page(CLOUD_DOOR_LOG))
    assert first["total"] >= len(first["items"]) > 0
    log_ids = [x["log_id"] for x in first["items"]]
    assert log_ids == sorted(log_ids)
    # start_time is inclusive: asking from the last row's capture time gives it again
    last = first["items"][-1]
    later = await cloud_result(
        sandbox,
        token,
        "get_door_log",
        project_id=project.project_id,
        start_time=last["capture_time"],
        page_size=500,
        page_index=1,
    )
    assert later["total"] <= first["total"]
    assert last["log_id"] in [x["log_id"] for x in later["items"]]
    assert all(x["capture_time"] >= last["capture_time"] for x in later["items"])


async def test_personnel_detail_and_find_by_each_key(sandbox: InProcessSandbox, token: str) -> None:
    world = sandbox.world
    person = pick(
        world.personnel.values(), lambda p: p.external_id is not None and bool(p.credentials)
    )
    pid = person.project_id
    detail = await cloud_result(
        sandbox, token, "get_personnel_detail", project_id=pid, personnel_id=person.personnel_id
    )
    assert_shape(detail, CLOUD_PERSONNEL)
    assert detail["personnel_id"] == person.personnel_id
    for key, value in (
        ("external_id", person.external_id),
        ("email", person.email.upper()),
        ("credential_value", person.credentials[0].value),
    ):
        found = await cloud_result(
            sandbox, token, "find_personnel", project_id=pid, page_size=50, **{key: value}
        )
        assert_shape(found, cloud_page(CLOUD_PERSONNEL))
        assert person.personnel_id in [x["personnel_id"] for x in found["items"]], key
    none = await cloud_result(
        sandbox, token, "find_personnel", project_id=pid, email="nobody@nowhere.test"
    )
    assert none == {"total": 0, "page_index": 1, "items": []}


async def test_group_and_holiday_lists(sandbox: InProcessSandbox, token: str) -> None:
    world = sandbox.world
    pid = pick(world.cloud_access_groups.values()).project_id
    groups = await cloud_result(
        sandbox, token, "get_access_group_list", project_id=pid, page_size=500
    )
    assert_shape(groups, cloud_page(CLOUD_ACCESS_GROUP))
    assert groups["total"] == sum(
        1 for g in world.cloud_access_groups.values() if g.project_id == pid
    )
    users = await cloud_result(sandbox, token, "get_user_group_list", project_id=pid, page_size=500)
    assert_shape(users, cloud_page(CLOUD_USER_GROUP))
    holidays = await cloud_result(sandbox, token, "get_holiday_list", project_id=pid, page_size=500)
    assert_shape(holidays, cloud_page(CLOUD_HOLIDAY))


async def test_visitor_temp_key_expired_follows_the_clock(
    sandbox: InProcessSandbox, token: str, clock: ManualClock
) -> None:
    visitor = pick(sandbox.world.visitors.values(), lambda v: bool(v.temp_keys))
    args = {"project_id": visitor.project_id, "visitor_id": visitor.visitor_id}
    result = await cloud_result(sandbox, token, "get_visitor_detail", **args)
    assert_shape(result, CLOUD_VISITOR)
    latest = max(visitor.temp_keys, key=lambda k: k.finish_time)
    if latest.finish_time > clock.now():
        clock.set(latest.finish_time + timedelta(seconds=1))
        token = await sandbox.cloud_token()
    after = await cloud_result(sandbox, token, "get_visitor_detail", **args)
    assert all(k["expired"] for k in after["temp_keys"])


# --------------------------------------------------------------------------- writes


async def test_renew_door_license(sandbox: InProcessSandbox, token: str) -> None:
    project = pick(
        sandbox.world.projects.values(), lambda p: "payment" in p.permissions and p.funds
    )
    door = pick(sandbox.world.doors.values(), lambda d: d.project_id == project.project_id)
    result = await cloud_result(
        sandbox,
        token,
        "renew_door_license",
        project_id=project.project_id,
        door_id=door.door_id,
        months=12,
    )
    assert_shape(result, CLOUD_DOOR)
    assert result["license"]["status"] == "active"


async def test_renew_without_payment_permission_or_funds(
    sandbox: InProcessSandbox, token: str
) -> None:
    project = _project(sandbox)
    door = pick(sandbox.world.doors.values(), lambda d: d.project_id == project.project_id)
    args = {"project_id": project.project_id, "door_id": door.door_id, "months": 1}
    project.permissions = [p for p in project.permissions if p != "payment"]
    assert await cloud_error(sandbox, token, "renew_door_license", **args) == "permission_denied"
    info = await cloud_result(sandbox, token, "get_project_info", project_id=project.project_id)
    assert "payment" not in info["permissions"]
    project.permissions.append("payment")
    project.funds = False
    assert await cloud_error(sandbox, token, "renew_door_license", **args) == "payment_required"


async def test_add_personnel_credential_and_conflict(sandbox: InProcessSandbox, token: str) -> None:
    world = sandbox.world
    owner = pick(world.personnel.values(), lambda p: bool(p.credentials))
    other = pick(
        world.personnel.values(),
        lambda p: p.project_id == owner.project_id and p.personnel_id != owner.personnel_id,
    )
    pid = owner.project_id
    added = await cloud_result(
        sandbox,
        token,
        "add_personnel_credential",
        project_id=pid,
        personnel_id=other.personnel_id,
        type="card",
        value="99887766",
    )
    assert_shape(added, CLOUD_PERSONNEL)
    assert {"type": "card", "value": "99887766"} in added["credentials"]
    taken = owner.credentials[0]
    code = await cloud_error(
        sandbox,
        token,
        "add_personnel_credential",
        project_id=pid,
        personnel_id=other.personnel_id,
        type=taken.type,
        value=taken.value,
    )
    assert code == "conflict"
    bad_type = await cloud_error(
        sandbox,
        token,
        "add_personnel_credential",
        project_id=pid,
        personnel_id=other.personnel_id,
        type="retina",
        value="1",
    )
    assert bad_type == "invalid_param"


async def test_add_access_group_member_and_user_group_conflict(
    sandbox: InProcessSandbox, token: str
) -> None:
    world = sandbox.world
    group = pick(world.cloud_access_groups.values())
    free = pick(
        world.personnel.values(),
        lambda p: p.project_id == group.project_id and not p.user_group_ids,
    )
    args = {"project_id": group.project_id, "access_group_id": group.access_group_id}
    result = await cloud_result(
        sandbox, token, "add_access_group_member", personnel_id=free.personnel_id, **args
    )
    assert_shape(result, CLOUD_ACCESS_GROUP)
    # adding twice is a no-op, not an error
    await cloud_result(
        sandbox, token, "add_access_group_member", personnel_id=free.personnel_id, **args
    )
    detail = await cloud_result(
        sandbox,
        token,
        "get_personnel_detail",
        project_id=group.project_id,
        personnel_id=free.personnel_id,
    )
    assert detail["access_group_ids"].count(group.access_group_id) == 1
    inherited = pick(
        world.personnel.values(),
        lambda p: p.project_id == group.project_id and bool(p.user_group_ids),
    )
    code = await cloud_error(
        sandbox, token, "add_access_group_member", personnel_id=inherited.personnel_id, **args
    )
    assert code == "conflict"


async def test_set_holiday_working_hours(sandbox: InProcessSandbox, token: str) -> None:
    holiday = pick(sandbox.world.holidays.values())
    args = {"project_id": holiday.project_id, "holiday_id": holiday.holiday_id}
    result = await cloud_result(
        sandbox,
        token,
        "set_holiday_working_hours",
        enabled=True,
        start_time="07:30",
        end_time="19:00",
        **args,
    )
    assert_shape(result, CLOUD_HOLIDAY)
    assert result["working_hours_enabled"] is True
    assert result["working_hours"] == {"start_time": "07:30", "end_time": "19:00"}
    bad = await cloud_error(
        sandbox,
        token,
        "set_holiday_working_hours",
        enabled=True,
        start_time="7h",
        end_time="19:00",
        **args,
    )
    assert bad == "invalid_param"


async def test_create_visitor_temp_key(
    sandbox: InProcessSandbox, token: str, clock: ManualClock
) -> None:
    visitor = pick(sandbox.world.visitors.values())
    door = pick(sandbox.world.doors.values(), lambda d: d.project_id == visitor.project_id)
    start = int(clock.now().timestamp())
    result = await cloud_result(
        sandbox,
        token,
        "create_visitor_temp_key",
        project_id=visitor.project_id,
        visitor_id=visitor.visitor_id,
        door_ids=[door.door_id],
        start_time=start,
        finish_time=start + 3600,
    )
    assert_shape(result, CLOUD_TEMP_KEY)
    assert result["expired"] is False
    assert result["door_ids"] == [door.door_id]
    backwards = await cloud_error(
        sandbox,
        token,
        "create_visitor_temp_key",
        project_id=visitor.project_id,
        visitor_id=visitor.visitor_id,
        door_ids=[door.door_id],
        start_time=start,
        finish_time=start - 1,
    )
    assert backwards == "invalid_param"
