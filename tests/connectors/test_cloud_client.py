"""CloudClient against respx: command envelopes, page-index paging, errors, write rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr
from structlog.testing import capture_logs

from doorfix.clock import ManualClock
from doorfix.connectors._http import ClientCredentialsAuth, HttpLayer, RateLimit, RetryPolicy
from doorfix.connectors.cloud import COMMANDS_PATH, CloudClient, license_renewed, vendor_error
from doorfix.connectors.factory import CloudSettings, HttpSettings, build_cloud
from doorfix.connectors.models.cloud import Door
from doorfix.errors import AuthError, ContractError, PermanentError, TransientError

BASE = "https://cloud.example.test"
URL = f"{BASE}{COMMANDS_PATH}"
TOKEN_URL = f"{BASE}/oauth/token"
START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
T0 = 1_795_000_000

Answer = httpx.Response | Exception | Callable[[dict[str, Any]], httpx.Response]


def ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "timestamp": T0, "result": result})


def refused(code: str, message: str = "refused") -> httpx.Response:
    body = {"success": False, "timestamp": T0, "error": {"code": code, "message": message}}
    return httpx.Response(200, json=body)


def page(items: list[Any], *, total: int, index: int = 1) -> httpx.Response:
    return ok({"total": total, "page_index": index, "items": items})


def door_log(log_id: int, **changes: Any) -> dict[str, Any]:
    row = {
        "log_id": log_id,
        "capture_time": T0 + log_id,
        "door_id": "d-1",
        "door_name": "Main entrance",
        "device_model": "A08",
        "firmware": "108.30.4.101",
        "result": "failure",
        "detail": "No access permission",
        "credential_type": "card",
        "credential_value": "0012345678",
        "personnel_id": "p-7",
        "visitor_id": None,
        "initiator": "Ann",
        "extra_field_from_a_newer_api": 1,
    }
    row.update(changes)
    return row


def door(status: str = "expired", expires_at: int | None = T0) -> dict[str, Any]:
    return {
        "door_id": "d-1",
        "name": "Main entrance",
        "device": {"model": "A08", "firmware": "108.30.4.101", "mac": "0C:11:05:00:00:01"},
        "license": {"status": status, "expires_at": expires_at, "auto_renew": False},
    }


def personnel(credentials: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "personnel_id": "p-7",
        "name": "Ann",
        "email": "ann@example.test",
        "external_id": "u-7",
        "credentials": credentials or [],
        "access_group_ids": ["ag-1"],
        "user_group_ids": [],
    }


def temp_key(start: int, finish: int) -> dict[str, Any]:
    return {
        "temp_key_id": "tk-2",
        "code": "482913",
        "door_ids": ["d-1", "d-2"],
        "start_time": start,
        "finish_time": finish,
        "expired": False,
    }


def visitor(keys: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "visitor_id": "v-1",
        "name": "Bob",
        "email": "bob@example.test",
        "host_personnel_id": "p-7",
        "aca_visit_id": "visit-3",
        "temp_keys": keys,
    }


class Commands:
    """The one command endpoint on respx: answers queued per command, bodies recorded in order."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.queues: dict[str, list[Answer]] = {}
        self.sent: list[dict[str, Any]] = []
        self.route = router.post(URL).mock(side_effect=self._answer)

    def on(self, command: str, *answers: Answer) -> None:
        self.queues.setdefault(command, []).extend(answers)

    def commands(self) -> list[str]:
        return [body["command"] for body in self.sent]

    def _answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.sent.append(body)
        queue = self.queues.get(body["command"])
        assert queue, f"unexpected command {body['command']}"
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(body)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def token_route(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.post(TOKEN_URL).respond(
        200, json={"access_token": "tok-1", "token_type": "Bearer", "expires_in": 1800}
    )


@pytest.fixture
def commands(respx_mock: respx.MockRouter, token_route: respx.Route) -> Commands:
    return Commands(respx_mock)


def make_client(clock: ManualClock, *, page_size: int = 500) -> CloudClient:
    layer = HttpLayer(
        system="cloud",
        client=httpx.AsyncClient(base_url=BASE, timeout=5.0),
        auth=ClientCredentialsAuth(TOKEN_URL, "doorfix", SecretStr("cloud-secret-value")),
        vendor_error=vendor_error,
        retry=RetryPolicy(attempts=4, max_elapsed=600.0),
        rate_limit=RateLimit(per_second=0, concurrency=4),
        clock=clock,
    )
    return CloudClient(layer, page_size=page_size)


@pytest.fixture
async def cloud(clock: ManualClock) -> AsyncIterator[CloudClient]:
    async with make_client(clock) as client:
        yield client


# --------------------------------------------------------------------------- request shape


async def test_project_info_request_shape_and_typed_result(
    cloud: CloudClient, commands: Commands, token_route: respx.Route
) -> None:
    commands.on(
        "get_project_info",
        ok({"project_id": "p-1", "name": "Center 1", "time_zone": "Europe/Oslo",
            "permissions": ["personnel", "access_control"]}),
    )  # fmt: skip
    info = await cloud.get_project_info("p-1")

    assert (info.project_id, info.time_zone, info.can_pay) == ("p-1", "Europe/Oslo", False)
    request = commands.route.calls.last.request
    assert request.method == "POST"
    assert request.headers["Authorization"] == "Bearer tok-1"
    body = json.loads(request.content)
    assert body["command"] == "get_project_info"
    assert body["param"] == {"project_id": "p-1"}
    assert len(body["id"]) == 32
    int(body["id"], 16)
    form = dict(httpx.QueryParams(token_route.calls.last.request.content.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "doorfix",
        "client_secret": "cloud-secret-value",
    }


async def test_each_call_gets_a_fresh_request_id(cloud: CloudClient, commands: Commands) -> None:
    commands.on("get_door_detail", ok(door()))
    await cloud.get_door_detail("p-1", "d-1")
    await cloud.get_door_detail("p-1", "d-1")
    ids = [body["id"] for body in commands.sent]
    assert len(set(ids)) == 2


async def test_door_detail_is_typed(cloud: CloudClient, commands: Commands) -> None:
    commands.on("get_door_detail", ok(door("active", T0 + 86400)))
    result = await cloud.get_door_detail("p-1", "d-1")
    assert result.license.status == "active"
    assert result.license.expires_at == T0 + 86400
    assert result.license.expires_at_utc == datetime.fromtimestamp(T0 + 86400, UTC)
    assert result.device.model == "A08"
    assert commands.sent[0]["param"] == {"project_id": "p-1", "door_id": "d-1"}


# --------------------------------------------------------------------------- paging


async def test_door_logs_page_index_paging_stops_on_a_short_page(
    clock: ManualClock, commands: Commands
) -> None:
    commands.on(
        "get_door_log",
        page([door_log(1), door_log(2)], total=5, index=1),
        page([door_log(3), door_log(4)], total=5, index=2),
        page([door_log(5)], total=5, index=3),
    )
    since = datetime.fromtimestamp(T0, UTC) + timedelta(microseconds=900)
    async with make_client(clock, page_size=2) as cloud:
        logs = [row async for row in cloud.iter_door_logs("p-1", since)]

    assert [row.log_id for row in logs] == [1, 2, 3, 4, 5]
    assert logs[0].capture_time_utc == datetime.fromtimestamp(T0 + 1, UTC)
    assert logs[0].visitor_id is None
    params = [body["param"] for body in commands.sent]
    # start_time is inclusive: a fractional second rounds down, never skipping a row
    assert params == [
        {"project_id": "p-1", "start_time": T0, "page_size": 2, "page_index": i} for i in (1, 2, 3)
    ]


async def test_door_logs_stop_when_the_total_is_reached(
    clock: ManualClock, commands: Commands
) -> None:
    commands.on(
        "get_door_log",
        page([door_log(1), door_log(2)], total=4, index=1),
        page([door_log(3), door_log(4)], total=4, index=2),
    )
    async with make_client(clock, page_size=2) as cloud:
        logs = [row async for row in cloud.iter_door_logs("p-1", START)]
    assert len(logs) == 4
    assert commands.route.call_count == 2


async def test_empty_door_log(cloud: CloudClient, commands: Commands) -> None:
    commands.on("get_door_log", page([], total=0))
    assert [row async for row in cloud.iter_door_logs("p-1", START)] == []
    assert commands.sent[0]["param"]["page_size"] == 500


async def test_door_logs_stream_at_most_one_page_ahead(
    clock: ManualClock, commands: Commands
) -> None:
    commands.on(
        "get_door_log",
        page([door_log(1), door_log(2)], total=6, index=1),
        page([door_log(3), door_log(4)], total=6, index=2),
        page([door_log(5), door_log(6)], total=6, index=3),
    )
    async with make_client(clock, page_size=2) as cloud:
        rows = cloud.iter_door_logs("p-1", START)
        first = await anext(rows)
        await asyncio.sleep(0)
        # page 1 read and page 2 on its way while the caller works: never the whole list
        assert first.log_id == 1
        assert commands.route.call_count <= 2
        rest = [row.log_id async for row in rows]
    assert rest == [2, 3, 4, 5, 6]
    assert [body["param"]["page_index"] for body in commands.sent] == [1, 2, 3]


async def test_a_page_read_ahead_past_a_shrunken_list_is_dropped(
    clock: ManualClock, commands: Commands
) -> None:
    commands.on(
        "get_door_log",
        page([door_log(1), door_log(2)], total=6, index=1),
        # the list shrank: page 2 is now the last, though page 1 promised a third
        page([door_log(3), door_log(4)], total=4, index=2),
        page([door_log(99), door_log(100)], total=4, index=3),
    )
    async with make_client(clock, page_size=2) as cloud:
        logs = [row.log_id async for row in cloud.iter_door_logs("p-1", START)]
    assert logs == [1, 2, 3, 4]
    assert commands.route.call_count in (2, 3)


async def test_leaving_a_list_early_cancels_the_read_ahead(
    clock: ManualClock, commands: Commands
) -> None:
    commands.on(
        "get_door_log",
        page([door_log(1), door_log(2)], total=4, index=1),
        page([door_log(3), door_log(4)], total=4, index=2),
    )
    async with make_client(clock, page_size=2) as cloud:
        rows = cloud.iter_door_logs("p-1", START)
        assert (await anext(rows)).log_id == 1
        await rows.aclose()  # type: ignore[attr-defined]
    assert commands.route.call_count <= 2


async def test_an_error_on_the_next_page_comes_after_the_rows_before_it(
    clock: ManualClock, commands: Commands
) -> None:
    commands.on(
        "get_door_log",
        page([door_log(1), door_log(2)], total=4, index=1),
        refused("invalid_param"),
    )
    seen: list[int] = []
    async with make_client(clock, page_size=2) as cloud:

        async def drain() -> None:
            async for row in cloud.iter_door_logs("p-1", START):
                seen.append(row.log_id)

        with pytest.raises(PermanentError) as caught:
            await drain()
    assert seen == [1, 2]
    assert caught.value.code == "invalid_param"


async def test_lists_of_doors_groups_and_holidays_are_typed(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("get_door_list", page([door()], total=1))
    commands.on(
        "get_access_group_list",
        page([{"access_group_id": "ag-1", "name": "Staff", "door_ids": ["d-1"],
               "schedule": {"weekdays": [1, 2, 3, 4, 5], "start_time": "08:00",
                            "end_time": "18:00"}}], total=1),
    )  # fmt: skip
    commands.on(
        "get_user_group_list",
        page([{"user_group_id": "ug-1", "name": "Tenants", "access_group_ids": ["ag-1"],
               "member_ids": ["p-9"]}], total=1),
    )  # fmt: skip
    commands.on(
        "get_holiday_list",
        page([{"holiday_id": "h-1", "name": "Christmas", "dates": ["2026-12-25"],
               "working_hours_enabled": False,
               "working_hours": {"start_time": "09:00", "end_time": "15:00"},
               "door_ids": ["d-1"]}], total=1),
    )  # fmt: skip

    doors = [d async for d in cloud.iter_doors("p-1")]
    groups = [g async for g in cloud.iter_access_groups("p-1")]
    user_groups = [g async for g in cloud.iter_user_groups("p-1")]
    holidays = [h async for h in cloud.iter_holidays("p-1")]

    assert doors[0].door_id == "d-1"
    assert groups[0].schedule.weekdays == (1, 2, 3, 4, 5)
    assert groups[0].schedule.start_time == time(8, 0)
    assert user_groups[0].member_ids == ("p-9",)
    assert holidays[0].dates == (date(2026, 12, 25),)
    assert holidays[0].working_hours.end_time == time(15, 0)
    assert commands.commands() == [
        "get_door_list",
        "get_access_group_list",
        "get_user_group_list",
        "get_holiday_list",
    ]


async def test_find_personnel_takes_exactly_one_key(cloud: CloudClient, commands: Commands) -> None:
    commands.on("find_personnel", page([personnel()], total=1))
    found = [p async for p in cloud.find_personnel("p-1", credential_value="0012345678")]
    assert found[0].external_id == "u-7"
    assert commands.sent[0]["param"] == {
        "project_id": "p-1",
        "credential_value": "0012345678",
        "page_size": 500,
        "page_index": 1,
    }
    with pytest.raises(ValueError, match="exactly one"):
        cloud.find_personnel("p-1")
    with pytest.raises(ValueError, match="exactly one"):
        cloud.find_personnel("p-1", email="a@b", external_id="u-1")


async def test_personnel_and_visitor_details(cloud: CloudClient, commands: Commands) -> None:
    commands.on("get_personnel_detail", ok(personnel([{"type": "card", "value": "42"}])))
    commands.on("get_visitor_detail", ok(visitor([temp_key(T0, T0 + 3600)])))
    person = await cloud.get_personnel_detail("p-1", "p-7")
    guest = await cloud.get_visitor_detail("p-1", "v-1")
    assert person.has_credential("card", "42")
    assert not person.has_credential("pin", "42")
    assert guest.aca_visit_id == "visit-3"
    assert guest.temp_keys[0].finish_time_utc == datetime.fromtimestamp(T0 + 3600, UTC)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "code", ["not_found", "permission_denied", "invalid_param", "conflict", "payment_required"]
)
async def test_http_200_business_errors_are_permanent(
    cloud: CloudClient, commands: Commands, code: str
) -> None:
    commands.on("get_door_detail", refused(code, "nope"))
    with pytest.raises(PermanentError) as caught:
        await cloud.get_door_detail("p-1", "d-1")
    error = caught.value
    assert (error.system, error.endpoint, error.status, error.code) == (
        "cloud",
        "get_door_detail",
        200,
        code,
    )
    assert commands.route.call_count == 1


async def test_business_error_on_a_paged_command(cloud: CloudClient, commands: Commands) -> None:
    commands.on("get_door_log", refused("permission_denied"))
    with pytest.raises(PermanentError) as caught:
        [row async for row in cloud.iter_door_logs("p-1", START)]
    assert (caught.value.endpoint, caught.value.code) == ("get_door_log", "permission_denied")


async def test_expired_token_is_refreshed_once(
    cloud: CloudClient, commands: Commands, token_route: respx.Route
) -> None:
    unauthorized = httpx.Response(
        401, json={"success": False, "error": {"code": "unauthorized", "message": "expired"}}
    )
    commands.on("get_door_detail", unauthorized, ok(door()))
    assert (await cloud.get_door_detail("p-1", "d-1")).door_id == "d-1"
    assert token_route.call_count == 2


async def test_second_401_is_an_auth_error(
    cloud: CloudClient, commands: Commands, token_route: respx.Route
) -> None:
    unauthorized = httpx.Response(
        401, json={"success": False, "error": {"code": "unauthorized", "message": "expired"}}
    )
    commands.on("get_door_detail", unauthorized)
    with pytest.raises(AuthError) as caught:
        await cloud.get_door_detail("p-1", "d-1")
    assert (caught.value.system, caught.value.code, caught.value.status) == (
        "cloud",
        "unauthorized",
        401,
    )
    assert token_route.call_count == 2
    assert commands.route.call_count == 2


async def test_reads_retry_5xx_and_honour_retry_after(
    cloud: CloudClient, commands: Commands, clock: ManualClock
) -> None:
    commands.on(
        "get_door_detail",
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "7"}),
        ok(door()),
    )
    before = clock.now()
    assert (await cloud.get_door_detail("p-1", "d-1")).door_id == "d-1"
    assert commands.route.call_count == 3
    assert clock.now() - before >= timedelta(seconds=7)


async def test_reads_give_up_after_the_policy(cloud: CloudClient, commands: Commands) -> None:
    commands.on("get_door_detail", httpx.Response(500, text="<html>oops</html>"))
    with pytest.raises(TransientError) as caught:
        await cloud.get_door_detail("p-1", "d-1")
    assert (caught.value.system, caught.value.endpoint, caught.value.status) == (
        "cloud",
        "get_door_detail",
        500,
    )
    assert commands.route.call_count == 4


async def test_bad_credentials_are_an_auth_error(
    cloud: CloudClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(TOKEN_URL).respond(401, json={"error": "invalid_client"})
    with pytest.raises(AuthError) as caught:
        await cloud.get_project_info("p-1")
    assert (caught.value.system, caught.value.endpoint) == ("cloud", "token")


# --------------------------------------------------------------------------- contract


async def test_missing_required_field_is_a_contract_error(
    cloud: CloudClient, commands: Commands
) -> None:
    broken = door()
    del broken["license"]["status"]
    commands.on("get_door_detail", ok(broken))
    with pytest.raises(ContractError) as caught:
        await cloud.get_door_detail("p-1", "d-1")
    error = caught.value
    assert (error.system, error.endpoint, error.field) == (
        "cloud",
        "get_door_detail",
        "result.license.status",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"auto_renew": "yes"}, "result.license.auto_renew"),
        ({"expires_at": "1795000000"}, "result.license.expires_at"),
        ({"status": "suspended"}, "result.license.status"),
    ],
)
async def test_wrong_type_is_a_contract_error(
    cloud: CloudClient, commands: Commands, changes: dict[str, Any], field: str
) -> None:
    broken = door()
    broken["license"].update(changes)
    commands.on("get_door_detail", ok(broken))
    with pytest.raises(ContractError) as caught:
        await cloud.get_door_detail("p-1", "d-1")
    assert caught.value.field == field


async def test_success_without_result_is_a_contract_error(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("get_door_detail", httpx.Response(200, json={"success": True, "timestamp": T0}))
    with pytest.raises(ContractError) as caught:
        await cloud.get_door_detail("p-1", "d-1")
    assert caught.value.field == "result"


async def test_a_malformed_row_is_skipped_and_reported(
    clock: ManualClock, commands: Commands
) -> None:
    commands.on(
        "get_door_log",
        page([door_log(1), door_log(2, capture_time="yesterday")], total=3, index=1),
        page([door_log(3)], total=3, index=2),
    )
    skipped: list[ContractError] = []
    async with make_client(clock, page_size=2) as cloud:
        logs = [row async for row in cloud.iter_door_logs("p-1", START, on_skip=skipped.append)]

    # the skipped row does not make page 1 look short: page 2 is still read
    assert [row.log_id for row in logs] == [1, 3]
    assert len(skipped) == 1
    assert (skipped[0].system, skipped[0].endpoint, skipped[0].field) == (
        "cloud",
        "get_door_log",
        "result.items.1.capture_time",
    )


async def test_skipped_rows_are_logged_by_default(cloud: CloudClient, commands: Commands) -> None:
    commands.on("get_door_log", page([door_log(1, credential_type="retina"), door_log(2)], total=2))
    with capture_logs() as logs:
        rows = [row async for row in cloud.iter_door_logs("p-1", START)]
    assert [row.log_id for row in rows] == [2]
    skipped = [entry for entry in logs if entry["event"] == "record_skipped"]
    assert skipped == [
        {
            "event": "record_skipped",
            "log_level": "warning",
            "system": "cloud",
            "endpoint": "get_door_log",
            "field": "result.items.0.credential_type",
            "reason": skipped[0]["reason"],
        }
    ]


async def test_a_broken_page_envelope_is_a_contract_error(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("get_door_log", ok({"total": "many", "page_index": 1, "items": [door_log(1)]}))
    with pytest.raises(ContractError) as caught:
        [row async for row in cloud.iter_door_logs("p-1", START)]
    assert caught.value.field == "result.total"


async def test_a_page_other_than_asked_is_a_contract_error(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("get_door_log", page([door_log(1)], total=1, index=2))
    with pytest.raises(ContractError) as caught:
        [row async for row in cloud.iter_door_logs("p-1", START)]
    assert caught.value.field == "result.page_index"


# --------------------------------------------------------------------------- write rules


def renewed_door() -> httpx.Response:
    return ok(door("active", T0 + 365 * 86400))


def sends_are_separated_by_rereads(sequence: list[str]) -> bool:
    """Between any two renewal sends there is a door re-read."""
    last_send = None
    for position, command in enumerate(sequence):
        if command == "renew_door_license":
            if last_send is not None and "get_door_detail" not in sequence[last_send:position]:
                return False
            last_send = position
    return True


async def test_renewal_succeeds_with_one_send(cloud: CloudClient, commands: Commands) -> None:
    commands.on("renew_door_license", renewed_door())
    before = Door.model_validate_json(json.dumps(door()))
    result = await cloud.renew_door_license("p-1", "d-1", 12, before=before)
    assert result.license.status == "active"
    assert commands.commands() == ["renew_door_license"]
    assert commands.sent[0]["param"] == {"project_id": "p-1", "door_id": "d-1", "months": 12}


async def test_failed_renewal_that_went_through_is_not_sent_again(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("get_door_detail", ok(door()), renewed_door())
    commands.on("renew_door_license", httpx.Response(503))
    result = await cloud.renew_door_license("p-1", "d-1", 12)
    assert result.license.expires_at == T0 + 365 * 86400
    assert commands.commands() == ["get_door_detail", "renew_door_license", "get_door_detail"]


async def test_failed_renewal_is_resent_only_after_a_reread(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("get_door_detail", ok(door()))
    commands.on("renew_door_license", httpx.ReadTimeout("slow"), renewed_door())
    result = await cloud.renew_door_license("p-1", "d-1", 12)
    assert result.license.status == "active"
    assert commands.commands() == [
        "get_door_detail",
        "renew_door_license",
        "get_door_detail",
        "renew_door_license",
    ]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        httpx.Response(502),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("drop"),
    ],
)
async def test_failed_renewal_is_never_sent_twice_without_a_reread(
    cloud: CloudClient, commands: Commands, failure: httpx.Response | Exception
) -> None:
    commands.on("get_door_detail", ok(door()))
    commands.on("renew_door_license", failure)
    with pytest.raises(TransientError) as caught:
        await cloud.renew_door_license("p-1", "d-1", 6)
    assert caught.value.endpoint == "renew_door_license"
    sequence = commands.commands()
    assert sequence.count("renew_door_license") == 2
    assert sends_are_separated_by_rereads(sequence)
    assert sequence == [
        "get_door_detail",
        "renew_door_license",
        "get_door_detail",
        "renew_door_license",
        "get_door_detail",
    ]


async def test_renewal_refused_for_payment_is_not_retried(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("renew_door_license", refused("payment_required"))
    before = Door.model_validate_json(json.dumps(door()))
    with pytest.raises(PermanentError) as caught:
        await cloud.renew_door_license("p-1", "d-1", 1, before=before)
    assert caught.value.code == "payment_required"
    assert commands.commands() == ["renew_door_license"]


async def test_renewal_whose_reread_fails_is_not_resent(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("get_door_detail", httpx.Response(503))
    commands.on("renew_door_license", httpx.Response(503))
    before = Door.model_validate_json(json.dumps(door()))
    with pytest.raises(TransientError) as caught:
        await cloud.renew_door_license("p-1", "d-1", 1, before=before)
    assert caught.value.endpoint == "renew_door_license"
    assert commands.commands().count("renew_door_license") == 1


async def test_renewal_retries_a_429_the_server_did_not_act_on(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on(
        "renew_door_license", httpx.Response(429, headers={"Retry-After": "1"}), renewed_door()
    )
    before = Door.model_validate_json(json.dumps(door()))
    result = await cloud.renew_door_license("p-1", "d-1", 1, before=before)
    assert result.license.status == "active"
    assert commands.commands() == ["renew_door_license", "renew_door_license"]


def test_license_renewed_reads_expiry_and_activation() -> None:
    def make(status: str, expires_at: int | None) -> Door:
        return Door.model_validate_json(json.dumps(door(status, expires_at)))

    assert license_renewed(make("expired", T0), make("active", T0 + 1))
    assert license_renewed(make("inactivated", None), make("active", None))
    assert license_renewed(make("active", T0), make("active", T0 + 1))
    assert not license_renewed(make("active", T0), make("active", T0))
    assert not license_renewed(make("expired", T0), make("expired", T0))


async def test_months_out_of_range_are_refused(cloud: CloudClient) -> None:
    with pytest.raises(ValueError, match="months"):
        await cloud.renew_door_license("p-1", "d-1", 13)


async def test_add_credential_is_sent_once_and_settled_by_a_reread(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("add_personnel_credential", httpx.Response(503))
    commands.on("get_personnel_detail", ok(personnel([{"type": "card", "value": "42"}])))
    person = await cloud.add_personnel_credential("p-1", "p-7", "card", "42")
    assert person.has_credential("card", "42")
    assert commands.commands() == ["add_personnel_credential", "get_personnel_detail"]
    assert commands.sent[0]["param"] == {
        "project_id": "p-1",
        "personnel_id": "p-7",
        "type": "card",
        "value": "42",
    }


async def test_add_credential_with_unknown_outcome_is_not_resent(
    cloud: CloudClient, commands: Commands
) -> None:
    commands.on("add_personnel_credential", httpx.ReadTimeout("slow"))
    commands.on("get_personnel_detail", ok(personnel()))
    with pytest.raises(TransientError):
        await cloud.add_personnel_credential("p-1", "p-7", "card", "42")
    assert commands.commands() == ["add_personnel_credential", "get_personnel_detail"]


async def test_add_credential_conflict_is_permanent(cloud: CloudClient, commands: Commands) -> None:
    commands.on("add_personnel_credential", refused("conflict", "belongs to p-9"))
    with pytest.raises(PermanentError) as caught:
        await cloud.add_personnel_credential("p-1", "p-7", "card", "42")
    assert caught.value.code == "conflict"
    assert commands.commands() == ["add_personnel_credential"]


async def test_add_access_group_member_is_retried_as_idempotent(
    cloud: CloudClient, commands: Commands
) -> None:
    group = {
        "access_group_id": "ag-1",
        "name": "Staff",
        "door_ids": ["d-1"],
        "schedule": {"weekdays": [1], "start_time": "00:00", "end_time": "23:59"},
    }
    commands.on("add_access_group_member", httpx.Response(503), ok(group))
    result = await cloud.add_access_group_member("p-1", "ag-1", "p-7")
    assert result.access_group_id == "ag-1"
    assert commands.commands() == ["add_access_group_member"] * 2
    assert commands.sent[0]["param"] == {
        "project_id": "p-1",
        "access_group_id": "ag-1",
        "personnel_id": "p-7",
    }


async def test_set_holiday_working_hours_shape_and_retry(
    cloud: CloudClient, commands: Commands
) -> None:
    holiday = {
        "holiday_id": "h-1",
        "name": "Christmas",
        "dates": ["2026-12-25"],
        "working_hours_enabled": True,
        "working_hours": {"start_time": "08:30", "end_time": "17:00"},
        "door_ids": ["d-1"],
    }
    commands.on("set_holiday_working_hours", httpx.Response(502), ok(holiday))
    result = await cloud.set_holiday_working_hours(
        "p-1", "h-1", enabled=True, start_time=time(8, 30), end_time=time(17, 0)
    )
    assert result.working_hours_enabled
    assert commands.sent[-1]["param"] == {
        "project_id": "p-1",
        "holiday_id": "h-1",
        "enabled": True,
        "start_time": "08:30",
        "end_time": "17:00",
    }
    assert commands.route.call_count == 2


async def test_create_temp_key_shape(cloud: CloudClient, commands: Commands) -> None:
    start = datetime.fromtimestamp(T0, UTC)
    finish = start + timedelta(hours=2)
    commands.on("create_visitor_temp_key", ok(temp_key(T0, T0 + 7200)))
    key = await cloud.create_visitor_temp_key("p-1", "v-1", ["d-1", "d-2"], start, finish)
    assert key.code == "482913"
    assert commands.sent[0]["param"] == {
        "project_id": "p-1",
        "visitor_id": "v-1",
        "door_ids": ["d-1", "d-2"],
        "start_time": T0,
        "finish_time": T0 + 7200,
    }
    with pytest.raises(ValueError, match="finish_time"):
        await cloud.create_visitor_temp_key("p-1", "v-1", ["d-1"], finish, start)


async def test_create_temp_key_with_unknown_outcome_adopts_the_key_it_made(
    cloud: CloudClient, commands: Commands
) -> None:
    start = datetime.fromtimestamp(T0, UTC)
    commands.on("create_visitor_temp_key", httpx.Response(504))
    commands.on("get_visitor_detail", ok(visitor([temp_key(T0, T0 + 7200)])))
    key = await cloud.create_visitor_temp_key(
        "p-1", "v-1", ["d-2", "d-1"], start, start + timedelta(hours=2)
    )
    assert key.temp_key_id == "tk-2"
    assert commands.commands() == ["create_visitor_temp_key", "get_visitor_detail"]


async def test_create_temp_key_with_unknown_outcome_and_no_key_raises(
    cloud: CloudClient, commands: Commands
) -> None:
    start = datetime.fromtimestamp(T0, UTC)
    commands.on("create_visitor_temp_key", httpx.Response(503))
    commands.on("get_visitor_detail", ok(visitor([])))
    with pytest.raises(TransientError):
        await cloud.create_visitor_temp_key("p-1", "v-1", ["d-1"], start, start + timedelta(1))
    assert commands.commands() == ["create_visitor_temp_key", "get_visitor_detail"]


async def test_async_with_closes_the_connections(clock: ManualClock) -> None:
    async with make_client(clock) as cloud:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await cloud.get_door_detail("p-1", "d-1")


async def test_factory_builds_a_client_with_form_credentials(
    clock: ManualClock, commands: Commands, token_route: respx.Route
) -> None:
    settings = CloudSettings(
        base_url=BASE,
        client_id="factory-id",
        client_secret=SecretStr("factory-secret"),
        http=HttpSettings(timeout=3.0, rate_limit=RateLimit(per_second=0)),
    )
    commands.on("get_door_detail", ok(door()))
    async with build_cloud(settings, clock=clock) as cloud:
        assert (await cloud.get_door_detail("p-1", "d-1")).door_id == "d-1"
    form = dict(httpx.QueryParams(token_route.calls.last.request.content.decode()))
    assert form["client_id"] == "factory-id"
    assert form["client_secret"] == "factory-secret"
    assert commands.route.calls.last.request.headers["User-Agent"].startswith("doorfix/")


def test_vendor_error_reads_the_cloud_error_body() -> None:
    body = {"success": False, "error": {"code": "unauthorized", "message": "token expired"}}
    assert vendor_error(httpx.Response(401, json=body)) == ("unauthorized", "token expired")
    assert vendor_error(httpx.Response(502, text="<html>")) == (None, "HTTP 502 Bad Gateway")
    assert vendor_error(httpx.Response(429, json={"detail": "slow down"})) == (
        None,
        "HTTP 429 Too Many Requests",
    )
