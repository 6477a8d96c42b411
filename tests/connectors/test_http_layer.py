"""The shared HTTP layer: error mapping, retries by rule, Retry-After, tokens, rate limit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr
from structlog.testing import capture_logs

from doorfix.clock import ManualClock
from doorfix.connectors._http import (
    CallRule,
    ClientCredentialsAuth,
    HttpLayer,
    RateLimit,
    RateLimiter,
    RetryPolicy,
    StaticKeyAuth,
    acting,
    in_background,
    parse_retry_after,
    waiting_since,
)
from doorfix.errors import (
    AuthError,
    ContractError,
    JournalError,
    PermanentError,
    TransientError,
)

BASE = "https://api.example.test"
TOKEN_URL = "https://id.example.test/connect/token"
SECRET = "s3cr3t-client-value"
START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def read_vendor(response: httpx.Response) -> tuple[str | None, str]:
    body = response.json()
    return body.get("ErrorCode"), body.get("Message", "")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=BASE, timeout=5.0) as c:
        yield c


def layer_with(
    client: httpx.AsyncClient,
    clock: ManualClock,
    *,
    auth: object | None = None,
    retry: RetryPolicy | None = None,
    rate: RateLimit | None = None,
) -> HttpLayer:
    return HttpLayer(
        system="clp",
        client=client,
        auth=auth or StaticKeyAuth(SecretStr("static-key-123")),  # type: ignore[arg-type]
        vendor_error=read_vendor,
        retry=retry or RetryPolicy(attempts=4, max_elapsed=600),
        rate_limit=rate or RateLimit(per_second=0, concurrency=8),
        clock=clock,
    )


def oauth(basic: bool = True) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        TOKEN_URL, "doorfix", SecretStr(SECRET), basic=basic, scope="user_api.full_access"
    )


async def test_success_sends_the_key_as_bearer(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    route = respx_mock.get(f"{BASE}/things").respond(200, json={"ok": True})
    response = await layer_with(client, clock).request("GET", "/things", endpoint="things")
    assert response.json() == {"ok": True}
    assert route.calls.last.request.headers["Authorization"] == "Bearer static-key-123"


async def test_read_retries_5xx_then_succeeds_in_clock_time(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    route = respx_mock.get(f"{BASE}/things").mock(
        side_effect=[
            httpx.Response(503, json={}),
            httpx.Response(502, json={}),
            httpx.Response(200, json=[]),
        ]
    )
    layer = layer_with(client, clock)
    with capture_logs() as logs:
        await layer.request("GET", "/things", endpoint="things")
    assert route.call_count == 3
    assert layer.stats.retries == 2
    assert clock.now() > START  # the back-off waited on the injected clock, not the wall
    retries = [e for e in logs if e["event"] == "http_retry"]
    assert [e["attempt"] for e in retries] == [1, 2]
    assert {e["status"] for e in retries} == {503, 502}


async def test_retries_exhausted_raise_transient_with_context(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    route = respx_mock.get(f"{BASE}/things").respond(
        500, json={"ErrorCode": "2201", "Message": "boom"}
    )
    with pytest.raises(TransientError) as info:
        await layer_with(client, clock).request("GET", "/things", endpoint="list_things")
    assert route.call_count == 4
    err = info.value
    assert (err.system, err.endpoint, err.status, err.code) == ("clp", "list_things", 500, "2201")
    assert "clp list_things" in str(err)


async def test_retry_after_seconds_is_honoured_exactly(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    respx_mock.get(f"{BASE}/things").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={}),
            httpx.Response(200, json={}),
        ]
    )
    await layer_with(client, clock).request("GET", "/things", endpoint="things")
    assert (clock.now() - START).total_seconds() == pytest.approx(7.0)


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Mon, 16 Nov 2026 08:00:30 GMT", START) == pytest.approx(30.0)
    assert parse_retry_after("garbage", START) is None
    assert parse_retry_after(None, START) is None


async def test_retry_after_beyond_the_time_budget_stops(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    route = respx_mock.get(f"{BASE}/things").respond(429, headers={"Retry-After": "3600"}, json={})
    layer = layer_with(client, clock, retry=RetryPolicy(attempts=5, max_elapsed=60))
    with pytest.raises(TransientError) as info:
        await layer.request("GET", "/things", endpoint="things")
    assert route.call_count == 1
    assert info.value.retry_after == 3600


async def test_unsafe_write_is_not_repeated_after_an_ambiguous_failure(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    route = respx_mock.post(f"{BASE}/renew").mock(side_effect=httpx.ReadError("reset"))
    with pytest.raises(TransientError) as info:
        await layer_with(client, clock).request(
            "POST", "/renew", endpoint="renew", rule=CallRule.UNSAFE
        )
    assert route.call_count == 1
    assert info.value.maybe_processed is True


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_unsafe_write_is_not_repeated_after_a_5xx(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock, status: int
) -> None:
    route = respx_mock.post(f"{BASE}/renew").respond(status, json={})
    with pytest.raises(TransientError):
        await layer_with(client, clock).request(
            "POST", "/renew", endpoint="renew", rule=CallRule.UNSAFE
        )
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(429, headers={"Retry-After": "1"}, json={}),
        httpx.Response(403, json={"ErrorCode": "2203", "Message": "blocked after a change"}),
        httpx.ConnectError("refused"),
    ],
    ids=["429", "clp-2203", "connect-error"],
)
async def test_unsafe_write_is_repeated_when_the_server_surely_did_not_act(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock, failure: object
) -> None:
    route = respx_mock.post(f"{BASE}/sync").mock(
        side_effect=[failure, httpx.Response(202, json={})]
    )
    response = await layer_with(client, clock).request(
        "POST", "/sync", endpoint="sync_access", rule=CallRule.UNSAFE
    )
    assert response.status_code == 202
    assert route.call_count == 2


async def test_idempotent_write_is_repeated_after_a_5xx(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    route = respx_mock.put(f"{BASE}/matrix").mock(
        side_effect=[
            httpx.Response(500, json={}),
            httpx.ReadError("reset"),
            httpx.Response(200, json={}),
        ]
    )
    await layer_with(client, clock).request(
        "PUT", "/matrix", endpoint="matrix", rule=CallRule.IDEMPOTENT
    )
    assert route.call_count == 3


@pytest.mark.parametrize(
    ("status", "code"), [(400, "1101"), (404, "2202"), (409, "2301"), (403, "2212")]
)
async def test_client_errors_are_permanent_and_not_retried(
    respx_mock: respx.MockRouter,
    client: httpx.AsyncClient,
    clock: ManualClock,
    status: int,
    code: str,
) -> None:
    route = respx_mock.get(f"{BASE}/things").respond(
        status, json={"ErrorCode": code, "Message": "no"}
    )
    with pytest.raises(PermanentError) as info:
        await layer_with(client, clock).request("GET", "/things", endpoint="things")
    assert route.call_count == 1
    assert (info.value.status, info.value.code) == (status, code)


async def test_garbage_error_body_still_maps_by_status(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    respx_mock.get(f"{BASE}/things").respond(404, text="<html>not json</html>")
    with pytest.raises(PermanentError) as info:
        await layer_with(client, clock).request("GET", "/things", endpoint="things")
    assert info.value.status == 404
    assert info.value.code is None


async def test_timeouts_are_transient(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    respx_mock.get(f"{BASE}/things").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError, match="timed out"):
        await layer_with(client, clock, retry=RetryPolicy(attempts=2)).request(
            "GET", "/things", endpoint="things"
        )


async def test_token_is_cached_until_near_expiry(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    token = respx_mock.post(TOKEN_URL).respond(
        200, json={"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}
    )
    api = respx_mock.get(f"{BASE}/things").respond(200, json={})
    layer = layer_with(client, clock, auth=oauth())
    for _ in range(3):
        await layer.request("GET", "/things", endpoint="things")
    assert token.call_count == 1
    request = token.calls.last.request
    assert request.headers["Authorization"].startswith("Basic ")
    assert b"scope=user_api.full_access" in request.content
    assert b"client_secret" not in request.content  # CLP sends the secret in Basic auth only
    assert api.calls.last.request.headers["Authorization"] == "Bearer tok-1"
    clock.advance(3600)
    await layer.request("GET", "/things", endpoint="things")
    assert token.call_count == 2


async def test_form_credentials_for_the_cloud(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    token = respx_mock.post(TOKEN_URL).respond(200, json={"access_token": "t", "expires_in": 1800})
    respx_mock.get(f"{BASE}/things").respond(200, json={})
    await layer_with(client, clock, auth=oauth(basic=False)).request("GET", "/things", endpoint="x")
    body = token.calls.last.request.content
    assert b"client_id=doorfix" in body
    assert b"grant_type=client_credentials" in body
    assert "Authorization" not in token.calls.last.request.headers


async def test_401_fetches_one_new_token_and_repeats_once(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    token = respx_mock.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "old", "expires_in": 3600}),
            httpx.Response(200, json={"access_token": "new", "expires_in": 3600}),
        ]
    )
    api = respx_mock.get(f"{BASE}/things").mock(
        side_effect=[
            httpx.Response(401, json={"ErrorCode": "1500", "Message": "expired"}),
            httpx.Response(200, json={}),
        ]
    )
    await layer_with(client, clock, auth=oauth()).request("GET", "/things", endpoint="things")
    assert token.call_count == 2
    assert [c.request.headers["Authorization"] for c in api.calls] == ["Bearer old", "Bearer new"]


async def test_second_401_is_an_auth_error(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    respx_mock.post(TOKEN_URL).respond(200, json={"access_token": "t", "expires_in": 3600})
    api = respx_mock.get(f"{BASE}/things").respond(401, json={"ErrorCode": "1500", "Message": "no"})
    with pytest.raises(AuthError) as info:
        await layer_with(client, clock, auth=oauth()).request("GET", "/things", endpoint="things")
    assert api.call_count == 2
    assert (info.value.status, info.value.code) == (401, "1500")


async def test_static_key_401_is_final(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    api = respx_mock.get(f"{BASE}/things").respond(
        401, json={"ErrorCode": None, "Message": "bad key"}
    )
    with pytest.raises(AuthError):
        await layer_with(client, clock).request("GET", "/things", endpoint="things")
    assert api.call_count == 1


@pytest.mark.parametrize("status", [400, 401])
async def test_bad_client_credentials_are_an_auth_error(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock, status: int
) -> None:
    respx_mock.post(TOKEN_URL).respond(status, json={"error": "invalid_client"})
    with pytest.raises(AuthError) as info:
        await layer_with(client, clock, auth=oauth()).request("GET", "/things", endpoint="things")
    assert info.value.endpoint == "token"


async def test_token_endpoint_outage_lets_even_an_unsafe_write_retry(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    respx_mock.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(503, json={}),
            httpx.Response(200, json={"access_token": "t", "expires_in": 60}),
        ]
    )
    write = respx_mock.post(f"{BASE}/renew").respond(200, json={})
    await layer_with(client, clock, auth=oauth()).request(
        "POST", "/renew", endpoint="renew", rule=CallRule.UNSAFE
    )
    assert write.call_count == 1


async def test_token_response_without_token_is_a_contract_error(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    respx_mock.post(TOKEN_URL).respond(200, json={"token_type": "Bearer"})
    with pytest.raises(ContractError) as info:
        await layer_with(client, clock, auth=oauth()).request("GET", "/things", endpoint="things")
    assert info.value.field == "access_token"


async def test_secrets_never_reach_logs_errors_or_reprs(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    respx_mock.post(TOKEN_URL).respond(
        200, json={"access_token": "tok-visible-nowhere", "expires_in": 3600}
    )
    respx_mock.get(f"{BASE}/things").respond(503, json={"ErrorCode": "2201", "Message": "down"})
    auth = oauth()
    layer = layer_with(client, clock, auth=auth)
    with capture_logs() as logs, pytest.raises(TransientError) as info:
        await layer.request("GET", "/things", endpoint="things")
    text = " ".join([repr(logs), str(info.value), repr(info.value), repr(auth), repr(layer)])
    assert SECRET not in text
    assert "tok-visible-nowhere" not in text
    assert logs  # the retries were logged, just without secrets


async def test_rate_limit_spaces_requests_in_clock_time(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    respx_mock.get(f"{BASE}/things").respond(200, json={})
    layer = layer_with(client, clock, rate=RateLimit(per_second=2, concurrency=8))
    for _ in range(5):
        await layer.request("GET", "/things", endpoint="things")
    # 5 requests at 2/s: the 5th may start 2 s after the first
    assert (clock.now() - START).total_seconds() == pytest.approx(2.0)


async def test_concurrency_cap(
    respx_mock: respx.MockRouter, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    in_flight = 0
    peak = 0
    release = asyncio.Event()
    reached = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 2:
            reached.set()
        await release.wait()
        in_flight -= 1
        return httpx.Response(200, json={})

    respx_mock.get(f"{BASE}/things").mock(side_effect=slow)
    layer = layer_with(client, clock, rate=RateLimit(per_second=0, concurrency=2))
    tasks = [asyncio.create_task(layer.request("GET", "/things", endpoint="t")) for _ in range(6)]
    async with asyncio.timeout(5):
        await reached.wait()
    for _ in range(10):  # give the other four every chance to slip past the cap
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 2


# --------------------------------------------------------------------------- size, encodings


async def _streamed(data: bytes) -> AsyncIterator[bytes]:
    """A body httpx has not read: what a network answer is."""
    for at in range(0, len(data), 4096):
        yield data[at : at + 4096]


def _encoded(body: bytes, encoding: str) -> bytes:
    import gzip
    import zlib

    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "raw-deflate":
        packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return packer.compress(body) + packer.flush()
    return body


@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate", "raw-deflate"])
async def test_answers_are_inflated_within_the_limit(clock: ManualClock, encoding: str) -> None:
    body = b'{"rows": ["' + b"x" * 50_000 + b'"]}'
    header = "deflate" if encoding == "raw-deflate" else encoding

    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=_streamed(_encoded(body, encoding)), headers={"Content-Encoding": header}
        )

    async with httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(answer)) as c:
        layer = HttpLayer(
            system="clp",
            client=c,
            auth=StaticKeyAuth(SecretStr("static-key-123")),
            vendor_error=read_vendor,
            clock=clock,
            max_response_bytes=60_000,
        )
        response = await layer.request("GET", "/rows", endpoint="rows")
        assert response.json()["rows"][0] == "x" * 50_000
        small = HttpLayer(
            system="clp",
            client=c,
            auth=StaticKeyAuth(SecretStr("static-key-123")),
            vendor_error=read_vendor,
            clock=clock,
            max_response_bytes=40_000,
        )
        with pytest.raises(ContractError, match="max_response_bytes") as caught:
            await small.request("GET", "/rows", endpoint="rows")
    assert caught.value.endpoint == "rows"


async def test_an_encoding_doorfix_did_not_ask_for_is_a_contract_error(clock: ManualClock) -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=_streamed(b"\x00\x01"), headers={"Content-Encoding": "br"}
        )

    async with httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(answer)) as c:
        layer = layer_with(c, clock)
        with pytest.raises(ContractError, match="unsupported encoding"):
            await layer.request("GET", "/rows", endpoint="rows")


async def test_a_vendor_echoing_the_key_in_an_error_has_it_redacted(clock: ManualClock) -> None:
    key = "k3y/with+sp=cial&chars"

    def answer(request: httpx.Request) -> httpx.Response:
        echoed = request.headers["Authorization"]
        from urllib.parse import quote

        message = f"bad {echoed} ({quote(key, safe='')})"
        return httpx.Response(403, json={"ErrorCode": "E1", "Message": message})

    async with httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(answer)) as c:
        from doorfix.redact import SecretRedactor

        redactor = SecretRedactor()
        redactor.add(key)
        layer = HttpLayer(
            system="clp",
            client=c,
            auth=StaticKeyAuth(SecretStr(key)),
            vendor_error=read_vendor,
            clock=clock,
            redactor=redactor,
        )
        with pytest.raises(PermanentError) as caught:
            await layer.request("GET", "/rows", endpoint="rows")
    text = str(caught.value)
    assert key not in text
    assert "k3y%2Fwith" not in text
    assert "***" in text


# --------------------------------------------------------------------------- a fleet's pace


async def test_a_shared_pace_gives_each_request_its_turn(clock: ManualClock) -> None:
    limiter = RateLimiter(RateLimit(per_second=10, concurrency=8), clock)
    asked: list[tuple[datetime, float]] = []

    async def slot(now: datetime, gap: float) -> datetime:
        asked.append((now, gap))
        return now + timedelta(seconds=3)  # other replicas hold the next 3 s of turns

    limiter.share(slot)
    await limiter.acquire()
    limiter.release()
    assert asked == [(START, 0.1)]
    assert clock.now() == START + timedelta(seconds=3)


async def test_without_the_pace_s_database_a_process_spaces_its_own_requests(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(RateLimit(per_second=10, concurrency=8), clock)

    async def gone(now: datetime, gap: float) -> datetime:
        raise JournalError("journal postgresql://db/doorfix: connection refused")

    limiter.share(gone)
    with capture_logs() as logs:
        for _ in range(3):
            await limiter.acquire()
            limiter.release()
    assert clock.now() == START + timedelta(seconds=0.2)
    assert [e["event"] for e in logs] == ["shared_pace_unavailable"] * 3


async def test_a_request_cancelled_while_it_waits_for_its_turn_gives_its_slot_back(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(RateLimit(per_second=10, concurrency=1), clock)
    never = asyncio.Event()

    async def stuck(now: datetime, gap: float) -> datetime:
        await never.wait()
        return now

    limiter.share(stuck)
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    async def free(now: datetime, gap: float) -> datetime:
        return now

    limiter.share(free)
    await asyncio.wait_for(limiter.acquire(), 5)  # the one slot is free again
    limiter.release()


# --------------------------------------------------------------------------- the queue's order


def _gated(clock: ManualClock) -> tuple[RateLimiter, asyncio.Event, list[str]]:
    """A limiter whose turns wait for the gate (requests queue behind the head meanwhile),
    the gate, and the order their turns came in (each request notes its own)."""
    limiter = RateLimiter(RateLimit(per_second=10, concurrency=8), clock)
    gate = asyncio.Event()

    async def slot(now: datetime, gap: float) -> datetime:
        await gate.wait()
        return now

    limiter.share(slot)
    return limiter, gate, []


async def _queued_behind_a_stuck_head(
    limiter: RateLimiter, order: list[str]
) -> dict[str, asyncio.Task[None]]:
    """``head`` holds the queue (its turn waits for the gate, see :func:`_gated`); the others
    queue behind it."""

    async def request(name: str, *, ahead: bool = False) -> None:
        with acting(ahead):
            await limiter.acquire()
        order.append(name)
        limiter.release()

    tasks = {"head": asyncio.create_task(request("head"))}
    for name, ahead in (("read-1", False), ("read-2", False), ("write", True), ("read-3", False)):
        await asyncio.sleep(0)
        tasks[name] = asyncio.create_task(request(name, ahead=ahead))
    await asyncio.sleep(0)
    return tasks


async def test_an_action_s_request_goes_ahead_of_the_reads_queued_before_it(
    clock: ManualClock,
) -> None:
    limiter, gate, order = _gated(clock)
    tasks = await _queued_behind_a_stuck_head(limiter, order)
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks.values()), 5)
    # the write queued after two reads takes the first turn after the head; reads keep
    # their order among themselves
    assert order == ["head", "write", "read-1", "read-2", "read-3"]


async def test_writes_queue_by_the_wait_of_the_person_they_act_for(clock: ManualClock) -> None:
    """Among queued writes the longest-waiting person's go first; a write for nobody waiting
    (a scan's finding) after them; first come among equals, and every read after them."""
    limiter, gate, order = _gated(clock)

    async def request(name: str, minutes: int | None, *, ahead: bool = True) -> None:
        since = None if minutes is None else START - timedelta(minutes=minutes)
        with acting(ahead), waiting_since(since):
            await limiter.acquire()
        order.append(name)
        limiter.release()

    queued = (
        ("head", 0),
        ("read-old", 9, False),
        ("scan", None),
        ("waited-1", 1),
        ("waited-5", 5),
        ("waited-5-again", 5),
        ("waited-3", 3),
    )
    tasks = []
    for name, minutes, *read in queued:
        tasks.append(asyncio.create_task(request(name, minutes, ahead=not read)))
        await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [
        "head",
        "waited-5",
        "waited-5-again",
        "waited-3",
        "waited-1",
        "scan",
        "read-old",
    ]


async def test_reads_queue_by_the_wait_of_the_person_they_read_for(clock: ManualClock) -> None:
    """Among queued reads the longest-waiting person's facts go first; a read for nobody in
    particular (a feed's page) waits from when it was queued: behind the people refused
    before then, ahead of those refused after; writes still go before every read."""
    limiter, gate, order = _gated(clock)

    async def request(name: str, refused: datetime | None, *, ahead: bool = False) -> None:
        with acting(ahead), waiting_since(refused):
            await limiter.acquire()
        order.append(name)
        limiter.release()

    tasks = [asyncio.create_task(request("head", None))]
    await asyncio.sleep(0)
    queued = (
        ("refused-1-min-ago", START - timedelta(minutes=1), False),
        ("feed-page", None, False),  # queued at START
        ("refused-5-min-ago", START - timedelta(minutes=5), False),
        ("refused-after-the-feed-page", START + timedelta(seconds=30), False),
        ("write", START, True),
    )
    for name, refused, ahead in queued:
        tasks.append(asyncio.create_task(request(name, refused, ahead=ahead)))
        await asyncio.sleep(0)
    clock.advance(timedelta(minutes=1))
    tasks.append(asyncio.create_task(request("feed-page-later", None)))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [
        "head",
        "write",
        "refused-5-min-ago",
        "refused-1-min-ago",
        "feed-page",
        "refused-after-the-feed-page",
        "feed-page-later",
    ]


async def test_background_reads_wait_behind_every_other_request(clock: ManualClock) -> None:
    """A scan's reads (nobody waits for them at a door) queue behind the reads and writes
    queued after them; first come among themselves; a write made inside still goes first."""
    limiter, gate, order = _gated(clock)

    async def request(name: str, *, background: bool = False, ahead: bool = False) -> None:
        with acting(ahead), in_background() if background else contextlib.nullcontext():
            await limiter.acquire()
        order.append(name)
        limiter.release()

    queued: tuple[tuple[str, dict[str, bool]], ...] = (
        ("head", {}),
        ("scan-1", {"background": True}),
        ("scan-2", {"background": True}),
        ("person-read", {}),
        ("scan-write", {"background": True, "ahead": True}),
        ("verification-read", {}),
    )
    tasks = []
    for name, how in queued:
        tasks.append(asyncio.create_task(request(name, **how)))
        await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [
        "head",
        "scan-write",
        "person-read",
        "verification-read",
        "scan-1",
        "scan-2",
    ]


async def test_a_request_cancelled_in_the_queue_hands_its_place_on(clock: ManualClock) -> None:
    limiter, gate, order = _gated(clock)
    tasks = await _queued_behind_a_stuck_head(limiter, order)
    tasks["write"].cancel()
    tasks["read-1"].cancel()
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks.values(), return_exceptions=True), 5)
    assert order == ["head", "read-2", "read-3"]
    await asyncio.wait_for(limiter.acquire(), 5)  # nothing left holding the queue
    limiter.release()
