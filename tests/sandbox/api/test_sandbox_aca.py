"""The ACA API of the sandbox against contract/aca.md: every endpoint, cursors, problems."""

from __future__ import annotations

from typing import Any

import pytest
from contract_shapes import (
    ACA_ACCESS,
    ACA_BOOKING,
    ACA_CENTER,
    ACA_EVENTS,
    ACA_INVENTORY,
    ACA_MATRIX_ANSWER,
    ACA_MOBILE_KEY,
    ACA_PROBLEM,
    ACA_USER,
    ACA_VISIT,
    aca_list,
    assert_shape,
)
from sandbox_calls import active_pair, pick

from doorfix.clock import ManualClock
from doorfix.sandbox.api.transport import InProcessSandbox


async def _get(sb: InProcessSandbox, path: str, **params: Any) -> Any:
    response = await sb.aca.get(path, params=params, headers=sb.aca_headers())
    assert response.status_code == 200, response.text
    return response.json()


async def _problem(
    sb: InProcessSandbox, method: str, path: str, status: int, **kw: Any
) -> dict[str, Any]:
    response = await sb.aca.request(method, path, headers=sb.aca_headers(), **kw)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert_shape(body, ACA_PROBLEM)
    assert body["status"] == status
    return body


async def _all(sb: InProcessSandbox, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await _get(sb, path, **query)
        assert len(page["data"]) <= limit
        rows += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


async def test_centers_list_and_detail(sandbox: InProcessSandbox) -> None:
    page = await _get(sandbox, "/api/v1/centers")
    assert_shape(page, aca_list(ACA_CENTER))
    assert {c["id"] for c in page["data"]} == set(sandbox.world.centers)
    center = page["data"][0]
    assert await _get(sandbox, f"/api/v1/centers/{center['id']}") == center
    await _problem(sandbox, "GET", "/api/v1/centers/nope", 404)


async def test_cursor_paging_walks_every_inventory_once(sandbox: InProcessSandbox) -> None:
    center_id = next(iter(sandbox.world.centers))
    rows = await _all(sandbox, "/api/v1/inventories", 2, center_id=center_id)
    for row in rows:
        assert_shape(row, ACA_INVENTORY)
    expected = [i.id for i in sandbox.world.inventories.values() if i.center_id == center_id]
    assert [r["id"] for r in rows] == expected


@pytest.mark.parametrize("limit", ["0", "501", "ten"])
async def test_limit_out_of_range_is_400(sandbox: InProcessSandbox, limit: str) -> None:
    await _problem(sandbox, "GET", "/api/v1/centers", 400, params={"limit": limit})


async def test_a_forged_cursor_is_400(sandbox: InProcessSandbox) -> None:
    await _problem(sandbox, "GET", "/api/v1/centers", 400, params={"cursor": "!!not-ours"})


async def test_bookings_filters(sandbox: InProcessSandbox, clock: ManualClock) -> None:
    world = sandbox.world
    booking = pick(world.bookings.values(), lambda b: b.status == "active")
    rows = await _all(
        sandbox, "/api/v1/bookings", 100, company_id=booking.company_id, center_id=booking.center_id
    )
    for row in rows:
        assert_shape(row, ACA_BOOKING)
        assert row["company_id"] == booking.company_id
    assert booking.id in [r["id"] for r in rows]
    now = clock.now().isoformat().replace("+00:00", "Z")
    active = await _all(
        sandbox, "/api/v1/bookings", 100, company_id=booking.company_id, active_at=now
    )
    assert all(r["status"] == "active" for r in active)
    await _problem(sandbox, "GET", "/api/v1/bookings", 400, params={"active_at": "yesterday"})


async def test_user_detail_accesses_and_mobile_keys(sandbox: InProcessSandbox) -> None:
    world = sandbox.world
    key = pick(world.mobile_keys.values())
    user_id = key.user_id
    user = await _get(sandbox, f"/api/v1/users/{user_id}")
    assert_shape(user, ACA_USER)
    accesses = await _get(sandbox, f"/api/v1/users/{user_id}/accesses")
    assert_shape(accesses, aca_list(ACA_ACCESS))
    keys = await _get(sandbox, f"/api/v1/users/{user_id}/mobile_keys")
    assert_shape(keys, aca_list(ACA_MOBILE_KEY))
    assert key.id in [k["id"] for k in keys["data"]]
    for path in (
        "/api/v1/users/nope",
        "/api/v1/users/nope/accesses",
        "/api/v1/users/nope/mobile_keys",
    ):
        body = await _problem(sandbox, "GET", path, 404)
        assert body["code"] == "not_found"


async def test_user_search_by_each_key(sandbox: InProcessSandbox) -> None:
    world = sandbox.world
    user = pick(world.users.values(), lambda u: bool(u.tags) and u.cloud_personnel_id is not None)
    for key, value in (
        ("email", user.email),
        ("tag", user.tags[0].number),
        ("clp_user_id", user.clp_user_id),
        ("cloud_personnel_id", user.cloud_personnel_id),
    ):
        page = await _get(sandbox, "/api/v1/users", **{key: value})
        assert_shape(page, aca_list(ACA_USER))
        assert user.id in [u["id"] for u in page["data"]], key


@pytest.mark.parametrize("params", [{}, {"email": "a@b.test", "tag": "1"}])
async def test_user_search_needs_exactly_one_key(
    sandbox: InProcessSandbox, params: dict[str, str]
) -> None:
    await _problem(sandbox, "GET", "/api/v1/users", 400, params=params)


async def test_access_matrix_put(sandbox: InProcessSandbox) -> None:
    user_id, lock_id = active_pair(sandbox.world)
    path = f"/api/v1/access_matrix/{user_id}/{lock_id}"
    response = await sandbox.aca.put(path, json={"enabled": False}, headers=sandbox.aca_headers())
    assert response.status_code == 200
    assert_shape(response.json(), ACA_MATRIX_ANSWER)
    assert response.json() == {
        "user_id": user_id,
        "lock_id": lock_id,
        "enabled": False,
        "clp_sync": "queued",
    }
    again = await sandbox.aca.put(path, json={"enabled": False}, headers=sandbox.aca_headers())
    assert again.json() == response.json()  # idempotent
    await _problem(sandbox, "PUT", "/api/v1/access_matrix/nope/nope", 404, json={"enabled": True})
    await _problem(sandbox, "PUT", path, 400, json={"enabled": "yes"})


async def test_access_matrix_enabling_a_lock_no_booking_gives_is_409(
    sandbox: InProcessSandbox,
) -> None:
    world = sandbox.world
    user = pick(world.users.values())
    granted = {a.lock_id for a in world.aca_accesses(user.id)}
    lock = pick(world.locks.values(), lambda lk: lk.id not in granted)
    body = await _problem(
        sandbox, "PUT", f"/api/v1/access_matrix/{user.id}/{lock.id}", 409, json={"enabled": True}
    )
    assert body["code"] == "no_booking"


async def test_events_feed_always_answers_a_cursor(sandbox: InProcessSandbox) -> None:
    feed = sandbox.world.aca_feed
    assert feed, "the demo world records some events"
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await _get(
            sandbox, "/api/v1/events", limit=3, **({"after": cursor} if cursor else {})
        )
        assert_shape(page, ACA_EVENTS)
        assert page["next_cursor"] is not None
        cursor = page["next_cursor"]
        if not page["data"]:
            break
        seen += [e["id"] for e in page["data"]]
    assert seen == [e.id for e in feed]
    # the resume point stays put on an empty page and moves once more arrives
    assert (await _get(sandbox, "/api/v1/events", after=cursor))["next_cursor"] == cursor


async def test_visits_filters(sandbox: InProcessSandbox) -> None:
    world = sandbox.world
    visit = pick(world.visits.values(), lambda v: v.cloud_visitor_id is not None)
    by_center = await _get(sandbox, "/api/v1/visits", center_id=visit.center_id, limit=500)
    assert_shape(by_center, aca_list(ACA_VISIT))
    assert visit.id in [v["id"] for v in by_center["data"]]
    by_visitor = await _get(sandbox, "/api/v1/visits", cloud_visitor_id=visit.cloud_visitor_id)
    assert [v["id"] for v in by_visitor["data"]] == [visit.id]
