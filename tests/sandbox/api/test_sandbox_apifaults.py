"""API faults: every kind, rules and rates, through the Python API and the control API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from contract_shapes import ACA_EVENTS, ACA_PROBLEM, CLOUD_UNAUTHORIZED, CLP_ERROR, assert_shape
from sandbox_calls import active_pair, bearer, cloud_call, pick

from doorfix.clock import SystemClock
from doorfix.sandbox.api.auth import SandboxCredentials
from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.faults.api import ApiFaults, FaultKind
from doorfix.sandbox.scenarios.registry import build_scenario


def _project_id(sb: InProcessSandbox) -> str:
    return next(iter(sb.world.projects))


async def _centers(sb: InProcessSandbox) -> httpx.Response:
    return await sb.aca.get("/api/v1/centers", headers=sb.aca_headers())


# --------------------------------------------------------------------------- status faults


async def test_429_carries_retry_after_in_each_envelope(sandbox: InProcessSandbox) -> None:
    cloud_token = await sandbox.cloud_token()
    clp_token = await sandbox.clp_token()
    for system in ("cloud", "aca", "clp"):
        sandbox.faults.add("429", system=system, retry_after=7)  # type: ignore[arg-type]
    cloud = await cloud_call(
        sandbox, cloud_token, "get_project_info", "r-429", project_id=_project_id(sandbox)
    )
    assert cloud.status_code == 429
    assert cloud.headers["Retry-After"] == "7"
    assert cloud.json()["success"] is False
    assert cloud.headers["X-Request-Id"] == "r-429"
    aca = await _centers(sandbox)
    assert aca.status_code == 429
    assert aca.headers["Retry-After"] == "7"
    assert_shape(aca.json(), ACA_PROBLEM)
    clp = await sandbox.clp.get("/v1.2/sites", headers=bearer(clp_token))
    assert clp.status_code == 429
    assert clp.headers["Retry-After"] == "7"
    assert_shape(clp.json(), CLP_ERROR)
    # one request each: the next ones pass
    assert (await _centers(sandbox)).status_code == 200


@pytest.mark.parametrize("kind", ["500", "502", "503"])
async def test_5xx_kinds(sandbox: InProcessSandbox, kind: str) -> None:
    sandbox.faults.add(kind, system="aca", endpoint="centers", count=2)
    for _ in range(2):
        assert (await _centers(sandbox)).status_code == int(kind)
    assert (await _centers(sandbox)).status_code == 200


async def test_clp_500_is_error_code_2201(sandbox: InProcessSandbox) -> None:
    token = await sandbox.clp_token()
    sandbox.faults.add("500", system="clp", endpoint="sites")
    response = await sandbox.clp.get("/v1.2/sites", headers=bearer(token))
    assert response.status_code == 500
    assert response.json()["ErrorCode"] == "2201"


async def test_a_rule_hits_only_its_endpoint(sandbox: InProcessSandbox) -> None:
    sandbox.faults.add("503", system="aca", endpoint="events")
    assert (await _centers(sandbox)).status_code == 200
    events = await sandbox.aca.get("/api/v1/events", headers=sandbox.aca_headers())
    assert events.status_code == 503


async def test_endpoint_globs_and_command_names(sandbox: InProcessSandbox) -> None:
    token = await sandbox.cloud_token()
    sandbox.faults.add("502", system="cloud", endpoint="get_*")
    pid = _project_id(sandbox)
    assert (await cloud_call(sandbox, token, "get_project_info", project_id=pid)).status_code == 502
    assert (await cloud_call(sandbox, token, "get_project_info", project_id=pid)).status_code == 200


# --------------------------------------------------------------------------- connections


async def test_drop_is_a_protocol_error_in_process(sandbox: InProcessSandbox) -> None:
    sandbox.faults.add("drop", system="aca", endpoint="centers")
    with pytest.raises(httpx.RemoteProtocolError):
        await _centers(sandbox)
    assert (await _centers(sandbox)).status_code == 200


async def test_drop_after_a_write_took_effect(sandbox: InProcessSandbox) -> None:
    world = sandbox.world
    user_id, lock_id = active_pair(sandbox.world)
    sandbox.faults.add("drop", system="aca", endpoint="access_matrix", after=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await sandbox.aca.put(
            f"/api/v1/access_matrix/{user_id}/{lock_id}",
            json={"enabled": False},
            headers=sandbox.aca_headers(),
        )
    assert world.matrix[(user_id, lock_id)].enabled is False  # the write landed
    [row] = sandbox.state.mutations.since(0)
    assert row.dropped is True
    assert row.outcome == "ok"


async def test_slow_answers_after_real_time() -> None:
    # a world on the real clock: the wait is what a client's timeout sees
    world = build_scenario("demo", seed=0, clock=SystemClock())
    box = InProcessSandbox.create(
        world, credentials=SandboxCredentials(), api_faults=ApiFaults(seed=0)
    )
    async with box:
        box.faults.add("slow", system="aca", slow_seconds=0.2)
        started = time.perf_counter()
        response = await _centers(box)
        assert response.status_code == 200
        assert time.perf_counter() - started >= 0.2


async def test_slow_answers_on_a_manual_clock_wait_that_clock(sandbox: InProcessSandbox) -> None:
    # a test stepping time: the wait is the world's clock's, so a seed gives one order
    sandbox.faults.add("slow", system="aca", slow_seconds=30)
    before, started = sandbox.state.clock.now(), time.perf_counter()
    response = await _centers(sandbox)
    assert response.status_code == 200
    assert (sandbox.state.clock.now() - before).total_seconds() >= 30
    assert time.perf_counter() - started < 5


# --------------------------------------------------------------------------- tokens


async def test_expire_tokens_revokes_only_that_system(sandbox: InProcessSandbox) -> None:
    cloud_token = await sandbox.cloud_token()
    clp_token = await sandbox.clp_token()
    sandbox.faults.expire_tokens("cloud")
    revoked = await cloud_call(
        sandbox, cloud_token, "get_project_info", project_id=_project_id(sandbox)
    )
    assert revoked.status_code == 401
    assert_shape(revoked.json(), CLOUD_UNAUTHORIZED)
    assert (await sandbox.clp.get("/v1.2/sites", headers=bearer(clp_token))).status_code == 200
    fresh = await sandbox.cloud_token()
    ok = await cloud_call(sandbox, fresh, "get_project_info", project_id=_project_id(sandbox))
    assert ok.status_code == 200


async def test_expire_tokens_on_aca_is_refused(sandbox: InProcessSandbox) -> None:
    with pytest.raises(ValueError, match="static API key"):
        sandbox.faults.expire_tokens("aca")


# --------------------------------------------------------------------------- quirks


async def test_clp_2203_hits_writes_only(sandbox: InProcessSandbox) -> None:
    auth = bearer(await sandbox.clp_token())
    iq = pick(sandbox.world.iqs.values(), lambda i: i.online)
    sandbox.faults.add("clp_2203", system="clp", count=1)
    assert (await sandbox.clp.get("/v1.2/sites", headers=auth)).status_code == 200
    path = f"/larry/v1/sites/{iq.site_id}/collections/{iq.collection_id}/sync_access"
    blocked = await sandbox.clp.post(path, headers=auth)
    assert blocked.status_code == 403
    assert blocked.json()["ErrorCode"] == "2203"
    assert sandbox.state.mutations.since(0) == []  # refused before it reached the world


async def test_cloud_business_error_answers_200_success_false(sandbox: InProcessSandbox) -> None:
    token = await sandbox.cloud_token()
    sandbox.faults.add(
        "cloud_business_error", system="cloud", code="permission_denied", message="nope", count=2
    )
    pid = _project_id(sandbox)
    for _ in range(2):
        response = await cloud_call(sandbox, token, "get_project_info", "r-b", project_id=pid)
        assert response.status_code == 200
        assert response.headers["X-Request-Id"] == "r-b"
        assert response.json()["error"] == {"code": "permission_denied", "message": "nope"}
    assert (await cloud_call(sandbox, token, "get_project_info", project_id=pid)).json()[
        "success"
    ] is True


async def test_aca_events_empty_page_keeps_the_cursor(sandbox: InProcessSandbox) -> None:
    first = (
        await sandbox.aca.get("/api/v1/events", params={"limit": 1}, headers=sandbox.aca_headers())
    ).json()
    sandbox.faults.add("empty_page", system="aca")
    params = {"limit": 1, "after": first["next_cursor"]}
    empty = (
        await sandbox.aca.get("/api/v1/events", params=params, headers=sandbox.aca_headers())
    ).json()
    assert_shape(empty, ACA_EVENTS)
    assert empty == {"data": [], "next_cursor": first["next_cursor"]}
    again = (
        await sandbox.aca.get("/api/v1/events", params=params, headers=sandbox.aca_headers())
    ).json()
    assert len(again["data"]) == 1


async def test_aca_duplicate_events_repeats_the_previous_last(sandbox: InProcessSandbox) -> None:
    assert len(sandbox.world.aca_feed) >= 3
    headers = sandbox.aca_headers()
    first = (await sandbox.aca.get("/api/v1/events", params={"limit": 2}, headers=headers)).json()
    sandbox.faults.add("duplicate_events", system="aca")
    params = {"limit": 2, "after": first["next_cursor"]}
    second = (await sandbox.aca.get("/api/v1/events", params=params, headers=headers)).json()
    assert second["data"][0] == first["data"][-1]
    assert second["data"][1]["id"] == sandbox.world.aca_feed[2].id


async def test_clp_empty_page_still_carries_a_token(sandbox: InProcessSandbox) -> None:
    auth = bearer(await sandbox.clp_token())
    site_id, entries = pick(sandbox.world.entries.items(), lambda kv: len(kv[1]) >= 2)
    sandbox.faults.add("empty_page", system="clp", endpoint="entries")
    path = f"/v1.1/sites/{site_id}/entries"
    empty = (await sandbox.clp.get(path, params={"$top": 1}, headers=auth)).json()
    assert empty["items"] == []
    assert empty["continuation_token"] is not None
    resumed = await sandbox.clp.get(
        path, headers={**auth, "CLP-Continuation-Token": empty["continuation_token"]}
    )
    assert [r["id"] for r in resumed.json()["items"]] == [entries[0].id]


@pytest.mark.parametrize(
    ("kind", "system", "endpoint"),
    [
        ("empty_page", "cloud", None),
        ("empty_page", "clp", "locks"),
        ("duplicate_events", "clp", None),
        ("clp_2203", "aca", None),
        ("cloud_business_error", "clp", None),
        ("expire_tokens", "cloud", None),
        ("teapot", "cloud", None),
    ],
)
def test_kinds_refuse_systems_they_do_not_apply_to(
    kind: str, system: Any, endpoint: str | None
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- each refusal words its own reason
        ApiFaults().add(kind, system=system, endpoint=endpoint)


# --------------------------------------------------------------------------- rates


def _kinds(faults: ApiFaults, n: int) -> list[FaultKind | None]:
    hits = [faults.on_request("aca", "centers", write=False, token=False) for _ in range(n)]
    return [h.kind if h else None for h in hits]


def test_rates_are_seeded_and_roughly_right() -> None:
    a, b = ApiFaults(seed=7), ApiFaults(seed=7)
    for f in (a, b):
        f.set_rates("aca", p_429=0.2, p_5xx=0.1, p_drop=0.05, p_slow=0.05, retry_after=3)
    first, second = _kinds(a, 2000), _kinds(b, 2000)
    assert first == second
    share = first.count(FaultKind.RATE_LIMITED) / 2000
    assert 0.15 < share < 0.25
    fives = sum(first.count(k) for k in (FaultKind.E500, FaultKind.E502, FaultKind.E503))
    assert 0.06 < fives / 2000 < 0.14
    assert {FaultKind.E500, FaultKind.E502, FaultKind.E503} <= set(first)


def test_rates_must_be_probabilities() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        ApiFaults().set_rates("clp", p_429=0.7, p_5xx=0.5)


async def test_rates_over_http_hit_requests(sandbox: InProcessSandbox) -> None:
    response = await sandbox.control.post(
        "/api-faults", json={"system": "aca", "rates": {"p_429": 1.0, "retry_after": 2}}
    )
    assert response.status_code == 200
    assert response.json()["rates"]["aca"]["p_429"] == 1.0
    limited = await _centers(sandbox)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert (await sandbox.control.delete("/api-faults")).status_code == 204
    assert (await _centers(sandbox)).status_code == 200


# --------------------------------------------------------------------------- control API


async def test_rules_over_http(sandbox: InProcessSandbox) -> None:
    created = await sandbox.control.post(
        "/api-faults",
        json={
            "kind": "429",
            "system": "aca",
            "endpoint": "centers",
            "count": 3,
            "params": {"retry_after": 9},
        },
    )
    assert created.status_code == 201
    rule = created.json()
    assert rule["kind"] == "429"
    assert rule["remaining"] == 3
    assert (await _centers(sandbox)).headers["Retry-After"] == "9"
    listed = (await sandbox.control.get("/api-faults")).json()
    assert [r["remaining"] for r in listed["rules"]] == [2]
    assert (await sandbox.control.delete(f"/api-faults/{rule['id']}")).status_code == 204
    assert (await sandbox.control.delete(f"/api-faults/{rule['id']}")).status_code == 404
    assert (await _centers(sandbox)).status_code == 200


async def test_expire_tokens_over_http(sandbox: InProcessSandbox) -> None:
    token = await sandbox.clp_token()
    response = await sandbox.control.post(
        "/api-faults", json={"kind": "expire_tokens", "system": "clp"}
    )
    assert response.status_code == 200
    assert (await sandbox.clp.get("/v1.2/sites", headers=bearer(token))).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "429"},
        {"kind": "429", "system": "mainframe"},
        {"kind": "nope", "system": "aca"},
        {"kind": "429", "system": "aca", "params": {"colour": "red"}},
        {"kind": "429", "system": "aca", "count": 0},
        {"system": "aca", "rates": {"p_429": 2}},
    ],
)
async def test_bad_api_fault_requests_are_400(
    sandbox: InProcessSandbox, body: dict[str, Any]
) -> None:
    response = await sandbox.control.post("/api-faults", json=body)
    assert response.status_code == 400
    assert "error" in response.json()


async def test_the_control_api_is_never_faulted(sandbox: InProcessSandbox) -> None:
    for system in ("cloud", "aca", "clp"):
        sandbox.faults.set_rates(system, p_5xx=1.0)  # type: ignore[arg-type]
    assert (await sandbox.control.get("/truth")).status_code == 200
