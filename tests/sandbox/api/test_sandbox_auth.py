"""Auth of the three sandbox APIs: good and bad credentials, token expiry by the clock."""

from __future__ import annotations

import base64

from contract_shapes import ACA_PROBLEM, CLOUD_UNAUTHORIZED, CLP_ERROR, TOKEN, assert_shape
from sandbox_calls import bearer, cloud_call

from doorfix.clock import ManualClock
from doorfix.sandbox.api.transport import InProcessSandbox


def _basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


GOOD_CLP_FORM = {"grant_type": "client_credentials", "scope": "user_api.full_access"}


# --------------------------------------------------------------------------- cloud


async def test_cloud_token_with_good_credentials(sandbox: InProcessSandbox) -> None:
    response = await sandbox.cloud.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "doorfix-sandbox",
            "client_secret": "sandbox-cloud-secret",
        },
    )
    assert response.status_code == 200
    assert_shape(response.json(), TOKEN)
    assert response.json()["expires_in"] == 1800


async def test_cloud_token_with_bad_secret_is_invalid_client(sandbox: InProcessSandbox) -> None:
    response = await sandbox.cloud.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "doorfix-sandbox",
            "client_secret": "x",
        },
    )
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


async def test_cloud_command_without_token_is_401(sandbox: InProcessSandbox) -> None:
    response = await sandbox.cloud.post(
        "/api/v1.0/invoke/open-ability/method/manager-commands",
        json={"command": "get_project_info", "id": "r-9", "param": {"project_id": "x"}},
    )
    assert response.status_code == 401
    assert_shape(response.json(), CLOUD_UNAUTHORIZED)
    assert response.headers["X-Request-Id"] == "r-9"


async def test_cloud_token_expires_by_the_clock(
    sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    token = await sandbox.cloud_token()
    project_id = next(iter(sandbox.world.projects))
    clock.advance(1799)
    ok = await cloud_call(sandbox, token, "get_project_info", project_id=project_id)
    assert ok.status_code == 200
    clock.advance(1)
    expired = await cloud_call(sandbox, token, "get_project_info", project_id=project_id)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "unauthorized"
    fresh = await sandbox.cloud_token()
    again = await cloud_call(sandbox, fresh, "get_project_info", project_id=project_id)
    assert again.status_code == 200


async def test_a_clp_token_is_not_a_cloud_token(sandbox: InProcessSandbox) -> None:
    token = await sandbox.clp_token()
    project_id = next(iter(sandbox.world.projects))
    response = await cloud_call(sandbox, token, "get_project_info", project_id=project_id)
    assert response.status_code == 401


# --------------------------------------------------------------------------- CLP


async def test_clp_token_with_basic_auth_and_scope(sandbox: InProcessSandbox) -> None:
    response = await sandbox.clp_identity.post(
        "/connect/token",
        data=GOOD_CLP_FORM,
        headers=_basic("doorfix-sandbox", "sandbox-clp-secret"),
    )
    assert response.status_code == 200
    assert_shape(response.json(), TOKEN)
    assert response.json()["expires_in"] == 3600


async def test_clp_token_with_bad_secret_is_400_invalid_client(sandbox: InProcessSandbox) -> None:
    response = await sandbox.clp_identity.post(
        "/connect/token", data=GOOD_CLP_FORM, headers=_basic("doorfix-sandbox", "nope")
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client"}


async def test_clp_token_needs_basic_auth_not_form_secrets(sandbox: InProcessSandbox) -> None:
    response = await sandbox.clp_identity.post(
        "/connect/token",
        data={
            **GOOD_CLP_FORM,
            "client_id": "doorfix-sandbox",
            "client_secret": "sandbox-clp-secret",
        },
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client"}


async def test_clp_token_needs_the_scope(sandbox: InProcessSandbox) -> None:
    response = await sandbox.clp_identity.post(
        "/connect/token",
        data={"grant_type": "client_credentials"},
        headers=_basic("doorfix-sandbox", "sandbox-clp-secret"),
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_scope"}


async def test_clp_without_or_with_expired_token_is_401_1500(
    sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    missing = await sandbox.clp.get("/v1.2/sites")
    assert missing.status_code == 401
    assert_shape(missing.json(), CLP_ERROR)
    assert missing.json()["ErrorCode"] == "1500"
    token = await sandbox.clp_token()
    assert (await sandbox.clp.get("/v1.2/sites", headers=bearer(token))).status_code == 200
    clock.advance(3600)
    expired = await sandbox.clp.get("/v1.2/sites", headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json()["ErrorCode"] == "1500"


# --------------------------------------------------------------------------- ACA


async def test_aca_with_the_api_key(sandbox: InProcessSandbox) -> None:
    response = await sandbox.aca.get("/api/v1/centers", headers=bearer("sandbox-aca-key"))
    assert response.status_code == 200


async def test_aca_with_a_bad_or_missing_key_is_401_problem(sandbox: InProcessSandbox) -> None:
    for headers in ({}, bearer("wrong"), {"Authorization": "sandbox-aca-key"}):
        response = await sandbox.aca.get("/api/v1/centers", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert_shape(response.json(), ACA_PROBLEM)
        assert response.json()["status"] == 401
