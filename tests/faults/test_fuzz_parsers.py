"""Fuzzed answers: whatever bytes a list or feed answers, the clients raise nothing but doorfix's
own errors (a ContractError naming the place), and a run over fuzzed door-log pages completes
or fails cleanly (RunFailed), never with anything else.

The playbooks' diagnosis is fuzzed in ``tests/playbooks/test_properties.py``; this is the
decoding in front of it. No network: respx answers, or the sandbox in process.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import respx
from faultkit import DOOR_LOGS, EVENTS, make_world, rewrite
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from doorfix.agent.engine.run import RunFailed
from doorfix.clock import ManualClock
from doorfix.connectors._http import RateLimit, RetryPolicy
from doorfix.connectors.factory import (
    AcaSettings,
    Clients,
    CloudSettings,
    ClpSettings,
    HttpSettings,
    build_clients,
)
from doorfix.connectors.models.aca import Event, User
from doorfix.connectors.models.cloud import DoorLog
from doorfix.connectors.models.clp import Entry, Lock
from doorfix.errors import ConnectorError, ContractError, DoorfixError

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
CLOUD, ACA, CLP, IDP = (f"https://{s}.fuzz.test" for s in ("cloud", "aca", "clp", "idp"))
SITE = "5f0c5d8e-0000-4000-8000-000000000001"
#: requests one fuzzed list may take (paging the same answer must end long before)
MAX_REQUESTS = 50
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- JSON to fuzz

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)

DOOR_LOG = {
    "log_id": 7,
    "capture_time": 1794810000,
    "door_id": "d-1",
    "door_name": "Lobby",
    "device_model": "A08",
    "firmware": "1.2.3",
    "result": "failure",
    "detail": "Invalid Card",
    "credential_type": "card",
    "credential_value": "12345678",
    "personnel_id": "per-1",
    "visitor_id": None,
    "initiator": "Ann",
}
EVENT = {
    "id": "ev-1",
    "type": "tag_rejected",
    "occurred_at": "2026-11-16T07:00:00Z",
    "recorded_at": "2026-11-16T07:00:01Z",
    "user_id": "u-1",
    "lock_id": "l-1",
    "center_id": "c-1",
    "credential": "0012345678",
}
USER = {
    "id": "u-1",
    "name": "Ann",
    "email": "ann@example.test",
    "company_id": "co-1",
    "center_id": "c-1",
    "clp_user_id": "clp-1",
    "cloud_personnel_id": None,
    "tags": [{"number": "0012345678", "state": "assigned"}],
}
ENTRY = {
    "id": "en-1",
    "event_category": "lock_rejected",
    "event_detail": "no_access",
    "utc_date_time": "2026-11-16T07:00:00Z",
    "lock_id": "l-1",
    "iq_id": "iq-1",
    "collection_id": "col-1",
    "user_id": "clp-1",
    "user_alias": "Ann",
    "access_by": "tag",
    "key_id": None,
}
LOCK = {
    "id": "l-1",
    "customer_reference": "714",
    "lock_type": "cylinder",
    "online": True,
    "iq_link_state": "attached",
    "privacy_mode": False,
    "battery_level": "normal",
    "collection_id": "col-1",
    "iq": {"id": "iq-1", "revision": 2, "online": True},
    "last_event_utc": None,
}


@st.composite
def mutated(draw: st.DrawFn, template: dict[str, Any]) -> Any:
    """``template`` with a few keys dropped, retyped or added; sometimes not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(values)
    row = dict(template)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(template)) | st.text(max_size=6))
        if draw(st.booleans()):
            row.pop(key, None)
        else:
            row[key] = draw(values)
    return row


def page_of(template: dict[str, Any], envelope: Callable[[list[Any], Any], Any]) -> Any:
    """Bodies of one list: a page of mutated rows, any JSON at all, bytes, or a cut page."""
    rows = st.lists(mutated(template) | st.just(template), max_size=4)
    # the page's own field (a cursor, link or token): often text, sometimes anything
    noise = st.none() | st.text(max_size=10) | st.sampled_from(["cur-1", "\x80", ":::"]) | values
    pages = st.builds(envelope, rows, noise)
    as_json = st.one_of(pages, values).map(lambda body: json.dumps(body).encode())
    cut = st.tuples(pages, st.integers(0, 400)).map(lambda p: json.dumps(p[0]).encode()[: p[1]])
    return st.one_of(as_json, as_json, cut, st.binary(max_size=64))


def cloud_page(rows: list[Any], noise: Any) -> Any:
    page = {"total": len(rows), "page_index": 1, "items": rows}
    body: dict[str, Any] = {"success": True, "timestamp": 1794810000, "result": page}
    if isinstance(noise, dict) and noise:  # sometimes a page-level field goes wrong too
        key = sorted(noise)[0]
        (page if len(key) % 2 else body)[key[:1] or "total"] = noise[key]
    return body


def aca_page(rows: list[Any], noise: Any) -> Any:
    return {"data": rows, "next_cursor": noise if isinstance(noise, str) else None}


def event_page(rows: list[Any], noise: Any) -> Any:
    return {"data": rows, "next_cursor": noise if isinstance(noise, str) else "cur-1"}


def link_page(rows: list[Any], noise: Any) -> Any:
    link = noise if isinstance(noise, str) else None
    return {"items": rows, "next_page_link": link, "count": len(rows)}


def clp_page(rows: list[Any], noise: Any) -> Any:
    return {"items": rows, "continuation_token": noise if isinstance(noise, str) and rows else None}


# --------------------------------------------------------------------------- the clients


def clients(clock: ManualClock, router: respx.Router) -> Clients:
    http = HttpSettings(
        timeout=5.0,
        retry=RetryPolicy(attempts=2, max_elapsed=60),
        rate_limit=RateLimit(per_second=0, concurrency=4),
    )
    return build_clients(
        CloudSettings(CLOUD, "fuzz", SecretStr("cloud-secret"), http),
        AcaSettings(ACA, SecretStr("aca-key"), http),
        ClpSettings(CLP, IDP, "fuzz", SecretStr("clp-secret"), http),
        clock=clock,
        transport=httpx.MockTransport(router.async_handler),
    )


Reader = Callable[[Clients, Callable[[ContractError], None]], AsyncIterator[Any]]


async def read_all(body: bytes, reader: Reader, model: type, system: str) -> None:
    """Serve ``body`` for every request; the reader yields models or raises our errors only."""
    router = respx.Router(assert_all_called=False)
    router.post(f"{CLOUD}/oauth/token").respond(
        200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 1800}
    )
    router.post(f"{IDP}/connect/token").respond(
        200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600}
    )
    asked = [0]

    def answer(request: httpx.Request) -> httpx.Response:
        asked[0] += 1
        # the same page for every request: a client that keeps asking would never stop
        assert asked[0] <= MAX_REQUESTS, "the client keeps asking for the same page"
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    router.route().mock(side_effect=answer)
    skipped: list[ContractError] = []
    failure: DoorfixError | None = None
    async with clients(ManualClock(START), router) as c:
        try:
            async for item in reader(c, skipped.append):
                assert isinstance(item, model)
        except DoorfixError as exc:  # the only errors allowed out
            failure = exc
    if failure is not None:
        assert isinstance(failure, ConnectorError)
        assert failure.system == system
    for skip in skipped:
        assert skip.system == system
        assert skip.field is not None


def door_logs(c: Clients, skip: Callable[[ContractError], None]) -> AsyncIterator[DoorLog]:
    return c.cloud.iter_door_logs("p-1", START, on_skip=skip)


async def events(c: Clients, skip: Callable[[ContractError], None]) -> AsyncIterator[Event]:
    async for page in c.aca.event_pages(None, on_skip=skip):
        for event in page.data:
            yield event


def users(c: Clients, skip: Callable[[ContractError], None]) -> AsyncIterator[User]:
    return c.aca.find_users(email="ann@example.test", on_skip=skip)


def locks(c: Clients, skip: Callable[[ContractError], None]) -> AsyncIterator[Lock]:
    return c.clp.iter_locks(SITE, on_skip=skip)


def entries(c: Clients, skip: Callable[[ContractError], None]) -> AsyncIterator[Entry]:
    return c.clp.iter_entries(SITE, START, on_skip=skip)


@FUZZ
@given(body=page_of(DOOR_LOG, cloud_page))
async def test_cloud_door_log_pages(body: bytes) -> None:
    await read_all(body, door_logs, DoorLog, "cloud")


@FUZZ
@given(body=page_of(EVENT, event_page))
async def test_aca_event_pages(body: bytes) -> None:
    await read_all(body, events, Event, "aca")


@FUZZ
@given(body=page_of(USER, aca_page))
async def test_aca_list_pages(body: bytes) -> None:
    await read_all(body, users, User, "aca")


@FUZZ
@given(body=page_of(LOCK, link_page))
# found by this test: a relative link resolves anew from each page, so it never stood still
@example(body=b'{"items": [], "next_page_link": "0/", "count": 0}')
async def test_clp_list_pages(body: bytes) -> None:
    await read_all(body, locks, Lock, "clp")


@FUZZ
@given(body=page_of(ENTRY, clp_page))
async def test_clp_entry_pages(body: bytes) -> None:
    await read_all(body, entries, Entry, "clp")


# --------------------------------------------------------------------------- whole runs

#: what a run does to a page's rows: (row index, key or None for the whole row, new value)
Edits = list[tuple[int, str | None, Any]]
edits = st.lists(
    st.tuples(
        st.integers(0, 500),
        st.none() | st.sampled_from(sorted(DOOR_LOG)) | st.text(max_size=4),
        values,
    ),
    min_size=1,
    max_size=6,
)


def applying(plan: Edits, at: Callable[[Any], list[Any]]) -> Callable[[Any], bool]:
    def change(body: Any) -> bool:
        rows = at(body)
        if not rows:
            return False
        for index, key, value in plan:
            n = index % len(rows)
            if key is None:
                rows[n] = value
            elif isinstance(rows[n], dict):
                rows[n][key] = value
        return True

    return change


async def run_over(plan: Edits, playbook: str, pattern: dict[str, Any], method: str) -> None:
    at: Callable[[Any], list[Any]] = (
        (lambda b: b["result"]["items"]) if playbook == "door-logs" else (lambda b: b["data"])
    )
    w = make_world(routes=rewrite(method, applying(plan, at), times=None, **pattern))
    failed: RunFailed | None = None
    try:
        report = await w.run(playbook, dry_run=True)
        assert all(s.system in ("cloud", "aca", "clp") for s in report.skipped)
    except RunFailed as exc:  # the only way a run may end early
        failed = exc
    finally:
        await w.aclose()
    if failed is not None:
        assert isinstance(failed.__cause__, ConnectorError)


RUNS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Run = Callable[[Edits], Awaitable[None]]


@RUNS
@given(plan=edits)
async def test_a_door_logs_run_over_fuzzed_pages_never_crashes(plan: Edits) -> None:
    await run_over(plan, "door-logs", DOOR_LOGS, "POST")


@RUNS
@given(plan=edits)
async def test_an_aca_run_over_fuzzed_event_pages_never_crashes(plan: Edits) -> None:
    await run_over(plan, "aca-rejections", EVENTS, "GET")
