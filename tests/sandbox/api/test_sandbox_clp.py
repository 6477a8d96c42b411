"""The CLP API of the sandbox against contract/clp.md: lists, feeds, Larry, errors."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from contract_shapes import (
    CLP_ACCESS_GROUP,
    CLP_AG_USER,
    CLP_ENTRY,
    CLP_ERROR,
    CLP_INCIDENT,
    CLP_IQ,
    CLP_KEY,
    CLP_LARRY_ACCESS,
    CLP_LOCK,
    CLP_SITE,
    CLP_SITE_USER,
    CLP_SYNC_JOB,
    CLP_SYNC_STARTED,
    assert_shape,
    clp_feed,
    clp_list,
    parse_time,
)
from sandbox_calls import bearer, pick

from doorfix.clock import ManualClock
from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.world import model


@pytest.fixture
async def auth(sandbox: InProcessSandbox) -> dict[str, str]:
    """A CLP bearer header."""
    return bearer(await sandbox.clp_token())


async def _ok(sb: InProcessSandbox, auth: dict[str, str], path: str, **params: Any) -> Any:
    response = await sb.clp.get(path, params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def _err(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert_shape(body, CLP_ERROR)
    assert body["ErrorCode"] == code
    return body


def _site(sb: InProcessSandbox) -> model.Site:
    return pick(
        sb.world.sites.values(), lambda s: any(lk.site_id == s.id for lk in sb.world.locks.values())
    )


async def _follow_links(
    sb: InProcessSandbox, auth: dict[str, str], path: str, top: int
) -> list[Any]:
    page = await _ok(sb, auth, path, **{"$top": top})
    rows = list(page["items"])
    count = page["count"]
    while page["next_page_link"] is not None:
        link = page["next_page_link"]
        assert link.startswith("http://sandbox.test/clp/"), link  # absolute, same origin
        response = await sb.clp.get(link, headers=auth)
        assert response.status_code == 200
        page = response.json()
        assert page["count"] == count
        assert len(page["items"]) <= top
        rows += page["items"]
    assert len(rows) == count
    return rows


async def test_sites_is_a_bare_array(sandbox: InProcessSandbox, auth: dict[str, str]) -> None:
    sites = await _ok(sandbox, auth, "/v1.2/sites")
    assert isinstance(sites, list)
    for site in sites:
        assert_shape(site, CLP_SITE)
    assert {s["id"] for s in sites} == set(sandbox.world.sites)


async def test_locks_follow_absolute_next_page_links(
    sandbox: InProcessSandbox, auth: dict[str, str]
) -> None:
    site = _site(sandbox)
    rows = await _follow_links(sandbox, auth, f"/v1.2/sites/{site.id}/locks", top=2)
    for row in rows:
        assert_shape(row, CLP_LOCK)
    expected = [lk.id for lk in sandbox.world.locks.values() if lk.site_id == site.id]
    assert [r["id"] for r in rows] == expected
    first = await _ok(sandbox, auth, f"/v1.2/sites/{site.id}/locks", **{"$top": 1000})
    assert_shape(first, clp_list(CLP_LOCK))
    assert first["next_page_link"] is None


async def test_lock_nests_its_iq_and_iq_detail(
    sandbox: InProcessSandbox, auth: dict[str, str]
) -> None:
    lock = pick(sandbox.world.locks.values())
    iq = sandbox.world.iqs[lock.iq_id]
    body = await _ok(sandbox, auth, f"/v1.2/sites/{lock.site_id}/locks/{lock.id}")
    assert_shape(body, CLP_LOCK)
    assert body["iq"] == {"id": iq.id, "revision": iq.revision, "online": iq.online}
    iq_body = await _ok(sandbox, auth, f"/v1.2/sites/{lock.site_id}/iqs/{iq.id}")
    assert_shape(iq_body, CLP_IQ)
    assert lock.id in iq_body["lock_ids"]
    await _err(
        await sandbox.clp.get(f"/v1.2/sites/{lock.site_id}/locks/nope", headers=auth), 404, "2202"
    )
    await _err(
        await sandbox.clp.get(f"/v1.2/sites/{lock.site_id}/iqs/nope", headers=auth), 404, "2202"
    )
    await _err(await sandbox.clp.get("/v1.2/sites/nope/locks", headers=auth), 404, "2202")


@pytest.mark.parametrize("top", ["0", "1001", "x"])
async def test_top_out_of_range_is_1102(
    sandbox: InProcessSandbox, auth: dict[str, str], top: str
) -> None:
    site = _site(sandbox)
    response = await sandbox.clp.get(
        f"/v1.2/sites/{site.id}/locks", params={"$top": top}, headers=auth
    )
    await _err(response, 400, "1102")


async def test_users_bare_array_and_their_keys(
    sandbox: InProcessSandbox, auth: dict[str, str]
) -> None:
    world = sandbox.world
    key = pick(world.keys.values())
    member = world.site_users[key.site_user_id]
    users = await _ok(sandbox, auth, f"/v1.2/sites/{member.site_id}/users")
    assert isinstance(users, list)
    for u in users:
        assert_shape(u, CLP_SITE_USER)
    assert {"id": member.platform_user_id} in [u["user"] for u in users]
    keys = await _ok(sandbox, auth, f"/v1.2/sites/{member.site_id}/users/{member.id}/keys")
    assert_shape(keys, clp_list(CLP_KEY))
    assert key.id in [k["id"] for k in keys["items"]]


async def test_access_groups_and_their_users(
    sandbox: InProcessSandbox, auth: dict[str, str]
) -> None:
    group = pick(sandbox.world.clp_access_groups.values(), lambda g: len(g.user_ids) > 1)
    groups = await _ok(sandbox, auth, f"/v1.2/sites/{group.site_id}/access_groups")
    assert_shape(groups, clp_list(CLP_ACCESS_GROUP))
    assert group.id in [g["id"] for g in groups["items"]]
    members = await _follow_links(
        sandbox, auth, f"/v1.2/sites/{group.site_id}/access_groups/{group.id}/users", top=1
    )
    for m in members:
        assert_shape(m, CLP_AG_USER)
    assert {m["user_id"] for m in members} == group.user_ids


async def _feed(
    sb: InProcessSandbox, auth: dict[str, str], path: str, top: int, since: str | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"$orderby": "utc_date_time asc", "$top": top}
    if since is not None:
        params["$filter"] = f"utc_date_time ge {since}"
    response = await sb.clp.get(path, params=params, headers=auth)
    rows: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= top
        rows += page["items"]
        token = page["continuation_token"]
        if token is None:
            return rows
        json.loads(token)  # an escaped JSON string on the wire
        response = await sb.clp.get(path, headers={**auth, "CLP-Continuation-Token": token})


async def test_entries_page_with_continuation_tokens(
    sandbox: InProcessSandbox, auth: dict[str, str], clock: ManualClock
) -> None:
    site_id, entries = pick(sandbox.world.entries.items(), lambda kv: len(kv[1]) >= 3)
    first = await _ok(sandbox, auth, f"/v1.1/sites/{site_id}/entries", **{"$top": 2})
    assert_shape(first, clp_feed(CLP_ENTRY))
    rows = await _feed(sandbox, auth, f"/v1.1/sites/{site_id}/entries", top=2)
    for row in rows:
        assert_shape(row, CLP_ENTRY)
    assert [r["id"] for r in rows] == [e.id for e in entries]
    times = [parse_time(r["utc_date_time"]) for r in rows]
    assert times == sorted(times)
    # $filter ge is inclusive
    middle = rows[len(rows) // 2]["utc_date_time"]
    later = await _feed(sandbox, auth, f"/v1.1/sites/{site_id}/entries", top=2, since=middle)
    assert later
    assert all(r["utc_date_time"] >= middle for r in later)
    assert rows[len(rows) // 2]["id"] in [r["id"] for r in later]


async def test_incidents_page_with_continuation_tokens(
    sandbox: InProcessSandbox, auth: dict[str, str]
) -> None:
    lock = pick(sandbox.world.locks.values())
    await sandbox.control.post("/present", json={"maintenance_card": lock.id})
    rows = await _feed(sandbox, auth, f"/v1.1/sites/{lock.site_id}/incidents", top=1)
    for row in rows:
        assert_shape(row, CLP_INCIDENT)
    assert [r["id"] for r in rows] == [i.id for i in sandbox.world.incidents.get(lock.site_id, [])]


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "utc_date_time gt 2026-11-16T00:00:00Z"},
        {"$filter": "utc_date_time ge yesterday"},
        {"$filter": "lock_id eq 'l-1'"},
        {"$orderby": "utc_date_time desc"},
        {"$top": "5000"},
        {"$select": "id"},
    ],
)
async def test_bad_odata_options_on_feeds_are_1102(
    sandbox: InProcessSandbox, auth: dict[str, str], params: dict[str, str]
) -> None:
    site = _site(sandbox)
    response = await sandbox.clp.get(f"/v1.1/sites/{site.id}/entries", params=params, headers=auth)
    await _err(response, 400, "1102")


async def test_a_forged_continuation_token_is_400(
    sandbox: InProcessSandbox, auth: dict[str, str]
) -> None:
    site = _site(sandbox)
    response = await sandbox.clp.get(
        f"/v1.1/sites/{site.id}/entries", headers={**auth, "CLP-Continuation-Token": "{oops"}
    )
    await _err(response, 400, "1100")


async def test_an_entry_with_the_same_time_as_a_page_end_is_neither_lost_nor_repeated(
    sandbox: InProcessSandbox, auth: dict[str, str], clock: ManualClock
) -> None:
    site_id, entries = pick(sandbox.world.entries.items(), lambda kv: len(kv[1]) >= 2)
    base = entries[-1]
    twins = [
        model.Entry(
            id=f"twin-{i}",
            event_category="lock_opened",
            event_detail=None,
            utc_date_time=base.utc_date_time + timedelta(hours=1),
            lock_id=base.lock_id,
            iq_id=base.iq_id,
            collection_id=base.collection_id,
            user_id=None,
            user_alias=None,
            access_by="inside_handle",
            key_id=None,
        )
        for i in range(3)
    ]
    entries.extend(twins)
    rows = await _feed(sandbox, auth, f"/v1.1/sites/{site_id}/entries", top=2)
    ids = [r["id"] for r in rows]
    assert ids == [e.id for e in entries]


async def test_larry_access(sandbox: InProcessSandbox, auth: dict[str, str]) -> None:
    world = sandbox.world
    group = pick(world.clp_access_groups.values(), lambda g: bool(g.user_ids and g.lock_ids))
    user_id, lock_id = sorted(group.user_ids)[0], group.lock_ids[0]
    body = await _ok(
        sandbox, auth, f"/larry/v1/sites/{group.site_id}/access", user_id=user_id, lock_id=lock_id
    )
    assert_shape(body, CLP_LARRY_ACCESS)
    assert body["user_id"] == user_id
    assert body["lock_id"] == lock_id
    missing = await sandbox.clp.get(
        f"/larry/v1/sites/{group.site_id}/access", params={"user_id": user_id}, headers=auth
    )
    await _err(missing, 400, "1100")


async def test_sync_access_then_poll_the_job(
    sandbox: InProcessSandbox, auth: dict[str, str], clock: ManualClock
) -> None:
    iq = pick(sandbox.world.iqs.values(), lambda i: i.online)
    path = f"/larry/v1/sites/{iq.site_id}/collections/{iq.collection_id}/sync_access"
    started = await sandbox.clp.post(path, headers=auth)
    if started.status_code == 403:  # CLP blocks a sync for a minute after an access change
        clock.advance(120)
        auth = bearer(await sandbox.clp_token())
        started = await sandbox.clp.post(path, headers=auth)
    assert started.status_code == 202, started.text
    assert_shape(started.json(), CLP_SYNC_STARTED)
    job_id = started.json()["job_id"]
    running = await sandbox.clp.post(path, headers=auth)
    body = await _err(running, 409, "2301")
    assert body["job_id"] == job_id
    job = await _ok(sandbox, auth, f"/larry/v1/sites/{iq.site_id}/sync_jobs/{job_id}")
    assert_shape(job, CLP_SYNC_JOB)
    assert job["state"] in ("queued", "running")
    clock.advance(3600)
    auth = bearer(await sandbox.clp_token())
    done = await _ok(sandbox, auth, f"/larry/v1/sites/{iq.site_id}/sync_jobs/{job_id}")
    assert done["state"] in ("succeeded", "failed")
    assert done["finished_utc"] is not None
    await _err(
        await sandbox.clp.get(f"/larry/v1/sites/{iq.site_id}/sync_jobs/nope", headers=auth),
        404,
        "2202",
    )
    unknown = await sandbox.clp.post(
        f"/larry/v1/sites/{iq.site_id}/collections/nope/sync_access", headers=auth
    )
    await _err(unknown, 404, "2202")


async def test_sync_access_right_after_an_access_change_is_2203(
    sandbox: InProcessSandbox, auth: dict[str, str], clock: ManualClock
) -> None:
    world = sandbox.world
    iq = pick(world.iqs.values(), lambda i: i.online)
    world.collection_changed_at[iq.collection_id] = clock.now()
    path = f"/larry/v1/sites/{iq.site_id}/collections/{iq.collection_id}/sync_access"
    await _err(await sandbox.clp.post(path, headers=auth), 403, "2203")
