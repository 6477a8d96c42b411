"""ClpClient against respx: bare arrays, next_page_link, continuation tokens, Sync Access."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from doorfix.clock import ManualClock
from doorfix.connectors._http import ClientCredentialsAuth, HttpLayer, RateLimit, RetryPolicy
from doorfix.connectors._paging import MAX_EMPTY_PAGES
from doorfix.connectors.clp import CONTINUATION_HEADER, ClpClient, vendor_error
from doorfix.connectors.factory import ClpSettings, HttpSettings, build_clp
from doorfix.errors import AuthError, ContractError, PermanentError, TransientError

BASE = "https://clp.example.test"
IDENTITY = "https://identity.example.test"
TOKEN_URL = f"{IDENTITY}/connect/token"
SITE = "5f0c5d8e-0000-4000-8000-000000000001"
SITES = f"{BASE}/v1.2/sites"
START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def clp_error(status: int, code: str, message: str = "refused", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"ErrorCode": code, "Message": message, **extra})


def lock(lock_id: str = "l-3", **changes: Any) -> dict[str, Any]:
    row = {
        "id": lock_id,
        "customer_reference": "714 door",
        "lock_type": "escutcheon",
        "online": True,
        "iq_link_state": "attached_pending",
        "privacy_mode": False,
        "battery_level": "normal",
        "collection_id": "col-1",
        "iq": {"id": "iq-1", "revision": 1, "online": True},
        "last_event_utc": None,
    }
    row.update(changes)
    return row


def site_user(n: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": f"su-{n}",
        "user": {"id": f"clp-u-{n}"},
        "alias": f"User {n}",
        "subscription_state": "subscribed",
        "blocked": False,
    }
    row.update(changes)
    return row


def entry(n: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": f"en-{n}",
        "event_category": "lock_rejected",
        "event_detail": "no_access",
        "utc_date_time": f"2026-11-16T07:{n:02d}:00Z",
        "lock_id": "l-3",
        "iq_id": "iq-1",
        "collection_id": "col-1",
        "user_id": "clp-u-7",
        "user_alias": "Ann",
        "access_by": "tag",
        "key_id": "k-1",
    }
    row.update(changes)
    return row


def links(items: list[Any], next_link: str | None) -> httpx.Response:
    body = {"items": items, "next_page_link": next_link, "count": 99}
    return httpx.Response(200, json=body)


def tokens(items: list[Any], token: str | None) -> httpx.Response:
    return httpx.Response(200, json={"items": items, "continuation_token": token})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def token_route(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.post(TOKEN_URL).respond(
        200, json={"access_token": "clp-tok", "token_type": "Bearer", "expires_in": 3600}
    )


def make_client(clock: ManualClock, *, page_size: int = 1000) -> ClpClient:
    layer = HttpLayer(
        system="clp",
        client=httpx.AsyncClient(base_url=BASE, timeout=5.0),
        auth=ClientCredentialsAuth(
            TOKEN_URL,
            "doorfix",
            SecretStr("clp-secret-value"),
            basic=True,
            scope="user_api.full_access",
        ),
        vendor_error=vendor_error,
        retry=RetryPolicy(attempts=4, max_elapsed=600.0),
        rate_limit=RateLimit(per_second=0, concurrency=4),
        clock=clock,
    )
    return ClpClient(layer, page_size=page_size)


@pytest.fixture
async def clp(clock: ManualClock, token_route: respx.Route) -> AsyncIterator[ClpClient]:
    async with make_client(clock) as client:
        yield client


# --------------------------------------------------------------------------- bare arrays


async def test_sites_are_a_bare_array(
    clp: ClpClient, respx_mock: respx.MockRouter, token_route: respx.Route
) -> None:
    route = respx_mock.get(SITES).respond(
        200,
        json=[{"id": SITE, "site_uid": "1042", "customer_reference": "Center One",
               "time_zone": "Europe/Oslo"}],
    )  # fmt: skip
    sites = [s async for s in clp.iter_sites()]
    assert [(s.id, s.site_uid) for s in sites] == [(SITE, "1042")]
    assert route.calls.last.request.headers["Authorization"] == "Bearer clp-tok"
    token_request = token_route.calls.last.request
    expected = base64.b64encode(b"doorfix:clp-secret-value").decode()
    assert token_request.headers["Authorization"] == f"Basic {expected}"
    assert dict(httpx.QueryParams(token_request.content.decode())) == {
        "grant_type": "client_credentials",
        "scope": "user_api.full_access",
    }


async def test_site_users_skip_a_malformed_member(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{SITES}/{SITE}/users").respond(
        200, json=[site_user(1), site_user(2, user={}), site_user(3)]
    )
    skipped: list[ContractError] = []
    users = [u async for u in clp.iter_site_users(SITE, on_skip=skipped.append)]
    assert [u.user.id for u in users] == ["clp-u-1", "clp-u-3"]
    assert [(e.system, e.endpoint, e.field) for e in skipped] == [
        ("clp", "list_site_users", "items.1.user.id")
    ]


async def test_a_bare_array_that_is_not_an_array_is_a_contract_error(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(SITES).respond(200, json={"items": []})
    with pytest.raises(ContractError) as caught:
        [s async for s in clp.iter_sites()]
    assert (caught.value.system, caught.value.endpoint) == ("clp", "list_sites")


# --------------------------------------------------------------------------- next_page_link


async def test_locks_follow_absolute_next_page_links(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    first = respx_mock.get(f"{SITES}/{SITE}/locks", params={"$top": "1000"}).mock(
        return_value=links([lock("l-1")], f"{BASE}/v1.2/sites/{SITE}/locks?page=2&size=1")
    )
    second = respx_mock.get(f"{SITES}/{SITE}/locks", params={"page": "2"}).mock(
        return_value=links([lock("l-2", last_event_utc="2026-11-16T07:59:59Z")], None)
    )
    locks = [item async for item in clp.iter_locks(SITE)]

    assert [item.id for item in locks] == ["l-1", "l-2"]
    assert locks[0].iq.revision == 1
    assert locks[0].iq_link_state == "attached_pending"
    assert locks[1].last_event_utc == datetime(2026, 11, 16, 7, 59, 59, tzinfo=UTC)
    assert dict(first.calls.last.request.url.params) == {"$top": "1000"}
    # the link is followed as given, its own query and nothing added
    assert dict(second.calls.last.request.url.params) == {"page": "2", "size": "1"}
    assert second.calls.last.request.headers["Authorization"] == "Bearer clp-tok"


async def test_a_next_page_link_to_another_host_is_refused(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{SITES}/{SITE}/locks").mock(
        return_value=links([lock("l-1")], f"https://evil.example.test/v1.2/sites/{SITE}/locks")
    )
    with pytest.raises(ContractError) as caught:
        [item async for item in clp.iter_locks(SITE)]
    assert (caught.value.endpoint, caught.value.field) == ("list_locks", "next_page_link")


async def test_keys_groups_and_members(clp: ClpClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{SITES}/{SITE}/users/su-7/keys").mock(
        return_value=links(
            [{"id": "k-1", "key_type": "tag", "key_identifier": "0012345678",
              "blocked": False, "expiry_date": None}], None
        )
    )  # fmt: skip
    respx_mock.get(f"{SITES}/{SITE}/access_groups").mock(
        return_value=links(
            [{"id": "ag-1", "customer_reference": "714", "lock_ids": ["l-3"],
              "time_schedules": [{"monday": True, "tuesday": True, "wednesday": True,
                                  "thursday": True, "friday": True, "saturday": False,
                                  "sunday": False, "start_time": "07:00:00",
                                  "end_time": "19:30:00"}]}], None
        )
    )  # fmt: skip
    respx_mock.get(f"{SITES}/{SITE}/access_groups/ag-1/users").mock(
        return_value=links([{"user_id": "clp-u-7"}, {"user_id": "clp-u-8"}], None)
    )
    keys = [k async for k in clp.iter_keys(SITE, "su-7")]
    groups = [g async for g in clp.iter_access_groups(SITE)]
    members = [m.user_id async for m in clp.iter_access_group_users(SITE, "ag-1")]
    assert (keys[0].key_type, keys[0].expiry_date) == ("tag", None)
    schedule = groups[0].time_schedules[0]
    assert (schedule.saturday, schedule.start_time, schedule.end_time) == (
        False,
        time(7, 0),
        time(19, 30),
    )
    assert members == ["clp-u-7", "clp-u-8"]


async def test_get_lock_and_iq(clp: ClpClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{SITES}/{SITE}/locks/l-3").respond(200, json=lock(privacy_mode=True))
    respx_mock.get(f"{SITES}/{SITE}/iqs/iq-1").respond(
        200,
        json={"id": "iq-1", "mac": "00:0A:95:9D:68:16", "revision": 2, "online": False,
              "collection_id": "col-1", "last_heartbeat_utc": "2026-11-16T06:00:00Z",
              "lock_ids": ["l-3"]},
    )  # fmt: skip
    assert (await clp.get_lock(SITE, "l-3")).privacy_mode
    iq = await clp.get_iq(SITE, "iq-1")
    assert (iq.online, iq.revision, iq.lock_ids) == (False, 2, ("l-3",))


async def test_a_lock_without_its_iq_is_a_contract_error(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    body = lock()
    del body["iq"]
    respx_mock.get(f"{SITES}/{SITE}/locks/l-3").respond(200, json=body)
    with pytest.raises(ContractError) as caught:
        await clp.get_lock(SITE, "l-3")
    assert (caught.value.system, caught.value.endpoint, caught.value.field) == (
        "clp",
        "get_lock",
        "iq",
    )


async def test_an_unknown_revision_is_a_contract_error(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{SITES}/{SITE}/locks/l-3").respond(
        200, json=lock(iq={"id": "iq-1", "revision": "2", "online": True})
    )
    with pytest.raises(ContractError) as caught:
        await clp.get_lock(SITE, "l-3")
    assert caught.value.field == "iq.revision"


# --------------------------------------------------------------------------- continuation


async def test_entries_continue_through_an_empty_page_with_a_token(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{BASE}/v1.1/sites/{SITE}/entries").mock(
        side_effect=[
            tokens([entry(1), entry(2)], '{"after":"07:02","n":1}'),
            tokens([], '{"after":"07:02","n":2}'),
            tokens([entry(3)], None),
        ]
    )
    since = datetime(2026, 11, 16, 7, 0, 0, 750000, tzinfo=UTC)
    entries = [e async for e in clp.iter_entries(SITE, since)]

    assert [e.id for e in entries] == ["en-1", "en-2", "en-3"]
    assert entries[0].utc_date_time == datetime(2026, 11, 16, 7, 1, tzinfo=UTC)
    first, second, third = (call.request for call in route.calls)
    assert dict(first.url.params) == {
        "$filter": "utc_date_time ge 2026-11-16T07:00:00Z",
        "$orderby": "utc_date_time asc",
        "$top": "1000",
    }
    assert CONTINUATION_HEADER not in first.headers
    # later calls repeat the path only, with the token as a header
    assert second.url.query == b""
    assert second.headers[CONTINUATION_HEADER] == '{"after":"07:02","n":1}'
    assert third.headers[CONTINUATION_HEADER] == '{"after":"07:02","n":2}'


async def test_a_feed_of_endless_empty_pages_is_a_contract_error(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{BASE}/v1.1/sites/{SITE}/entries").mock(
        side_effect=lambda _request: tokens([], '{"stuck":true}')
    )
    with pytest.raises(ContractError) as caught:
        [e async for e in clp.iter_entries(SITE, START)]
    assert (caught.value.endpoint, caught.value.field) == ("entries", "continuation_token")
    assert route.call_count == MAX_EMPTY_PAGES + 1


async def test_incidents_keep_open_types(clp: ClpClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v1.1/sites/{SITE}/incidents").mock(
        return_value=tokens(
            [{"id": "in-1", "type": "lock_time_set", "utc_date_time": "2026-11-16T07:00:00Z",
              "lock": {"id": "l-3"}, "iq": None},
             {"id": "in-2", "type": "firmware_updated", "utc_date_time": "2026-11-16T07:05:00Z",
              "lock": None, "iq": {"id": "iq-1"}}],
            None,
        )
    )  # fmt: skip
    incidents = [i async for i in clp.iter_incidents(SITE, START - timedelta(hours=1))]
    assert [(i.type, i.lock.id if i.lock else None) for i in incidents] == [
        ("lock_time_set", "l-3"),
        ("firmware_updated", None),
    ]


async def test_a_malformed_entry_is_skipped(clp: ClpClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v1.1/sites/{SITE}/entries").mock(
        return_value=tokens([entry(1, access_by="telepathy"), entry(2)], None)
    )
    skipped: list[ContractError] = []
    entries = [e.id async for e in clp.iter_entries(SITE, START, on_skip=skipped.append)]
    assert entries == ["en-2"]
    assert [(e.endpoint, e.field) for e in skipped] == [("entries", "items.0.access_by")]


async def test_an_entry_without_a_timezone_is_a_contract_error(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{BASE}/v1.1/sites/{SITE}/entries").mock(
        return_value=tokens([entry(1, utc_date_time="2026-11-16T07:00:00")], None)
    )
    skipped: list[ContractError] = []
    assert [e async for e in clp.iter_entries(SITE, START, on_skip=skipped.append)] == []
    assert [e.field for e in skipped] == ["items.0.utc_date_time"]


# --------------------------------------------------------------------------- Larry


async def test_larry_access(clp: ClpClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/larry/v1/sites/{SITE}/access").respond(
        200,
        json={"user_id": "clp-u-7", "lock_id": "l-3", "status": "denied",
              "reason": "no_access_group", "access_group_ids": []},
    )  # fmt: skip
    access = await clp.larry_access(SITE, "clp-u-7", "l-3")
    assert (access.status, access.reason) == ("denied", "no_access_group")
    assert dict(route.calls.last.request.url.params) == {"user_id": "clp-u-7", "lock_id": "l-3"}


def sync_url(collection: str = "col-1") -> str:
    return f"{BASE}/larry/v1/sites/{SITE}/collections/{collection}/sync_access"


async def test_sync_access_starts_a_job(clp: ClpClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(sync_url()).respond(202, json={"job_id": "job-1", "state": "queued"})
    ref = await clp.sync_access(SITE, "col-1")
    assert (ref.job_id, ref.collection_id, ref.adopted) == ("job-1", "col-1", False)
    assert route.call_count == 1


async def test_sync_access_adopts_the_running_job(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(sync_url()).mock(
        return_value=clp_error(409, "2301", "a Sync Access is already running", job_id="job-0")
    )
    ref = await clp.sync_access(SITE, "col-1")
    assert (ref.job_id, ref.adopted) == ("job-0", True)
    assert route.call_count == 1


async def test_sync_access_409_without_job_id_is_a_contract_error(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(sync_url()).mock(return_value=clp_error(409, "2301", "running"))
    with pytest.raises(ContractError) as caught:
        await clp.sync_access(SITE, "col-1")
    assert (caught.value.endpoint, caught.value.field) == ("sync_access", "job_id")


async def test_sync_access_waits_out_2203(
    clp: ClpClient, respx_mock: respx.MockRouter, clock: ManualClock
) -> None:
    route = respx_mock.post(sync_url()).mock(
        side_effect=[
            clp_error(403, "2203", "operation cannot be executed"),
            clp_error(403, "2203", "operation cannot be executed"),
            httpx.Response(202, json={"job_id": "job-2", "state": "queued"}),
        ]
    )
    before = clock.now()
    ref = await clp.sync_access(SITE, "col-1")
    assert (ref.job_id, ref.adopted) == ("job-2", False)
    assert route.call_count == 3
    assert clock.now() > before


async def test_sync_access_is_not_resent_when_the_outcome_is_unknown(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(sync_url()).mock(return_value=clp_error(500, "2201", "internal"))
    with pytest.raises(TransientError) as caught:
        await clp.sync_access(SITE, "col-1")
    assert (caught.value.status, caught.value.code) == (500, "2201")
    assert route.call_count == 1


async def test_get_sync_job(clp: ClpClient, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/larry/v1/sites/{SITE}/sync_jobs/job-1").respond(
        200,
        json={"job_id": "job-1", "collection_id": "col-1", "state": "failed",
              "error": "iq_offline", "created_utc": "2026-11-16T07:00:00Z",
              "finished_utc": "2026-11-16T07:00:30Z"},
    )  # fmt: skip
    job = await clp.get_sync_job(SITE, "job-1")
    assert (job.state, job.error) == ("failed", "iq_offline")
    assert job.finished_utc == datetime(2026, 11, 16, 7, 0, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "code"), [(404, "2202"), (400, "1102"), (403, "2212"), (400, "1101")]
)
async def test_clp_refusals_are_permanent(
    clp: ClpClient, respx_mock: respx.MockRouter, status: int, code: str
) -> None:
    route = respx_mock.get(f"{SITES}/{SITE}/locks/l-9").mock(
        return_value=clp_error(status, code, "refused by CLP")
    )
    with pytest.raises(PermanentError) as caught:
        await clp.get_lock(SITE, "l-9")
    error = caught.value
    assert (error.system, error.endpoint, error.status, error.code) == (
        "clp",
        "get_lock",
        status,
        code,
    )
    assert route.call_count == 1


async def test_numeric_error_codes_are_read_as_text(
    clp: ClpClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{SITES}/{SITE}/locks/l-9").respond(
        404, json={"ErrorCode": 2202, "Message": "not found"}
    )
    with pytest.raises(PermanentError) as caught:
        await clp.get_lock(SITE, "l-9")
    assert caught.value.code == "2202"


async def test_reads_retry_2203_and_5xx(clp: ClpClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{SITES}/{SITE}/locks/l-3").mock(
        side_effect=[
            clp_error(403, "2203"),
            clp_error(500, "2201"),
            httpx.RemoteProtocolError("dropped"),
            httpx.Response(200, json=lock()),
        ]
    )
    assert (await clp.get_lock(SITE, "l-3")).id == "l-3"
    assert route.call_count == 4


async def test_expired_token_is_refreshed_once(
    clp: ClpClient, respx_mock: respx.MockRouter, token_route: respx.Route
) -> None:
    respx_mock.get(f"{SITES}/{SITE}/locks/l-3").mock(
        side_effect=[clp_error(401, "1500", "unauthorized"), httpx.Response(200, json=lock())]
    )
    assert (await clp.get_lock(SITE, "l-3")).id == "l-3"
    assert token_route.call_count == 2


async def test_refused_client_is_an_auth_error(
    clock: ManualClock, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(TOKEN_URL).respond(400, json={"error": "invalid_client"})
    async with make_client(clock) as clp:
        with pytest.raises(AuthError) as caught:
            await clp.get_lock(SITE, "l-3")
    assert (caught.value.system, caught.value.endpoint) == ("clp", "token")


def test_vendor_error_reads_clp_bodies() -> None:
    assert vendor_error(clp_error(404, "2202", "not found")) == ("2202", "not found")
    running = clp_error(409, "2301", "running", job_id="job-9")
    assert vendor_error(running) == ("2301", "running [job_id=job-9]")
    assert vendor_error(httpx.Response(502, text="bad")) == (None, "HTTP 502 Bad Gateway")


async def test_factory_builds_a_client_with_basic_auth_and_scope(
    clock: ManualClock, respx_mock: respx.MockRouter, token_route: respx.Route
) -> None:
    respx_mock.get(f"{SITES}/{SITE}/locks/l-3").respond(200, json=lock())
    settings = ClpSettings(
        base_url=BASE,
        identity_url=IDENTITY,
        client_id="factory-id",
        client_secret=SecretStr("factory-secret"),
        http=HttpSettings(rate_limit=RateLimit(per_second=0)),
    )
    async with build_clp(settings, clock=clock) as clp:
        assert (await clp.get_lock(SITE, "l-3")).id == "l-3"
    expected = base64.b64encode(b"factory-id:factory-secret").decode()
    assert token_route.calls.last.request.headers["Authorization"] == f"Basic {expected}"
