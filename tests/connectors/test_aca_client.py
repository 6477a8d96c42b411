"""AcaClient against respx: cursor lists, the events feed, the Access Matrix, problem+json."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from doorfix.clock import ManualClock
from doorfix.connectors._http import HttpLayer, RateLimit, RetryPolicy, StaticKeyAuth
from doorfix.connectors.aca import AcaClient, vendor_error
from doorfix.connectors.factory import AcaSettings, HttpSettings, build_aca
from doorfix.errors import AuthError, ContractError, PermanentError, TransientError

BASE = "https://aca.example.test"
API = f"{BASE}/api/v1"
START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
KEY = "aca-api-key-value"


def center(**changes: Any) -> dict[str, Any]:
    row = {
        "id": "c-1",
        "name": "Center One",
        "released_at": "2026-01-05T12:00:00Z",
        "clp_site_id": "5f0c5d8e-0000-4000-8000-000000000001",
        "cloud_project_id": "p-1",
        "time_zone": "Europe/Oslo",
    }
    row.update(changes)
    return row


def user(**changes: Any) -> dict[str, Any]:
    row = {
        "id": "u-7",
        "name": "Ann",
        "email": "ann@example.test",
        "company_id": "co-1",
        "center_id": "c-1",
        "clp_user_id": "clp-u-7",
        "cloud_personnel_id": None,
        "tags": [{"number": "0012345678", "state": "assigned"}],
    }
    row.update(changes)
    return row


def event(n: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": f"e-{n}",
        "type": "tag_rejected",
        "occurred_at": "2026-11-16T07:00:00Z",
        "recorded_at": f"2026-11-16T07:{n:02d}:00.250Z",
        "user_id": "u-7",
        "lock_id": "l-3",
        "center_id": "c-1",
        "credential": "0012345678",
    }
    row.update(changes)
    return row


def problem(status: int, code: str, detail: str = "refused") -> httpx.Response:
    body = {"type": "about:blank", "title": "Refused", "status": status, "detail": detail,
            "code": code}  # fmt: skip
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


def listing(data: list[Any], next_cursor: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "next_cursor": next_cursor})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def make_client(clock: ManualClock, *, page_size: int = 500) -> AcaClient:
    layer = HttpLayer(
        system="aca",
        client=httpx.AsyncClient(base_url=BASE, timeout=5.0),
        auth=StaticKeyAuth(SecretStr(KEY)),
        vendor_error=vendor_error,
        retry=RetryPolicy(attempts=3, max_elapsed=600.0),
        rate_limit=RateLimit(per_second=0, concurrency=4),
        clock=clock,
    )
    return AcaClient(layer, page_size=page_size)


@pytest.fixture
async def aca(clock: ManualClock) -> AsyncIterator[AcaClient]:
    async with make_client(clock) as client:
        yield client


def params_of(route: respx.Route, call: int = -1) -> dict[str, str]:
    return dict(route.calls[call].request.url.params)


# --------------------------------------------------------------------------- lists


async def test_centers_follow_the_cursor_until_null(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{API}/centers").mock(
        side_effect=[listing([center()], "cur-2"), listing([center(id="c-2")], None)]
    )
    centers = [c async for c in aca.iter_centers()]

    assert [c.id for c in centers] == ["c-1", "c-2"]
    assert centers[0].released_at == datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert centers[0].released_at.tzinfo is UTC
    assert params_of(route, 0) == {"limit": "500"}
    assert params_of(route, 1) == {"limit": "500", "cursor": "cur-2"}
    assert route.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


async def test_get_center(aca: AcaClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{API}/centers/c-1").respond(200, json=center(cloud_project_id=None))
    result = await aca.get_center("c-1")
    assert result.cloud_project_id is None
    assert result.clp_site_id.startswith("5f0c")


async def test_ids_cannot_escape_their_path_segment(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{API}/users/a%2Fb%3Fx").respond(200, json=user(id="a/b?x"))
    assert (await aca.get_user("a/b?x")).id == "a/b?x"
    assert route.called


async def test_inventories_bookings_and_visits_pass_their_filters(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    inventories = respx_mock.get(f"{API}/inventories").mock(
        return_value=listing(
            [{"id": "i-1", "center_id": "c-1", "name": "714ResCo-work01", "kind": "coworking",
              "lock_ids": ["l-3"], "door_ids": ["d-1"]}]
        )
    )  # fmt: skip
    bookings = respx_mock.get(f"{API}/bookings").mock(
        return_value=listing(
            [{"id": "b-1", "company_id": "co-1", "center_id": "c-1", "inventory_id": "i-1",
              "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
              "status": "active"}]
        )
    )  # fmt: skip
    visits = respx_mock.get(f"{API}/visits").mock(
        return_value=listing(
            [{"id": "visit-3", "center_id": "c-1", "visitor_name": "Bob",
              "visitor_email": "bob@example.test", "host_user_id": "u-7",
              "starts_at": "2026-11-16T07:00:00Z", "ends_at": "2026-11-16T17:00:00Z",
              "status": "active", "cloud_visitor_id": "v-1"}]
        )
    )  # fmt: skip
    oslo = timezone(timedelta(hours=1))
    moment = datetime(2026, 11, 16, 9, 30, tzinfo=oslo)

    rooms = [i async for i in aca.iter_inventories("c-1")]
    booked = [b async for b in aca.iter_bookings(company_id="co-1", active_at=moment)]
    visiting = [v async for v in aca.iter_visits(cloud_visitor_id="v-1")]

    assert rooms[0].kind == "coworking"
    assert rooms[0].lock_ids == ("l-3",)
    assert booked[0].ends_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert visiting[0].cloud_visitor_id == "v-1"
    assert params_of(inventories) == {"center_id": "c-1", "limit": "500"}
    # filters left out stay out of the query; times go out as UTC with Z
    assert params_of(bookings) == {
        "company_id": "co-1",
        "active_at": "2026-11-16T08:30:00Z",
        "limit": "500",
    }
    assert params_of(visits) == {"cloud_visitor_id": "v-1", "limit": "500"}


async def test_find_users_takes_exactly_one_key(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{API}/users").mock(return_value=listing([user()]))
    found = [u async for u in aca.find_users(tag="0012345678")]
    assert found[0].tags[0].state == "assigned"
    assert params_of(route) == {"tag": "0012345678", "limit": "500"}
    with pytest.raises(ValueError, match="exactly one"):
        aca.find_users()
    with pytest.raises(ValueError, match="exactly one"):
        aca.find_users(email="a@b", clp_user_id="x")


async def test_accesses_and_mobile_keys(aca: AcaClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{API}/users/u-7/accesses").mock(
        return_value=listing(
            [{"lock_id": "l-3", "inventory_id": "i-1", "state": "disabled",
              "disabled_by": "access_matrix", "changed_at": "2026-11-15T10:00:00Z"},
             {"lock_id": "l-4", "inventory_id": "i-1", "state": "active",
              "changed_at": "2026-11-15T10:00:00Z"}]
        )
    )  # fmt: skip
    respx_mock.get(f"{API}/users/u-7/mobile_keys").mock(
        return_value=listing(
            [{"id": "mk-1", "state": "corrupted", "issued_at": "2026-11-01T00:00:00Z",
              "last_error": "generation_failed"}]
        )
    )  # fmt: skip
    accesses = [a async for a in aca.iter_accesses("u-7")]
    keys = [k async for k in aca.iter_mobile_keys("u-7")]
    assert [(a.state, a.disabled_by) for a in accesses] == [
        ("disabled", "access_matrix"),
        ("active", None),
    ]
    assert (keys[0].state, keys[0].last_error) == ("corrupted", "generation_failed")


async def test_a_malformed_user_is_skipped_and_reported(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{API}/users").mock(
        return_value=listing([user(id="u-1"), user(id="u-2", tags=[{"number": "1"}]), user()])
    )
    skipped: list[ContractError] = []
    found = [u async for u in aca.find_users(email="x@example.test", on_skip=skipped.append)]
    assert [u.id for u in found] == ["u-1", "u-7"]
    assert [(e.system, e.endpoint, e.field) for e in skipped] == [
        ("aca", "find_users", "data.1.tags.0.state")
    ]


async def test_a_cursor_that_does_not_move_is_a_contract_error(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{API}/centers").mock(
        side_effect=[listing([center()], "same"), listing([center()], "same")]
    )
    with pytest.raises(ContractError) as caught:
        [c async for c in aca.iter_centers()]
    assert (caught.value.system, caught.value.endpoint) == ("aca", "list_centers")


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"released_at": "2026-01-05T12:00:00"}, "released_at"),
        ({"released_at": 1767614400}, "released_at"),
        ({"clp_site_id": None}, "clp_site_id"),
        ({"name": 7}, "name"),
    ],
)
async def test_contract_violations_name_the_field(
    aca: AcaClient, respx_mock: respx.MockRouter, changes: dict[str, Any], field: str
) -> None:
    respx_mock.get(f"{API}/centers/c-1").respond(200, json=center(**changes))
    with pytest.raises(ContractError) as caught:
        await aca.get_center("c-1")
    assert (caught.value.system, caught.value.endpoint, caught.value.field) == (
        "aca",
        "get_center",
        field,
    )


async def test_missing_field_is_a_contract_error(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    body = user()
    del body["clp_user_id"]
    respx_mock.get(f"{API}/users/u-7").respond(200, json=body)
    with pytest.raises(ContractError) as caught:
        await aca.get_user("u-7")
    assert caught.value.field == "clp_user_id"


async def test_offsets_are_normalised_to_utc(aca: AcaClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{API}/centers/c-1").respond(
        200, json=center(released_at="2026-01-05T13:00:00+01:00")
    )
    released = (await aca.get_center("c-1")).released_at
    assert released == datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert released.tzinfo is UTC


# --------------------------------------------------------------------------- Access Matrix


async def test_access_matrix_put_shape(aca: AcaClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.put(f"{API}/access_matrix/u-7/l-3").respond(
        200, json={"user_id": "u-7", "lock_id": "l-3", "enabled": False, "clp_sync": "queued"}
    )
    change = await aca.set_access_matrix("u-7", "l-3", enabled=False)
    assert (change.enabled, change.clp_sync) == (False, "queued")
    assert json.loads(route.calls.last.request.content) == {"enabled": False}


async def test_access_matrix_is_retried_as_idempotent(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.put(f"{API}/access_matrix/u-7/l-3").mock(
        side_effect=[
            httpx.ReadTimeout("slow"),
            httpx.Response(503),
            httpx.Response(
                200,
                json={"user_id": "u-7", "lock_id": "l-3", "enabled": True, "clp_sync": "queued"},
            ),
        ]
    )
    assert (await aca.set_access_matrix("u-7", "l-3", enabled=True)).enabled
    assert route.call_count == 3


@pytest.mark.parametrize(("status", "code"), [(409, "no_booking"), (404, "not_found")])
async def test_access_matrix_refusals(
    aca: AcaClient, respx_mock: respx.MockRouter, status: int, code: str
) -> None:
    route = respx_mock.put(f"{API}/access_matrix/u-7/l-3").mock(
        return_value=problem(status, code, "no booking gives this lock")
    )
    with pytest.raises(PermanentError) as caught:
        await aca.set_access_matrix("u-7", "l-3", enabled=True)
    error = caught.value
    assert (error.system, error.endpoint, error.status, error.code) == (
        "aca",
        "access_matrix",
        status,
        code,
    )
    assert "no booking gives this lock" in str(error)
    assert route.call_count == 1


async def test_a_401_is_final_for_the_static_key(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{API}/users/u-7").mock(return_value=problem(401, "unauthorized"))
    with pytest.raises(AuthError) as caught:
        await aca.get_user("u-7")
    assert (caught.value.system, caught.value.code) == ("aca", "unauthorized")
    assert route.call_count == 1


async def test_server_errors_are_retried_then_transient(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{API}/users/u-7").mock(return_value=problem(500, "internal"))
    with pytest.raises(TransientError) as caught:
        await aca.get_user("u-7")
    assert (caught.value.status, caught.value.code, caught.value.endpoint) == (
        500,
        "internal",
        "get_user",
    )
    assert route.call_count == 3


# --------------------------------------------------------------------------- events


async def test_read_events_exposes_the_cursor(aca: AcaClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{API}/events").mock(
        side_effect=[
            httpx.Response(200, json={"data": [event(1), event(2)], "next_cursor": "c-2"}),
            httpx.Response(200, json={"data": [], "next_cursor": "c-2b"}),
        ]
    )
    first = await aca.read_events(None, limit=2)
    assert [e.id for e in first.events] == ["e-1", "e-2"]
    assert first.events[0].recorded_at == datetime(2026, 11, 16, 7, 1, 0, 250000, tzinfo=UTC)
    assert first.next_cursor == "c-2"
    empty = await aca.read_events(first.next_cursor, limit=2)
    assert (empty.events, empty.next_cursor) == ((), "c-2b")
    assert params_of(route, 0) == {"limit": "2"}
    assert params_of(route, 1) == {"limit": "2", "after": "c-2"}


async def test_event_pages_run_until_an_empty_page_and_keep_its_cursor(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{API}/events").mock(
        side_effect=[
            httpx.Response(200, json={"data": [event(1), event(2)], "next_cursor": "c-2"}),
            httpx.Response(200, json={"data": [event(3)], "next_cursor": "c-3"}),
            httpx.Response(200, json={"data": [], "next_cursor": "c-3"}),
        ]
    )
    feed = aca.event_pages("c-0", limit=2)
    seen: list[tuple[list[str], str]] = []
    async for events_page in feed:
        seen.append(([e.id for e in events_page.events], events_page.next_cursor))
    assert seen == [(["e-1", "e-2"], "c-2"), (["e-3"], "c-3")]
    assert feed.cursor == "c-3"
    assert [params_of(route, i).get("after") for i in range(3)] == ["c-0", "c-2", "c-3"]


async def test_an_empty_feed_still_moves_the_cursor(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{API}/events").respond(200, json={"data": [], "next_cursor": "c-new"})
    feed = aca.event_pages(None)
    assert [p async for p in feed] == []
    assert feed.cursor == "c-new"


async def test_events_page_without_cursor_is_a_contract_error(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{API}/events").respond(200, json={"data": [event(1)], "next_cursor": None})
    with pytest.raises(ContractError) as caught:
        await aca.read_events(None)
    assert (caught.value.endpoint, caught.value.field) == ("events", "next_cursor")


async def test_a_malformed_event_is_skipped_the_page_is_not(
    aca: AcaClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{API}/events").mock(
        side_effect=[
            httpx.Response(
                200,
                json={"data": [event(1, type="door_forced"), event(2)], "next_cursor": "c-2"},
            ),
            httpx.Response(200, json={"data": [event(3, lock_id=None)], "next_cursor": "c-3"}),
            httpx.Response(200, json={"data": [], "next_cursor": "c-3"}),
        ]
    )
    skipped: list[ContractError] = []
    feed = aca.event_pages(None, on_skip=skipped.append)
    pages = [[e.id for e in p.events] async for p in feed]
    # a page whose only event was skipped is not the empty page that ends the feed
    assert pages == [["e-2"], []]
    assert [e.field for e in skipped] == ["data.0.type", "data.0.lock_id"]
    assert feed.cursor == "c-3"


async def test_limits_are_checked(aca: AcaClient) -> None:
    with pytest.raises(ValueError, match="limit"):
        await aca.read_events(None, limit=501)
    with pytest.raises(ValueError, match="limit"):
        aca.event_pages(None, limit=0)


# --------------------------------------------------------------------------- plumbing


def test_vendor_error_reads_problem_json() -> None:
    assert vendor_error(problem(409, "no_booking", "no booking")) == ("no_booking", "no booking")
    titled = httpx.Response(404, json={"title": "Not Found", "status": 404})
    assert vendor_error(titled) == (None, "Not Found")
    assert vendor_error(httpx.Response(503, text="busy")) == (None, "HTTP 503 Service Unavailable")


async def test_factory_builds_a_client_with_the_static_key(
    clock: ManualClock, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{API}/centers/c-1").respond(200, json=center())
    settings = AcaSettings(
        base_url=BASE,
        api_key=SecretStr("factory-key"),
        http=HttpSettings(rate_limit=RateLimit(per_second=0)),
    )
    async with build_aca(settings, clock=clock) as aca:
        assert (await aca.get_center("c-1")).id == "c-1"
    assert route.calls.last.request.headers["Authorization"] == "Bearer factory-key"
