"""The sandbox under real uvicorn on 127.0.0.1: a few calls, and a drop as a connection error."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from doorfix.clock import ManualClock
from doorfix.sandbox.api.server import ServedSandbox, build_app


@pytest.fixture
def served(clock: ManualClock) -> Iterator[ServedSandbox]:
    """The demo world served on a free loopback port for the test's duration."""
    with ServedSandbox(build_app("demo", seed=0, clock=clock)) as running:
        yield running


async def test_served_on_loopback_answers_all_three_apis(served: ServedSandbox) -> None:
    assert served.base_url.startswith("http://127.0.0.1:")
    urls = served.urls
    async with httpx.AsyncClient(timeout=5.0) as client:
        truth = await client.get(f"{urls['control']}/truth")
        assert truth.status_code == 200
        assert truth.json()["scenario"] == "demo"
        cloud = await client.post(
            f"{urls['cloud']}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "doorfix-sandbox",
                "client_secret": "sandbox-cloud-secret",
            },
        )
        assert cloud.status_code == 200
        aca = await client.get(
            f"{urls['aca']}/api/v1/centers", headers={"Authorization": "Bearer sandbox-aca-key"}
        )
        assert aca.status_code == 200
        assert aca.json()["data"]
        basic = base64.b64encode(b"doorfix-sandbox:sandbox-clp-secret").decode()
        clp_token = await client.post(
            f"{urls['clp_identity']}/connect/token",
            data={"grant_type": "client_credentials", "scope": "user_api.full_access"},
            headers={"Authorization": f"Basic {basic}"},
        )
        token = clp_token.json()["access_token"]
        site = next(iter(served.state.world.sites))
        locks = await client.get(
            f"{urls['clp']}/v1.2/sites/{site}/locks",
            params={"$top": 1},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert locks.status_code == 200
        link = locks.json()["next_page_link"]
        if link is not None:
            assert link.startswith(f"{served.base_url}/clp/v1.2/sites/{site}/locks?")


async def test_a_drop_is_a_connection_error_not_a_500(served: ServedSandbox) -> None:
    served.state.faults.add("drop", system="aca", endpoint="centers")
    headers = {"Authorization": "Bearer sandbox-aca-key"}
    async with httpx.AsyncClient(timeout=5.0) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.get(f"{served.urls['aca']}/api/v1/centers", headers=headers)
        again = await client.get(f"{served.urls['aca']}/api/v1/centers", headers=headers)
        assert again.status_code == 200


async def test_503_and_retry_after_over_the_wire(served: ServedSandbox) -> None:
    served.state.faults.add("503", system="aca", retry_after=4)
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(
            f"{served.urls['aca']}/api/v1/centers",
            headers={"Authorization": "Bearer sandbox-aca-key"},
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "4"
